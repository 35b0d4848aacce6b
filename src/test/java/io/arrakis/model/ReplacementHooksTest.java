package io.arrakis.model;

import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hooks that replace an activation, against the fixtures' independent reference: a pass over other tokens, with the
 * activation at a point that everything after it depends on alone replaced by the reference's for the real tokens,
 * must give the reference's logits, on the fused route (nothing cached) and on the explicit one (everything cached).
 * Without the hook the same pass is far from them, so a replacement that went unused would fail.
 */
class ReplacementHooksTest {

    @ParameterizedTest
    @CsvSource({
            "gpt2-tiny, blocks.0.hook_resid_pre",
            "gpt2-tiny, blocks.1.hook_resid_pre",
            "gpt2-tiny, blocks.1.hook_resid_mid",
            "llama-tiny-gqa, hook_embed",
            "llama-tiny-gqa, blocks.1.hook_resid_pre",
            "llama-tiny-gqa, blocks.1.hook_resid_mid"})
    void anActivationReplacedByTheReferencesGivesTheReferencesLogits(String fixture, String hookName) {
        Path dir = Fixtures.dir(fixture);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            Tensor ids = reference.tensor("input_ids").copy();
            long[] shifted = ids.toLongArray();
            for (int i = 0; i < shifted.length; i++) {
                shifted[i] = (shifted[i] + 1) % model.config().vocabSize();
            }
            Tensor other = Tensor.of(shifted, ids.shape());
            Tensor expected = reference.tensor("logits").copy();
            Tensor replacement = reference.tensor(hookName).copy();
            double scale = Math.max(1, expected.abs().max().item());
            for (boolean cacheAll : new boolean[] {false, true}) {
                CacheSpec spec = cacheAll ? CacheSpec.all() : CacheSpec.none();
                String route = cacheAll ? "explicit route (everything cached)" : "fused route (nothing cached)";
                try (ModelOutput plain = model.forward(other, spec);
                     ModelOutput patched = model.runWithHooks(other, spec,
                             HookSpec.at(hookName, (activation, name) -> replacement))) {
                    double unpatched = plain.logits().sub(expected).abs().max().item();
                    assertTrue(unpatched > 0.1 * scale, "other tokens already give the reference's logits: " + unpatched);
                    double diff = patched.logits().sub(expected).abs().max().item();
                    assertTrue(diff <= 1e-4 * scale, fixture + ", " + hookName + " replaced, " + route + ": logits off by "
                            + diff + " (largest " + scale + ")");
                }
            }
        }
    }
}

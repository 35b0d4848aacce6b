package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The two attention routes of the forward pass (fused where nothing observes a layer's scores or pattern, explicit
 * where something does) on the CPU in float32: each matches the Hugging Face reference logits, and they agree with
 * each other within 1e-5 on every family's fixture, with hooks that replace activations on either route.
 */
class AttentionRoutesTest {

    static List<String> families() {
        return HookedAutoConfig.supportedFamilies();
    }

    /** Caching every layer's pattern makes every layer explicit. */
    private static CacheSpec patterns() {
        return CacheSpec.matching(name -> name.endsWith("attn.hook_pattern"));
    }

    @ParameterizedTest
    @MethodSource("families")
    void bothRoutesMatchHuggingFaceAndEachOther(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU)) {
            Tensor ids = reference.tensor("input_ids");
            Tensor expected = reference.tensor("logits");
            Tensor fused = model.forward(ids, CacheSpec.none()).logits();
            Tensor explicit = model.forward(ids, patterns()).logits();
            assertTrue(fused.allclose(expected, 1e-4, 1e-4), family + ": the fused route's logits differ from Hugging Face's");
            assertTrue(explicit.allclose(expected, 1e-4, 1e-4), family + ": the explicit route's logits differ from Hugging Face's");
            double worst = fused.sub(explicit).abs().max().item();
            assertTrue(fused.allclose(explicit, 1e-5, 1e-5), family + ": the routes differ by up to " + worst);
        }
    }

    /**
     * Was: the explicit route added its -inf mask to the scores, so an infinite score at a key a query may not see
     * made that query's row NaN (inf + -inf), and observing a pattern spread a later position's overflow into earlier
     * ones. Keys of 3e38 at the last position overflow every score with it; positions before it do not see it.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"gpt2", "llama"})
    void anInfiniteScoreAtAForbiddenKeyLeavesEarlierQueriesAlone(String family) {
        HookedAutoConfig config = TinyConfigs.of(family).with("num_hidden_layers", 1);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4);
            HookedAutoModel.HookSpec ones = HookedAutoModel.HookSpec.at("blocks.0.attn.hook_q",
                    (q, name) -> Tensor.ones(q.shape(), q.dtype(), q.device()));
            HookedAutoModel.HookSpec hugeLastKey = HookedAutoModel.HookSpec.at("blocks.0.attn.hook_k", (k, name) -> {
                Tensor keys = Tensor.ones(k.shape(), k.dtype(), k.device());
                keys.narrow(1, 3, 1).copyFrom(Tensor.full(keys.narrow(1, 3, 1).shape(), 3e38, k.dtype(), k.device()));
                return keys;
            });
            Tensor fused = model.runWithHooks(ids, ones, hugeLastKey);
            ModelOutput explicit = model.runWithHooks(ids, CacheSpec.only("blocks.0.attn.hook_attn_scores", "logits"),
                    ones, hugeLastKey);
            float[] scores = explicit.cache().get("blocks.0.attn.hook_attn_scores").select(0, 0).select(0, 0).toFloatArray();
            assertTrue(Float.isFinite(scores[0]), "query 0 sees key 0");
            for (int key = 1; key < 4; key++) {
                assertEquals(Float.NEGATIVE_INFINITY, scores[key], "query 0 may not see key " + key);
            }
            Tensor early = explicit.logits().narrow(1, 0, 3);
            for (float x : early.toFloatArray()) {
                assertTrue(Float.isFinite(x), family + ": positions 0-2 stay finite");
            }
            assertTrue(early.allclose(fused.narrow(1, 0, 3), 1e-5, 1e-5), family + ": the routes agree on them");
        }
    }

    @Test
    void onlyTheObservedLayerRunsExplicitlyAndReplacementsWorkOnBothRoutes() {
        HookedAutoConfig config = TinyConfigs.of("llama"); // grouped-query attention, rotary
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {5, 17, 3, 60, 8, 8, 41, 2}, 1, 8);
            // layer 0's pattern is replaced (explicit route there); layer 1's values are scaled (fused route there)
            HookedAutoModel.HookSpec uniform = HookedAutoModel.HookSpec.at("blocks.0.attn.hook_pattern", (pattern, name) -> {
                Tensor causal = Tensor.ones(new long[] {8, 8}, DType.FLOAT32, Device.CPU).tril(0);
                return causal.div(causal.sum(-1, true)).expand(pattern.shape()).contiguous();
            });
            HookedAutoModel.HookSpec halfValues = HookedAutoModel.HookSpec.at("blocks.1.attn.hook_v", (v, name) -> v.mul(0.5));
            Tensor mixed = model.runWithHooks(ids, uniform, halfValues);
            try (ModelOutput allExplicit = model.runWithHooks(ids, patterns(), uniform, halfValues);
                 ModelOutput unhooked = model.forward(ids, CacheSpec.none())) {
                assertTrue(mixed.allclose(allExplicit.logits(), 1e-5, 1e-5));
                assertFalse(mixed.allclose(unhooked.logits(), 1e-3, 1e-3), "the hooks changed nothing");
                Tensor pattern = allExplicit.cache().get("blocks.0.attn.hook_pattern");
                assertEquals(1.0 / 3, pattern.select(0, 0).select(0, 0).select(0, 2).select(0, 0).item(), 1e-6);
            }
        }
    }
}

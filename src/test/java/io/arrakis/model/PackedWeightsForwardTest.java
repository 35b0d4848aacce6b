package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A float32 model whose projections are large enough for oneDNN's packed weights (see
 * {@link io.arrakis.torch.LinearWeight}), and a bfloat16 one, give the logits and cached activations of the same
 * checkpoint loaded in float64, whose products take libtorch's own linear, with and without a cache, for one token and
 * for sixteen.
 */
class PackedWeightsForwardTest {

    private static HookedAutoConfig config(String family) {
        Map<String, Object> o = family.equals("gpt2")
                ? Map.of("n_layer", 1, "n_embd", 768, "n_head", 12, "n_positions", 32, "vocab_size", 1000)
                : Map.of("num_hidden_layers", 1, "hidden_size", 512, "intermediate_size", 1536, "num_attention_heads", 8,
                        "num_key_value_heads", 2, "max_position_embeddings", 32, "vocab_size", 1000);
        return HookedAutoConfig.of(family).with(o);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama"})
    void float32WithPackedWeightsMatchesFloat64(String family, @TempDir Path dir) throws Exception {
        HookedAutoConfig config = config(family);
        try (TensorScope scope = TensorScope.open()) {
            Fixtures.writeRandomCheckpoint(config, 3, dir);
            try (HookedAutoModel packed = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU);
                 HookedAutoModel reference = HookedAutoModel.fromPretrained(dir, DType.FLOAT64, Device.CPU)) {
                for (int length : new int[] {16, 1}) {
                    Tensor ids = Tensor.randint(new io.arrakis.torch.Generator(length), 0, 1000, new long[] {1, length},
                            Device.CPU);
                    assertClose(reference.runWithHooks(ids), packed.runWithHooks(ids), family + " logits, " + length);
                    try (ModelOutput a = packed.forward(ids, CacheSpec.all());
                         ModelOutput b = reference.forward(ids, CacheSpec.all())) {
                        assertClose(b.logits(), a.logits(), family + " logits with a cache, " + length);
                        for (String hook : new String[] {"blocks.0.attn.hook_q", "blocks.0.hook_attn_out",
                                "blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out"}) {
                            assertClose(b.cache().get(hook), a.cache().get(hook), family + " " + hook + ", " + length);
                        }
                    }
                }
            }
        }
    }

    /**
     * A bfloat16 model, whose products read packed weights on CPUs with AVX-512, against the same weights in float64:
     * within what rounding every activation to 8 significant bits explains, far less than libtorch's wrong packed
     * products (a third of the largest value and more).
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama"})
    void bfloat16WithPackedWeightsMatchesFloat64(String family, @TempDir Path dir) throws Exception {
        HookedAutoConfig config = config(family);
        try (TensorScope scope = TensorScope.open()) {
            Fixtures.writeRandomCheckpoint(config, 3, dir, DType.BFLOAT16);
            try (HookedAutoModel bf16 = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
                 HookedAutoModel reference = HookedAutoModel.fromPretrained(dir, DType.FLOAT64, Device.CPU)) {
                for (int length : new int[] {16, 1}) {
                    Tensor ids = Tensor.randint(new io.arrakis.torch.Generator(length), 0, 1000, new long[] {1, length},
                            Device.CPU);
                    try (ModelOutput a = bf16.forward(ids, CacheSpec.all());
                         ModelOutput b = reference.forward(ids, CacheSpec.all())) {
                        assertClose(b.logits(), a.logits(), BFLOAT16_TOLERANCE, family + " logits, " + length);
                        for (String hook : new String[] {"blocks.0.attn.hook_q", "blocks.0.mlp.hook_post",
                                "blocks.0.hook_mlp_out"}) {
                            assertClose(b.cache().get(hook), a.cache().get(hook), BFLOAT16_TOLERANCE,
                                    family + " " + hook + ", " + length);
                        }
                    }
                    assertClose(reference.runWithHooks(ids), bf16.runWithHooks(ids), BFLOAT16_TOLERANCE,
                            family + " logits without a cache, " + length);
                }
            }
        }
    }

    /** Relative to the largest value: a few roundings of 2^-9 each along a one-layer pass, with room to spare. */
    private static final double BFLOAT16_TOLERANCE = 3e-2;

    private static void assertClose(Tensor expected, Tensor actual, String what) {
        assertClose(expected, actual, 1e-5, what);
    }

    private static void assertClose(Tensor expected, Tensor actual, double tolerance, String what) {
        double scale = Math.max(1, expected.abs().max().item());
        double diff = actual.to(DType.FLOAT64).sub(expected).abs().max().item();
        assertTrue(diff <= tolerance * scale, what + " off by " + diff + " (largest value " + scale + ")");
    }
}

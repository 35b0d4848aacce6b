package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The sparse mixture-of-experts MLP on the Hugging Face mixtral fixture (4 experts, top 2): its routing hooks
 * against the routing recomputed in plain Java from the router's logits, its output against the experts recomputed
 * densely from the checkpoint's own tensors, rerouting through the hooks, and the configuration's keys.
 */
class MixtureOfExpertsTest {

    private static Path mixtral() {
        return Fixtures.huggingFace("mixtral");
    }

    @Test
    void mixtralRoutesEachTokenToTheTopTwoOfTheSoftmaxRenormalised() {
        Path dir = mixtral();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            for (int layer = 0; layer < 2; layer++) {
                String b = "blocks." + layer + ".mlp.";
                Tensor logits = out.cache().get(b + "hook_router_logits");
                Tensor indices = out.cache().get(b + "hook_expert_indices");
                Tensor weights = out.cache().get(b + "hook_expert_weights");
                assertArrayEquals(new long[] {2, 10, 4}, logits.shape());
                assertArrayEquals(new long[] {2, 10, 2}, indices.shape());
                assertEquals(DType.INT64, indices.dtype());
                assertEquals(DType.FLOAT32, weights.dtype());
                float[] l = logits.toFloatArray();
                long[] chosen = indices.toLongArray();
                float[] w = weights.toFloatArray();
                for (int t = 0; t < 20; t++) {
                    double[] p = new double[4];
                    double sum = 0;
                    for (int e = 0; e < 4; e++) {
                        p[e] = Math.exp(l[t * 4 + e]);
                        sum += p[e];
                    }
                    int best = 0;
                    for (int e = 1; e < 4; e++) {
                        best = p[e] > p[best] ? e : best;
                    }
                    int second = best == 0 ? 1 : 0;
                    for (int e = 0; e < 4; e++) {
                        second = e != best && p[e] > p[second] ? e : second;
                    }
                    assertEquals(best, chosen[t * 2], "token " + t);
                    assertEquals(second, chosen[t * 2 + 1], "token " + t);
                    assertEquals(p[best] / (p[best] + p[second]), w[t * 2], 1e-6);
                    assertEquals(p[second] / (p[best] + p[second]), w[t * 2 + 1], 1e-6);
                }
            }
        }
    }

    /**
     * hook_mlp_out is the routing-weighted sum of the chosen experts {@code w2(silu(w1 x) * w3 x)}, computed here densely
     * from the checkpoint's per-expert tensors; each expert's hook_pre holds its gate projection of the tokens routed
     * to it, in token order.
     */
    @Test
    void theOutputIsTheWeightedSumOfTheChosenExpertsFromTheCheckpoint() {
        Path dir = mixtral();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            String p = "model.layers.1.";
            Tensor x = out.cache().get("blocks.1.hook_resid_mid")
                    .rmsNorm(weights.tensor(p + "post_attention_layernorm.weight"), model.config().normEps())
                    .reshape(20, 64);
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            float[] w = out.cache().get("blocks.1.mlp.hook_expert_weights").toFloatArray();
            double[] expected = new double[20 * 64];
            for (int e = 0; e < 4; e++) {
                String expert = p + "block_sparse_moe.experts." + e + ".";
                Tensor gate = x.linear(weights.tensor(expert + "w1.weight"), null);
                double[] y = gate.silu().mul(x.linear(weights.tensor(expert + "w3.weight"), null))
                        .linear(weights.tensor(expert + "w2.weight"), null).toDoubleArray();
                float[] gateRows = gate.toFloatArray();
                float[] hooked = out.cache().get("blocks.1.mlp.experts." + e + ".hook_pre").toFloatArray();
                int row = 0;
                for (int t = 0; t < 20; t++) {
                    for (int j = 0; j < 2; j++) {
                        if (chosen[t * 2 + j] != e) {
                            continue;
                        }
                        for (int i = 0; i < 64; i++) {
                            expected[t * 64 + i] += w[t * 2 + j] * y[t * 64 + i];
                        }
                        for (int i = 0; i < 128; i++) {
                            assertEquals(gateRows[t * 128 + i], hooked[row * 128 + i], 1e-5, "expert " + e + " token " + t);
                        }
                        row++;
                    }
                }
                assertEquals(row * 128, hooked.length, "expert " + e + " saw exactly its tokens");
            }
            double[] actual = out.cache().get("blocks.1.hook_mlp_out").toDoubleArray();
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], actual[i], 1e-5, "element " + i);
            }
        }
    }

    /** Hooks on the indices and weights reroute: every token to expert 0 alone makes the MLP expert 0's dense MLP. */
    @Test
    void replacingTheRoutingReroutesTheTokens() {
        Path dir = mixtral();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"))) {
            Hook firstTwo = (indices, name) -> Tensor.of(new long[] {0, 1}, 1, 1, 2).expand(indices.shape()).contiguous();
            Hook allOnFirst = (w, name) -> Tensor.of(new float[] {1, 0}, 1, 1, 2).expand(w.shape()).contiguous();
            try (ModelOutput out = model.runWithHooks(Fixtures.referenceInputIds(dir), CacheSpec.all(),
                    HookedAutoModel.HookSpec.at("blocks.0.mlp.hook_expert_indices", firstTwo),
                    HookedAutoModel.HookSpec.at("blocks.0.mlp.hook_expert_weights", allOnFirst))) {
                String p = "model.layers.0.";
                Tensor x = out.cache().get("blocks.0.hook_resid_mid")
                        .rmsNorm(weights.tensor(p + "post_attention_layernorm.weight"), model.config().normEps());
                String expert = p + "block_sparse_moe.experts.0.";
                Tensor dense = x.linear(weights.tensor(expert + "w1.weight"), null).silu()
                        .mul(x.linear(weights.tensor(expert + "w3.weight"), null))
                        .linear(weights.tensor(expert + "w2.weight"), null);
                assertTrue(dense.allclose(out.cache().get("blocks.0.hook_mlp_out"), 1e-5, 1e-6));
                assertArrayEquals(new long[] {20, 128}, out.cache().get("blocks.0.mlp.experts.1.hook_post").shape());
                assertArrayEquals(new long[] {0, 128}, out.cache().get("blocks.0.mlp.experts.2.hook_pre").shape(),
                        "an expert no token chose runs on no rows");
            }
            Hook outOfRange = (indices, name) -> Tensor.full(indices.shape(), 4, DType.INT64, indices.device());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.runWithHooks(
                    Fixtures.referenceInputIds(dir), HookedAutoModel.HookSpec.at("blocks.1.mlp.hook_expert_indices", outOfRange)));
            assertTrue(e.getMessage().contains("blocks.1.mlp.hook_expert_indices holds expert 4"), e.getMessage());
        }
    }

    @Test
    void mixtralConfigurationKeys() {
        HookedAutoConfig defaults = HookedAutoConfig.of("mixtral");
        assertEquals(8, defaults.numExperts());
        assertEquals(2, defaults.expertsPerToken());
        assertEquals(1e6, defaults.ropeTheta());
        assertTrue(defaults.slidingWindow().isEmpty());
        assertEquals(0.0, defaults.raw().get("router_jitter_noise"));
        // Mixtral-8x7B: 46.7B parameters (embeddings, 32 layers of attention + 8 experts + router + norms, lm_head)
        assertEquals(46_702_792_704L, defaults.parameterCount());

        HookedAutoConfig fixture = HookedAutoConfig.fromJson(mixtral().resolve("config.json"));
        assertEquals(4, fixture.numExperts());
        assertEquals(2, fixture.expertsPerToken());
        assertEquals(0, HookedAutoConfig.of("llama").numExperts(), "a dense MLP has no experts");

        HookedAutoConfig aliased = defaults.with("num_experts", 4);
        assertEquals(4, aliased.raw().get("num_local_experts"));
        assertFalse(aliased.raw().containsKey("num_experts"));
        // training-only keys are accepted
        assertEquals(0.5, defaults.with(Map.of("router_jitter_noise", 0.5, "output_router_logits", true))
                .raw().get("router_jitter_noise"));

        IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class,
                () -> defaults.with("num_experts_per_tok", 9));
        assertTrue(tooMany.getMessage().contains("num_experts_per_tok = 9") && tooMany.getMessage().contains(
                "num_local_experts = 8"), tooMany.getMessage());
        assertThrows(IllegalArgumentException.class, () -> defaults.with("num_local_experts", 0));
    }
}

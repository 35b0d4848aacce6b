package io.arrakis.model;

import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Granite's mixtures of experts on the granite fixture made one ({@link DerivedFixtures}: every expert the dense MLP,
 * so {@link ModelParityTest} checks the whole pass): the defaults, the routing weights (the float32 softmax over each
 * token's two largest logits, rounded to the model's dtype) and the fused experts told apart.
 */
class GraniteMoeTest {

    @Test
    void defaultsAreGraniteMoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("granitemoe");
        MixtureOfExperts moe = c.architecture().moe();
        assertEquals(8, moe.experts());
        assertEquals(2, moe.topK());
        assertEquals(MixtureOfExperts.Routing.TOP_K_THEN_FLOAT32_SOFTMAX, moe.routing());
        assertFalse(moe.float32Weights(), "type_as(hidden_states): rounded to the model's dtype");
        assertFalse(c.architecture().tiedEmbeddings());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-6, c.normEps());
        assertEquals(2048, c.maxPositions());
        // untied 32000 x 4096 embedding and head; per layer q, k, v and o 4096 x 4096, the router 8 x 4096, eight
        // gated experts 3 x 4096 x 11008, two norms; the final norm
        assertEquals(2L * 32000 * 4096 + 32L * (4L * 4096 * 4096 + 8 * 4096 + 8L * 3 * 4096 * 11008 + 2 * 4096)
                + 4096, c.parameterCount());
        assertEquals(37_039_116_288L, c.parameterCount());
    }

    /**
     * With expert {@code e}'s output scaled by {@code e + 1} (its slice of {@code output_linear} so), the MLP's output
     * is {@code residual_multiplier * sum_j w_j (e_j + 1)} times the dense MLP's, where a token's weights are the
     * softmax over its two largest router logits, and its third expert has the lowest.
     */
    @Test
    void theWeightsAreTheSoftmaxOfTheTopLogitsAndWeightTheirOwnExperts(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("scaled");
        Fixtures.writeEdited(Fixtures.huggingFace("granitemoe"), dir, (name, t) -> name.contains("output_linear")
                ? t.mul(Tensor.of(new float[] {1, 2, 3}, 3, 1, 1)) : t);
        Path granite = Fixtures.huggingFace("granite");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile dense = SafeTensorsFile.open(granite.resolve("model.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(granite))) {
            float[] logits = out.cache().get("blocks.1.mlp.hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            float[] w = out.cache().get("blocks.1.mlp.hook_expert_weights").toFloatArray();
            int tokens = w.length / 2;
            double[] scale = new double[tokens];
            for (int t = 0; t < tokens; t++) {
                int first = (int) chosen[t * 2];
                int second = (int) chosen[t * 2 + 1];
                int left = 3 - first - second;
                assertTrue(logits[t * 3 + left] <= Math.min(logits[t * 3 + first], logits[t * 3 + second]),
                        "token " + t + " left out its lowest expert");
                double a = Math.exp(logits[t * 3 + first]);
                double b = Math.exp(logits[t * 3 + second]);
                assertEquals(a / (a + b), w[t * 2], 1e-6, "token " + t);
                assertEquals(b / (a + b), w[t * 2 + 1], 1e-6, "token " + t);
                scale[t] = w[t * 2] * (first + 1) + w[t * 2 + 1] * (second + 1);
            }
            Tensor x = out.cache().get("blocks.1.ln2.hook_normalized").reshape(tokens, -1);
            String p = "model.layers.1.mlp.";
            double[] mlp = x.linear(dense.tensor(p + "gate_proj.weight"), null).silu()
                    .mul(x.linear(dense.tensor(p + "up_proj.weight"), null))
                    .linear(dense.tensor(p + "down_proj.weight"), null).toDoubleArray();
            double residualMultiplier = model.config().architecture().residualMultiplier();
            assertEquals(0.5, residualMultiplier, "the granite fixture's");
            double[] actual = out.cache().get("blocks.1.hook_mlp_out").toDoubleArray();
            int d = actual.length / tokens;
            for (int i = 0; i < actual.length; i++) {
                assertEquals(residualMultiplier * scale[i / d] * mlp[i], actual[i],
                        1e-5 * Math.max(1, Math.abs(actual[i])), "element " + i);
            }
        }
    }

    /** In bfloat16 the weights are the float32 softmax of the float32 logits, rounded once to bfloat16. */
    @Test
    void aBfloat16ModelRoundsItsFloat32RoutingWeights() {
        Path dir = Fixtures.huggingFace("granitemoe");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            Tensor weights = out.cache().get("blocks.0.mlp.hook_expert_weights");
            assertEquals(DType.BFLOAT16, weights.dtype());
            float[] logits = out.cache().get("blocks.0.mlp.hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get("blocks.0.mlp.hook_expert_indices").toLongArray();
            float[] w = weights.toFloatArray();
            float[] expected = new float[w.length];
            for (int t = 0; t < w.length / 2; t++) {
                float first = logits[t * 3 + (int) chosen[t * 2]];
                float second = logits[t * 3 + (int) chosen[t * 2 + 1]];
                float max = Math.max(first, second);
                float a = (float) Math.exp(first - max);
                float b = (float) Math.exp(second - max);
                expected[t * 2] = a / (a + b);
                expected[t * 2 + 1] = b / (a + b);
            }
            float[] rounded = Tensor.of(expected, expected.length).to(DType.BFLOAT16).toFloatArray();
            for (int i = 0; i < w.length; i++) {
                assertEquals(rounded[i], w[i], 0, "weight " + i);
            }
        }
    }
}

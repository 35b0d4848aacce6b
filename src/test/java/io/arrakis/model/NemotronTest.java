package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Nemotron's defaults, {@code NemotronConfig}'s (whose null {@code num_key_value_heads}, which transformers' model
 * cannot be built from, reads here as one key/value head per query head), where its partial rotary factor comes from,
 * and its norms' weights. Its forward pass is checked against {@link NemotronReference} by {@link ModelParityTest} and
 * every family-generic test, its bfloat16 {@code LayerNorm1P} by {@link HuggingFaceRoundingTest}.
 */
class NemotronTest {

    @Test
    void defaultsAreNemotronConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("nemotron");
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.LAYER_NORM_PLUS_ONE, a.norm());
        assertTrue(c.normAddsOne() && !c.rmsNorm());
        assertEquals(Architecture.Activation.RELU2, a.activationFunction());
        assertFalse(a.gatedMlp() || a.qkvBias() || a.mlpBias() || a.tiedEmbeddings());
        assertEquals(128, c.dHead());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-5, c.normEps());
        assertEquals(4096, c.maxPositions());
        assertEquals(2, c.raw().get("bos_token_id"));
        assertEquals(3, c.raw().get("eos_token_id"));
        assertEquals(64, c.rotaryDim(), "partial_rotary_factor 0.5, as NemotronConfig defaults it");
        // untied 256000 x 6144 embedding and head; per layer q, k, v and o 6144 x 6144, up and down 6144 x 24576, two
        // LayerNorms with bias; the final one
        assertEquals(2L * 256000 * 6144 + 32L * (4L * 6144 * 6144 + 2L * 6144 * 24576 + 4 * 6144) + 2 * 6144,
                c.parameterCount());
        assertEquals(17_642_041_344L, c.parameterCount());
    }

    /** As transformers initialises {@code LayerNorm1P}: weight 1 (so the norm scales by 2) and bias 0. */
    @Test
    void aRandomModelsNormWeightsStartAtOne() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("nemotron"), 1, DType.FLOAT32, Device.CPU)) {
            for (float v : model.weights().lnfw.toFloatArray()) {
                assertEquals(1f, v);
            }
            for (float v : model.weights().lnfb.toFloatArray()) {
                assertEquals(0f, v);
            }
        }
    }

    /** The norms' effective scales that the tools read are {@code 1 + w} formed in bfloat16, as the pass forms them. */
    @Test
    void theEffectiveNormScalesOfABfloat16ModelAreFormedInBfloat16() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("nemotron"), DType.BFLOAT16,
                     Device.CPU)) {
            Tensor scales = model.normWeights();
            assertEquals(DType.BFLOAT16, scales.dtype());
            Tensor w = model.weights().layers.get(0).ln1w();
            assertArrayEquals(w.add(1.0).toFloatArray(), scales.select(0, 0).toFloatArray());
            assertFalse(w.to(DType.FLOAT32).add(1.0).allclose(scales.select(0, 0).to(DType.FLOAT32), 0, 0),
                    "1 + w in float32 is told apart");
        }
    }

    @Test
    void thePartialRotaryFactorOfRopeParametersWins() {
        HookedAutoConfig c = TinyConfigs.of("nemotron").with(Map.of("head_dim", 16, "rope_parameters",
                Map.of("rope_type", "default", "rope_theta", 10000.0, "partial_rotary_factor", 0.25)));
        assertEquals(4, c.rotaryDim());
        assertEquals(8, TinyConfigs.of("nemotron").with("head_dim", 16).rotaryDim());
    }
}

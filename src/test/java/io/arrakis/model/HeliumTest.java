package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Helium's defaults, {@code HeliumConfig}'s, and its attention's shape rules. Its forward pass is checked against
 * {@link HeliumReference} by {@link ModelParityTest} and every family-generic test, its bfloat16 rounding by
 * {@link HuggingFaceRoundingTest}.
 */
class HeliumTest {

    @Test
    void defaultsAreHeliumConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("helium");
        assertEquals(128, c.dHead());
        assertEquals(20, c.nKvHeads());
        assertEquals(100000.0, c.ropeTheta(), "HeliumConfig.default_theta");
        assertEquals(1e-8, c.normEps());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.RMS_NORM_WEIGHT_IN_FLOAT32, a.norm());
        assertEquals(Architecture.RotaryPrecision.MODEL_DTYPE, a.rotaryPrecision());
        assertTrue(a.rotaryInterleaved() && a.gatedMlp());
        assertFalse(a.qkvBias() || a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        // untied 48000 x 2560 embedding and head; per layer q, k, v and o 2560 x 2560, the gated MLP 3 x 2560 x 7040,
        // two norms; the final norm
        assertEquals(2L * 48000 * 2560 + 24L * (4L * 2560 * 2560 + 3L * 2560 * 7040 + 2 * 2560) + 2560,
                c.parameterCount());
        assertEquals(2_172_643_840L, c.parameterCount());
    }

    @Test
    void theOutputProjectionNeverHasABias() {
        Set<String> names = TinyConfigs.of("helium").with("attention_bias", true).checkpoint().tensors().keySet();
        assertTrue(names.contains("model.layers.0.self_attn.q_proj.bias"), names.toString());
        assertFalse(names.contains("model.layers.0.self_attn.o_proj.bias"), names.toString());
    }

    @Test
    void theHeadsMustSpanTheWidth() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("helium").with("head_dim", 16).architecture()).getMessage();
        assertTrue(m.contains("hidden_size = 32") && m.contains("num_attention_heads * head_dim = 64"), m);
    }
}

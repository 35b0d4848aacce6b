package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ERNIE 4.5's defaults, those of ERNIE-4.5-0.3B. Its forward pass is checked against {@link Ernie45Reference} by
 * {@link ModelParityTest}, its bfloat16 rounding by {@link HuggingFaceRoundingTest}.
 */
class Ernie45Test {

    @Test
    void defaultsAreErnie45ZeroPointThreeB() {
        HookedAutoConfig c = HookedAutoConfig.of("ernie4_5");
        assertEquals(128, c.dHead(), "head_dim, not hidden_size / heads");
        assertEquals(2, c.nKvHeads());
        assertEquals(500000.0, c.ropeTheta(), "Ernie4_5Config.default_theta");
        Architecture a = c.architecture();
        assertTrue(a.tiedEmbeddings() && a.rotaryInterleaved());
        assertFalse(a.qkvBias() || a.outBias() || a.mlpBias());
        assertEquals(Architecture.RotaryPrecision.FLOAT32, a.rotaryPrecision());
        // tied 103424 x 1024 embedding; per layer q and o 2 x 1024 x 2048, k and v 2 x 1024 x 256, the gated MLP
        // 3 x 1024 x 3072, two norms; the final norm
        assertEquals(103424L * 1024 + 18L * (2L * 1024 * 2048 + 2L * 1024 * 256 + 3L * 1024 * 3072 + 2 * 1024) + 1024,
                c.parameterCount());
        assertEquals(360_748_032L, c.parameterCount());
        assertFalse(c.with("use_bias", null).architecture().qkvBias(), "a null use_bias is nn.Linear's bias=None");
    }
}

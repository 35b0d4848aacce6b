package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cohere (Command-R): CohereConfig's defaults, the refused {@code use_qk_norm}, and its interleaved rotary embedding
 * over the whole head against the rotation worked out by hand (the forward pass itself is checked against Hugging
 * Face by {@link ModelParityTest}).
 */
class CohereTest {

    @Test
    void defaultsAreCommandR() {
        HookedAutoConfig c = HookedAutoConfig.of("cohere");
        assertEquals(0.0625, c.raw().get("logit_scale"));
        assertEquals(500000.0, c.ropeTheta(), "CohereConfig.default_theta");
        assertEquals(64, c.nKvHeads());
        assertEquals(128, c.rotaryDim(), "the whole head");
        assertFalse(c.rmsNorm());
        Architecture a = c.architecture();
        assertTrue(a.parallelResidual() && a.sharedNorm() && a.rotaryInterleaved());
        assertEquals(0.0625, a.logitScale());
        // tied 256000 x 8192 embedding; per layer q/k/v/o 4 x 8192², gate/up/down 3 x 8192 x 22528, one bias-free
        // LayerNorm 8192; the final LayerNorm 8192
        assertEquals(256000L * 8192 + 40L * (4L * 8192 * 8192 + 3L * 8192 * 22528 + 8192) + 8192, c.parameterCount());
        assertEquals(34_980_831_232L, c.parameterCount());
    }

    @Test
    void qkNormIsRefused() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> HookedAutoConfig.of("cohere").with("use_qk_norm", true)).getMessage();
        assertTrue(m.contains("use_qk_norm") && m.contains("true"), m);
    }

    /** Position p turns the pair (2i, 2i+1) of each head by p · theta^(-2i / d_head). */
    @Test
    void rotaryTurnsAdjacentPairs() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("cohere"))) {
            int dHead = model.config().dHead();
            double theta = model.config().ropeTheta();
            assertEquals(500000.0, theta);
            int pos = 4;
            double[] x = new double[pos * dHead];
            for (int i = 0; i < x.length; i++) {
                x[i] = Math.cos(1.3 * i - 0.2);
            }
            double[] expected = InterleavedRotation.of(x, pos, dHead, dHead, theta);
            double[] actual = model.rotate(0, Tensor.of(x, 1, pos, 1, dHead)).toDoubleArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(expected[i], actual[i], 1e-6, "feature " + i % dHead + " at position " + i / dHead);
            }
        }
    }
}

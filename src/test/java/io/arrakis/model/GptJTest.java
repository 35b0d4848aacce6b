package io.arrakis.model;

import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPT-J: GPTJConfig's defaults and aliases, the refused rotary sizes, and its rotary embedding against the
 * rotate-every-two rotation worked out by hand (the forward pass itself is checked against Hugging Face by
 * {@link ModelParityTest}).
 */
class GptJTest {

    @Test
    void defaultsAreGptJ6B() {
        HookedAutoConfig c = HookedAutoConfig.of("gptj");
        assertEquals("gpt-j", c.family());
        assertEquals(4096, c.dModel());
        assertEquals(16384, c.dMlp(), "n_inner None means 4 * n_embd");
        assertEquals(64, c.rotaryDim());
        assertEquals(10000.0, c.ropeTheta());
        assertTrue(c.parallelResidual() && c.architecture().sharedNorm() && c.architecture().rotaryInterleaved());
        assertFalse(c.qkvBias() || c.outBias());
        assertTrue(c.mlpBias());
        // wte and lm_head 2 x 50400 x 4096, lm_head's bias 50400, per layer q/k/v/out 4 x 4096², fc_in/fc_out with
        // biases 2 x 4096 x 16384 + 16384 + 4096, ln_1 2 x 4096; ln_f 2 x 4096
        assertEquals(2L * 50400 * 4096 + 50400 + 28L * (4L * 4096 * 4096 + 2L * 4096 * 16384 + 16384 + 4096 + 8192)
                + 8192, c.parameterCount());
        assertEquals(6_050_882_784L, c.parameterCount());
        assertEquals(1024, c.with("hidden_size", 1024).raw().get("n_embd"), "GPTJConfig's attribute_map");
    }

    @Test
    void rotaryDimMustBeEvenAndFitTheHead() {
        HookedAutoConfig c = HookedAutoConfig.of("gptj");
        for (int bad : new int[] {7, 258}) {
            String m = assertThrows(IllegalArgumentException.class, () -> c.with("rotary_dim", bad)).getMessage();
            assertTrue(m.contains("rotary_dim") && m.contains(String.valueOf(bad)), m);
        }
        assertThrows(IllegalArgumentException.class, () -> c.with("rotary_dim", null));
        assertEquals(256, c.with("rotary_dim", 256).rotaryDim());
    }

    /**
     * Position p turns the pair (2i, 2i+1) of the first rotary_dim features by p · 10000^(-2i / rotary_dim):
     * (a, b) becomes (a cos − b sin, b cos + a sin); the features after rotary_dim pass through.
     */
    @Test
    void rotaryTurnsAdjacentPairsOfTheFirstRotaryDimFeatures() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("gptj"))) {
            int dHead = model.config().dHead();
            int rotaryDim = model.config().rotaryDim();
            assertEquals(8, rotaryDim);
            int pos = 3;
            double[] x = new double[pos * dHead];
            for (int i = 0; i < x.length; i++) {
                x[i] = Math.sin(0.7 * i + 0.3);
            }
            double[] expected = InterleavedRotation.of(x, pos, dHead, rotaryDim, 10000);
            double[] actual = model.rotate(0, Tensor.of(x, 1, pos, 1, dHead)).toDoubleArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(expected[i], actual[i], 1e-6, "feature " + i % dHead + " at position " + i / dHead);
            }
        }
    }

    @Test
    void aTiedGptJKeepsItsUnembeddingBias() {
        HookedAutoConfig c = HookedAutoConfig.of("gptj").with(Map.of("tie_word_embeddings", true));
        assertEquals(HookedAutoConfig.of("gptj").parameterCount() - 50400L * 4096, c.parameterCount());
    }
}

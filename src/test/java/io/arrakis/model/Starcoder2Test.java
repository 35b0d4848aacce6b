package io.arrakis.model;

import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * StarCoder2: Starcoder2Config's defaults, {@code use_bias}, and the fixture's sliding window (the forward pass itself
 * is checked against Hugging Face by {@link ModelParityTest}).
 */
class Starcoder2Test {

    @Test
    void defaultsAreStarCoder2With3BSizes() {
        HookedAutoConfig c = HookedAutoConfig.of("starcoder2");
        assertEquals(2, c.nKvHeads());
        assertEquals("gelu_pytorch_tanh", c.activation());
        assertFalse(c.rmsNorm() || c.gatedMlp() || c.parallelResidual());
        assertTrue(c.qkvBias() && c.outBias() && c.mlpBias() && c.tiedEmbeddings());
        assertEquals(OptionalInt.empty(), c.slidingWindow());
        // tied 49152 x 3072 embedding; per layer q/o 2 x (3072² + 3072), k/v 2 x (3072 x 256 + 256), c_fc/c_proj
        // 2 x 3072 x 12288 + 12288 + 3072, two LayerNorms 4 x 3072; the final LayerNorm 2 x 3072
        long perLayer = 2L * (3072 * 3072 + 3072) + 2L * (3072 * 256 + 256) + 2L * 3072 * 12288 + 12288 + 3072
                + 4 * 3072;
        assertEquals(49152L * 3072 + 30 * perLayer + 2 * 3072, c.parameterCount());
        assertEquals(3_030_371_328L, c.parameterCount());
        assertEquals(c.parameterCount() - 30L * (3072 + 256 + 256 + 3072 + 12288 + 3072),
                c.with("use_bias", false).parameterCount(), "use_bias = false drops every projection's bias");
    }

    @Test
    void theFixturesLayersSeeTheLastFourPositions() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("starcoder2"))) {
            assertEquals(OptionalInt.of(4), model.config().slidingWindow());
            Tensor mask = model.attentionMask(1, 7);
            for (int q = 0; q < 7; q++) {
                for (int k = 0; k < 7; k++) {
                    boolean visible = k <= q && k > q - 4;
                    assertEquals(!visible, mask.select(0, q).select(0, k).itemBoolean(), "query " + q + " key " + k);
                }
            }
        }
    }
}

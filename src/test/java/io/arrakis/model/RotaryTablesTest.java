package io.arrakis.model;

import io.arrakis.model.family.Rope;
import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rotary tables as Hugging Face's rotary embeddings compute them: the angle {@code position * inv_freq} in
 * float32, its cos and sin in float32, times the attention factor in float32 ({@code emb.cos() *
 * attention_scaling}), then cast to the model's dtype ({@code .to(x.dtype)}), which for bfloat16 rounds a second time.
 * YaRN's attention factor is where the order counts.
 */
class RotaryTablesTest {
    private static final int POS = 512;

    @Test
    void yarnTablesRoundInFloat32ThenToTheModelsDtype() {
        HookedAutoConfig config = TinyConfigs.of("llama").with("head_dim", 32).with("rope_scaling", Map.of(
                "rope_type", "yarn", "factor", 20.0, "original_max_position_embeddings", 16));
        Rope rope = config.architecture().rope(0);
        float[] invFreq = rope.inverseFrequencies();
        float factor = (float) rope.attentionFactor();
        assertTrue(factor > 1.2, "YaRN's factor for a 20-fold extension: " + factor);
        int half = rope.dim() / 2;
        float[] expected = new float[POS * half];
        int fromDouble = 0;
        for (int p = 0; p < POS; p++) {
            for (int i = 0; i < half; i++) {
                float angle = (float) p * invFreq[i];
                expected[p * half + i] = (float) Math.cos(angle) * factor;
                fromDouble += expected[p * half + i] != (float) (Math.cos(angle) * rope.attentionFactor()) ? 1 : 0;
            }
        }
        assertTrue(fromDouble > expected.length / 10, "the order is not told apart: " + fromDouble);
        for (DType dtype : List.of(DType.FLOAT32, DType.BFLOAT16)) {
            try (TensorScope scope = TensorScope.open()) {
                float[] cos = Forward.Rotary.tables(rope, false, false, POS, dtype, Device.CPU).getFirst()
                        .to(DType.FLOAT32).toFloatArray();
                for (int p = 0; p < POS; p++) {
                    for (int i = 0; i < half; i++) {
                        float want = expected[p * half + i];
                        assertEquals(dtype == DType.FLOAT32 ? want : Bfloat16.round(want), cos[p * rope.dim() + i],
                                0, dtype + " cos at position " + p + ", frequency " + i);
                    }
                }
            }
        }
    }
}

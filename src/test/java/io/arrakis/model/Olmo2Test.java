package io.arrakis.model;

import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * OLMo 2's rotary embedding in bfloat16 (the float32 forward pass is checked against Hugging Face by
 * {@link ModelParityTest}).
 */
class Olmo2Test {

    /**
     * Olmo2RotaryEmbedding returns cos and sin in float32, which {@code apply_rotary_pos_emb} multiplies the bfloat16
     * queries and keys by, rounding to bfloat16 once at the end: the first feature {@code a} of a pair {@code (a, b)}
     * becomes {@code Bfloat16.round(a·c + (−b)·s)} with float32 c, s, products and sum. Llama's rounds c and s to
     * bfloat16 first. The queries rotated are the normalised ones.
     */
    @Test
    void bfloat16RotatesWithFloat32CosAndSinAsOlmo2sModelDoes() {
        HookedAutoConfig config = HookedAutoConfig.of("olmo2").with(Map.of("hidden_size", 64, "num_hidden_layers", 1,
                "num_attention_heads", 2, "intermediate_size", 32, "vocab_size", 16));
        int heads = config.nHeads();
        int dHead = config.dHead();
        int half = dHead / 2;
        float[] invFreq = config.architecture().rope().inverseFrequencies();
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {1, 5, 9, 2, 14, 7, 3, 11}, 1, 8),
                     CacheSpec.only("blocks.0.attn.hook_q_normed", "blocks.0.attn.hook_rot_q"))) {
            Tensor q = out.cache().get("blocks.0.attn.hook_q_normed");
            float[] qs = q.toFloatArray();
            int pos = (int) q.size(1);
            float[] withFloat32Tables = new float[qs.length];
            float[] withBfloat16Tables = new float[qs.length];
            for (int p = 0; p < pos; p++) {
                for (int h = 0; h < heads; h++) {
                    for (int i = 0; i < half; i++) {
                        float angle = (float) p * invFreq[i];
                        float c = (float) Math.cos(angle);
                        float s = (float) Math.sin(angle);
                        int first = (p * heads + h) * dHead + i;
                        int second = first + half;
                        float a = qs[first];
                        float b = qs[second];
                        withFloat32Tables[first] = Bfloat16.round(a * c + -b * s);
                        withFloat32Tables[second] = Bfloat16.round(b * c + a * s);
                        float cb = Bfloat16.round(c);
                        float sb = Bfloat16.round(s);
                        withBfloat16Tables[first] = Bfloat16.round(a * cb + -b * sb);
                        withBfloat16Tables[second] = Bfloat16.round(b * cb + a * sb);
                    }
                }
            }
            assertFalse(Arrays.equals(withFloat32Tables, withBfloat16Tables), "the queries tell the two apart");
            Tensor rotated = out.cache().get("blocks.0.attn.hook_rot_q");
            assertEquals(DType.BFLOAT16, rotated.dtype());
            assertArrayEquals(withFloat32Tables, rotated.toFloatArray(), "the forward pass");
            assertArrayEquals(withFloat32Tables, model.rotate(0, q).toFloatArray(), "HookedAutoModel.rotate");
        }
    }
}

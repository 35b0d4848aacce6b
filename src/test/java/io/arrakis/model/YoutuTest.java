package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LatentAttention;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Youtu-LLM's defaults, {@code YoutuConfig}'s, and its checkpoint's names. Its forward pass is checked against
 * {@link DeepseekV3Reference}'s Youtu model (latent attention, every MLP dense, tied head) by {@link ModelParityTest}
 * and every family-generic test.
 */
class YoutuTest {

    @Test
    void defaultsAreYoutuConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("youtu");
        assertEquals("youtu", c.family());
        Architecture a = c.architecture();
        LatentAttention latent = a.latentAttention();
        assertEquals(new LatentAttention(1536, 512, 128, 64, 128, true), latent);
        assertNull(a.moe(), "every layer's MLP is dense");
        assertTrue(a.tiedEmbeddings());
        assertFalse(a.outBias());
        // YoutuConfig: 2.0 / (5.0 * self.hidden_size) ** 0.5, the power first
        assertEquals(0.019764235376052372, a.initializerRange(), 1e-15,
                "a null initializer_range is 2 / sqrt(5 hidden_size), as YoutuConfig fills it in");
        // tied 128256 x 2048 embedding; per layer q_a 1536 x 2048 and its norm, q_b 3072 x 1536, kv_a 576 x 2048 and
        // its norm of 512, kv_b 4096 x 512, o 2048 x 2048, two norms, the MLP 3 x 2048 x 6144; the final norm
        long layer = 1536L * 2048 + 1536 + 3072L * 1536 + 576L * 2048 + 512 + 4096L * 512 + 2048L * 2048 + 2 * 2048
                + 3L * 2048 * 6144;
        assertEquals(128256L * 2048 + 32 * layer + 2048, c.parameterCount());
    }

    @Test
    void theCheckpointHasLatentAttentionAndADenseMlpInEveryLayer() {
        HookedAutoConfig c = TinyConfigs.of("youtu").with(Map.of("q_lora_rank", 16, "kv_lora_rank", 12,
                "qk_nope_head_dim", 6, "qk_rope_head_dim", 4, "v_head_dim", 6));
        Set<String> names = c.checkpoint().tensors().keySet();
        for (int layer = 0; layer < c.nLayers(); layer++) {
            String p = "model.layers." + layer + ".";
            assertTrue(names.containsAll(Set.of(p + "self_attn.q_a_proj.weight",
                    p + "self_attn.kv_a_proj_with_mqa.weight", p + "self_attn.kv_b_proj.weight",
                    p + "mlp.gate_proj.weight", p + "post_attention_layernorm.weight")), names.toString());
        }
        assertFalse(names.contains("lm_head.weight"), "tied");
    }
}

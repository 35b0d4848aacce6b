package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * dots1's defaults ({@code Dots1Config}'s, with dots.llm1's expert counts where the class has none), its sliding layers
 * and refusals. Its forward pass is checked against {@link Glm4MoeReference}'s dots1 model (Qwen3's attention with
 * biases, layer 0 dense, DeepSeek-V3's routing) by {@link ModelParityTest} and every family-generic test.
 */
class Dots1Test {

    @Test
    void defaultsAreDots1ConfigsWithDotsLlm1sExperts() {
        HookedAutoConfig c = HookedAutoConfig.of("dots1");
        assertEquals(144, c.dHead(), "hidden_size / heads: Dots1Config sets no head_dim");
        assertEquals(32, c.nKvHeads());
        assertEquals(1e-6, c.normEps());
        Architecture a = c.architecture();
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertFalse(a.qkNormAfterRotary() || a.qkvBias() || a.outBias() || a.tiedEmbeddings());
        assertEquals(128, c.numExperts());
        assertEquals(6, c.expertsPerToken());
        assertTrue(a.moe().sparse(0), "first_k_dense_replace 0: every layer sparse");
        assertEquals(2 * 1408, a.moe().sharedWidth());
        assertFalse(a.moe().grouped().normalized(), "Dots1Config's norm_topk_prob is false");
        assertTrue(a.layerAttention().stream().allMatch(l -> l == Architecture.LayerAttention.FULL),
                "max_window_layers = num_hidden_layers: no sliding layer");
    }

    @Test
    void layersFromMaxWindowLayersOnSlideWhereAWindowIsSet() {
        HookedAutoConfig c = TinyConfigs.of("dots1").with("sliding_window", 4).with("max_window_layers", 1);
        assertEquals(java.util.List.of(Architecture.LayerAttention.FULL, Architecture.LayerAttention.SLIDING),
                c.architecture().layerAttention());
        assertEquals(4, c.architecture().attentionWindow(1));
        HookedAutoConfig none = TinyConfigs.of("dots1").with("sliding_window", null).with("max_window_layers", 1);
        assertEquals(0, none.architecture().attentionWindow(1), "no window: every layer full");
        assertEquals(0, TinyConfigs.of("dots1").with("sliding_window", null).with("max_window_layers", null)
                .architecture().attentionWindow(1), "Dots1Config takes a null max_window_layers without a window");
        String m = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.of("dots1")
                .with("max_window_layers", null).architecture()).getMessage();
        assertTrue(m.contains("max_window_layers") && m.contains("sliding_window"), m);
        m = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.of("dots1").with("sliding_window", null)
                .with("layer_types", java.util.List.of("full_attention", "sliding_attention"))
                .architecture()).getMessage();
        assertTrue(m.contains("sliding_window null") && !m.contains("use_sliding_window"), "dots1 has no such key: "
                + m);
    }

    @Test
    void theOutputProjectionHasABiasWithAttentionBias() {
        Set<String> names = TinyConfigs.of("dots1").with("attention_bias", true).checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.self_attn.o_proj.bias", "model.layers.0.self_attn.q_norm.weight",
                "model.layers.0.mlp.gate.e_score_correction_bias", "model.layers.0.mlp.shared_experts.up_proj.weight")),
                names.toString());
    }

    @Test
    void anExpertCountSetNullIsRefused() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("dots1").with("n_routed_experts", null).architecture()).getMessage();
        assertTrue(m.contains("n_routed_experts") && m.contains("must be set"), m);
    }
}

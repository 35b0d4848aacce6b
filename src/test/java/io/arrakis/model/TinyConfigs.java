package io.arrakis.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A tiny configuration of any registered family (d_model 32, 2 layers, 4 heads, 16 positions, vocabulary 64, no
 * padding token outside it), set through the standard key names that each family's aliases map to its own, so that
 * tests can run every family.
 */
final class TinyConfigs {
    private TinyConfigs() {
    }

    static HookedAutoConfig of(String family) {
        HookedAutoConfig defaults = HookedAutoConfig.of(family);
        Map<String, Object> raw = defaults.raw();
        Map<String, Object> o = new LinkedHashMap<>(Map.of("hidden_size", 32, "num_hidden_layers", 2,
                "num_attention_heads", 4, "max_position_embeddings", 16, "vocab_size", 64));
        if (raw.containsKey("intermediate_size")) {
            o.put("intermediate_size", 48);
        }
        if (raw.containsKey("ffn_dim")) { // opt's
            o.put("ffn_dim", 48);
        }
        // the many experts of qwen3-moe (128, top 8), qwen3-vl-moe and qwen2-moe (60, top 4) made few
        if (raw.containsKey("moe_intermediate_size") && !family.equals("gemma4")) { // gemma4's: off by default
            o.putAll(Map.of("moe_intermediate_size", 48, raw.containsKey("num_experts") ? "num_experts"
                    : raw.containsKey("n_routed_experts") ? "n_routed_experts"
                    : raw.containsKey("moe_num_experts") ? "moe_num_experts" : "num_local_experts", 4,
                    "num_experts_per_tok", 2));
        }
        if (family.equals("minimax-m2")) { // its 256 experts, top 8
            o.putAll(Map.of("num_local_experts", 4, "num_experts_per_tok", 2));
        }
        if (family.equals("hunyuan-v1-moe")) { // one expert, top 1, by default
            o.putAll(Map.of("num_experts", 4, "moe_topk", 2));
        }
        if (raw.containsKey("shared_expert_intermediate_size")) {
            o.put("shared_expert_intermediate_size", 40);
        }
        if (raw.containsKey("shared_intermediate_size")) { // granitemoeshared's, 0 (none) by default
            o.put("shared_intermediate_size", 40);
        }
        if (raw.containsKey("num_key_value_heads")) {
            o.put("num_key_value_heads", 2);
        }
        if (raw.containsKey("kv_lora_rank")) { // deepseek-v3's latents made small, its value heads narrower
            o.putAll(Map.of("q_lora_rank", 16, "kv_lora_rank", 12, "qk_nope_head_dim", 6, "qk_rope_head_dim", 4,
                    "v_head_dim", 6, "num_key_value_heads", 4));
        }
        if (raw.get("n_group") instanceof Integer groups && groups > 2) { // deepseek-v3's 8 groups of its 256 experts
            o.putAll(Map.of("n_group", 2, "topk_group", 1));
        }
        if (raw.get("first_k_dense_replace") instanceof Integer dense && dense > 1) { // one dense layer, one sparse
            o.put("first_k_dense_replace", 1);
        }
        if (raw.get("head_dim") != null) {
            o.put("head_dim", 8);
        }
        if (raw.containsKey("rotary_dim")) {
            o.put("rotary_dim", 4);
        }
        if (raw.get("pad_token_id") instanceof Integer pad && pad >= 64) { // phi3's default lies outside vocabulary 64
            o.put("pad_token_id", null);
        }
        if (raw.containsKey("linear_num_value_heads")) { // qwen3.5's linear attention small, its layer 1 softmax
            o.putAll(Map.of("linear_num_key_heads", 2, "linear_num_value_heads", 4, "linear_key_head_dim", 8,
                    "linear_value_head_dim", 8, "layer_types", List.of("linear_attention", "full_attention")));
        }
        if (raw.get("num_dense_layers") instanceof Integer dense && dense > 1) { // lfm2-moe's: one dense, one sparse
            o.put("num_dense_layers", 1);
        }
        if (raw.containsKey("conv_L_cache")) { // lfm2: a convolution layer, then an attention one
            o.put("layer_types", List.of("conv", "full_attention"));
        }
        if (raw.containsKey("mamba_n_heads")) { // Mamba layers made small: a Mamba layer, then attention
            o.putAll(Map.of("mamba_n_heads", 8, "mamba_d_state", 8, "mamba_chunk_size", 4));
            if (raw.containsKey("attn_layer_indices")) { // bamba's
                o.put("attn_layer_indices", List.of(1));
            } else {
                o.put("layer_types", List.of("mamba", "attention"));
            }
        }
        if (raw.containsKey("vocab_size_per_layer_input")) { // gemma4's per-layer embeddings and full layers made small
            o.putAll(Map.of("vocab_size_per_layer_input", 64, "hidden_size_per_layer_input", 4, "global_head_dim", 16));
        }
        if (raw.containsKey("attention_types")) {
            o.put("attention_types", List.of(List.of(List.of("global", "local"), 1)));
            o.put("window_size", 4);
        }
        return defaults.with(o);
    }
}

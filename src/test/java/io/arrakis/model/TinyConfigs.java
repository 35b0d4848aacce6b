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
        if (raw.containsKey("moe_intermediate_size")) {
            o.putAll(Map.of("moe_intermediate_size", 48, raw.containsKey("num_experts") ? "num_experts"
                    : "num_local_experts", 4, "num_experts_per_tok", 2));
        }
        if (raw.get("num_local_experts") instanceof Integer experts && experts > 8) { // minimax-m2's 256, top 8
            o.putAll(Map.of("num_local_experts", 4, "num_experts_per_tok", 2));
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
        if (raw.get("head_dim") != null) {
            o.put("head_dim", 8);
        }
        if (raw.containsKey("rotary_dim")) {
            o.put("rotary_dim", 4);
        }
        if (raw.get("pad_token_id") instanceof Integer pad && pad >= 64) { // phi3's default lies outside vocabulary 64
            o.put("pad_token_id", null);
        }
        if (raw.containsKey("attention_types")) {
            o.put("attention_types", List.of(List.of(List.of("global", "local"), 1)));
            o.put("window_size", 4);
        }
        return defaults.with(o);
    }
}

package io.arrakis.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Random small configurations of a family (1 to 3 layers, d_model 32 to 96, 6 to 24 positions), with the settings that
 * choose how attention is computed drawn too where the family has them: key/value heads, an explicit head dimension,
 * sliding windows and which layers slide, soft-capping, the rotary fraction, base and scaling, biases, parallel
 * residuals, activations, falcon's layouts, granite's multipliers, the experts of a mixture (the groups and dense
 * layers of glm4-moe's kind too), deepseek-v3's latent attention and qwen3.5's linear attention. A value the family
 * refuses is left at its default.
 */
final class RandomConfigs {
    private RandomConfigs() {
    }

    static HookedAutoConfig of(String family, Random r) {
        HookedAutoConfig defaults = HookedAutoConfig.of(family);
        Map<String, Object> raw = defaults.raw();
        for (int attempt = 0; attempt < 50; attempt++) {
            int layers = 1 + r.nextInt(3);
            int d = pick(r, List.of(32, 48, 64, 96));
            List<Integer> headCounts = new ArrayList<>();
            for (int h : new int[] {1, 2, 3, 4, 6, 8}) {
                if (d % h == 0 && (d / h) % 2 == 0 && d / h >= 4) {
                    headCounts.add(h);
                }
            }
            int heads = pick(r, headCounts);
            int positions = 6 + r.nextInt(19);
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("hidden_size", d);
            o.put("num_hidden_layers", layers);
            o.put("num_attention_heads", heads);
            o.put("max_position_embeddings", positions);
            o.put("vocab_size", pick(r, List.of(64, 80, 128)));
            int mlp = pick(r, List.of(32, 48, 64, 128));
            for (String key : List.of("intermediate_size", "n_inner", "ffn_hidden_size")) {
                if (raw.containsKey(key)) {
                    o.put(key, mlp);
                }
            }
            if (raw.containsKey("num_key_value_heads")) {
                o.put("num_key_value_heads", pick(r, divisors(heads)));
            }
            if (raw.get("pad_token_id") instanceof Integer pad && pad >= 64) {
                o.put("pad_token_id", null);
            }
            if (raw.containsKey("rotary_dim")) {
                o.put("rotary_dim", 2);
            }
            if (raw.containsKey("attention_types")) {
                o.put("attention_types", List.of(List.of(layerTypes(r, layers, "global", "local"), 1)));
                o.put("window_size", 1 + r.nextInt(Math.min(positions, 8)));
            }
            if (raw.get("head_dim") != null && d % heads != 0) {
                continue;
            }
            HookedAutoConfig c = validOrNull(defaults, o);
            if (c == null && raw.get("head_dim") != null) { // helium's heads must span the width: set both at once
                o.put("head_dim", d / heads);
                c = validOrNull(defaults, o);
            }
            if (c == null) {
                continue;
            }
            if (r.nextInt(3) == 0) {
                c = tryWith(c, Map.of("head_dim", pick(r, List.of(4, 8, 12, 16, 24))));
            } else if (raw.get("head_dim") != null) {
                c = tryWith(c, Map.of("head_dim", d / heads));
            }
            return decorated(family, c, r, layers, heads, positions);
        }
        throw new IllegalStateException("no configuration of " + family + " drawn");
    }

    /** {@code defaults} with {@code overrides}, or null where they are invalid together. */
    private static HookedAutoConfig validOrNull(HookedAutoConfig defaults, Map<String, Object> overrides) {
        try {
            return defaults.with(overrides);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static HookedAutoConfig decorated(String family, HookedAutoConfig c, Random r, int layers, int heads,
                                              int positions) {
        Map<String, Object> raw = c.raw();
        for (String key : List.of("tie_word_embeddings", "attention_bias", "mlp_bias", "use_qkv_bias", "use_bias", "bias",
                "scale_attn_weights", "use_parallel_residual")) {
            if (raw.containsKey(key)) {
                c = tryWith(c, Map.of(key, r.nextBoolean()));
            }
        }
        if (r.nextBoolean()) {
            String act = pick(r, List.of("silu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "gelu_fast"));
            for (String key : List.of("hidden_act", "activation_function", "activation", "hidden_activation")) {
                if (raw.containsKey(key) && !(family.equals("gemma") && key.equals("hidden_activation"))) {
                    c = tryWith(c, Map.of(key, act));
                }
            }
        }
        if (raw.containsKey("sliding_window") && r.nextInt(4) != 0) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("sliding_window", 1 + r.nextInt(Math.min(positions, 10)));
            if (raw.containsKey("use_sliding_window")) {
                o.put("use_sliding_window", true);
                o.put("max_window_layers", r.nextInt(layers + 1));
            }
            if (raw.containsKey("layer_types") && r.nextBoolean()) {
                o.put("layer_types", layerTypes(r, layers, "full_attention", "sliding_attention"));
            }
            c = tryWith(c, o);
        }
        if (raw.containsKey("linear_num_value_heads")) { // qwen3.5's linear attention: its heads and layers
            int keyHeads = pick(r, List.of(1, 2));
            c = tryWith(c, Map.of("linear_num_key_heads", keyHeads, "linear_num_value_heads", keyHeads
                    * pick(r, List.of(1, 2)), "linear_key_head_dim", pick(r, List.of(4, 8)), "linear_value_head_dim",
                    pick(r, List.of(4, 6)), "linear_conv_kernel_dim", pick(r, List.of(2, 4)),
                    "layer_types", layerTypes(r, layers, "full_attention", "linear_attention")));
        }
        if (raw.containsKey("attn_logit_softcapping")) {
            c = tryWith(c, nullable("attn_logit_softcapping", r.nextBoolean() ? null : pick(r, List.of(1.0, 3.0, 50.0))));
        }
        if (raw.containsKey("final_logit_softcapping")) {
            c = tryWith(c, nullable("final_logit_softcapping", r.nextBoolean() ? null : pick(r, List.of(2.0, 30.0))));
        }
        if (raw.containsKey("query_pre_attn_scalar")) {
            c = tryWith(c, Map.of("query_pre_attn_scalar", pick(r, List.of(16.0, 64.0, (double) c.dHead()))));
        }
        for (String key : List.of("partial_rotary_factor", "rotary_pct")) {
            if (raw.containsKey(key) && r.nextBoolean()) {
                c = tryWith(c, Map.of(key, pick(r, List.of(0.25, 0.5, 0.75, 1.0))));
            }
        }
        if (raw.containsKey("rotary_dim") || family.equals("minimax-m2")) { // minimax-m2's is a published file's key
            c = tryWith(c, Map.of("rotary_dim", pick(r, List.of(2, 4, 6, 8, c.dHead()))));
        }
        if (raw.containsKey("kv_lora_rank")) { // deepseek-v3's latents: their widths and layout
            Map<String, Object> latent = new LinkedHashMap<>(Map.of("kv_lora_rank", pick(r, List.of(4, 12)),
                    "qk_nope_head_dim", pick(r, List.of(0, 4, 8)), "qk_rope_head_dim", pick(r, List.of(2, 4, 6)),
                    "v_head_dim", pick(r, List.of(3, 8)), "rope_interleave", r.nextBoolean()));
            latent.put("q_lora_rank", r.nextBoolean() ? null : pick(r, List.of(8, 16)));
            c = tryWith(c, latent);
        }
        for (String key : List.of("rope_theta", "rotary_emb_base", "rope_local_base_freq")) {
            if (raw.containsKey(key) && r.nextBoolean()) {
                c = tryWith(c, Map.of(key, pick(r, List.of(100.0, 10000.0, 1e6))));
            }
        }
        if (r.nextInt(3) == 0) {
            c = tryWith(c, Map.of("rope_scaling", ropeScaling(r, positions)));
        }
        if (family.equals("falcon")) {
            c = switch (r.nextInt(3)) {
                case 0 -> tryWith(c, Map.of("new_decoder_architecture", false, "multi_query", true,
                        "parallel_attn", r.nextBoolean()));
                case 1 -> tryWith(c, Map.of("new_decoder_architecture", false, "multi_query", false,
                        "parallel_attn", r.nextBoolean()));
                default -> tryWith(c, Map.of("new_decoder_architecture", true, "parallel_attn", true,
                        "num_kv_heads", pick(r, divisors(heads)), "num_ln_in_parallel_attn", pick(r, List.of(1, 2))));
            };
        }
        if (family.equals("granite")) {
            c = tryWith(c, Map.of("embedding_multiplier", pick(r, List.of(1.0, 12.0)),
                    "logits_scaling", pick(r, List.of(1.0, 8.0)), "residual_multiplier", pick(r, List.of(1.0, 0.22)),
                    "attention_multiplier", pick(r, List.of(1.0, 0.25, 0.0625))));
        }
        if (family.equals("cohere")) {
            c = tryWith(c, Map.of("logit_scale", pick(r, List.of(0.0625, 0.5, 1.0))));
        }
        if (raw.containsKey("routed_scaling_factor")) { // glm4-moe's kind, deepseek's: a few experts in one or two
            // groups, dense first layers or none
            int groups = pick(r, List.of(1, 2));
            int experts = groups * (2 + r.nextInt(3));
            int topGroups = 1 + r.nextInt(groups);
            Map<String, Object> mixture = new LinkedHashMap<>(Map.of(
                    raw.containsKey("num_experts") ? "num_experts" : "n_routed_experts", experts, "n_group", groups,
                    "topk_group", topGroups, "num_experts_per_tok",
                    1 + r.nextInt(Math.min(3, topGroups * experts / groups)),
                    "moe_intermediate_size", pick(r, List.of(16, 32)),
                    "routed_scaling_factor", pick(r, List.of(1.0, 2.5)), "norm_topk_prob", r.nextBoolean()));
            if (raw.containsKey("first_k_dense_replace")) {
                mixture.put("first_k_dense_replace", r.nextInt(2));
            }
            if (raw.containsKey("topk_method")) { // deepseek-v2's: greedy or by groups, never normalised
                // greedy leaves the groups unread
                mixture.put("topk_method", r.nextBoolean() ? "group_limited_greedy" : "greedy");
                mixture.put("norm_topk_prob", false);
            }
            if (raw.containsKey("use_qk_norm")) {
                mixture.put("use_qk_norm", r.nextBoolean());
            }
            if (raw.containsKey("attention_bias")) {
                mixture.put("attention_bias", r.nextBoolean());
            }
            c = tryWith(c, mixture);
        }
        if (raw.containsKey("num_local_experts")) {
            int experts = 2 + r.nextInt(5);
            c = tryWith(c, Map.of("num_local_experts", experts, "num_experts_per_tok", 1 + r.nextInt(Math.min(experts, 3))));
        }
        return c;
    }

    private static Map<String, Object> ropeScaling(Random r, int positions) {
        int original = Math.max(2, positions / 2);
        return switch (r.nextInt(3)) {
            case 0 -> Map.of("rope_type", "linear", "factor", 2.0 + r.nextInt(3));
            case 1 -> Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                    "original_max_position_embeddings", original);
            default -> Map.of("rope_type", "yarn", "factor", 4.0, "original_max_position_embeddings", original);
        };
    }

    /** {@code c} with {@code values}, or {@code c} as it was where the family refuses them. */
    private static HookedAutoConfig tryWith(HookedAutoConfig c, Map<String, Object> values) {
        try {
            return c.with(values);
        } catch (IllegalArgumentException e) {
            return c;
        }
    }

    private static Map<String, Object> nullable(String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(key, value);
        return m;
    }

    private static List<Object> layerTypes(Random r, int layers, String full, String sliding) {
        List<Object> types = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            types.add(r.nextBoolean() ? full : sliding);
        }
        return types;
    }

    private static List<Integer> divisors(int n) {
        List<Integer> divisors = new ArrayList<>();
        for (int k = 1; k <= n; k++) {
            if (n % k == 0) {
                divisors.add(k);
            }
        }
        return divisors;
    }

    private static <T> T pick(Random r, List<T> values) {
        return values.get(r.nextInt(values.size()));
    }
}

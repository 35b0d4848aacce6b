package io.arrakis.model.family;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.strOrNull;
import static io.arrakis.model.family.Key.tok;

/**
 * GLM-5 ({@code transformers/models/glm_moe_dsa}): {@link DeepseekV32}'s blocks, DeepSeek-V3's latent attention and
 * mixture with DeepSeek Sparse Attention, whose indexer runs on the {@code "full"} layers of {@code indexer_types}
 * (rotating its features in adjacent pairs) and whose choice the {@code "shared"} layers reuse. As in DeepSeek-V3.2, a
 * pass of at most {@code index_topk} positions keeps every key, which is what this model computes; a longer one is
 * refused. The indexers' weights are not read, and count in the parameters of the layers that have one.
 *
 * <p>Keys: {@code GlmMoeDsaConfig} of {@code transformers} 5.17 and DeepSeek-V3.2's, plus the keyword arguments its
 * class reads to fill {@code indexer_types} in: {@code index_topk_pattern} ({@code "F"} full, {@code "S"} shared; the
 * list form it also takes is refused), else {@code index_topk_freq} and {@code index_skip_topk_offset} (layer {@code i}
 * full where {@code max(i - offset + 1, 0)} is a multiple of the frequency). A first layer that shares is refused, as
 * transformers' attention fails on it with no choice to reuse. Checkpoint: DeepSeek-V3.2's.
 */
final class GlmMoeDsa extends ModelFamily {

    GlmMoeDsa() {
        super("glm-moe-dsa", "glm_moe_dsa", Keys.of(List.of(
                pos("vocab_size", 154880), pos("hidden_size", 6144), pos("intermediate_size", 12288),
                pos("moe_intermediate_size", 2048), count("num_hidden_layers", 78), pos("num_attention_heads", 64),
                pos("num_key_value_heads", 64), pos("n_shared_experts", 1), pos("n_routed_experts", 256),
                posDbl("routed_scaling_factor", 2.5), pos("kv_lora_rank", 512), pos("q_lora_rank", 2048),
                pos("qk_rope_head_dim", 64), pos("v_head_dim", 256), integer("qk_nope_head_dim", 192),
                pos("n_group", 1), pos("topk_group", 1), pos("num_experts_per_tok", 8),
                bool("norm_topk_prob", true), str("hidden_act", "silu"), pos("max_position_embeddings", 202752),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", 0), tok("eos_token_id", 1),
                bool("tie_word_embeddings", false), ropeParameters(), listOrNull("mlp_layer_types"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), pos("index_topk", 2048),
                pos("index_head_dim", 128), pos("index_n_heads", 32), bool("mlp_bias", false), pos("head_dim", 64),
                integer("first_k_dense_replace", 3), listOrNull("layer_types"), listOrNull("indexer_types"),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                strOrNull("index_topk_pattern", null).optional(),
                integer("index_topk_freq", 1).optional(), integer("index_skip_topk_offset", 2).optional(),
                integer("num_nextn_predict_layers", 1).optional(), str("topk_method", "noaux_tc").optional(),
                str("scoring_func", "sigmoid").optional(), integer("moe_layer_freq", 1).optional()),
                Map.of("num_local_experts", "n_routed_experts", "num_experts", "n_routed_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        return DeepseekV32.dsaLayout(s, indexed(s, s.integer("num_hidden_layers")));
    }

    /** Per layer, whether it runs its own indexer: {@code indexer_types}, or as GlmMoeDsaConfig fills them in. */
    private static List<Boolean> indexed(Settings s, int layers) {
        List<?> types = s.listOrNull("indexer_types");
        String key = "indexer_types";
        if (types == null && s.get("index_topk_pattern") != null) {
            key = "index_topk_pattern";
            types = s.string("index_topk_pattern").chars()
                    .mapToObj(c -> c == 'F' ? "full" : c == 'S' ? "shared" : String.valueOf((char) c)).toList();
        }
        List<Boolean> indexed = new ArrayList<>(layers);
        if (types == null) {
            key = "index_skip_topk_offset";
            int freq = Math.max(s.has("index_topk_freq") ? s.integer("index_topk_freq") : 1, 1);
            int offset = s.has("index_skip_topk_offset") ? s.integer("index_skip_topk_offset") : 2;
            for (int i = 0; i < layers; i++) {
                indexed.add(Math.max(i - offset + 1, 0) % freq == 0);
            }
        } else {
            if (types.size() != layers || !types.stream().allMatch(t -> "full".equals(t) || "shared".equals(t))) {
                throw invalid(key, s.get(key), "must name each of the " + layers + " layers \"full\" (its own indexer)"
                        + " or \"shared\" (the last full layer's choice)");
            }
            types.forEach(t -> indexed.add("full".equals(t)));
        }
        if (!indexed.isEmpty() && !indexed.getFirst()) {
            throw invalid(key, s.get(key), "makes the first layer share an indexer's choice, which no earlier layer"
                    + " makes; transformers' attention fails on it");
        }
        return indexed;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return DeepseekV32.dsaCheckpoint(a);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.ConfigValues.refuseUnless;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * DeepSeek-V3 ({@code transformers/models/deepseek_v3}; DeepSeek-V3, V3.1, R1, Moonlight, and Kimi K2, whose
 * {@code model_type} {@code kimi_k2} transformers reads as DeepSeek-V3's in Kimi K2.5's config): multi-head latent
 * attention ({@link LatentAttention}: {@code q_lora_rank}, {@code kv_lora_rank}, {@code qk_nope_head_dim},
 * {@code qk_rope_head_dim}, {@code v_head_dim}; the rotary embedding, of {@code qk_rope_head_dim} features, on the last
 * features of each query and key head, laid out from adjacent pairs as halves first where {@code rope_interleave}), its
 * scores scaled by {@code (nope + rope)^-1/2}, times {@code mscale(factor, mscale_all_dim)^2} where a rotary scaling
 * sets {@code mscale_all_dim}; RMSNorm blocks whose first {@code first_k_dense_replace} layers have a dense gated MLP
 * and the others GLM-4.5's mixture ({@link Glm4Moe#mixture}: sigmoid-grouped routing and a shared expert). The
 * multi-token prediction layer stored as the block after the last is not read.
 *
 * <p>Keys: {@code DeepseekV3Config} of {@code transformers} 5.17 ({@code rope_interleave} and {@code norm_topk_prob}
 * null read as false, as its modeling file reads them), plus the rotary keys 4.x files carry and the published files'
 * {@code topk_method}, {@code scoring_func} and {@code moe_layer_freq}, refused unless {@code "noaux_tc"},
 * {@code "sigmoid"} and 1, as transformers routes. Also refused: {@code num_key_value_heads} other than
 * {@code num_attention_heads} (the latent gives every head its own key and value, which transformers' attention would
 * repeat again) and a null {@code v_head_dim}. Checkpoint: the experts one tensor each, as the published files and
 * {@code save_pretrained} store them; quantized files (the published DeepSeek-V3's float8 weights) are refused, as
 * every family's are.
 */
final class DeepseekV3 extends ModelFamily {

    DeepseekV3() {
        super("deepseek-v3", "deepseek_v3", Keys.of(List.of(
                pos("vocab_size", 129280), pos("hidden_size", 7168), pos("intermediate_size", 18432),
                pos("moe_intermediate_size", 2048), count("num_hidden_layers", 61), pos("num_attention_heads", 128),
                posOrNull("num_key_value_heads", 128), pos("n_shared_experts", 1), pos("n_routed_experts", 256),
                posDbl("routed_scaling_factor", 2.5), pos("kv_lora_rank", 512), posOrNull("q_lora_rank", 1536),
                pos("qk_rope_head_dim", 64), posOrNull("v_head_dim", 128), integer("qk_nope_head_dim", 128),
                pos("n_group", 8), pos("topk_group", 4), pos("num_experts_per_tok", 8),
                integer("first_k_dense_replace", 3), boolOrNull("norm_topk_prob", true), str("hidden_act", "silu"),
                pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", null), tok("bos_token_id", 0), tok("eos_token_id", 1),
                pos("pretraining_tp", 1), bool("tie_word_embeddings", false), ropeParameters(),
                boolOrNull("rope_interleave", true), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                integer("num_nextn_predict_layers", 1), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                str("topk_method", "noaux_tc").optional(), str("scoring_func", "sigmoid").optional(),
                integer("moe_layer_freq", 1).optional()),
                Map.of("num_local_experts", "n_routed_experts", "num_mtp_layers", "num_nextn_predict_layers")));
    }

    /** Kimi K2's {@code kimi_k2}, DeepSeek-V3's blocks, which transformers reads as {@code deepseek_v3}. */
    @Override
    public List<String> otherModelTypes() {
        return List.of("kimi_k2");
    }

    @Override
    Architecture architecture(Settings s) {
        // the published files' routing keys, which the class does not define: DeepSeek's code routes as they say
        refuseUnless(s, "topk_method", "noaux_tc", "only DeepSeek-V3's \"noaux_tc\" routing is implemented");
        refuseUnless(s, "scoring_func", "sigmoid", "only DeepSeek-V3's sigmoid scores are implemented");
        refuseUnless(s, "moe_layer_freq", 1, "every layer from first_k_dense_replace on is sparse in transformers");
        int layers = s.integer("num_hidden_layers");
        return latentLayout(s, Boolean.TRUE.equals(s.get("rope_interleave")))
                .mixtureOfExperts(Glm4Moe.mixture(s).withDenseLayers(Glm4Moe.sparseFrom(s, layers),
                        s.integer("intermediate_size"))).build();
    }

    /**
     * DeepSeek-V3's blocks, which GLM-4.7-Flash's and DeepSeek-V2's share, less their mixture: latent attention as its
     * keys say (heads other than {@code num_attention_heads} for keys and values refused), its rotated features laid
     * out from adjacent pairs as halves where {@code pairsToHalves} ({@code rope_interleave}), the rotary embedding,
     * the scores' factor, the biases of {@code attention_bias}, RMSNorms and MLPs of {@code moe_intermediate_size}.
     */
    static ArchitectureBuilder latentLayout(Settings s, boolean pairsToHalves) {
        return latentLayout(s, pairsToHalves, "moe_intermediate_size");
    }

    /** {@link #latentLayout(Settings, boolean)} with MLPs of {@code mlpWidthKey} (Youtu's dense ones). */
    static ArchitectureBuilder latentLayout(Settings s, boolean pairsToHalves, String mlpWidthKey) {
        int heads = s.integer("num_attention_heads");
        Integer kvHeads = s.integerOrNull("num_key_value_heads");
        if (kvHeads != null && kvHeads != heads) {
            throw invalid("num_key_value_heads", kvHeads, "must equal num_attention_heads = " + heads + ": latent"
                    + " attention gives every head its own key and value");
        }
        Integer valueDim = s.integerOrNull("v_head_dim");
        if (valueDim == null) {
            throw invalid("v_head_dim", null, "must be set: it is the width of each value head");
        }
        if (s.integer("qk_nope_head_dim") < 0) {
            throw invalid("qk_nope_head_dim", s.integer("qk_nope_head_dim"), "must be >= 0");
        }
        Integer queryRank = s.integerOrNull("q_lora_rank");
        int ropeDim = s.integer("qk_rope_head_dim");
        if (ropeDim % 2 != 0) {
            throw invalid("qk_rope_head_dim", ropeDim, "must be even: the rotary embedding turns pairs of features");
        }
        LatentAttention latent = new LatentAttention(queryRank == null ? 0 : queryRank, s.integer("kv_lora_rank"),
                s.integer("qk_nope_head_dim"), ropeDim, valueDim, pairsToHalves);
        return LlamaLayout.standardKeys(s).mlpWidth(mlpWidthKey).latentAttention(latent)
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null)
                .attentionMultiplier(scoreFactor(s)).biases(false, s.bool("attention_bias"), false);
    }

    /**
     * transformers' {@code yarn_apply_mscale}: where the rotary object's type is not {@code "default"} and it sets
     * {@code mscale_all_dim}, the scores are multiplied by {@code mscale(factor, mscale_all_dim)^2}, with
     * {@code mscale(s, m) = 0.1 m ln(s) + 1} for {@code s > 1} and 1 otherwise; 1 elsewhere.
     */
    private static double scoreFactor(Settings s) {
        Map<?, ?> rotary = s.get("rope_parameters") instanceof Map<?, ?> p && !p.isEmpty() ? p
                : s.get("rope_scaling") instanceof Map<?, ?> r && !r.isEmpty() ? r : Map.of();
        Object type = rotary.containsKey("rope_type") ? rotary.get("rope_type") : rotary.get("type");
        if (type == null || "default".equals(type) || !(rotary.get("mscale_all_dim") instanceof Number all)
                || all.doubleValue() == 0) {
            return 1.0;
        }
        if (!(rotary.get("factor") instanceof Number factor)) {
            throw invalid("rope_scaling", rotary, "sets mscale_all_dim without a factor");
        }
        double mscale = factor.doubleValue() <= 1 ? 1.0 : 0.1 * all.doubleValue() * Math.log(factor.doubleValue()) + 1;
        return mscale * mscale;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a);
    }

    /** DeepSeek-V3's layout, which GLM-4.7-Flash's shares; the prediction layer after the last block not read. */
    static Checkpoint checkpointOf(Architecture a) {
        return checkpointOf(a, "model.layers." + a.nLayers() + ".", "mlp.gate.e_score_correction_bias");
    }

    /**
     * DeepSeek-V3's layout with tensors under {@code unread} not read (null: none) and the experts' correction bias
     * stored as {@code scoreBias} (null: none, DeepSeek-V2's).
     */
    static Checkpoint checkpointOf(Architecture a, String unread, String scoreBias) {
        return Glm4Moe.checkpointOf(a, unread, scoreBias, latentAttentionTensors(a));
    }

    /** The tensors of DeepSeek-V3's latent attention, as its blocks store them. */
    static List<CheckpointTensor> latentAttentionTensors(Architecture a) {
        LatentAttention m = a.latentAttention();
        long d = a.dModel();
        long heads = a.nHeads();
        List<CheckpointTensor> attention = new ArrayList<>();
        if (m.queryRank() == 0) {
            attention.add(linear("self_attn.q_proj.weight", WQ, heads * m.queryKeyDim(), d));
        } else {
            attention.add(linear("self_attn.q_a_proj.weight", W_Q_A, m.queryRank(), d));
            if (a.outBias()) {
                attention.add(stored("self_attn.q_a_proj.bias", B_Q_A, m.queryRank()));
            }
            attention.addAll(List.of(stored("self_attn.q_a_layernorm.weight", Q_A_NORM, m.queryRank()),
                    linear("self_attn.q_b_proj.weight", W_Q_B, heads * m.queryKeyDim(), m.queryRank())));
        }
        attention.add(linear("self_attn.kv_a_proj_with_mqa.weight", W_KV_A, m.keyValueRank() + m.ropeDim(), d));
        if (a.outBias()) {
            attention.add(stored("self_attn.kv_a_proj_with_mqa.bias", B_KV_A, m.keyValueRank() + m.ropeDim()));
        }
        attention.addAll(List.of(stored("self_attn.kv_a_layernorm.weight", KV_A_NORM, m.keyValueRank()),
                linear("self_attn.kv_b_proj.weight", W_KV_B, heads * (m.nopeDim() + m.valueDim()),
                        m.keyValueRank()),
                linear("self_attn.o_proj.weight", WO, d, heads * m.valueDim())));
        if (a.outBias()) {
            attention.add(stored("self_attn.o_proj.bias", BO, d));
        }
        return attention;
    }
}

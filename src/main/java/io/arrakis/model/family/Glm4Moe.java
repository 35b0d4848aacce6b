package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.MixtureOfExperts.Grouped;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * GLM-4.5 ({@code transformers/models/glm4_moe}; GLM-4.5, GLM-4.5-Air, GLM-4.6, GLM-4.7): Llama's attention with
 * biases on the query, key and value projections as {@code attention_bias} says, per-head query and key RMSNorms where
 * {@code use_qk_norm} is set, and the rotary embedding ({@code rotate_half}) on the first
 * {@code partial_rotary_factor} (by default half) of each head. The first {@code first_k_dense_replace} layers have a
 * dense gated MLP of {@code intermediate_size}; the others DeepSeek-V3's mixture: {@code n_routed_experts} experts of
 * {@code moe_intermediate_size} routed by {@link MixtureOfExperts.Routing#SIGMOID_GROUPED} (sigmoid scores, the
 * correction bias {@code e_score_correction_bias} choosing, {@code n_group} groups of which {@code topk_group} may be
 * chosen from, {@code norm_topk_prob}, {@code routed_scaling_factor}) and a shared expert of
 * {@code n_shared_experts × moe_intermediate_size} added as it is. A checkpoint's multi-token prediction layer, stored
 * as the block after the last ({@code num_nextn_predict_layers}: 1 in every published model), is not read.
 *
 * <p>Keys: {@code Glm4MoeConfig} of {@code transformers} 5.17, plus {@code partial_rotary_factor}, the rotary keys 4.x
 * files carry and {@code head_dim}, which its attention reads from the file: 128 where the file has none, as every
 * published file sets it (the class would take {@code hidden_size // num_attention_heads}, 42 for its own defaults,
 * whose half is no rotary width; a file of other shapes then fails to load, naming the first tensor that differs).
 * Checkpoint: the experts one tensor each, as the published files and {@code save_pretrained} store them.
 */
final class Glm4Moe extends ModelFamily {

    Glm4Moe() {
        super("glm4-moe", "glm4_moe", Keys.of(List.of(
                pos("vocab_size", 151552), pos("hidden_size", 4096), pos("intermediate_size", 10944),
                count("num_hidden_layers", 46), pos("num_attention_heads", 96), pos("num_key_value_heads", 8),
                str("hidden_act", "silu"), pos("max_position_embeddings", 131072), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                ropeParameters(), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                pos("moe_intermediate_size", 1408), pos("num_experts_per_tok", 8), pos("n_shared_experts", 1),
                pos("n_routed_experts", 128), posDbl("routed_scaling_factor", 1.0), pos("n_group", 1),
                pos("topk_group", 1), integer("first_k_dense_replace", 1), bool("norm_topk_prob", true),
                bool("use_qk_norm", false), tok("bos_token_id", null), tok("eos_token_id", null),
                tok("pad_token_id", null), integer("num_nextn_predict_layers", 1), pos("head_dim", 128),
                posDbl("partial_rotary_factor", 0.5), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling")),
                Map.of("num_local_experts", "n_routed_experts", "num_mtp_layers", "num_nextn_predict_layers")));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        List<Boolean> sparse = sparseFrom(s, layers);
        boolean bias = s.bool("attention_bias");
        ArchitectureBuilder b = LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", "partial_rotary_factor")
                .biases(bias, false, false)
                .mixtureOfExperts(mixture(s).withDenseLayers(sparse, s.integer("intermediate_size")));
        return (s.bool("use_qk_norm") ? b.qkNorm(Architecture.QkNorm.PER_HEAD) : b).build();
    }

    /** Every layer from {@code first_k_dense_replace} on sparse (0: every layer; at least the layers: none). */
    static List<Boolean> sparseFrom(Settings s, int layers) {
        int firstSparse = s.integer("first_k_dense_replace");
        if (firstSparse < 0) {
            throw invalid("first_k_dense_replace", firstSparse, "must be >= 0: it counts the dense layers");
        }
        return IntStream.range(0, layers).mapToObj(i -> i >= firstSparse).toList();
    }

    /**
     * Per layer, whether {@code mlp_layer_types} marks it {@code "sparse"} rather than {@code "dense"}; null where the
     * key is null.
     */
    static List<Boolean> mlpLayerTypes(Settings s, int layers) {
        List<?> types = s.listOrNull("mlp_layer_types");
        if (types == null) {
            return null;
        }
        if (types.size() != layers) {
            throw invalid("mlp_layer_types", types, "has " + types.size() + " entries but num_hidden_layers = "
                    + layers);
        }
        List<Boolean> sparse = new ArrayList<>(layers);
        for (Object t : types) {
            if (!"dense".equals(t) && !"sparse".equals(t)) {
                throw invalid("mlp_layer_types", types, "entries must be \"dense\" or \"sparse\", got "
                        + ConfigValues.describe(t));
            }
            sparse.add("sparse".equals(t));
        }
        return sparse;
    }

    /**
     * The mixture GLM-4.5's configuration keys describe (which Solar Open's share): experts routed as
     * {@link MixtureOfExperts.Routing#SIGMOID_GROUPED}, a shared expert added ungated; every layer sparse.
     */
    static MixtureOfExperts mixture(Settings s) {
        return mixture(s, "n_routed_experts", "n_shared_experts");
    }

    /** {@link #mixture(Settings)} with the experts and shared experts counted under these keys (EXAONE's). */
    static MixtureOfExperts mixture(Settings s, String expertsKey, String sharedKey) {
        return MixtureOfExperts.sigmoidGrouped(s.integer(expertsKey), s.integer("num_experts_per_tok"),
                        grouped(s, expertsKey))
                .withUngatedSharedExpert(s.integer(sharedKey) * s.integer("moe_intermediate_size"));
    }

    /**
     * The groups of routing that ranks them by their two best scores (DeepSeek-V3's, Mistral 4's), once
     * {@code n_group} is checked to divide the experts counted under {@code expertsKey} into groups of two or more,
     * and {@code topk_group} and {@code num_experts_per_tok} to be choosable.
     */
    static Grouped grouped(Settings s, String expertsKey) {
        int experts = s.integer(expertsKey);
        int groups = s.integer("n_group");
        int topGroups = s.integer("topk_group");
        int topK = s.integer("num_experts_per_tok");
        if (experts % groups != 0 || experts / groups < 2) {
            throw invalid("n_group", groups, "must divide " + expertsKey + " = " + experts + " into groups of at least"
                    + " two experts, whose two best scores rank the groups");
        }
        if (topGroups > groups) {
            throw invalid("topk_group", topGroups, "exceeds n_group = " + groups);
        }
        if (topK > topGroups * (experts / groups)) {
            throw invalid("num_experts_per_tok", topK, "exceeds the " + topGroups * (experts / groups) + " experts of"
                    + " the topk_group = " + topGroups + " groups a token may choose from");
        }
        // DeepSeek-V3's may be null, which its router reads as false
        return new Grouped(groups, topGroups, Boolean.TRUE.equals(s.get("norm_topk_prob")),
                s.number("routed_scaling_factor"));
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a, "model.layers." + a.nLayers() + ".", "mlp.gate.e_score_correction_bias");
    }

    /**
     * The layout of GLM-4.5's blocks, Solar Open's, EXAONE MoE's and dots1's, the experts' correction bias stored as
     * {@code scoreBias} in a block; tensors under {@code unread} (a model's multi-token prediction layer; null for
     * none) are not read.
     */
    static Checkpoint checkpointOf(Architecture a, String unread, String scoreBias) {
        return checkpointOf(a, unread, scoreBias, attentionTensors(a));
    }

    /**
     * GLM-4.5's attention tensors: the query, key and value projections with their biases where
     * {@link Architecture#qkvBias}, the query and key norms where it has them, the output projection and its bias.
     */
    static List<CheckpointTensor> attentionTensors(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        List<CheckpointTensor> attention = new ArrayList<>(List.of(linear("self_attn.q_proj.weight", WQ, q, d),
                linear("self_attn.k_proj.weight", WK, kv, d), linear("self_attn.v_proj.weight", WV, kv, d)));
        if (a.qkvBias()) {
            attention.addAll(List.of(stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                    stored("self_attn.v_proj.bias", BV, kv)));
        }
        if (a.qkNorm() != Architecture.QkNorm.NONE) {
            attention.addAll(List.of(LlamaLayout.qkNorms(a)));
        }
        attention.add(linear("self_attn.o_proj.weight", WO, d, q));
        if (a.outBias()) { // dots1's, as Qwen3's attention_bias says
            attention.add(stored("self_attn.o_proj.bias", BO, d));
        }
        return attention;
    }

    /**
     * {@link #checkpointOf(Architecture, String, String)} with these {@code attention} tensors (DeepSeek-V3's), without
     * a correction bias where {@code scoreBias} is null (DeepSeek-V2's).
     */
    static Checkpoint checkpointOf(Architecture a, String unread, String scoreBias, List<CheckpointTensor> attention) {
        CheckpointTensor bias = scoreBias == null ? null : stored(scoreBias, EXPERT_SCORE_BIAS, a.moe().experts());
        return layout(a, unread, bias, attention, LlamaLayout.experts(a, "mlp.experts.")).build();
    }

    /**
     * The builder of {@link #checkpointOf(Architecture, String, String, List)}'s layout with this {@code scoreBias}
     * tensor (ERNIE 4.5's {@code [1, experts]}) and these {@code experts} (Mistral 4's fused); the shared experts'
     * tensors where it has them.
     */
    static Checkpoint.Builder layout(Architecture a, String unread, CheckpointTensor scoreBias,
                                     List<CheckpointTensor> attention, List<CheckpointTensor> experts) {
        long d = a.dModel();
        MixtureOfExperts moe = a.moe();
        long dense = moe.denseWidth();
        long shared = moe.sharedWidth();
        List<CheckpointTensor> sparse = new ArrayList<>(List.of(linear("mlp.gate.weight", W_ROUTER, moe.experts(), d)));
        if (scoreBias != null) {
            sparse.add(scoreBias);
        }
        sparse.addAll(experts);
        if (moe.hasSharedExpert()) {
            sparse.addAll(LlamaLayout.sharedExpert("mlp.shared_experts.", shared, d));
        }
        Checkpoint.Builder builder = Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layer(attention.toArray(CheckpointTensor[]::new))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d))
                .layerWhere(l -> !moe.sparse(l), LlamaLayout.denseMlp(dense, d))
                .layerWhere(moe::sparse, sparse.toArray(CheckpointTensor[]::new))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a);
        return unread != null ? builder.unread(unread) : builder;
    }
}

package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.ConfigValues.refuseUnless;
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
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EXPERT_SCORE_BIAS;

/**
 * DeepSeek-V3.2 ({@code transformers/models/deepseek_v32}; DeepSeek-V3.2-Exp, V3.2, V3.2-Speciale): DeepSeek-V3's
 * blocks ({@link DeepseekV3}: latent attention with queries from their own latent and the rotated features stored in
 * adjacent pairs, GLM-4.5's mixture after the dense layers) with DeepSeek Sparse Attention: an indexer scores every
 * earlier key for each query and the query attends to its {@code index_topk} best. A pass of at most
 * {@code index_topk} positions keeps every key, so attends as DeepSeek-V3 does, and is what this model computes; a
 * longer one is refused ({@link io.arrakis.model.HookedAutoConfig#longestPass}), the indexer not being implemented.
 * Its weights ({@code self_attn.indexer.*}) are not read, and count in the parameters.
 *
 * <p>Keys: {@code DeepseekV32Config} of {@code transformers} 5.17 ({@code head_dim}, which the class sets to
 * {@code qk_rope_head_dim}, and {@code mlp_bias}, which its MLPs do not read, are accepted and not read), plus the
 * rotary keys and routing keys the published files carry, as DeepSeek-V3's. Dense layers by {@code mlp_layer_types},
 * else the first {@code first_k_dense_replace}; {@code layer_types} may only say {@code "deepseek_sparse_attention"}.
 * Checkpoint: DeepSeek-V3's, the prediction layer after the last block not read.
 */
final class DeepseekV32 extends ModelFamily {

    DeepseekV32() {
        super("deepseek-v32", "deepseek_v32", Keys.of(List.of(
                pos("vocab_size", 129280), pos("hidden_size", 7168), pos("intermediate_size", 18432),
                pos("moe_intermediate_size", 2048), count("num_hidden_layers", 61), pos("num_attention_heads", 128),
                pos("num_key_value_heads", 128), pos("n_shared_experts", 1), pos("n_routed_experts", 256),
                posDbl("routed_scaling_factor", 2.5), pos("kv_lora_rank", 512), pos("q_lora_rank", 1536),
                pos("qk_rope_head_dim", 64), pos("v_head_dim", 128), integer("qk_nope_head_dim", 128),
                pos("n_group", 8), pos("topk_group", 4), pos("num_experts_per_tok", 8),
                bool("norm_topk_prob", true), str("hidden_act", "silu"),
                pos("max_position_embeddings", 163840), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", null), tok("bos_token_id", 0), tok("eos_token_id", 1),
                bool("tie_word_embeddings", false), ropeParameters(), listOrNull("mlp_layer_types"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), pos("index_topk", 2048),
                pos("index_head_dim", 128), pos("index_n_heads", 64), bool("mlp_bias", false), pos("head_dim", 64),
                integer("first_k_dense_replace", 3), listOrNull("layer_types"), posDbl("rope_theta", 10000.0),
                mapOrNull("rope_scaling"), integer("num_nextn_predict_layers", 1).optional(),
                str("topk_method", "noaux_tc").optional(), str("scoring_func", "sigmoid").optional(),
                integer("moe_layer_freq", 1).optional()),
                Map.of("num_local_experts", "n_routed_experts", "num_experts", "n_routed_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        return dsaLayout(s, java.util.Collections.nCopies(s.integer("num_hidden_layers"), true));
    }

    /**
     * DeepSeek-V3.2's blocks, which GLM-5's share, with an indexer on the layers {@code indexed} marks (the others
     * reuse an earlier layer's choice).
     */
    static Architecture dsaLayout(Settings s, List<Boolean> indexed) {
        refuseUnless(s, "topk_method", "noaux_tc", "only DeepSeek-V3's \"noaux_tc\" routing is implemented");
        refuseUnless(s, "scoring_func", "sigmoid", "only DeepSeek-V3's sigmoid scores are implemented");
        refuseUnless(s, "moe_layer_freq", 1, "every layer from first_k_dense_replace on is sparse in transformers");
        int layers = s.integer("num_hidden_layers");
        List<?> types = s.listOrNull("layer_types");
        if (types != null && (types.size() != layers
                || !types.stream().allMatch("deepseek_sparse_attention"::equals))) {
            throw invalid("layer_types", types, "must name each of the " + layers + " layers"
                    + " \"deepseek_sparse_attention\", the one attention DeepseekV32Attention computes");
        }
        List<Boolean> sparse = Glm4Moe.mlpLayerTypes(s, layers);
        int indexHeads = s.integer("index_n_heads");
        int indexDim = s.integer("index_head_dim");
        int ropeDim = s.integer("qk_rope_head_dim");
        if (indexDim < ropeDim) {
            throw invalid("index_head_dim", indexDim, "must be at least qk_rope_head_dim = " + ropeDim + ": the"
                    + " indexer rotates the first qk_rope_head_dim features of each head");
        }
        return DeepseekV3.latentLayout(s, true)
                .mixtureOfExperts(Glm4Moe.mixture(s).withDenseLayers(sparse != null ? sparse
                        : Glm4Moe.sparseFrom(s, layers), s.integer("intermediate_size")))
                .sparseAttention(new SparseAttention(s.integer("index_topk"), indexHeads, indexDim, indexed))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return dsaCheckpoint(a);
    }

    /** DeepSeek-V3's layout with each indexed layer's indexer, unread; the prediction layer after the last not read. */
    static Checkpoint dsaCheckpoint(Architecture a) {
        CheckpointTensor bias = stored("mlp.gate.e_score_correction_bias", EXPERT_SCORE_BIAS, a.moe().experts());
        SparseAttention indexer = a.sparseAttention();
        return Glm4Moe.layout(a, "model.layers." + a.nLayers() + ".", bias, DeepseekV3.latentAttentionTensors(a),
                LlamaLayout.experts(a, "mlp.experts.")).unreadInLayers(indexer.indexed()::get, "self_attn.indexer.",
                        indexer.parameters(a.dModel(), a.latentAttention().queryRank()))
                .build();
    }
}

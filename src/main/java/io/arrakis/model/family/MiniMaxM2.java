package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

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
import static io.arrakis.model.family.Key.optionalPos;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * MiniMax-M2 ({@code transformers/models/minimax_m2}; MiniMax-M2, M2.1, M2.5): Llama's attention without biases, one
 * RMSNorm over the whole query projection ({@code q_norm}, {@code [heads·d_head]}) and one over the whole key
 * projection before the rotary embedding ({@code rotate_half}), which turns the first {@code rotary_dim} features of
 * each head; every layer's MLP a mixture of {@code num_local_experts} experts stored as Mixtral's, routed as
 * {@link Routing#SIGMOID_BIASED} with each layer's {@code block_sparse_moe.e_score_correction_bias}.
 *
 * <p>Keys: {@code MiniMaxM2Config} of {@code transformers} 5.17, with its rotary base 5,000,000 as the top-level
 * {@code rope_theta} that 4.x files carry, plus the keys of the published {@code config.json} that the class does not
 * define but that say what the model computes: honoured, or refused where they ask for what its model does not.
 * {@code rotary_dim} is the published files' rotary width (64 of 128) and what MiniMax's own modeling code reads;
 * transformers 5.17 reads only {@code partial_rotary_factor}, which such a file lacks, and would rotate whole heads.
 * Here {@code rotary_dim} counts where given, and a {@code partial_rotary_factor} given with it must agree. Refused:
 * {@code use_qk_norm} false, a {@code qk_norm_type} other than {@code "per_layer"} (one norm over all heads), a
 * {@code scoring_func} other than {@code "sigmoid"}, {@code use_routing_bias} false, a shared expert
 * ({@code shared_intermediate_size} above 0), an {@code attn_type_list} entry other than 1 for a layer (0 is
 * MiniMax-Text-01's linear attention) and a {@code sliding_window}: transformers' model has none of them. A
 * checkpoint's multi-token prediction modules ({@code use_mtp}) are not part of the model; their tensors, if a file
 * holds any, are refused by name.
 */
final class MiniMaxM2 extends ModelFamily {

    MiniMaxM2() {
        super("minimax-m2", "minimax_m2", Keys.of(List.of(
                pos("vocab_size", 200064), pos("hidden_size", 3072), pos("intermediate_size", 1536),
                count("num_hidden_layers", 62), pos("num_attention_heads", 48), pos("num_key_value_heads", 8),
                pos("head_dim", 128), str("hidden_act", "silu"), pos("max_position_embeddings", 196608),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", 200034), tok("eos_token_id", 200020),
                bool("tie_word_embeddings", false), dbl("attention_dropout", 0.0), pos("num_experts_per_tok", 8),
                count("num_local_experts", 256), bool("output_router_logits", false),
                dbl("router_aux_loss_coef", 0.001), dbl("router_jitter_noise", 0.0), ropeParameters(),
                posDbl("rope_theta", 5e6), optionalRopeScaling(),
                posDbl("partial_rotary_factor", 1.0).optional(), optionalPos("rotary_dim"),
                bool("use_qk_norm", true).optional(), str("qk_norm_type", "per_layer").optional(),
                str("scoring_func", "sigmoid").optional(), bool("use_routing_bias", true).optional(),
                integer("shared_intermediate_size", 0).optional(), listOrNull("attn_type_list").optional(),
                posOrNull("sliding_window", null).optional()),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        refuseUnless(s, "use_qk_norm", true, "transformers' MiniMax-M2 normalises queries and keys in every layer");
        refuseUnless(s, "qk_norm_type", "per_layer", "only \"per_layer\" (one norm over all heads) is implemented");
        refuseUnless(s, "scoring_func", "sigmoid", "only \"sigmoid\" routing is implemented");
        refuseUnless(s, "use_routing_bias", true, "transformers' MiniMax-M2 adds each expert's correction bias");
        refuseUnless(s, "shared_intermediate_size", 0, "a shared expert is not implemented for minimax_m2");
        refuseUnless(s, "sliding_window", null, "transformers' MiniMax-M2 attends to every earlier token");
        List<?> kinds = s.listOrNull("attn_type_list"); // MiniMax's code reads a layer's entry: later ones are unread
        if (kinds != null && (kinds.size() < layers
                || kinds.subList(0, layers).stream().anyMatch(k -> !Integer.valueOf(1).equals(k)))) {
            throw invalid("attn_type_list", kinds, "must hold 1 (softmax attention) for each of the " + layers
                    + " layers: linear attention (0) is not implemented");
        }
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", "partial_rotary_factor").rotaryWidth("rotary_dim").qkNorm(QkNorm.WHOLE)
                .mixtureOfExperts(Mixtral.experts(s, Routing.SIGMOID_BIASED, true, null))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Mixtral.checkpointOf(a, List.of(LlamaLayout.qkNorms(a)),
                List.of(stored("block_sparse_moe.e_score_correction_bias", Slot.EXPERT_SCORE_BIAS,
                        a.moe().experts())));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Qwen3-MoE ({@code transformers/models/qwen3_moe}; Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen3's attention (an RMSNorm
 * on each query and key head before the rotary embedding, biases as {@code attention_bias} says) with a sparse
 * mixture of experts for the MLP. The router {@code gate} scores {@code num_experts} experts; each token goes to the
 * {@code num_experts_per_tok} with the highest softmax over all experts (in float32), weighted by those values,
 * divided by their sum where {@code norm_topk_prob} says, then rounded to the model's dtype; each expert is a gated
 * MLP of width {@code moe_intermediate_size}. With {@code use_sliding_window} every layer sees the last
 * {@code sliding_window} positions, as {@code transformers} 5 masks them. {@code head_dim} is read where the file
 * gives it (the published models do), else {@code hidden_size / num_attention_heads}.
 *
 * <p>Layers with a dense MLP among the experts' ({@code mlp_only_layers} naming a layer, or a
 * {@code decoder_sparse_step} other than 1) are refused: no published model has them.
 *
 * <p>Keys: {@code Qwen3MoeConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters} ({@code rope_theta}, {@code rope_scaling}); other keys of a file, such as 4.x's
 * {@code max_window_layers}, are kept and not read, as 5.17 reads none of them.
 * Checkpoint: one tensor per expert, {@code mlp.experts.{e}.gate_proj/up_proj/down_proj}, and the router
 * {@code mlp.gate}, as the published files and {@code save_pretrained} store them.
 */
final class Qwen3Moe extends ModelFamily {

    Qwen3Moe() {
        super("qwen3-moe", "qwen3_moe", Keys.of(List.of(
                pos("vocab_size", 151936), pos("hidden_size", 2048), pos("intermediate_size", 6144),
                count("num_hidden_layers", 24), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 4),
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("attention_bias", false),
                bool("use_sliding_window", false), posOrNull("sliding_window", 4096), dbl("attention_dropout", 0.0),
                integer("decoder_sparse_step", 1),
                pos("moe_intermediate_size", 768), pos("num_experts_per_tok", 8), count("num_local_experts", 128),
                bool("norm_topk_prob", false), bool("output_router_logits", false),
                dbl("router_aux_loss_coef", 0.001), listOrNull("mlp_only_layers"), tok("pad_token_id", null),
                tok("bos_token_id", null), tok("eos_token_id", null), optionalHeadDim(), ropeParameters()),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        requireExpertsOnEveryLayer(s);
        Integer window = s.bool("use_sliding_window") ? s.integerOrNull("sliding_window") : null;
        boolean attentionBias = s.bool("attention_bias");
        Routing routing = s.bool("norm_topk_prob") ? Routing.SOFTMAX_THEN_TOP_K : Routing.SOFTMAX_THEN_TOP_K_AS_IS;
        return LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null)
                .biases(attentionBias, attentionBias, false).qkNorm(QkNorm.PER_HEAD).slidingWindow(window)
                .mixtureOfExperts(Mixtral.experts(s, routing, false, null))
                .build();
    }

    /**
     * Refuses a dense MLP on any layer: transformers gives layer {@code i} one where {@code mlp_only_layers} holds
     * {@code i} or {@code (i + 1) % decoder_sparse_step != 0}.
     */
    static void requireExpertsOnEveryLayer(Settings s) {
        int step = s.integer("decoder_sparse_step");
        if (step != 1) {
            throw invalid("decoder_sparse_step", step, step < 1 ? "must be at least 1"
                    : "gives layers a dense MLP among the experts' (only 1, experts on every layer, is implemented)");
        }
        List<?> dense = s.listOrNull("mlp_only_layers");
        int layers = s.integer("num_hidden_layers");
        if (dense != null && dense.stream().anyMatch(i -> i instanceof Number n && n.doubleValue() >= 0
                && n.doubleValue() < layers)) {
            throw invalid("mlp_only_layers", dense, "gives layers a dense MLP among the experts' (not implemented;"
                    + " only a list naming no layer of the model is)");
        }
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        List<CheckpointTensor> moe = new ArrayList<>();
        moe.add(linear("mlp.gate.weight", W_ROUTER, a.moe().experts(), a.dModel()));
        moe.addAll(LlamaLayout.experts(a, "mlp.experts."));
        return LlamaLayout.checkpoint(a, moe, LlamaLayout.qkNorms(a));
    }
}

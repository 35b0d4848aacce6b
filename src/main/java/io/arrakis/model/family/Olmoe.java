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
import static io.arrakis.model.family.Key.dblOrNull;
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
 * OLMoE ({@code transformers/models/olmoe}; OLMoE-1B-7B): Llama's pre-norm block with an RMSNorm over all the
 * query heads' features together and one over all the key heads' ({@code q_norm [hidden_size]}, {@code k_norm
 * [kv_heads * head_dim]}) before the rotary embedding, and a sparse mixture of {@code num_experts} experts for the
 * MLP: each token goes to the {@code num_experts_per_tok} with the highest softmax over all experts (in float32),
 * weighted by those values, divided by their sum where {@code norm_topk_prob} says, then rounded to the model's dtype.
 * {@code clip_qkv} other than null is refused (not implemented; the published models have none).
 *
 * <p>Keys: {@code OlmoeConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}. Checkpoint: one tensor per expert, {@code mlp.experts.{e}.gate_proj/up_proj/down_proj},
 * and the router {@code mlp.gate}, as the published files and {@code save_pretrained} store them.
 */
final class Olmoe extends ModelFamily {

    Olmoe() {
        super("olmoe", "olmoe", Keys.of(List.of(
                pos("vocab_size", 50304), pos("hidden_size", 2048), pos("intermediate_size", 2048),
                count("num_hidden_layers", 16), pos("num_attention_heads", 16), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", 1),
                tok("bos_token_id", null), tok("eos_token_id", 50279), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), dblOrNull("clip_qkv", null), pos("num_experts_per_tok", 8),
                count("num_experts", 64), bool("output_router_logits", false),
                dbl("router_aux_loss_coef", 0.01), bool("norm_topk_prob", false), optionalHeadDim(),
                ropeParameters()),
                Map.of("num_local_experts", "num_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        // the query norm spans hidden_size, so the heads must be hidden_size / num_attention_heads wide
        requireHeadDimOfWidth(s, "hidden_size", "num_attention_heads");
        if (s.get("clip_qkv") != null) {
            throw invalid("clip_qkv", s.get("clip_qkv"), "is not implemented (clipping the queries, keys and values);"
                    + " only null is");
        }
        boolean attentionBias = s.bool("attention_bias");
        Routing routing = s.bool("norm_topk_prob") ? Routing.SOFTMAX_THEN_TOP_K : Routing.SOFTMAX_THEN_TOP_K_AS_IS;
        return LlamaLayout.standardKeys(s).norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null)
                .biases(attentionBias, attentionBias, false).qkNorm(QkNorm.WHOLE)
                .mixtureOfExperts(Mixtral.experts(s, "num_experts", routing, false, null))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a);
    }

    /** Llama's layout with the query and key norms, the router {@code mlp.gate} and one tensor per expert. */
    static Checkpoint checkpointOf(Architecture a) {
        List<CheckpointTensor> moe = new ArrayList<>();
        moe.add(linear("mlp.gate.weight", W_ROUTER, a.moe().experts(), a.dModel()));
        moe.addAll(LlamaLayout.experts(a, "mlp.experts."));
        return LlamaLayout.checkpoint(a, moe, LlamaLayout.qkNorms(a));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
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
 * The text model of Qwen3-VL-MoE ({@code transformers/models/qwen3_vl_moe}; Qwen3-VL-30B-A3B, Qwen3-VL-235B-A22B;
 * {@code model_type} {@code qwen3_vl_moe_text}, which the multimodal config's {@code text_config} holds): Qwen3-MoE
 * without a sliding window, whose router always divides the chosen experts' softmax values by their sum (there is no
 * {@code norm_topk_prob}) and rounds them to the model's dtype. Its M-RoPE is, for text, Qwen3's rotary (see
 * {@code MultimodalCheckpoint}).
 *
 * <p>Keys: {@code Qwen3VLMoeTextConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}. Checkpoint: the experts of a layer fused as published, {@code mlp.experts.gate_up_proj}
 * {@code [experts, d_model, 2 moe_intermediate_size]} (each expert's gate columns, then its up columns) and
 * {@code mlp.experts.down_proj [experts, moe_intermediate_size, d_model]}, or both with their last two dimensions
 * swapped, as {@code transformers} 5 saves them; and the router {@code mlp.gate}.
 */
final class Qwen3VlMoe extends ModelFamily {

    Qwen3VlMoe() {
        super("qwen3-vl-moe", "qwen3_vl_moe_text", Keys.of(List.of(
                pos("vocab_size", 151936), pos("hidden_size", 2048), pos("intermediate_size", 5632),
                count("num_hidden_layers", 24), pos("num_attention_heads", 16), posOrNull("num_key_value_heads", 16),
                str("hidden_act", "silu"), pos("max_position_embeddings", 128000), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", true),
                posDbl("rope_theta", 500000.0), mapOrNull("rope_scaling"), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), integer("decoder_sparse_step", 1), pos("moe_intermediate_size", 1408),
                pos("num_experts_per_tok", 4), count("num_local_experts", 60), dbl("router_aux_loss_coef", 0.001),
                listOrNull("mlp_only_layers"), tok("pad_token_id", null), tok("bos_token_id", null),
                tok("eos_token_id", null), optionalHeadDim(), ropeParameters()),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        Qwen3Moe.requireExpertsOnEveryLayer(s);
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null)
                .biases(attentionBias, attentionBias, false).qkNorm(QkNorm.PER_HEAD)
                .mixtureOfExperts(Mixtral.experts(s, Routing.SOFTMAX_THEN_TOP_K, false, null))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        List<CheckpointTensor> moe = new ArrayList<>(List.of(linear("mlp.gate.weight", W_ROUTER, a.moe().experts(),
                a.dModel())));
        moe.addAll(LlamaLayout.fusedExperts(a, "mlp.experts."));
        return LlamaLayout.checkpoint(a, moe, LlamaLayout.qkNorms(a));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
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
 * Qwen2-MoE ({@code transformers/models/qwen2_moe}; Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen 2's attention (biases on
 * the query, key and value projections as {@code qkv_bias} says) with a sparse mixture of {@code num_experts} experts
 * of width {@code moe_intermediate_size}, routed as Qwen3-MoE's (the float32 softmax's top k, divided by their sum
 * where {@code norm_topk_prob} says, rounded to the model's dtype), beside a shared expert of width
 * {@code shared_expert_intermediate_size} that every token goes to, its output weighted by the sigmoid of a linear
 * gate ({@code shared_expert_gate}). Sliding windows ({@code use_sliding_window}, or {@code layer_types} marking
 * sliding layers) and dense layers among the experts' ({@code mlp_only_layers}, {@code decoder_sparse_step}) are
 * refused: not implemented, and no published model has them.
 *
 * <p>Keys: {@code Qwen2MoeConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}. Checkpoint: one tensor per expert, {@code mlp.experts.{e}.gate_proj/up_proj/down_proj}, the
 * router {@code mlp.gate}, {@code mlp.shared_expert.gate_proj/up_proj/down_proj} and {@code mlp.shared_expert_gate},
 * as the published files and {@code save_pretrained} store them.
 */
final class Qwen2Moe extends ModelFamily {

    Qwen2Moe() {
        super("qwen2-moe", "qwen2_moe", Keys.of(List.of(
                pos("vocab_size", 151936), pos("hidden_size", 2048), pos("intermediate_size", 5632),
                count("num_hidden_layers", 24), pos("num_attention_heads", 16), posOrNull("num_key_value_heads", 16),
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("use_sliding_window", false),
                posOrNull("sliding_window", 4096), integer("max_window_layers", 28), dbl("attention_dropout", 0.0),
                integer("decoder_sparse_step", 1), pos("moe_intermediate_size", 1408),
                pos("shared_expert_intermediate_size", 5632), pos("num_experts_per_tok", 4),
                count("num_experts", 60), bool("norm_topk_prob", false), bool("output_router_logits", false),
                dbl("router_aux_loss_coef", 0.001), listOrNull("mlp_only_layers"), bool("qkv_bias", true),
                listOrNull("layer_types"), tok("pad_token_id", null), tok("bos_token_id", null),
                tok("eos_token_id", null), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        Qwen3Moe.requireExpertsOnEveryLayer(s);
        if (s.bool("use_sliding_window")) {
            throw invalid("use_sliding_window", true, "is not implemented for qwen2-moe (no published model slides);"
                    + " only false is");
        }
        List<LayerAttention> types = LayerTypes.read(s, s.integer("num_hidden_layers"));
        if (types != null && types.contains(LayerAttention.SLIDING)) {
            throw invalid("layer_types", s.get("layer_types"), "may only mark full_attention layers: sliding windows"
                    + " are not implemented for qwen2-moe");
        }
        Routing routing = s.bool("norm_topk_prob") ? Routing.SOFTMAX_THEN_TOP_K : Routing.SOFTMAX_THEN_TOP_K_AS_IS;
        boolean qkvBias = s.bool("qkv_bias");
        return LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null).biases(qkvBias, false, false)
                .mixtureOfExperts(Mixtral.experts(s, "num_experts", routing, false, null)
                        .withSharedExpert(s.integer("shared_expert_intermediate_size")))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long shared = a.moe().sharedWidth();
        List<CheckpointTensor> moe = new ArrayList<>(List.of(
                linear("mlp.gate.weight", W_ROUTER, a.moe().experts(), d),
                linear("mlp.shared_expert.gate_proj.weight", SHARED_W_GATE, shared, d),
                linear("mlp.shared_expert.up_proj.weight", SHARED_W_IN, shared, d),
                linear("mlp.shared_expert.down_proj.weight", SHARED_W_OUT, d, shared),
                linear("mlp.shared_expert_gate.weight", SHARED_EXPERT_GATE, 1, d)));
        moe.addAll(LlamaLayout.experts(a, "mlp.experts."));
        return LlamaLayout.checkpoint(a, moe);
    }
}

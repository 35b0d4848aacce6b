package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.RotaryPrecision;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integerOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EXPERT_SCORE_BIAS;

/**
 * ERNIE 4.5's mixture-of-experts models ({@code transformers/models/ernie4_5_moe}; ERNIE-4.5-21B-A3B,
 * ERNIE-4.5-300B-A47B): ERNIE 4.5's dense blocks ({@link Ernie45}: rotary embeddings in the interleaved convention,
 * computed in float32) whose MLP, on the layers from {@code moe_layer_start_index} to {@code moe_layer_end_index}
 * (-1: the last) whose number counted from 1 is a multiple of {@code moe_layer_interval}, is a sparse mixture of
 * {@code moe_num_experts} experts of width {@code moe_intermediate_size} beside shared experts of
 * {@code moe_num_shared_experts × moe_intermediate_size} (none where 0), their output added as it is; the other layers
 * have a dense MLP of {@code intermediate_size}. The router ({@code mlp.gate}) is held in float32 whatever the model's
 * dtype, as is each expert's correction bias ({@code moe_statics}): see
 * {@link MixtureOfExperts.Routing#SOFTMAX_BIASED}.
 *
 * <p>Keys: {@code Ernie4_5_MoeConfig} of {@code transformers} 5.17 (rotary base 500000), plus the rotary keys 4.x
 * files carry; the mixture's keys, which the class lets be null, may not be (transformers' model then fails).
 * {@code use_bias} is refused: biases on the projections, the shared experts' included, are not implemented (the
 * published models have none). Checkpoint: Llama's layout, with {@code mlp.gate.weight}, the correction bias
 * {@code mlp.moe_statics.e_score_correction_bias [1, experts]}, one tensor per expert,
 * {@code mlp.experts.{e}.gate_proj/up_proj/down_proj}, and {@code mlp.shared_experts.gate_proj/up_proj/down_proj} in
 * the sparse layers, as the published files and {@code save_pretrained} store them; their multi-token prediction
 * layers ({@code model.mtp_*}) are not read.
 */
final class Ernie45Moe extends ModelFamily {
    private static final String[] MIXTURE_KEYS = {"moe_k", "moe_num_experts", "moe_num_shared_experts",
        "moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval", "moe_norm_min"};

    Ernie45Moe() {
        super("ernie4_5-moe", "ernie4_5_moe", Keys.of(List.of(
                pos("vocab_size", 103424), tok("pad_token_id", 0), tok("bos_token_id", 1), tok("eos_token_id", 2),
                pos("hidden_size", 2560), pos("intermediate_size", 12288), count("num_hidden_layers", 28),
                pos("num_attention_heads", 20), posOrNull("num_key_value_heads", 4), str("hidden_act", "silu"),
                pos("max_position_embeddings", 131072), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5),
                bool("use_cache", true), bool("tie_word_embeddings", true), boolOrNull("use_bias", false),
                pos("moe_intermediate_size", 1536), posOrNull("moe_k", 6), posOrNull("moe_num_experts", 64),
                integerOrNull("moe_num_shared_experts", 2), integerOrNull("moe_layer_start_index", 1),
                integerOrNull("moe_layer_end_index", -1), posOrNull("moe_layer_interval", 1),
                dblOrNull("moe_norm_min", 1e-12), bool("output_router_logits", false),
                dblOrNull("router_aux_loss_coef", 0.001), optionalHeadDim(), posDbl("rope_theta", 500000.0),
                optionalRopeScaling(), ropeParameters()),
                Map.of("num_experts", "moe_num_experts", "num_experts_per_tok", "moe_k")));
    }

    @Override
    Architecture architecture(Settings s) {
        ConfigValues.requireSet(s, "the mixture of experts needs it", MIXTURE_KEYS);
        if (Boolean.TRUE.equals(s.get("use_bias"))) {
            throw invalid("use_bias", true, "is not implemented for ernie4_5-moe (biases on its projections and"
                    + " shared experts); only false or null is");
        }
        int experts = s.integer("moe_num_experts");
        int topK = s.integer("moe_k");
        if (topK > experts) {
            throw invalid("moe_k", topK, "exceeds moe_num_experts = " + experts
                    + ": a token cannot go to more experts than there are");
        }
        int shared = s.integer("moe_num_shared_experts");
        if (shared < 0) {
            throw invalid("moe_num_shared_experts", shared, "may not be negative");
        }
        MixtureOfExperts moe = MixtureOfExperts.softmaxBiased(experts, topK, s.number("moe_norm_min"))
                .withDenseLayers(sparseLayers(s), s.integer("intermediate_size"));
        if (shared > 0) {
            moe = moe.withUngatedSharedExpert(shared * s.integer("moe_intermediate_size"));
        }
        return LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null).rotaryInterleaved()
                .rotaryPrecision(RotaryPrecision.FLOAT32).mixtureOfExperts(moe)
                .build();
    }

    /**
     * Per layer, whether its MLP is the mixture, as {@code Ernie4_5_MoeDecoderLayer} decides: its index from
     * {@code moe_layer_start_index} to {@code moe_layer_end_index} ({@code -1}: the last layer) and one more than a
     * multiple of {@code moe_layer_interval}.
     */
    private static List<Boolean> sparseLayers(Settings s) {
        int layers = s.integer("num_hidden_layers");
        int start = s.integer("moe_layer_start_index");
        int end = s.integer("moe_layer_end_index");
        int last = end == -1 ? layers - 1 : end;
        int interval = s.integer("moe_layer_interval");
        List<Boolean> sparse = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            sparse.add((i + 1) % interval == 0 && i >= start && i <= last);
        }
        return sparse;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4Moe.layout(a, "model.mtp_",
                stored("mlp.moe_statics.e_score_correction_bias", EXPERT_SCORE_BIAS, 1, a.moe().experts()),
                Glm4Moe.attentionTensors(a), LlamaLayout.experts(a, "mlp.experts.")).build();
    }
}

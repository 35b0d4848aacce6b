package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Solar Open ({@code transformers/models/solar_open}; Solar-Open-100B): Llama's attention, its query, key and value
 * projections biased as {@code attention_bias} says and the rotary embedding on the whole head, with
 * {@link Glm4Moe GLM-4.5}'s mixture of experts on every layer (no dense layers, no query/key norms, no multi-token
 * prediction layer).
 *
 * <p>Keys: {@code SolarOpenConfig} of {@code transformers} 5.17 ({@code Glm4MoeConfig}'s less
 * {@code intermediate_size}, {@code first_k_dense_replace}, {@code use_qk_norm} and {@code num_mtp_layers}; base
 * 1,000,000), plus the rotary keys 4.x files carry. Checkpoint: GLM-4.5's layout.
 */
final class SolarOpen extends ModelFamily {

    SolarOpen() {
        super("solar-open", "solar_open", Keys.of(List.of(
                pos("vocab_size", 196608), pos("hidden_size", 4096), count("num_hidden_layers", 48),
                pos("num_attention_heads", 64), pos("num_key_value_heads", 8), str("hidden_act", "silu"),
                pos("max_position_embeddings", 131072), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5),
                bool("use_cache", true), bool("tie_word_embeddings", false), ropeParameters(),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), pos("moe_intermediate_size", 1280),
                pos("num_experts_per_tok", 8), pos("n_shared_experts", 1), pos("n_routed_experts", 128),
                posDbl("routed_scaling_factor", 1.0), pos("n_group", 1), pos("topk_group", 1),
                bool("norm_topk_prob", true), tok("bos_token_id", null), tok("eos_token_id", null),
                tok("pad_token_id", null), pos("head_dim", 128), posDbl("rope_theta", 1_000_000.0),
                mapOrNull("rope_scaling")),
                Map.of("num_local_experts", "n_routed_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean bias = s.bool("attention_bias");
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim").mlpWidth("moe_intermediate_size")
                .positions("max_position_embeddings").activation("hidden_act").paddingToken("pad_token_id")
                .gatedMlp().norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null).biases(bias, false, false)
                .mixtureOfExperts(Glm4Moe.mixture(s))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4Moe.checkpointOf(a, null, "mlp.gate.e_score_correction_bias");
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Ai2's FlexOlmo ({@code transformers/models/flex_olmo}; FlexOlmo-7x7B-1T): OLMo 2's blocks ({@link Olmo2}: query and
 * key norms over all heads before the rotation, the attention's and the MLP's outputs normalised before the residual
 * sum, no input norms) with OLMoE's mixture of experts ({@link Olmoe}: {@code num_experts} experts of width
 * {@code intermediate_size}, each token to the {@code num_experts_per_tok} with the largest float32 softmax, divided by
 * their sum where {@code norm_topk_prob} says, rounded to the model's dtype).
 *
 * <p>Keys: {@code FlexOlmoConfig} of {@code transformers} 5.17 (rotary base 500000), plus the rotary keys 4.x files
 * carry. Checkpoint: OLMoE's, with OLMo 2's norms.
 */
final class FlexOlmo extends ModelFamily {

    FlexOlmo() {
        super("flex-olmo", "flex_olmo", Keys.of(List.of(
                pos("vocab_size", 100352), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", 100277),
                tok("bos_token_id", null), tok("eos_token_id", 100257), bool("tie_word_embeddings", false),
                bool("attention_bias", false), dblOrNull("attention_dropout", 0.0), pos("num_experts_per_tok", 5),
                count("num_experts", 7), bool("output_router_logits", false), dbl("router_aux_loss_coef", 0.01),
                bool("norm_topk_prob", false), optionalHeadDim(), posDbl("rope_theta", 500000.0),
                optionalRopeScaling(), ropeParameters()),
                Map.of("num_local_experts", "num_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        Routing routing = s.bool("norm_topk_prob") ? Routing.SOFTMAX_THEN_TOP_K : Routing.SOFTMAX_THEN_TOP_K_AS_IS;
        return Olmo2.olmo2Layout(s).mixtureOfExperts(Mixtral.experts(s, "num_experts", routing, false, null)).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Olmoe.checkpointOf(a);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Granite ({@code transformers/models/granite}): Llama with four multipliers. The token embeddings are multiplied by
 * {@code embedding_multiplier}; attention scores by {@code attention_multiplier}, which replaces
 * {@code 1 / sqrt(d_head)}; the attention and MLP outputs by {@code residual_multiplier} before they join the residual
 * stream; and the logits are divided by {@code logits_scaling}.
 */
final class Granite extends ModelFamily {

    Granite() {
        super("granite", "granite", Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), bool("mlp_bias", false), dbl("embedding_multiplier", 1.0),
                dbl("logits_scaling", 1.0), dbl("residual_multiplier", 1.0), dbl("attention_multiplier", 1.0),
                optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        double logitsScaling = s.number("logits_scaling");
        if (logitsScaling == 0.0) {
            throw invalid("logits_scaling", logitsScaling, "must not be 0: the logits are divided by it");
        }
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .embeddingMultiplier(s.number("embedding_multiplier"))
                .scaleAttention(false).attentionMultiplier(s.number("attention_multiplier"))
                .residualMultiplier(s.number("residual_multiplier")).logitScale(1.0 / logitsScaling)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

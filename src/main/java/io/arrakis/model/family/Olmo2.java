package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.Architecture.RotaryPrecision;

import java.util.List;
import java.util.Map;

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
 * OLMo 2 ({@code transformers/models/olmo2}): Llama's attention and gated MLP, but the blocks normalise the outputs
 * of attention and MLP ({@code post_attention_layernorm}, {@code post_feedforward_layernorm}) instead of their
 * inputs, and one RMSNorm normalises the whole query projection ({@code q_norm}, {@code [heads·d_head]}) and one the
 * whole key projection before the rotary embedding, which float16 and bfloat16 models compute in float32 (cos and
 * sin too); biases on the four attention projections as {@code attention_bias} says.
 *
 * <p>The keys and defaults are those of {@code transformers} 5.17's configuration class, plus the older keys that
 * files on the Hub still carry in place of {@code rope_parameters}.
 */
final class Olmo2 extends ModelFamily {

    Olmo2() {
        super("olmo2", "olmo2", Keys.of(List.of(
                pos("vocab_size", 50304), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                bool("use_cache", true), tok("pad_token_id", 1), tok("bos_token_id", null),
                tok("eos_token_id", 50279), bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0),
                mapOrNull("rope_scaling"), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                posDbl("rms_norm_eps", 1e-5), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        return olmo2Layout(s).build();
    }

    /** OLMo 2's blocks, which OLMo 3's share. */
    static ArchitectureBuilder olmo2Layout(Settings s) {
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM_WEIGHT_IN_FLOAT32, "rms_norm_eps")
                .rotary("rope_theta", null).rotaryPrecision(RotaryPrecision.FLOAT32)
                .biases(attentionBias, attentionBias, false).qkNorm(QkNorm.WHOLE)
                .sublayerNorms(false, true);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a);
    }

    /** Llama's layout with the query and key norms. */
    static Checkpoint checkpointOf(Architecture a) {
        return LlamaLayout.checkpoint(a, LlamaLayout.qkNorms(a));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.RotaryPrecision;

import java.util.List;
import java.util.Map;

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

/**
 * OLMo ({@code transformers/models/olmo}; OLMo-1B-hf, OLMo-7B-hf, OLMo-7B-0424-hf): Llama's pre-norm blocks and gated
 * MLP, whose three norms are LayerNorms without weight or bias (eps 1e-5, in float32, the result converted back), the
 * projected queries, keys and values clamped to {@code [-clip_qkv, clip_qkv]} where {@code clip_qkv} is set, and the
 * rotary embedding computed in float32 (cos, sin and the rotation) for float16 and bfloat16 models; biases on the four
 * attention projections as {@code attention_bias} says.
 *
 * <p>Keys: {@code OlmoConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}. Checkpoint: Llama's layout without norm tensors.
 */
final class Olmo extends ModelFamily {
    /** OlmoLayerNorm's eps, which no key sets. */
    private static final double NORM_EPS = 1e-5;

    Olmo() {
        super("olmo", "olmo", Keys.of(List.of(
                pos("vocab_size", 50304), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                bool("use_cache", true), tok("pad_token_id", 1), tok("bos_token_id", null),
                tok("eos_token_id", 50279), bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0),
                mapOrNull("rope_scaling"), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                dblOrNull("clip_qkv", null), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.has("d_model")) { // OLMoConfig of ai2-olmo's hf_olmo, whose model_type is olmo too
            throw ConfigValues.invalid("d_model", s.get("d_model"), "is a key of the original OLMo format (hf_olmo's"
                    + " OLMoForCausalLM: allenai/OLMo-1B, OLMo-7B), which transformers does not load; use the converted"
                    + " checkpoints (allenai/OLMo-1B-hf, OLMo-7B-hf)");
        }
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.LAYER_NORM, NORM_EPS)
                .normsWithoutParameters().rotary("rope_theta", null).rotaryPrecision(RotaryPrecision.FLOAT32)
                .biases(attentionBias, attentionBias, false).clipQkv("clip_qkv")
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

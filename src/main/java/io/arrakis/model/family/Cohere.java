package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
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
 * Cohere Command-R ({@code transformers/models/cohere}): Llama's projections and gated MLP, attention and MLP in
 * parallel on one LayerNorm without bias ({@code input_layernorm}), rotary embeddings in the interleaved
 * ({@code rotate_every_two}) convention, computed in float32 for float16 and bfloat16 models, and logits multiplied
 * by {@code logit_scale}. With {@code use_qk_norm} (Command R+) each query and key head goes through a LayerNorm
 * without bias, with a weight per head and feature, before the rotary embedding
 * ({@link Architecture.QkNorm#PER_HEAD_OWN_WEIGHTS}).
 */
final class Cohere extends ModelFamily {

    Cohere() {
        super("cohere", "cohere", Keys.of(List.of(
                pos("vocab_size", 256000), pos("hidden_size", 8192), pos("intermediate_size", 22528),
                dbl("logit_scale", 0.0625), count("num_hidden_layers", 40), pos("num_attention_heads", 64),
                posOrNull("num_key_value_heads", null), str("hidden_act", "silu"),
                pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02), posDbl("layer_norm_eps", 1e-5),
                bool("use_cache", true), tok("pad_token_id", 0), tok("bos_token_id", 5), tok("eos_token_id", 255001),
                bool("tie_word_embeddings", true), posDbl("rope_theta", 500000.0), mapOrNull("rope_scaling"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), bool("use_qk_norm", false),
                optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean attentionBias = s.bool("attention_bias");
        ArchitectureBuilder b = LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.LAYER_NORM, "layer_norm_eps")
                .rotary("rope_theta", null).rotaryInterleaved().rotaryPrecision(RotaryPrecision.FLOAT32_ROTATION)
                .parallelResidual(true).sharedNorm(true)
                .biases(attentionBias, attentionBias, false).logitScale(s.number("logit_scale"));
        return (s.bool("use_qk_norm") ? b.qkNorm(Architecture.QkNorm.PER_HEAD_OWN_WEIGHTS) : b).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, false, a.qkNorm() == Architecture.QkNorm.NONE ? new CheckpointTensor[0]
                : LlamaLayout.qkNorms(a));
    }
}

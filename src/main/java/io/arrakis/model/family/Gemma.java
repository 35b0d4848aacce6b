package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.strOrNull;
import static io.arrakis.model.family.Key.tok;

/**
 * Gemma ({@code transformers/models/gemma}): Llama's layout with RMSNorms that scale by {@code (1 + w)}, embeddings
 * multiplied by {@code sqrt(hidden_size)}, an explicit {@code head_dim}, and the activation {@code hidden_act}, which
 * {@code transformers} 5 applies. Older hub files also carry {@code hidden_activation}, which earlier versions applied
 * instead; where the two disagree the config is refused.
 */
final class Gemma extends ModelFamily {

    Gemma() {
        super("gemma", "gemma", Keys.of(List.of(
                pos("vocab_size", 256000), pos("hidden_size", 3072), pos("intermediate_size", 24576),
                count("num_hidden_layers", 28), pos("num_attention_heads", 16), pos("num_key_value_heads", 16),
                pos("head_dim", 256), str("hidden_act", "gelu_pytorch_tanh"), strOrNull("hidden_activation", null),
                pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", 0), tok("eos_token_id", 1), tok("bos_token_id", 2),
                bool("tie_word_embeddings", true), posDbl("rope_theta", 10000.0), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), boolOrNull("use_bidirectional_attention", null), optionalRopeScaling(),
                ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (Boolean.TRUE.equals(s.get("use_bidirectional_attention"))) {
            throw invalid("use_bidirectional_attention", true, "is not supported: only causal attention is");
        }
        boolean attentionBias = s.bool("attention_bias");
        ArchitectureBuilder b = LlamaLayout.standardKeys(s).headDim("head_dim")
                .norm(Norm.RMS_NORM_PLUS_ONE, "rms_norm_eps").rotary("rope_theta", null)
                .biases(attentionBias, attentionBias, false).embeddingScale(Math.sqrt(s.integer("hidden_size")));
        String legacy = s.stringOrNull("hidden_activation");
        if (legacy != null && !legacy.equals(s.string("hidden_act"))) {
            throw invalid("hidden_activation", legacy, "disagrees with hidden_act = \"" + s.string("hidden_act")
                    + "\": transformers 5 computes with hidden_act, earlier versions with hidden_activation; give"
                    + " both the activation meant");
        }
        return b.build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Mistral ({@code transformers/models/mistral}): Llama without biases, with {@code sliding_window} on every layer
 * when it is not null.
 */
final class Mistral extends ModelFamily {

    Mistral() {
        super("mistral", "mistral", Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 14336),
                pos("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 8),
                posOrNull("head_dim", null), str("hidden_act", "silu"), pos("max_position_embeddings", 4096 * 32),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", 1), tok("eos_token_id", 2),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0), posOrNull("sliding_window", 4096),
                dbl("attention_dropout", 0.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).slidingWindow(s.integerOrNull("sliding_window"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

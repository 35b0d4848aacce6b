package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Mistral ({@code transformers/models/mistral}): Llama without biases, with {@code sliding_window} on every layer
 * when it is not null, or on the layers {@code layer_types} marks {@code "sliding_attention"} where it is given (which
 * {@code transformers} reads as ministral's config, whose layers alternate).
 */
final class Mistral extends ModelFamily {

    Mistral() {
        super("mistral", "mistral", keys());
    }

    /** MistralConfig's keys, which MinistralConfig inherits. */
    static Keys keys() {
        return Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 14336),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 8),
                posOrNull("head_dim", null), str("hidden_act", "silu"), pos("max_position_embeddings", 4096 * 32),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", 1), tok("eos_token_id", 2),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0), posOrNull("sliding_window", 4096),
                dbl("attention_dropout", 0.0), listOrNull("layer_types"), optionalRopeScaling(), ropeParameters()),
                Map.of());
    }

    @Override
    Architecture architecture(Settings s) {
        return architectureOf(s);
    }

    /** Mistral's architecture, which ministral's is. */
    static Architecture architectureOf(Settings s) {
        Integer window = s.integerOrNull("sliding_window");
        // with layer_types transformers reads the config as ministral's: the window on the sliding layers only
        List<LayerAttention> perLayer = LayerTypes.read(s, s.integer("num_hidden_layers"));
        if (perLayer != null && window == null && perLayer.contains(LayerAttention.SLIDING)) {
            throw invalid("layer_types", s.get("layer_types"), "has sliding_attention layers, but sliding_window is"
                    + " null, so there is no window for them");
        }
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).slidingWindow(window).layerAttention(perLayer)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

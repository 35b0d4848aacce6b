package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Code World Model ({@code transformers/models/cwm}; CWM-32B): Llama's blocks without attention biases, whose layers
 * {@code layer_types} marks full or sliding, each sliding layer's queries seeing the last {@code sliding_window}
 * positions; by default every fourth layer is full, from layer 0. Without {@code rope_parameters} or
 * {@code rope_scaling}, the rotary embedding is {@code CwmConfig}'s: base 1,000,000 with Llama 3's scaling (factor 16,
 * low and high frequency factors 1 and 4, 8,192 original positions), which a {@code rope_theta} key does not change.
 *
 * <p>Keys: {@code CwmConfig} of {@code transformers} 5.17 (Llama's less {@code attention_bias}), plus the rotary keys
 * 4.x files carry. Checkpoint: Llama's layout.
 */
final class Cwm extends ModelFamily {
    /** {@code CwmConfig.__post_init__}'s rotary embedding where none is given. */
    private static final Map<String, Object> DEFAULT_ROPE = Map.of("rope_type", "llama3", "rope_theta", 1_000_000.0,
            "factor", 16.0, "high_freq_factor", 4.0, "low_freq_factor", 1.0, "original_max_position_embeddings", 8192);
    /** Every {@code FULL_EVERY}-th layer, from layer 0, is full where {@code layer_types} is null. */
    private static final int FULL_EVERY = 4;

    Cwm() {
        super("cwm", "cwm", Keys.of(List.of(
                pos("vocab_size", 128256), pos("hidden_size", 6144), pos("intermediate_size", 21504),
                count("num_hidden_layers", 64), pos("num_attention_heads", 48), posOrNull("num_key_value_heads", 8),
                posOrNull("head_dim", 128), str("hidden_act", "silu"), pos("max_position_embeddings", 131072),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5), bool("use_cache", true),
                tok("pad_token_id", null), tok("eos_token_id", null), tok("bos_token_id", 128000),
                bool("tie_word_embeddings", false), dbl("attention_dropout", 0.0), pos("pretraining_tp", 1),
                bool("mlp_bias", false), ropeParameters(), posOrNull("sliding_window", 8192),
                listOrNull("layer_types"), posDbl("rope_theta", 1_000_000.0), mapOrNull("rope_scaling")),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        List<LayerAttention> perLayer = LayerTypes.read(s, layers);
        if (perLayer == null) {
            perLayer = new ArrayList<>(layers);
            for (int i = 0; i < layers; i++) {
                perLayer.add(i % FULL_EVERY == 0 ? LayerAttention.FULL : LayerAttention.SLIDING);
            }
        }
        Integer window = s.integerOrNull("sliding_window");
        if (window == null && perLayer.contains(LayerAttention.SLIDING)) {
            throw invalid("sliding_window", null, "leaves the sliding_attention layers of layer_types without a"
                    + " window");
        }
        Settings rotary = RopeScalings.withDefault(s, DEFAULT_ROPE);
        return LlamaLayout.standardKeys(rotary).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(false, false, s.bool("mlp_bias"))
                .slidingWindow(window).layerAttention(perLayer)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

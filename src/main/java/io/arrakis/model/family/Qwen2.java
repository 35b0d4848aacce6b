package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
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
 * Qwen2 ({@code transformers/models/qwen2}): Llama with biases on q/k/v only, and a sliding window only with
 * {@code use_sliding_window}, on the layers {@code layer_types} marks {@code "sliding_attention"} or, without it, the
 * layers from {@code max_window_layers} on.
 */
final class Qwen2 extends ModelFamily {

    Qwen2() {
        super("qwen2", "qwen2", Keys.of(List.of(
                pos("vocab_size", 151936), pos("hidden_size", 4096), pos("intermediate_size", 22016),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 32),
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("use_sliding_window", false),
                posOrNull("sliding_window", 4096), integer("max_window_layers", 28), listOrNull("layer_types"),
                dbl("attention_dropout", 0.0), tok("pad_token_id", null), tok("bos_token_id", null),
                tok("eos_token_id", null), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        // transformers keeps the window only with use_sliding_window; a null one leaves every layer full
        Integer window = s.bool("use_sliding_window") ? s.integerOrNull("sliding_window") : null;
        List<LayerAttention> perLayer = slidingLayers(s, s.integer("num_hidden_layers"), window != null);
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(true, false, false)
                .slidingWindow(window).layerAttention(perLayer)
                .build();
    }

    /**
     * Per layer, sliding where the window is on and {@code layer_types} marks the layer {@code "sliding_attention"}
     * or, without it, from {@code max_window_layers} on (qwen2, qwen3 and dots1, which has no
     * {@code use_sliding_window}).
     */
    static List<LayerAttention> slidingLayers(Settings s, int layers, boolean windowOn) {
        List<LayerAttention> types = LayerTypes.read(s, layers);
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        if (types != null) {
            if (!windowOn && types.contains(LayerAttention.SLIDING)) {
                // transformers drops the window without use_sliding_window, then refuses sliding layers with none
                throw invalid("layer_types", s.get("layer_types"), "has sliding_attention layers, but"
                        + (s.has("use_sliding_window") ? " use_sliding_window is false or" : "")
                        + " sliding_window null, so there is no window for them");
            }
            perLayer.addAll(types);
        } else {
            Integer maxWindowLayers = s.integerOrNull("max_window_layers"); // dots1's may be null without a window
            if (windowOn && maxWindowLayers == null) {
                throw invalid("max_window_layers", null, "must be set where sliding_window is: it is the first"
                        + " sliding layer");
            }
            if (maxWindowLayers != null && maxWindowLayers < 0) {
                throw invalid("max_window_layers", maxWindowLayers, "must be >= 0");
            }
            for (int i = 0; i < layers; i++) {
                perLayer.add(windowOn && i >= maxWindowLayers ? LayerAttention.SLIDING : LayerAttention.FULL);
            }
        }
        return perLayer;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

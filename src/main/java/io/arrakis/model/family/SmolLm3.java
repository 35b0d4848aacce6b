package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * SmolLM3 ({@code transformers/models/smollm3}; SmolLM3-3B): Llama with NoPE layers, which apply no rotary embedding
 * ({@code no_rope_layers[i]} 0; by default every {@code no_rope_layer_interval}-th layer), biases as
 * {@code attention_bias} and {@code mlp_bias} say, and tied embeddings by default. With {@code use_sliding_window}
 * and a {@code sliding_window}, the layers {@code layer_types} marks {@code "sliding_attention"} (by default the NoPE
 * layers) see that many positions; a {@code layer_types} marking sliding layers without both is refused, as
 * transformers' attention implementations disagree about such layers (its mask windows them, flash attention not).
 *
 * <p>Keys: {@code SmolLM3Config} of {@code transformers} 5.17 (rotary base 2e6), plus the rotary keys 4.x files carry
 * in place of {@code rope_parameters}. Checkpoint: Llama's layout.
 */
final class SmolLm3 extends ModelFamily {

    SmolLm3() {
        super("smollm3", "smollm3", Keys.of(List.of(
                pos("vocab_size", 128256), pos("hidden_size", 2048), pos("intermediate_size", 11008),
                count("num_hidden_layers", 36), pos("num_attention_heads", 16), posOrNull("num_key_value_heads", 4),
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", 128004),
                tok("bos_token_id", 128000), tok("eos_token_id", 128001), posDbl("rope_theta", 2_000_000.0),
                mapOrNull("rope_scaling"), bool("use_sliding_window", false), posOrNull("sliding_window", null),
                listOrNull("no_rope_layers"), pos("no_rope_layer_interval", 4), listOrNull("layer_types"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), bool("mlp_bias", false),
                bool("tie_word_embeddings", true), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        List<Boolean> rotates = rotatingLayers(s, layers);
        Integer window = s.bool("use_sliding_window") ? s.integerOrNull("sliding_window") : null;
        List<LayerAttention> perLayer = layerAttention(s, layers, rotates, window);
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).rotatingLayers(rotates)
                .biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .slidingWindow(window).layerAttention(perLayer)
                .build();
    }

    /** {@code no_rope_layers} (1 rotates, 0 does not; at least one entry per layer), or its default. */
    static List<Boolean> rotatingLayers(Settings s, int layers) {
        List<?> given = s.listOrNull("no_rope_layers");
        List<Boolean> rotates = new ArrayList<>(layers);
        if (given == null) {
            int interval = s.integer("no_rope_layer_interval");
            for (int i = 0; i < layers; i++) {
                rotates.add((i + 1) % interval != 0);
            }
            return rotates;
        }
        if (given.size() < layers) {
            throw invalid("no_rope_layers", given, "has " + given.size() + " entries but num_hidden_layers = "
                    + layers);
        }
        for (int i = 0; i < layers; i++) {
            Object entry = given.get(i);
            if (!(entry instanceof Integer flag) || flag != 0 && flag != 1) {
                throw invalid("no_rope_layers", given, "entries must be 1 (the layer rotates) or 0 (a NoPE layer),"
                        + " got " + describe(entry));
            }
            rotates.add(flag == 1);
        }
        return rotates;
    }

    /**
     * {@code layer_types}, or transformers' default: sliding NoPE layers where a window is set, full layers else;
     * sliding layers need the window.
     */
    private static List<LayerAttention> layerAttention(Settings s, int layers, List<Boolean> rotates,
                                                       Integer window) {
        List<?> types = s.listOrNull("layer_types");
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        if (types == null) {
            for (int i = 0; i < layers; i++) {
                perLayer.add(window != null && !rotates.get(i) ? LayerAttention.SLIDING : LayerAttention.FULL);
            }
            return perLayer;
        }
        if (types.size() != layers) {
            throw invalid("layer_types", types, "has " + types.size() + " entries but num_hidden_layers = " + layers);
        }
        for (Object t : types) {
            if ("full_attention".equals(t)) {
                perLayer.add(LayerAttention.FULL);
            } else if ("sliding_attention".equals(t) && window != null) {
                perLayer.add(LayerAttention.SLIDING);
            } else if ("sliding_attention".equals(t)) {
                throw invalid("layer_types", types, "marks sliding layers, but use_sliding_window is false or"
                        + " sliding_window null: transformers' mask would window them and its flash attention not");
            } else {
                throw invalid("layer_types", types,
                        "entries must be \"full_attention\" or \"sliding_attention\", got " + describe(t));
            }
        }
        return perLayer;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

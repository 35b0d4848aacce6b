package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.intOrStringOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * EXAONE 4 ({@code transformers/models/exaone4}; EXAONE-4.0-32B, EXAONE-4.0-1.2B): OLMo 2's blocks (norms after
 * attention and MLP, none before), Llama's RMSNorm, an RMSNorm on each query and key head ({@code q_norm},
 * {@code k_norm}) before the rotary embedding, and, with a {@code sliding_window}, sliding layers that rotate and full
 * layers that do not (NoPE); without a window every layer is full and rotates. {@code layer_types} gives the layers,
 * else every {@code sliding_window_pattern}-th layer is full. {@code Exaone4Config} fails on a pattern given as a
 * string ("LLLG") or without a window when {@code layer_types} is absent: both are refused.
 *
 * <p>Keys: {@code Exaone4Config} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}. Checkpoint: Llama's layout with the head norms.
 */
final class Exaone4 extends ModelFamily {

    Exaone4() {
        super("exaone4", "exaone4", Keys.of(List.of(
                pos("vocab_size", 102400), pos("hidden_size", 4096), pos("intermediate_size", 16384),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), pos("num_key_value_heads", 32),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("bos_token_id", 0), tok("eos_token_id", 2),
                tok("pad_token_id", null), bool("tie_word_embeddings", false), dbl("attention_dropout", 0.0),
                posOrNull("sliding_window", 4096), intOrStringOrNull("sliding_window_pattern", 4),
                listOrNull("layer_types"),
                posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters(), optionalHeadDim()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        return attention(s, layers).sublayerNorms(false, true).build();
    }

    /**
     * EXAONE 4's attention, which EXAONE MoE's is: per-head query and key norms, the layers of
     * {@link #layerAttention}, and, with a window, only the sliding layers rotating.
     */
    static ArchitectureBuilder attention(Settings s, int layers) {
        Integer window = s.integerOrNull("sliding_window");
        List<LayerAttention> perLayer = layerAttention(s, layers, window);
        if (window == null && perLayer.contains(LayerAttention.SLIDING)) {
            throw invalid("layer_types", s.get("layer_types"), "has sliding_attention layers, but sliding_window is"
                    + " null, so there is no window for them");
        }
        List<Boolean> rotates = new ArrayList<>(layers);
        for (LayerAttention kind : perLayer) {
            rotates.add(window == null || kind == LayerAttention.SLIDING); // "global NoPE for hybrid attention"
        }
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).rotatingLayers(rotates).qkNorm(QkNorm.PER_HEAD)
                .slidingWindow(window).layerAttention(perLayer);
    }

    /** {@code layer_types}, or every {@code sliding_window_pattern}-th layer full as Exaone4Config fills it in. */
    private static List<LayerAttention> layerAttention(Settings s, int layers, Integer window) {
        List<LayerAttention> given = LayerTypes.read(s, layers);
        if (given != null) {
            return given;
        }
        if (window == null) {
            throw invalid("layer_types", null, "must be given when sliding_window is null: Exaone4Config then"
                    + " divides by a sliding_window_pattern of 0");
        }
        Object pattern = s.get("sliding_window_pattern");
        if (!(pattern instanceof Integer period) || period < 1) {
            throw invalid("sliding_window_pattern", pattern, "must be a positive integer where layer_types is not"
                    + " given: Exaone4Config computes (i + 1) % sliding_window_pattern and fails on another value");
        }
        return LayerTypes.readOrEvery(s, layers, period);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, LlamaLayout.qkNorms(a));
    }
}

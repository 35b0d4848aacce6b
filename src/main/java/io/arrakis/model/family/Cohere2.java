package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.RotaryPrecision;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalPos;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Cohere's Command R7B and Command A ({@code transformers/models/cohere2}): {@link Cohere}'s parallel blocks, norm,
 * interleaved rotary embeddings and logit scale, with sliding-window layers that rotate and full layers that do not
 * (NoPE). {@code layer_types} gives the layers, else every {@code sliding_window_pattern}-th layer (4 without it) is
 * full, as {@code Cohere2Config} fills them in. A null {@code sliding_window} is refused, as transformers' model
 * fails without one, whatever the layers.
 *
 * <p>Keys: {@code Cohere2Config} of {@code transformers} 5.17 (rotary base 10000), plus the keys 4.x files carry
 * ({@code sliding_window_pattern}, {@code rope_theta}, {@code rope_scaling}, {@code head_dim}). Checkpoint: Llama's
 * layout with one LayerNorm per block, without bias.
 */
final class Cohere2 extends ModelFamily {
    private static final int PATTERN = 4;

    Cohere2() {
        super("cohere2", "cohere2", Keys.of(List.of(
                pos("vocab_size", 256000), pos("hidden_size", 8192), pos("intermediate_size", 22528),
                dbl("logit_scale", 0.0625), count("num_hidden_layers", 40), pos("num_attention_heads", 64),
                posOrNull("num_key_value_heads", null), str("hidden_act", "silu"),
                pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02), posDbl("layer_norm_eps", 1e-5),
                bool("use_cache", true), tok("pad_token_id", 0), tok("bos_token_id", 5), tok("eos_token_id", 255001),
                bool("tie_word_embeddings", true), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                posOrNull("sliding_window", 4096), listOrNull("layer_types"), optionalPos("sliding_window_pattern"),
                posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters(), optionalHeadDim()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        Integer pattern = s.integerOrNull("sliding_window_pattern");
        List<LayerAttention> perLayer = LayerTypes.readOrEvery(s, s.integer("num_hidden_layers"),
                pattern == null ? PATTERN : pattern);
        Integer window = s.integerOrNull("sliding_window");
        if (window == null) {
            throw invalid("sliding_window", null, "must be set: Cohere2Model builds a sliding-window mask for every"
                    + " pass, which fails without one");
        }
        List<Boolean> rotates = new ArrayList<>(perLayer.size());
        for (LayerAttention kind : perLayer) {
            rotates.add(kind == LayerAttention.SLIDING);
        }
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.LAYER_NORM, "layer_norm_eps")
                .rotary("rope_theta", null).rotaryInterleaved().rotaryPrecision(RotaryPrecision.FLOAT32_ROTATION)
                .rotatingLayers(rotates).parallelResidual(true).sharedNorm(true)
                .biases(attentionBias, attentionBias, false).logitScale(s.number("logit_scale"))
                .slidingWindow(window).layerAttention(perLayer)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, false);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;

import java.util.List;
import java.util.Map;

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
 * OLMo 3 ({@code transformers/models/olmo3}; Olmo-3-7B, Olmo-3-32B): OLMo 2's blocks, with sliding and full layers
 * ({@code layer_types}; by default every 4th layer full, the others sliding) and a rotary embedding per kind of layer.
 * {@code transformers} 5 writes {@code rope_parameters} as one object per layer type; older files give
 * {@code rope_theta} and {@code rope_scaling} (YaRN in the published models), which apply to the full layers only,
 * as {@code Olmo3Config.convert_rope_params_to_dict} merges them. The sliding layers then rotate with base 500000:
 * {@code transformers} 5.17 takes that default for them whatever {@code rope_theta} says, 4.57 took
 * {@code rope_theta}, so another top-level {@code rope_theta} with sliding layers is refused unless the sliding
 * layers' object gives their own base.
 *
 * <p>The keys and defaults are those of {@code transformers} 5.17's configuration class, plus the older keys that
 * files on the Hub still carry in place of {@code rope_parameters}. Checkpoint: OLMo 2's.
 */
final class Olmo3 extends ModelFamily {
    private static final double DEFAULT_THETA = 500_000.0;

    Olmo3() {
        super("olmo3", "olmo3", Keys.of(List.of(
                pos("vocab_size", 50304), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                bool("use_cache", true), tok("pad_token_id", 1), tok("bos_token_id", null),
                tok("eos_token_id", 50279), bool("tie_word_embeddings", false), posDbl("rope_theta", DEFAULT_THETA),
                mapOrNull("rope_scaling"), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                posDbl("rms_norm_eps", 1e-5), posOrNull("sliding_window", 4096), listOrNull("layer_types"),
                optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        List<LayerAttention> perLayer = LayerTypes.readOrEvery(s, s.integer("num_hidden_layers"), 4);
        boolean sliding = perLayer.contains(LayerAttention.SLIDING);
        Integer window = s.integerOrNull("sliding_window");
        if (window == null && sliding) {
            throw invalid("sliding_window", null, "must be set: layer_types has sliding_attention layers");
        }
        Map<?, ?> rp = LayerTypes.rotaryObjects(s, "olmo3");
        Map<?, ?> scaling = s.mapOrNull("rope_scaling");
        Map<Object, Object> full = LayerTypes.fullLayerRotary(rp, scaling);
        Map<?, ?> slidingObject = LayerTypes.rotaryObject(rp, "sliding_attention");
        double theta = s.number("rope_theta");
        if (sliding && !slidingObject.containsKey("rope_theta") && theta != DEFAULT_THETA) {
            throw invalid("rope_theta", theta, "is not the base of olmo3's sliding layers in transformers 5.17, which"
                    + " rotates them with " + DEFAULT_THETA + " (4.57 with rope_theta); give"
                    + " rope_parameters.sliding_attention.rope_theta to say which");
        }
        return Olmo2.olmo2Layout(s).slidingWindow(window).layerAttention(perLayer)
                .rotaryOf(LayerAttention.FULL, scaling != null ? "rope_scaling" : "rope_parameters.full_attention",
                        full, "rope_theta")
                .rotaryOf(LayerAttention.SLIDING, "rope_parameters.sliding_attention", slidingObject, "rope_theta")
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Olmo2.checkpointOf(a);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Gemma 3's text model ({@code transformers/models/gemma3}, {@code Gemma3TextConfig}, {@code model_type}
 * {@code gemma3_text}): Gemma 2's blocks (norms before and after attention and MLP, attention scalar, optional
 * soft-capping of the logits, sliding layers) with a {@code (1 + w)} RMSNorm on each query and key head
 * ({@code q_norm}, {@code k_norm}) before the rotary embedding, and a rotary base per kind of layer:
 * {@code transformers} 5 writes {@code rope_parameters} as one object per layer type ({@code full_attention},
 * {@code sliding_attention}), each with its {@code rope_type}; older files give {@code rope_theta} (full layers),
 * {@code rope_local_base_freq} (sliding layers) and {@code rope_scaling} (full layers, merged into the full layers'
 * object as {@code Gemma3TextConfig.convert_rope_params_to_dict} does). Without {@code layer_types}, every
 * {@code sliding_window_pattern}-th layer is full, the others sliding. {@code attn_logit_softcapping} is read by the
 * configuration class, but Gemma3Attention passes no soft-cap to its attention, so any value is accepted and none
 * applied, as in {@code transformers}.
 *
 * <p>The keys and defaults are those of {@code transformers} 5.17's configuration class, plus the older keys that
 * files on the Hub still carry in place of {@code rope_parameters}. A multimodal checkpoint's config gives its
 * {@code text_config} here (see {@code io.arrakis.model.MultimodalCheckpoint}).
 */
final class Gemma3 extends ModelFamily {
    Gemma3() {
        super("gemma3", "gemma3_text", Keys.of(List.of(
                pos("vocab_size", 262_208), pos("hidden_size", 2304), pos("intermediate_size", 9216),
                count("num_hidden_layers", 26), pos("num_attention_heads", 8), pos("num_key_value_heads", 4),
                pos("head_dim", 256), str("hidden_activation", "gelu_pytorch_tanh"),
                pos("max_position_embeddings", 131_072), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", 0), tok("eos_token_id", 1), tok("bos_token_id", 2),
                bool("tie_word_embeddings", true), posDbl("rope_theta", 1_000_000.0),
                posDbl("rope_local_base_freq", 10_000.0), mapOrNull("rope_scaling"), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), posDbl("query_pre_attn_scalar", 256), posOrNull("sliding_window", 4096),
                listOrNull("layer_types"), pos("sliding_window_pattern", 6), dblOrNull("final_logit_softcapping", null),
                dblOrNull("attn_logit_softcapping", null), boolOrNull("use_bidirectional_attention", false),
                ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.has("text_config")) {
            throw invalid("text_config", s.get("text_config"), "belongs to Gemma3ForConditionalGeneration's config"
                    + " (model_type gemma3); only the text model's config (model_type gemma3_text) is supported");
        }
        Map<?, ?> rp = LayerTypes.rotaryObjects(s, "gemma3");
        Map<?, ?> scaling = s.mapOrNull("rope_scaling");
        Map<Object, Object> full = LayerTypes.fullLayerRotary(rp, scaling);
        Gemma2.refuseBidirectionalAttention(s);
        return Gemma2.gemma2Layout(s, s.integer("sliding_window_pattern")).qkNorm(QkNorm.PER_HEAD)
                .softcaps(null, "final_logit_softcapping")
                .rotary("rope_theta", null)
                .rotaryOf(LayerAttention.FULL, scaling != null ? "rope_scaling" : "rope_parameters.full_attention",
                        full, "rope_theta")
                .rotaryOf(LayerAttention.SLIDING, "rope_parameters.sliding_attention",
                        LayerTypes.rotaryObject(rp, "sliding_attention"), "rope_local_base_freq")
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, LlamaLayout.qkNorms(a));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
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
 * Gemma 2 ({@code transformers/models/gemma2}): Gemma's {@code (1 + w)} RMSNorms, {@code sqrt(hidden_size)}
 * embedding scale and explicit {@code head_dim}, with norms both before and after attention and MLP
 * ({@code input_layernorm}, {@code post_attention_layernorm}, {@code pre_feedforward_layernorm},
 * {@code post_feedforward_layernorm}), attention scores scaled by {@code query_pre_attn_scalar^-1/2} and soft-capped
 * by {@code attn_logit_softcapping}, logits soft-capped by {@code final_logit_softcapping}, and sliding-window layers
 * as {@code layer_types} says (every other layer, from the first, without it). The activation is
 * {@code hidden_activation}.
 *
 * <p>The keys and defaults are those of {@code transformers} 5.17's configuration class, plus the older keys that
 * files on the Hub still carry in place of {@code rope_parameters}.
 */
final class Gemma2 extends ModelFamily {

    Gemma2() {
        super("gemma2", "gemma2", Keys.of(keys(), Map.of()));
    }

    /** {@code Gemma2Config}'s keys, and the older rotary keys. */
    static List<Key> keys() {
        return List.of(
                pos("vocab_size", 256000), pos("hidden_size", 2304), pos("intermediate_size", 9216),
                count("num_hidden_layers", 26), pos("num_attention_heads", 8), pos("num_key_value_heads", 4),
                pos("head_dim", 256), str("hidden_activation", "gelu_pytorch_tanh"),
                pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", 0), tok("eos_token_id", 1), tok("bos_token_id", 2),
                bool("tie_word_embeddings", true), posDbl("rope_theta", 10000.0), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), posDbl("query_pre_attn_scalar", 256), posOrNull("sliding_window", 4096),
                listOrNull("layer_types"), dblOrNull("final_logit_softcapping", 30.0),
                dblOrNull("attn_logit_softcapping", 50.0), boolOrNull("use_bidirectional_attention", null),
                optionalRopeScaling(), ropeParameters());
    }

    @Override
    Architecture architecture(Settings s) {
        refuseBidirectionalAttention(s);
        return gemma2Layout(s, 2).rotary("rope_theta", null).build();
    }

    /** Refuses {@code use_bidirectional_attention}, which Gemma 2's and Gemma 3's attention read; causal only. */
    static void refuseBidirectionalAttention(Settings s) {
        if (Boolean.TRUE.equals(s.get("use_bidirectional_attention"))) {
            throw invalid("use_bidirectional_attention", true, "is not supported: only causal attention is");
        }
    }

    /**
     * What Gemma 2 and Gemma 3 share: the keys, (1 + w) norms before and after attention and MLP, the attention
     * scalar, soft-capping, the embedding scale and the sliding layers ({@code layer_types}, or every layer but the
     * last of each {@code period}).
     */
    static ArchitectureBuilder gemma2Layout(Settings s, int period) {
        int width = s.integer("hidden_size");
        int heads = s.integer("num_attention_heads");
        if (width % heads != 0) { // the configuration class's validate_architecture, although head_dim is explicit
            throw invalid("hidden_size", width, "is not a multiple of num_attention_heads = " + heads);
        }
        List<LayerAttention> perLayer = LayerTypes.readOrEvery(s, s.integer("num_hidden_layers"), period);
        Integer window = s.integerOrNull("sliding_window");
        if (window == null && perLayer.contains(LayerAttention.SLIDING)) {
            throw invalid("sliding_window", null, "must be set when layer_types has sliding_attention layers");
        }
        boolean attentionBias = s.bool("attention_bias");
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim").mlpWidth("intermediate_size")
                .positions("max_position_embeddings").paddingToken("pad_token_id").activation("hidden_activation").gatedMlp()
                .norm(Norm.RMS_NORM_PLUS_ONE, "rms_norm_eps").sublayerNorms(true, true)
                .biases(attentionBias, attentionBias, false).embeddingScale(Math.sqrt(width))
                .attentionScalar("query_pre_attn_scalar").softcaps("attn_logit_softcapping", "final_logit_softcapping")
                .slidingWindow(window).layerAttention(perLayer);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
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
 * Qwen3 ({@code transformers/models/qwen3}): Qwen2 with an RMSNorm on each query and key head ({@code q_norm},
 * {@code k_norm}, weights {@code [head_dim]} shared by the heads) before the rotary embedding, an explicit
 * {@code head_dim} that need not be {@code hidden_size / num_attention_heads}, and biases on all four attention
 * projections as {@code attention_bias} says. The sliding window follows Qwen2's rules.
 *
 * <p>The keys and defaults are those of {@code transformers} 5.17's configuration class, plus the older keys that
 * files on the Hub still carry in place of {@code rope_parameters}.
 */
final class Qwen3 extends ModelFamily {

    Qwen3() {
        super("qwen3", "qwen3", Keys.of(List.of(
                pos("vocab_size", 151936), pos("hidden_size", 4096), pos("intermediate_size", 22016),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 32),
                pos("head_dim", 128), str("hidden_act", "silu"), pos("max_position_embeddings", 32768),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6), bool("use_cache", true),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                bool("attention_bias", false), bool("use_sliding_window", false), posOrNull("sliding_window", 4096),
                integer("max_window_layers", 28), listOrNull("layer_types"), dbl("attention_dropout", 0.0),
                tok("pad_token_id", null), tok("bos_token_id", null), tok("eos_token_id", null), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        // transformers keeps the window only with use_sliding_window; a null one leaves every layer full
        Integer window = s.bool("use_sliding_window") ? s.integerOrNull("sliding_window") : null;
        List<LayerAttention> perLayer = Qwen2.slidingLayers(s, s.integer("num_hidden_layers"), window != null);
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, false).qkNorm(QkNorm.PER_HEAD)
                .slidingWindow(window).layerAttention(perLayer)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, LlamaLayout.qkNorms(a));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Llama ({@code transformers/models/llama}): RMSNorm, rotary embeddings on the whole head, a gated MLP,
 * grouped-query attention, biases as {@code attention_bias} and {@code mlp_bias} say.
 */
final class Llama extends ModelFamily {

    Llama() {
        super("llama", "llama", Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), pos("pretraining_tp", 1),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), bool("mlp_bias", false),
                posOrNull("head_dim", null), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

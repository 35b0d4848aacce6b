package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Jais 2 ({@code transformers/models/jais2}; Jais-2-8B): Llama's attention with biases on its four projections as
 * {@code attention_bias} says, LayerNorms with bias ({@code layer_norm_eps}), and an MLP without a gate,
 * {@code down(relu2(up(x)))}, with biases as {@code mlp_bias} says. {@code Jais2Config} requires
 * {@code num_attention_heads} to divide {@code hidden_size} even where {@code head_dim} is set, and so does this
 * family.
 *
 * <p>Keys: {@code Jais2Config} of {@code transformers} 5.17 (Llama's less {@code rms_norm_eps} and
 * {@code pretraining_tp}; rotary base 10000), plus the rotary keys 4.x files carry. Checkpoint: Llama's layout with
 * LayerNorm biases and without {@code mlp.gate_proj}.
 */
final class Jais2 extends ModelFamily {

    Jais2() {
        super("jais2", "jais2", Keys.of(List.of(
                pos("vocab_size", 150272), pos("hidden_size", 3328), pos("intermediate_size", 26624),
                count("num_hidden_layers", 32), pos("num_attention_heads", 26), posOrNull("num_key_value_heads", null),
                str("hidden_act", "relu2"), pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02),
                bool("use_cache", true), tok("pad_token_id", null), tok("bos_token_id", 0), tok("eos_token_id", 150024),
                bool("tie_word_embeddings", false), bool("attention_bias", true), dblOrNull("attention_dropout", 0.0),
                bool("mlp_bias", true), posOrNull("head_dim", null), posDbl("layer_norm_eps", 1e-5),
                posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        LlamaLayout.requireHeadsDivideWidth(s, "Jais2Config");
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.ungatedKeys(s).headDim("head_dim").norm(Norm.LAYER_NORM, "layer_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

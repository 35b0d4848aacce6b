package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Arcee's AFM ({@code transformers/models/arcee}; AFM-4.5B): Llama's blocks with an MLP without a gate,
 * {@code down(act(up(x)))}, whose activation is {@code relu2} ({@code relu(x)^2}) by default; biases on all four
 * attention projections as {@code attention_bias} says and on the MLP's as {@code mlp_bias} says.
 * {@code ArceeConfig} requires {@code num_attention_heads} to divide {@code hidden_size} even where {@code head_dim}
 * is set, and so does this family.
 *
 * <p>Keys: {@code ArceeConfig} of {@code transformers} 5.17 (rotary base 10000), plus the rotary keys 4.x files
 * carry. Checkpoint: Llama's layout without {@code mlp.gate_proj}.
 */
final class Arcee extends ModelFamily {

    Arcee() {
        super("arcee", "arcee", Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 2560), pos("intermediate_size", 18432),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "relu2"), pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 128000), tok("eos_token_id", 128001), bool("tie_word_embeddings", false),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), bool("mlp_bias", false),
                posOrNull("head_dim", null), posDbl("rope_theta", 10000.0), optionalRopeScaling(),
                ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        LlamaLayout.requireHeadsDivideWidth(s, "ArceeConfig");
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.ungatedKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

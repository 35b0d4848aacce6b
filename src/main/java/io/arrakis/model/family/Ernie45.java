package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.RotaryPrecision;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
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
 * ERNIE 4.5's dense models ({@code transformers/models/ernie4_5}; ERNIE-4.5-0.3B): Llama's blocks with biases on
 * every projection as {@code use_bias} says, tied embeddings by default, and rotary embeddings over the whole head in
 * the interleaved convention (frequency i turns the pair {@code (2i, 2i + 1)}), which float16 and bfloat16 models
 * compute in float32, cos and sin too, rounding once.
 *
 * <p>Keys: {@code Ernie4_5Config} of {@code transformers} 5.17 (rotary base 500000), plus the rotary keys 4.x files
 * carry. Checkpoint: Llama's layout.
 */
final class Ernie45 extends ModelFamily {

    Ernie45() {
        super("ernie4_5", "ernie4_5", Keys.of(List.of(
                pos("vocab_size", 103424), pos("hidden_size", 1024), pos("intermediate_size", 3072),
                count("num_hidden_layers", 18), pos("num_attention_heads", 16), posOrNull("num_key_value_heads", 2),
                str("hidden_act", "silu"), pos("max_position_embeddings", 131072), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", 0), tok("bos_token_id", 1),
                tok("eos_token_id", 2), bool("tie_word_embeddings", true), boolOrNull("use_bias", false),
                posOrNull("head_dim", 128), posDbl("rope_theta", 500000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean bias = Boolean.TRUE.equals(s.get("use_bias")); // null: nn.Linear(bias=None) has none
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).rotaryInterleaved().rotaryPrecision(RotaryPrecision.FLOAT32)
                .biases(bias, bias, bias)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

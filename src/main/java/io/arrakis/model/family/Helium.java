package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Kyutai's Helium ({@code transformers/models/helium}; Helium-1-2B): Llama's blocks with an RMSNorm that multiplies by
 * its weight in float32 and rounds once, rotary embeddings over the whole head in the interleaved convention
 * (frequency i turns the pair {@code (2i, 2i + 1)}), computed in the model's dtype, and biases on the query, key and
 * value projections as {@code attention_bias} says but never on the output projection. That projection is
 * {@code hidden_size x hidden_size}, so the heads must span the width ({@code num_attention_heads * head_dim =
 * hidden_size}).
 *
 * <p>Keys: {@code HeliumConfig} of {@code transformers} 5.17 (rotary base 100000), plus the rotary keys 4.x files
 * carry. Checkpoint: Llama's layout.
 */
final class Helium extends ModelFamily {

    Helium() {
        super("helium", "helium", Keys.of(List.of(
                pos("vocab_size", 48000), pos("hidden_size", 2560), pos("intermediate_size", 7040),
                count("num_hidden_layers", 24), pos("num_attention_heads", 20), pos("num_key_value_heads", 20),
                pos("head_dim", 128), str("hidden_act", "silu"), dbl("attention_dropout", 0.0),
                pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-8),
                bool("use_cache", true), bool("tie_word_embeddings", false), tok("pad_token_id", 3),
                tok("eos_token_id", 2), tok("bos_token_id", 1), bool("attention_bias", false),
                bool("mlp_bias", false), posDbl("rope_theta", 100000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int width = s.integer("hidden_size");
        long heads = (long) s.integer("num_attention_heads") * s.integer("head_dim");
        if (heads != width) {
            throw invalid("hidden_size", width, "must equal num_attention_heads * head_dim = " + heads
                    + ": Helium's output projection is hidden_size x hidden_size");
        }
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM_WEIGHT_IN_FLOAT32, "rms_norm_eps")
                .rotary("rope_theta", null).rotaryInterleaved()
                .biases(s.bool("attention_bias"), false, s.bool("mlp_bias"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

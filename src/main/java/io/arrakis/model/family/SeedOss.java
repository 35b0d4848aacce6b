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
 * Seed-OSS ({@code transformers/models/seed_oss}; Seed-OSS-36B): Llama's blocks, whose query, key and value
 * projections have biases as {@code attention_bias} says and whose output projection has one as
 * {@code attention_out_bias} says. Its two dropout rates act in training only.
 *
 * <p>Keys: {@code SeedOssConfig} of {@code transformers} 5.17 (rotary base 10000, as Llama's), plus the rotary keys
 * 4.x files carry. Checkpoint: Llama's layout.
 */
final class SeedOss extends ModelFamily {

    SeedOss() {
        super("seed-oss", "seed_oss", Keys.of(List.of(
                pos("vocab_size", 155136), pos("hidden_size", 4096), pos("intermediate_size", 27648),
                count("num_hidden_layers", 64), pos("num_attention_heads", 80), posOrNull("num_key_value_heads", 8),
                str("hidden_act", "silu"), pos("max_position_embeddings", 524288), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", 1), tok("bos_token_id", 0),
                tok("eos_token_id", 2), pos("pretraining_tp", 1), bool("tie_word_embeddings", false),
                bool("attention_bias", true), bool("attention_out_bias", false), dbl("attention_dropout", 0.1),
                dbl("residual_dropout", 0.1), bool("mlp_bias", false), posOrNull("head_dim", 128),
                posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null)
                .biases(s.bool("attention_bias"), s.bool("attention_out_bias"), s.bool("mlp_bias"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

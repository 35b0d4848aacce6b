package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * StableLM ({@code transformers/models/stablelm}): Llama's layout with LayerNorms (weight and bias), rotary
 * embeddings on {@code int(d_head * partial_rotary_factor)} dimensions, q/k/v biases as {@code use_qkv_bias} says,
 * and {@code use_parallel_residual}, where the MLP reads the attention's normalised input (no post-attention norm).
 * {@code qk_layernorm} (per-head LayerNorms on queries and keys) is refused.
 */
final class StableLm extends ModelFamily {

    StableLm() {
        super("stable-lm", "stablelm", Keys.of(List.of(
                pos("vocab_size", 50304), pos("intermediate_size", 6912), pos("hidden_size", 2560),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), pos("num_key_value_heads", 32),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("layer_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("use_qkv_bias", false),
                bool("qk_layernorm", false), bool("use_parallel_residual", false), dbl("hidden_dropout", 0.0),
                dbl("attention_dropout", 0.0), posDbl("partial_rotary_factor", 0.25), tok("bos_token_id", 0),
                tok("eos_token_id", 0), tok("pad_token_id", null), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        requireHeadDimOfWidth(s, "hidden_size", "num_attention_heads");
        if (s.bool("qk_layernorm")) {
            throw invalid("qk_layernorm", true, "is not implemented (per-head LayerNorms on queries and keys)");
        }
        return LlamaLayout.standardKeys(s).norm(Norm.LAYER_NORM, "layer_norm_eps")
                .rotary("rope_theta", "partial_rotary_factor").parallelResidual(s.bool("use_parallel_residual"))
                .sharedNorm(s.bool("use_parallel_residual")).biases(s.bool("use_qkv_bias"), false, false)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

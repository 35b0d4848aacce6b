package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.stored;
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
import static io.arrakis.model.family.Slot.K_NORM;
import static io.arrakis.model.family.Slot.Q_NORM;

/**
 * Tencent's HunYuan dense models ({@code transformers/models/hunyuan_v1_dense}; Hunyuan-0.5B to -7B): Llama's blocks
 * with a per-head RMSNorm of the queries ({@code self_attn.query_layernorm}) and of the keys
 * ({@code self_attn.key_layernorm}) after the rotary embedding, whose {@code "dynamic"} type with an {@code alpha} is
 * the unscaled rope of the base {@code rope_theta · alpha^(head_dim / (head_dim - 2))} ({@link Rope.NtkAlpha}, which
 * transformers keeps up to {@code max_position_embeddings}, the longest pass of every family); biases on the four
 * attention projections as {@code attention_bias} says.
 *
 * <p>Keys: {@code HunYuanDenseV1Config} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place
 * of {@code rope_parameters}, except that {@code head_dim}, which the class leaves null (its attention and rotary
 * embedding then fail), defaults to the published models' 128 and may not be null. Checkpoint: Llama's layout with
 * the two attention norms.
 */
final class HunYuanDense extends ModelFamily {

    HunYuanDense() {
        super("hunyuan-v1-dense", "hunyuan_v1_dense", Keys.of(List.of(
                pos("vocab_size", 290943), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", 0),
                tok("bos_token_id", 1), tok("eos_token_id", 2), tok("eod_token_id", 3), pos("pretraining_tp", 1),
                bool("tie_word_embeddings", false), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                pos("head_dim", 128), posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).ntkAlphaRope().qkNorm(QkNorm.PER_HEAD).qkNormAfterRotary()
                .biases(attentionBias, attentionBias, false)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, stored("self_attn.query_layernorm.weight", Q_NORM, a.dHead()),
                stored("self_attn.key_layernorm.weight", K_NORM, a.dHead()));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Apertus ({@code transformers/models/apertus}; Apertus-8B, Apertus-70B): Llama's attention, biased as
 * {@code attention_bias} says, with an RMSNorm on each query and key head before the rotary embedding, in pre-norm
 * blocks whose norms are {@code attention_layernorm} and {@code feedforward_layernorm}, and an MLP without a gate,
 * {@code down(act(up(x)))}, whose activation is by default xIELU with each layer's learned parameters
 * ({@code mlp.act_fn.alpha_p}, {@code alpha_n}, {@code beta}, {@code eps}). Without {@code rope_parameters} or
 * {@code rope_scaling}, the rotary embedding is {@code ApertusConfig}'s: base 12,000,000 with Llama 3's scaling
 * (factor 8, low and high frequency factors 1 and 4, 8,192 original positions), which a {@code rope_theta} key does not
 * change, as transformers sets it only where missing.
 *
 * <p>Keys: {@code ApertusConfig} of {@code transformers} 5.17, plus {@code head_dim} (its attention reads one where the
 * file has it) and the rotary keys 4.x files carry.
 */
final class Apertus extends ModelFamily {
    /** {@code ApertusConfig.__post_init__}'s rotary embedding where none is given. */
    private static final Map<String, Object> DEFAULT_ROPE = Map.of("rope_type", "llama3", "rope_theta", 12_000_000.0,
            "factor", 8.0, "original_max_position_embeddings", 8192, "low_freq_factor", 1.0, "high_freq_factor", 4.0);

    Apertus() {
        super("apertus", "apertus", Keys.of(List.of(
                pos("vocab_size", 131072), pos("hidden_size", 4096), pos("intermediate_size", 14336),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "xielu"), pos("max_position_embeddings", 65536), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", 3), tok("bos_token_id", 1),
                tok("eos_token_id", 2), bool("tie_word_embeddings", false), ropeParameters(),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), optionalHeadDim(),
                posDbl("rope_theta", 12_000_000.0), mapOrNull("rope_scaling")),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        Settings rotary = RopeScalings.withDefault(s, DEFAULT_ROPE);
        boolean bias = s.bool("attention_bias");
        return LlamaLayout.ungatedKeys(rotary).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).qkNorm(QkNorm.PER_HEAD).biases(bias, bias, false).xieluLayout()
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        List<CheckpointTensor> activation = new ArrayList<>();
        if (a.activationFunction() == Architecture.Activation.XIELU) {
            activation.addAll(List.of(stored("mlp.act_fn.alpha_p", XIELU_ALPHA_P, 1),
                    stored("mlp.act_fn.alpha_n", XIELU_ALPHA_N, 1), stored("mlp.act_fn.beta", XIELU_BETA),
                    stored("mlp.act_fn.eps", XIELU_EPS)));
        }
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("attention_layernorm.weight", LN1_W, d),
                        linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(LlamaLayout.qkNorms(a))
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layer(stored("feedforward_layernorm.weight", LN2_W, d), linear("mlp.up_proj.weight", W_IN, mlp, d),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .layer(activation.toArray(CheckpointTensor[]::new))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

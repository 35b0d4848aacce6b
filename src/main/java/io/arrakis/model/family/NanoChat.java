package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Karpathy's nanochat ({@code transformers/models/nanochat}; nanochat-d32): Llama's pre-norm blocks whose RMSNorms
 * have no weight (in float32, the result converted back), one of which also normalises the embeddings before the
 * first block; per-head query and key norms of the same kind after the rotary embedding, whose {@code rotate_half}
 * ({@code cat(x2, -x1)}) turns each pair the other way from Llama's; an MLP without a gate, {@code fc2(act(fc1(x)))},
 * {@code relu2} by default; logits soft-capped by {@code final_logit_softcapping}; biases on the four attention
 * projections as {@code attention_bias} says.
 *
 * <p>Keys: {@code NanoChatConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}. Checkpoint: {@code model.layers.{i}.self_attn.{q,k,v,o}_proj}, {@code mlp.fc1},
 * {@code mlp.fc2}, no norm tensors, {@code lm_head}.
 */
final class NanoChat extends ModelFamily {

    NanoChat() {
        super("nanochat", "nanochat", Keys.of(List.of(
                pos("vocab_size", 50304), pos("hidden_size", 768), pos("intermediate_size", 8192),
                count("num_hidden_layers", 12), pos("num_attention_heads", 6), posOrNull("num_key_value_heads", null),
                pos("max_position_embeddings", 2048), str("hidden_act", "relu2"), dbl("attention_dropout", 0.0),
                posDbl("rms_norm_eps", 1e-6), dbl("initializer_range", 0.02), bool("use_cache", true),
                dblOrNull("final_logit_softcapping", 15.0), bool("attention_bias", false), tok("bos_token_id", 0),
                tok("eos_token_id", 1), tok("pad_token_id", 1), bool("tie_word_embeddings", false),
                optionalHeadDim(), posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.has("n_embd")) { // the nanochat repository's own config, whose model_type is nanochat too
            throw ConfigValues.invalid("n_embd", s.get("n_embd"), "is a key of the nanochat repository's own format,"
                    + " which transformers does not load; convert the checkpoint to transformers' NanoChatForCausalLM"
                    + " (as karpathy/nanochat-d32 is)");
        }
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.ungatedKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .normsWithoutParameters().embeddingNorm().qkNorm(QkNorm.PER_HEAD).qkNormAfterRotary()
                .rotary("rope_theta", null).rotaryReversed().biases(attentionBias, attentionBias, false)
                .softcaps(null, "final_logit_softcapping")
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layer(linear("mlp.fc1.weight", W_IN, a.dMlp(), d), linear("mlp.fc2.weight", W_OUT, d, a.dMlp()))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

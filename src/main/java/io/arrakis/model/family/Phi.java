package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Phi-1, Phi-1.5 and Phi-2 ({@code transformers/models/phi}): attention and MLP in parallel on one LayerNorm
 * ({@code input_layernorm}), rotary embeddings on {@code int(d_head * partial_rotary_factor)} dimensions, biases on
 * every projection ({@code q/k/v_proj}, {@code dense}, {@code fc1}, {@code fc2}), a final LayerNorm and an
 * unembedding with a bias. {@code qk_layernorm} (LayerNorms on queries and keys) is not implemented.
 */
final class Phi extends ModelFamily {

    Phi() {
        super("phi", "phi", Keys.of(List.of(
                pos("vocab_size", 51200), pos("hidden_size", 2048), pos("intermediate_size", 8192),
                count("num_hidden_layers", 24), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                dbl("resid_pdrop", 0.0), dbl("embd_pdrop", 0.0), dbl("attention_dropout", 0.0),
                str("hidden_act", "gelu_new"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("layer_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), posDbl("partial_rotary_factor", 0.5),
                bool("qk_layernorm", false), tok("bos_token_id", 1), tok("eos_token_id", 2),
                tok("pad_token_id", null), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.bool("qk_layernorm")) {
            throw invalid("qk_layernorm", true, "is not supported (LayerNorms on queries and keys)");
        }
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim").mlpWidth("intermediate_size")
                .positions("max_position_embeddings").paddingToken("pad_token_id").activation("hidden_act")
                .norm(Norm.LAYER_NORM, "layer_norm_eps").rotary("rope_theta", "partial_rotary_factor")
                .parallelResidual(true).outputsSummedFirst().sharedNorm(true).biases(true, true, true)
                .unembeddingBias(true)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(linear("self_attn.q_proj.weight", WQ, q, d), stored("self_attn.q_proj.bias", BQ, q),
                        linear("self_attn.k_proj.weight", WK, kv, d), stored("self_attn.k_proj.bias", BK, kv),
                        linear("self_attn.v_proj.weight", WV, kv, d), stored("self_attn.v_proj.bias", BV, kv),
                        linear("self_attn.dense.weight", WO, d, q), stored("self_attn.dense.bias", BO, d),
                        linear("mlp.fc1.weight", W_IN, mlp, d), stored("mlp.fc1.bias", B_IN, mlp),
                        linear("mlp.fc2.weight", W_OUT, d, mlp), stored("mlp.fc2.bias", B_OUT, d),
                        stored("input_layernorm.weight", LN1_W, d), stored("input_layernorm.bias", LN1_B, d))
                .global(stored("final_layernorm.weight", LNF_W, d), stored("final_layernorm.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
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
 * StarCoder2 ({@code transformers/models/starcoder2}): Llama's attention with grouped key/value heads and rotary
 * embeddings on the whole head, LayerNorms with biases ({@code norm_epsilon}), a two-layer MLP {@code c_fc} /
 * {@code c_proj}, biases on every projection as {@code use_bias} says, and {@code sliding_window} on every layer when
 * it is not null.
 */
final class Starcoder2 extends ModelFamily {

    Starcoder2() {
        super("starcoder2", "starcoder2", Keys.of(List.of(
                pos("vocab_size", 49152), pos("hidden_size", 3072), pos("intermediate_size", 12288),
                count("num_hidden_layers", 30), pos("num_attention_heads", 24), pos("num_key_value_heads", 2),
                str("hidden_act", "gelu_pytorch_tanh"), pos("max_position_embeddings", 4096),
                dbl("initializer_range", 0.018042), posDbl("norm_epsilon", 1e-5), bool("use_cache", true),
                tok("bos_token_id", 50256), tok("eos_token_id", 50256), tok("pad_token_id", null),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), posOrNull("sliding_window", null),
                dbl("attention_dropout", 0.0), dbl("residual_dropout", 0.0), dbl("embedding_dropout", 0.0),
                bool("use_bias", true), bool("tie_word_embeddings", true), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean bias = s.bool("use_bias");
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim").mlpWidth("intermediate_size")
                .positions("max_position_embeddings").paddingToken("pad_token_id").activation("hidden_act")
                .norm(Norm.LAYER_NORM, "norm_epsilon").rotary("rope_theta", null).biases(bias, bias, bias)
                .slidingWindow(s.integerOrNull("sliding_window"))
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
                .layer(stored("input_layernorm.weight", LN1_W, d), stored("input_layernorm.bias", LN1_B, d),
                        linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d),
                        stored("post_attention_layernorm.bias", LN2_B, d),
                        linear("mlp.c_fc.weight", W_IN, mlp, d))
                .layerIf(a.mlpBias(), stored("mlp.c_fc.bias", B_IN, mlp))
                .layer(linear("mlp.c_proj.weight", W_OUT, d, mlp))
                .layerIf(a.mlpBias(), stored("mlp.c_proj.bias", B_OUT, d))
                .global(stored("norm.weight", LNF_W, d), stored("norm.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * GPT-J ({@code transformers/models/gptj}): attention and MLP in parallel on one LayerNorm ({@code ln_1}), rotary
 * embeddings on the first {@code rotary_dim} features of each head in the interleaved {@code rotate_every_two}
 * convention with the base 10000 the modeling file fixes, q/k/v/out projections without biases, a two-layer MLP
 * {@code fc_in} / {@code fc_out} with biases, and an unembedding with a bias.
 */
final class GptJ extends ModelFamily {

    GptJ() {
        super("gpt-j", "gptj", Keys.of(List.of(
                pos("vocab_size", 50400), pos("n_positions", 2048), pos("n_embd", 4096), count("n_layer", 28),
                pos("n_head", 16), pos("rotary_dim", 64), posOrNull("n_inner", null),
                str("activation_function", "gelu_new"), dbl("resid_pdrop", 0.0), dbl("embd_pdrop", 0.0),
                dbl("attn_pdrop", 0.0), posDbl("layer_norm_epsilon", 1e-5), dbl("initializer_range", 0.02),
                bool("use_cache", true), tok("bos_token_id", 50256), tok("eos_token_id", 50256),
                tok("pad_token_id", null), bool("tie_word_embeddings", false), optionalRopeScaling(),
                ropeParameters()),
                Map.of("max_position_embeddings", "n_positions", "hidden_size", "n_embd",
                        "num_attention_heads", "n_head", "num_hidden_layers", "n_layer")));
    }

    @Override
    Architecture architecture(Settings s) {
        return new ArchitectureBuilder(s)
                .width("n_embd").layers("n_layer").heads("n_head").positions("n_positions")
                .mlpWidthOrFourTimesWidth("n_inner")
                .norm(Norm.LAYER_NORM, "layer_norm_epsilon").activation("activation_function")
                .rotaryOnFirst("rotary_dim", 10000.0).rotaryInterleaved()
                .parallelResidual(true).outputsSummedFirst().sharedNorm(true).biases(false, false, true).scoresInFloat32()
                .unembeddingBias(true)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return Checkpoint.builder("transformer.", "h.%d.", a.nLayers())
                .global(stored("wte.weight", EMBED, a.vocabSize(), d))
                .layer(stored("ln_1.weight", LN1_W, d), stored("ln_1.bias", LN1_B, d),
                        linear("attn.k_proj.weight", WK, d, d), linear("attn.v_proj.weight", WV, d, d),
                        linear("attn.q_proj.weight", WQ, d, d), linear("attn.out_proj.weight", WO, d, d),
                        linear("mlp.fc_in.weight", W_IN, mlp, d), stored("mlp.fc_in.bias", B_IN, mlp),
                        linear("mlp.fc_out.weight", W_OUT, d, mlp), stored("mlp.fc_out.bias", B_OUT, d))
                .global(stored("ln_f.weight", LNF_W, d), stored("ln_f.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

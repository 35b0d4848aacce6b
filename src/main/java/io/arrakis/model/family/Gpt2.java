package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedStored;
import static io.arrakis.model.family.CheckpointTensor.fusedVector;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.strOrNull;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * GPT-2 ({@code transformers/models/gpt2}): LayerNorm, learned positions, a two-layer MLP, biases everywhere,
 * attention scaled iff {@code scale_attn_weights}; {@code scale_attn_by_inverse_layer_idx} is refused, and
 * {@code reorder_and_upcast_attn} computes half-precision attention scores in float32. Its {@code Conv1D}
 * weights are stored {@code [in, out]}, and {@code c_attn} fuses the query, key and value projections.
 */
final class Gpt2 extends ModelFamily {

    Gpt2() {
        super("gpt2", "gpt2", Keys.of(List.of(
                pos("vocab_size", 50257), pos("n_positions", 1024), pos("n_embd", 768), count("n_layer", 12),
                pos("n_head", 12), posOrNull("n_inner", null), str("activation_function", "gelu_new"),
                dbl("resid_pdrop", 0.1), dbl("embd_pdrop", 0.1), dbl("attn_pdrop", 0.1),
                posDbl("layer_norm_epsilon", 1e-5), dbl("initializer_range", 0.02),
                str("summary_type", "cls_index"), bool("summary_use_proj", true), strOrNull("summary_activation", null),
                bool("summary_proj_to_labels", true), dbl("summary_first_dropout", 0.1),
                bool("scale_attn_weights", true), bool("use_cache", true), tok("bos_token_id", 50256),
                tok("eos_token_id", 50256), tok("pad_token_id", null), bool("scale_attn_by_inverse_layer_idx", false),
                bool("reorder_and_upcast_attn", false), bool("tie_word_embeddings", true)),
                Map.of("hidden_size", "n_embd", "max_position_embeddings", "n_positions",
                        "num_attention_heads", "n_head", "num_hidden_layers", "n_layer")));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.bool("scale_attn_by_inverse_layer_idx")) {
            throw invalid("scale_attn_by_inverse_layer_idx", true,
                    "is not implemented (attention scores divided by the layer number)");
        }
        ArchitectureBuilder b = new ArchitectureBuilder(s)
                .width("n_embd").layers("n_layer").heads("n_head").positions("n_positions")
                .mlpWidthOrFourTimesWidth("n_inner")
                .norm(Norm.LAYER_NORM, "layer_norm_epsilon").activation("activation_function")
                .learnedPositions().biases(true, true, true).scaleAttention(s.bool("scale_attn_weights"));
        // transformers' _upcast_and_reordered_attn: scaled scores and their softmax in float32 from float32 q and k
        return (s.bool("reorder_and_upcast_attn") ? b.scoresInFloat32() : b).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return Checkpoint.builder("transformer.", "h.%d.", a.nLayers())
                .global(stored("wte.weight", EMBED, a.vocabSize(), d), stored("wpe.weight", POS_EMBED, a.maxPositions(), d))
                .layer(stored("ln_1.weight", LN1_W, d), stored("ln_1.bias", LN1_B, d),
                        fusedStored("attn.c_attn.weight", new long[] {d, 3 * d}, part(WQ, d), part(WK, d), part(WV, d)),
                        fusedVector("attn.c_attn.bias", 1, part(BQ, d), part(BK, d), part(BV, d)),
                        stored("attn.c_proj.weight", WO, d, d), stored("attn.c_proj.bias", BO, d),
                        stored("ln_2.weight", LN2_W, d), stored("ln_2.bias", LN2_B, d),
                        stored("mlp.c_fc.weight", W_IN, d, mlp), stored("mlp.c_fc.bias", B_IN, mlp),
                        stored("mlp.c_proj.weight", W_OUT, mlp, d), stored("mlp.c_proj.bias", B_OUT, d))
                .global(stored("ln_f.weight", LNF_W, d), stored("ln_f.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * OPT ({@code transformers/models/opt}; OPT-125M to OPT-66B): GPT-2's pre-norm blocks with separate query, key and
 * value projections, all four with biases and the MLP's two as {@code enable_bias} says, LayerNorms with the default
 * eps of {@code nn.LayerNorm} (1e-5), a ReLU MLP ({@code activation_function}), learned positions and tied embeddings.
 * Its position table stores two rows ahead of position 0 (fairseq's padding offset) that no position reads; loading
 * leaves them out, so {@code W_pos} row {@code p} is position {@code p}, as in TransformerLens.
 *
 * <p>As {@code transformers} does, the queries are multiplied by {@code head_dim^-1/2} before their product with the
 * keys, not the product after: in float16 the unscaled product can overflow where OPT's does not. Refused: OPT-350M's
 * post-norm blocks ({@code do_layer_norm_before = false}) and its embeddings projected in and out
 * ({@code word_embed_proj_dim} other than {@code hidden_size}), LayerNorms without weights
 * ({@code layer_norm_elementwise_affine = false}) and a missing final norm ({@code _remove_final_layer_norm}).
 *
 * <p>Keys: {@code OPTConfig} of {@code transformers} 5.17. Checkpoint: {@code OPTForCausalLM}'s, the blocks under
 * {@code model.decoder.layers}.
 */
final class Opt extends ModelFamily {
    /** The rows the position table stores ahead of position 0 ({@code OPTLearnedPositionalEmbedding.offset}). */
    private static final int POSITION_OFFSET = 2;

    Opt() {
        super("opt", "opt", Keys.of(List.of(
                pos("vocab_size", 50272), pos("hidden_size", 768), count("num_hidden_layers", 12),
                pos("ffn_dim", 3072), pos("max_position_embeddings", 2048), bool("do_layer_norm_before", true),
                bool("_remove_final_layer_norm", false), posOrNull("word_embed_proj_dim", null), dbl("dropout", 0.1),
                dbl("attention_dropout", 0.0), pos("num_attention_heads", 12), str("activation_function", "relu"),
                dbl("layerdrop", 0.0), dbl("init_std", 0.02), bool("use_cache", true), tok("pad_token_id", 1),
                tok("bos_token_id", 2), tok("eos_token_id", 2), bool("enable_bias", true),
                bool("layer_norm_elementwise_affine", true), bool("tie_word_embeddings", true)),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (!s.bool("do_layer_norm_before")) {
            throw invalid("do_layer_norm_before", false, "is not implemented (post-norm blocks, as OPT-350M's)");
        }
        Integer projected = s.integerOrNull("word_embed_proj_dim");
        if (projected != null && projected != s.integer("hidden_size")) {
            throw invalid("word_embed_proj_dim", projected, "is not implemented (embeddings projected in and out of a"
                    + " width other than hidden_size = " + s.integer("hidden_size") + ", as OPT-350M's)");
        }
        if (!s.bool("layer_norm_elementwise_affine")) {
            throw invalid("layer_norm_elementwise_affine", false, "is not implemented (LayerNorms without weights)");
        }
        if (s.bool("_remove_final_layer_norm")) {
            throw invalid("_remove_final_layer_norm", true, "is not implemented (no final LayerNorm)");
        }
        if (s.integer("hidden_size") % s.integer("num_attention_heads") != 0) {
            throw invalid("num_attention_heads", s.integer("num_attention_heads"),
                    "must divide hidden_size = " + s.integer("hidden_size") + ", as OPTAttention requires");
        }
        boolean bias = s.bool("enable_bias");
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads").mlpWidth("ffn_dim")
                .positions("max_position_embeddings").paddingToken("pad_token_id")
                .norm(Norm.LAYER_NORM, 1e-5).activation("activation_function").learnedPositions()
                .biases(bias, bias, bias).initializerRange("init_std").queriesScaledFirst()
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return Checkpoint.builder("model.", "decoder.layers.%d.", a.nLayers())
                .global(stored("decoder.embed_tokens.weight", EMBED, a.vocabSize(), d),
                        stored("decoder.embed_positions.weight", POS_EMBED,
                                (long) a.maxPositions() + POSITION_OFFSET, d))
                .positionsFrom(POSITION_OFFSET)
                .layer(stored("self_attn_layer_norm.weight", LN1_W, d), stored("self_attn_layer_norm.bias", LN1_B, d),
                        linear("self_attn.q_proj.weight", WQ, d, d), linear("self_attn.k_proj.weight", WK, d, d),
                        linear("self_attn.v_proj.weight", WV, d, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, d), stored("self_attn.k_proj.bias", BK, d),
                        stored("self_attn.v_proj.bias", BV, d))
                .layer(linear("self_attn.out_proj.weight", WO, d, d))
                .layerIf(a.outBias(), stored("self_attn.out_proj.bias", BO, d))
                .layer(stored("final_layer_norm.weight", LN2_W, d), stored("final_layer_norm.bias", LN2_B, d),
                        linear("fc1.weight", W_IN, mlp, d))
                .layerIf(a.mlpBias(), stored("fc1.bias", B_IN, mlp))
                .layer(linear("fc2.weight", W_OUT, d, mlp))
                .layerIf(a.mlpBias(), stored("fc2.bias", B_OUT, d))
                .global(stored("decoder.final_layer_norm.weight", LNF_W, d),
                        stored("decoder.final_layer_norm.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.fusedVector;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * GPT-BigCode ({@code transformers/models/gpt_bigcode}; StarCoder, SantaCoder, WizardCoder, OctoCoder): GPT-2's blocks
 * with {@code nn.Linear} weights and, where {@code multi_query} is true (the default), one key and value head for all
 * query heads. {@code c_attn} fuses the projections: {@code [q | k | v]} with multi-query attention, otherwise
 * {@code [q | k | v]} per head. Attention scaled iff {@code scale_attn_weights}; its softmax runs in float32 whatever
 * {@code attention_softmax_in_fp32} and {@code scale_attention_softmax_in_fp32} say, as in the eager attention of
 * {@code transformers} 5.17, which reads neither. Refused: {@code add_cross_attention}, the cross-attention of an
 * encoder-decoder, which a causal language model never runs.
 *
 * <p>Keys: {@code GPTBigCodeConfig} of {@code transformers} 5.17. Checkpoint: {@code GPTBigCodeForCausalLM}'s.
 */
final class GptBigCode extends ModelFamily {

    GptBigCode() {
        super("gpt-bigcode", "gpt_bigcode", Keys.of(List.of(
                pos("vocab_size", 50257), pos("n_positions", 1024), pos("n_embd", 768), count("n_layer", 12),
                pos("n_head", 12), posOrNull("n_inner", null), str("activation_function", "gelu_pytorch_tanh"),
                dbl("resid_pdrop", 0.1), dbl("embd_pdrop", 0.1), dbl("attn_pdrop", 0.1),
                posDbl("layer_norm_epsilon", 1e-5), dbl("initializer_range", 0.02), bool("scale_attn_weights", true),
                bool("use_cache", true), tok("bos_token_id", 50256), tok("eos_token_id", 50256),
                tok("pad_token_id", null), bool("attention_softmax_in_fp32", true),
                bool("scale_attention_softmax_in_fp32", true), bool("multi_query", true),
                bool("add_cross_attention", false), bool("tie_word_embeddings", true)),
                Map.of("hidden_size", "n_embd", "max_position_embeddings", "n_positions",
                        "num_attention_heads", "n_head", "num_hidden_layers", "n_layer")));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.bool("add_cross_attention")) {
            throw invalid("add_cross_attention", true, "is not implemented (cross-attention to an encoder's states)");
        }
        if (s.integer("n_embd") % s.integer("n_head") != 0) {
            throw invalid("n_head", s.integer("n_head"),
                    "must divide n_embd = " + s.integer("n_embd") + ", as GPTBigCodeAttention requires");
        }
        ArchitectureBuilder b = new ArchitectureBuilder(s)
                .width("n_embd").layers("n_layer").heads("n_head").positions("n_positions")
                .mlpWidthOrFourTimesWidth("n_inner")
                .norm(Norm.LAYER_NORM, "layer_norm_epsilon").activation("activation_function")
                .learnedPositions().biases(true, true, true).scaleAttention(s.bool("scale_attn_weights"));
        return (s.bool("multi_query") ? b.oneKeyValueHead("multi_query") : b).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        long dh = a.dHead();
        boolean multiQuery = a.nKvHeads() == 1 && a.nHeads() > 1;
        // multi-query: [q (d) | k (dh) | v (dh)]; otherwise each head's [q | k | v] in turn
        CheckpointTensor qkv = multiQuery ? fusedLinear("attn.c_attn.weight", d, 1, part(WQ, d), part(WK, dh),
                part(WV, dh)) : fusedLinear("attn.c_attn.weight", d, a.nHeads(), part(WQ, dh), part(WK, dh),
                part(WV, dh));
        CheckpointTensor qkvBias = multiQuery ? fusedVector("attn.c_attn.bias", 1, part(BQ, d), part(BK, dh),
                part(BV, dh)) : fusedVector("attn.c_attn.bias", a.nHeads(), part(BQ, dh), part(BK, dh), part(BV, dh));
        return Checkpoint.builder("transformer.", "h.%d.", a.nLayers())
                .global(stored("wte.weight", EMBED, a.vocabSize(), d),
                        stored("wpe.weight", POS_EMBED, a.maxPositions(), d))
                .layer(stored("ln_1.weight", LN1_W, d), stored("ln_1.bias", LN1_B, d), qkv, qkvBias,
                        linear("attn.c_proj.weight", WO, d, d), stored("attn.c_proj.bias", BO, d),
                        stored("ln_2.weight", LN2_W, d), stored("ln_2.bias", LN2_B, d),
                        linear("mlp.c_fc.weight", W_IN, mlp, d), stored("mlp.c_fc.bias", B_IN, mlp),
                        linear("mlp.c_proj.weight", W_OUT, d, mlp), stored("mlp.c_proj.bias", B_OUT, d))
                .global(stored("ln_f.weight", LNF_W, d), stored("ln_f.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

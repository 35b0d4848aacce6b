package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.ATTN_OUT_NORM_W;
import static io.arrakis.model.family.Slot.BK;
import static io.arrakis.model.family.Slot.BQ;
import static io.arrakis.model.family.Slot.BV;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.MLP_OUT_NORM_W;
import static io.arrakis.model.family.Slot.WK;
import static io.arrakis.model.family.Slot.WO;
import static io.arrakis.model.family.Slot.WQ;
import static io.arrakis.model.family.Slot.WV;
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;

/**
 * GLM-4 ({@code transformers/models/glm4}; GLM-4-9B-0414, GLM-4-32B-0414, GLM-Z1): norms before and after attention
 * and MLP, Llama's RMSNorm, biases on the query, key and value projections as {@code attention_bias} says, a fused
 * {@code gate_up_proj} as Phi-3's, and rotary embeddings on the first {@code int(d_head · partial_rotary_factor)}
 * features of each head (by default half) in the interleaved convention: frequency i turns the pair
 * {@code (2i, 2i + 1)}.
 *
 * <p>Keys: {@code Glm4Config} of {@code transformers} 5.17 ({@code partial_rotary_factor} 0.5 unless the file or its
 * {@code rope_parameters} says otherwise), plus the rotary keys 4.x files carry. Checkpoint: GLM-4's names for its
 * four norms ({@code input_layernorm}, {@code post_self_attn_layernorm}, {@code post_attention_layernorm} before the
 * MLP, {@code post_mlp_layernorm}). GLM ({@link Glm}) is the same without the norms after attention and MLP.
 */
final class Glm4 extends ModelFamily {

    Glm4() {
        super("glm4", "glm4", keys());
    }

    /** Glm4Config's keys, which GlmConfig shares. */
    static Keys keys() {
        return Keys.of(List.of(
                pos("vocab_size", 151552), pos("hidden_size", 4096), pos("intermediate_size", 13696),
                count("num_hidden_layers", 40), pos("num_attention_heads", 32), pos("num_key_value_heads", 2),
                pos("head_dim", 128), str("hidden_act", "silu"), dbl("attention_dropout", 0.0),
                pos("max_position_embeddings", 131072), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 0.00000015625), bool("use_cache", true), bool("tie_word_embeddings", false),
                tok("pad_token_id", 151329), tok("eos_token_id", null), tok("bos_token_id", null),
                bool("attention_bias", true), posDbl("rope_theta", 10000.0), posDbl("partial_rotary_factor", 0.5),
                optionalRopeScaling(), ropeParameters()),
                Map.of());
    }

    @Override
    Architecture architecture(Settings s) {
        return glmLayout(s).sublayerNorms(true, true).build();
    }

    /** GLM's attention and MLP, which GLM-4 puts between norms before and after each. */
    static ArchitectureBuilder glmLayout(Settings s) {
        boolean bias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", "partial_rotary_factor").rotaryInterleaved().biases(bias, false, false);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a);
    }

    /** GLM's tensors, and GLM-4's norms after attention and MLP where the architecture has them. */
    static Checkpoint checkpointOf(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d),
                        linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outputNorms(), stored("post_self_attn_layernorm.weight", ATTN_OUT_NORM_W, d))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d),
                        fusedLinear("mlp.gate_up_proj.weight", d, 1, part(W_GATE, mlp), part(W_IN, mlp)),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .layerIf(a.outputNorms(), stored("post_mlp_layernorm.weight", MLP_OUT_NORM_W, d))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

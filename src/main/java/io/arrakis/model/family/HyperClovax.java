package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Naver's HyperCLOVA X SEED ({@code transformers/models/hyperclovax}; HyperCLOVAX-SEED-Think-14B): {@link Granite}'s
 * blocks and multipliers, with an RMSNorm on each sublayer's output before the residual multiplier scales it
 * ({@code post_norm1}, {@code post_norm2}; Peri-Layer Normalization, as {@code use_post_norm} says), attention scores
 * scaled by {@code attention_multiplier} ({@code head_dim^-1/2} where null), and logits multiplied by
 * {@code logits_scaling} (Granite divides by it). {@code HyperCLOVAXConfig} requires {@code num_attention_heads} to
 * divide {@code hidden_size} even where {@code head_dim} is set, and so does this family.
 *
 * <p>Keys: {@code HyperCLOVAXConfig} of {@code transformers} 5.17 (Granite's, plus {@code head_dim} and
 * {@code use_post_norm}), plus the rotary keys 4.x files carry. Checkpoint: Llama's tensors with the two output norms.
 */
final class HyperClovax extends ModelFamily {

    HyperClovax() {
        super("hyperclovax", "hyperclovax", Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), bool("tie_word_embeddings", false),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), bool("mlp_bias", false),
                dbl("embedding_multiplier", 1.0), dbl("logits_scaling", 1.0), dbl("residual_multiplier", 1.0),
                dblOrNull("attention_multiplier", null), posOrNull("head_dim", null), bool("use_post_norm", true),
                posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        LlamaLayout.requireHeadsDivideWidth(s, "HyperCLOVAXConfig");
        int width = s.integer("hidden_size");
        int heads = s.integer("num_attention_heads");
        Integer headDim = s.integerOrNull("head_dim");
        Double multiplier = (Double) s.get("attention_multiplier");
        double scale = multiplier != null ? multiplier : 1 / Math.sqrt(headDim != null ? headDim : width / heads);
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .sublayerNorms(true, s.bool("use_post_norm"))
                .embeddingMultiplier(s.number("embedding_multiplier"))
                .scaleAttention(false).attentionMultiplier(scale)
                .residualMultiplier(s.number("residual_multiplier")).logitScale(s.number("logits_scaling"))
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
                .layer(stored("input_layernorm.weight", LN1_W, d),
                        linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layerIf(a.outputNorms(), stored("post_norm1.weight", ATTN_OUT_NORM_W, d))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d),
                        linear("mlp.gate_proj.weight", W_GATE, mlp, d), linear("mlp.up_proj.weight", W_IN, mlp, d),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .layerIf(a.mlpBias(), stored("mlp.gate_proj.bias", B_GATE, mlp), stored("mlp.up_proj.bias", B_IN, mlp),
                        stored("mlp.down_proj.bias", B_OUT, d))
                .layerIf(a.outputNorms(), stored("post_norm2.weight", MLP_OUT_NORM_W, d))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

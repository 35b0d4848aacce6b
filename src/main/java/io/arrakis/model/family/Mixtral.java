package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
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
 * Mixtral ({@code transformers/models/mixtral}): Mistral's attention (no biases, {@code sliding_window} on every layer
 * when not null) with a sparse mixture of experts for the MLP. The router {@code gate} scores
 * {@code num_local_experts} experts; each token goes to the {@code num_experts_per_tok} best, weighted by the
 * softmax over all experts renormalised over the chosen ones; each expert is a gated MLP
 * {@code w2(act(w1 x) * w3 x)}. {@code router_jitter_noise} acts only in training and {@code output_router_logits}
 * only adds an output, so both are accepted.
 *
 * <p>Keys: {@code MixtralConfig} of {@code transformers} 5.17 (the same defaults as 4.57.6), with the rotary base
 * as the top-level {@code rope_theta} that 4.x files carry and that 5.17 folds into {@code rope_parameters}.
 * Checkpoint: one tensor per expert, {@code block_sparse_moe.experts.{e}.w1/w2/w3}, as {@code save_pretrained}
 * writes it (5.17 fuses the experts in memory only).
 */
final class Mixtral extends ModelFamily {

    Mixtral() {
        super("mixtral", "mixtral", Keys.of(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 14336),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 8),
                posOrNull("head_dim", null), str("hidden_act", "silu"), pos("max_position_embeddings", 4096 * 32),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", 1), tok("eos_token_id", 2),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 1e6), posOrNull("sliding_window", null),
                dbl("attention_dropout", 0.0), pos("num_experts_per_tok", 2), count("num_local_experts", 8),
                bool("output_router_logits", false), dbl("router_aux_loss_coef", 0.001),
                dbl("router_jitter_noise", 0.0), optionalRopeScaling(), ropeParameters()),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).slidingWindow(s.integerOrNull("sliding_window"))
                .mixtureOfExperts(experts(s, Routing.SOFTMAX_THEN_TOP_K, true, null))
                .build();
    }

    /** The experts of {@code num_local_experts} and {@code num_experts_per_tok}, which must not exceed it. */
    static MixtureOfExperts experts(Settings s, Routing routing, boolean float32Weights,
                                    MixtureOfExperts.ClampedSwiglu activation) {
        return experts(s, "num_local_experts", routing, float32Weights, activation);
    }

    /** The experts of {@code expertsKey} and {@code num_experts_per_tok}, which must not exceed it. */
    static MixtureOfExperts experts(Settings s, String expertsKey, Routing routing, boolean float32Weights,
                                    MixtureOfExperts.ClampedSwiglu activation) {
        int experts = s.integer(expertsKey);
        int topK = s.integer("num_experts_per_tok");
        if (topK > experts) {
            throw invalid("num_experts_per_tok", topK, "exceeds " + expertsKey + " = " + experts
                    + ": a token cannot go to more experts than there are");
        }
        return new MixtureOfExperts(experts, topK, routing, float32Weights, activation);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a, List.of(), List.of());
    }

    /**
     * Mixtral's layout, with {@code attentionNorms} after the attention's projections and {@code moeExtras} after
     * the router in each block (MiniMax-M2's query/key norms and correction bias).
     */
    static Checkpoint checkpointOf(Architecture a, List<CheckpointTensor> attentionNorms,
                                   List<CheckpointTensor> moeExtras) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        Checkpoint.Builder b = Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d),
                        linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d), linear("self_attn.o_proj.weight", WO, d, q))
                .layer(attentionNorms.toArray(CheckpointTensor[]::new))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d),
                        linear("block_sparse_moe.gate.weight", W_ROUTER, a.moe().experts(), d))
                .layer(moeExtras.toArray(CheckpointTensor[]::new));
        for (int e = 0; e < a.moe().experts(); e++) {
            String expert = "block_sparse_moe.experts." + e + ".";
            b.layer(linear(expert + "w1.weight", W_GATE, mlp, d).ofExpert(e),
                    linear(expert + "w2.weight", W_OUT, d, mlp).ofExpert(e),
                    linear(expert + "w3.weight", W_IN, mlp, d).ofExpert(e));
        }
        return b.global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

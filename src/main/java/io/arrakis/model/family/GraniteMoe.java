package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedStored;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
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
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * IBM's Granite mixtures of experts ({@code transformers/models/granitemoe}; granite-3.1-1b-a400m, 3b-a800m):
 * {@link Granite}'s blocks and multipliers with a sparse mixture of {@code num_local_experts} gated experts in place
 * of the MLP, each token going to the {@code num_experts_per_tok} with the highest router logits, weighted by the
 * float32 softmax over those logits alone, rounded to the model's dtype.
 *
 * <p>Keys: {@code GraniteMoeConfig} of {@code transformers} 5.17, plus the keys 4.x files carry ({@code rope_theta},
 * {@code rope_scaling}, {@code head_dim}). Checkpoint: Llama's layout with the experts as Granite's files store them,
 * {@code block_sparse_moe.input_linear.weight [experts, 2 * intermediate, hidden]} (each expert's gate rows, then its
 * up rows), {@code block_sparse_moe.output_linear.weight [experts, hidden, intermediate]} and the router
 * {@code block_sparse_moe.router.layer.weight}.
 */
final class GraniteMoe extends ModelFamily {

    GraniteMoe() {
        super("granitemoe", "granitemoe", Keys.of(keys(), Map.of()));
    }

    /** GraniteMoeConfig's keys, which GraniteMoeSharedConfig's extend. */
    static List<Key> keys() {
        return List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), bool("tie_word_embeddings", false),
                bool("attention_bias", false), dblOrNull("attention_dropout", 0.0), dbl("embedding_multiplier", 1.0),
                dbl("logits_scaling", 1.0), dbl("residual_multiplier", 1.0), dbl("attention_multiplier", 1.0),
                count("num_local_experts", 8), pos("num_experts_per_tok", 2), boolOrNull("output_router_logits", false),
                dblOrNull("router_aux_loss_coef", 0.001), posDbl("rope_theta", 10000.0), optionalRopeScaling(),
                ropeParameters(), optionalHeadDim());
    }

    @Override
    Architecture architecture(Settings s) {
        return architectureOf(s, Mixtral.experts(s, Routing.TOP_K_THEN_FLOAT32_SOFTMAX, false, null));
    }

    /** Granite's blocks and multipliers with these experts (granitemoeshared's have a shared expert beside them). */
    static Architecture architectureOf(Settings s, MixtureOfExperts experts) {
        double logitsScaling = s.number("logits_scaling");
        if (logitsScaling == 0.0) {
            throw invalid("logits_scaling", logitsScaling, "must not be 0: the logits are divided by it");
        }
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, false)
                .embeddingMultiplier(s.number("embedding_multiplier"))
                .scaleAttention(false).attentionMultiplier(s.number("attention_multiplier"))
                .residualMultiplier(s.number("residual_multiplier")).logitScale(1.0 / logitsScaling)
                .mixtureOfExperts(experts)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a, experts(a));
    }

    /** The router's and the experts' tensors of Granite's files. */
    static List<CheckpointTensor> experts(Architecture a) {
        long d = a.dModel();
        int mlp = a.dMlp();
        int experts = a.moe().experts();
        // stored [experts, out, in], nn.Linear's order, which is these [experts, in, out] tensors swapped
        return List.of(linear("block_sparse_moe.router.layer.weight", W_ROUTER, experts, d),
                fusedStored("block_sparse_moe.input_linear.weight", new long[] {experts, d, 2L * mlp},
                        part(W_GATE, mlp), part(W_IN, mlp)).orSwapped(),
                stored("block_sparse_moe.output_linear.weight", W_OUT, experts, mlp, d).orSwapped());
    }
}

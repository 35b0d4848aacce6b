package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
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
 * Microsoft's PhiMoE ({@code transformers/models/phimoe}; Phi-3.5-MoE): Mixtral's blocks with LayerNorms (weight and
 * bias, eps {@code rms_norm_eps}), biases on the attention's projections and on the unembedding as
 * {@code attention_bias} and {@code lm_head_bias} say, {@code sliding_window} on every layer where set, and its
 * {@code num_local_experts} experts routed by the sparsemixer ({@link MixtureOfExperts.Routing#SPARSE_MIXER}, two per
 * token, in the model's dtype). Its rotary embedding is unscaled or {@code longrope} as PhiMoE's reads it
 * ({@link RopeScalings.Reading#PHIMOE}: the short factors for every length, cos and sin scaled by
 * {@code short_mscale} or {@code long_mscale}).
 *
 * <p>Keys: {@code PhimoeConfig} of {@code transformers} 5.17 (rotary base 1000000), plus the rotary keys 4.x files
 * carry. {@code num_experts_per_tok} other than 2 is refused: the sparsemixer chooses two whatever it says.
 * Checkpoint: Mixtral's layout ({@code block_sparse_moe.gate}, {@code block_sparse_moe.experts.{e}.w1/w2/w3}) with
 * the norms' biases, as the published files and {@code save_pretrained} store them.
 */
final class Phimoe extends ModelFamily {

    Phimoe() {
        super("phimoe", "phimoe", Keys.of(List.of(
                pos("vocab_size", 32064), pos("hidden_size", 4096), pos("intermediate_size", 6400),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), pos("num_key_value_heads", 8),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096 * 32), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), bool("tie_word_embeddings", false),
                posOrNull("sliding_window", null), dbl("attention_dropout", 0.0), pos("num_experts_per_tok", 2),
                count("num_local_experts", 16), bool("output_router_logits", false),
                dbl("router_aux_loss_coef", 0.001), dbl("router_jitter_noise", 0.01), dbl("input_jitter_noise", 0.0),
                bool("attention_bias", false), bool("lm_head_bias", false), optionalHeadDim(),
                posDbl("rope_theta", 1e6), optionalRopeScaling(), ropeParameters()),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.integer("num_experts_per_tok") != 2) {
            throw invalid("num_experts_per_tok", s.get("num_experts_per_tok"), "is not what PhiMoE's sparsemixer"
                    + " reads: it routes each token to two experts whatever this says; only 2 is accepted");
        }
        int experts = s.integer("num_local_experts");
        if (experts < 2) {
            throw invalid("num_local_experts", experts, "must be at least 2: the sparsemixer chooses two experts");
        }
        if (s.number("router_jitter_noise") < 0) {
            throw invalid("router_jitter_noise", s.get("router_jitter_noise"), "must be at least 0: the sparsemixer"
                    + " keeps the logits within twice it of the best in the softmax");
        }
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.LAYER_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).phimoeRope().slidingWindow(s.integerOrNull("sliding_window"))
                .biases(attentionBias, attentionBias, false).unembeddingBias(s.bool("lm_head_bias"))
                .mixtureOfExperts(MixtureOfExperts.sparseMixer(experts, s.number("router_jitter_noise")))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        List<CheckpointTensor> moe = new ArrayList<>(List.of(
                linear("block_sparse_moe.gate.weight", W_ROUTER, a.moe().experts(), d)));
        for (int e = 0; e < a.moe().experts(); e++) {
            String expert = "block_sparse_moe.experts." + e + ".";
            moe.addAll(List.of(linear(expert + "w1.weight", W_GATE, mlp, d).ofExpert(e),
                    linear(expert + "w2.weight", W_OUT, d, mlp).ofExpert(e),
                    linear(expert + "w3.weight", W_IN, mlp, d).ofExpert(e)));
        }
        return LlamaLayout.checkpoint(a, moe);
    }
}

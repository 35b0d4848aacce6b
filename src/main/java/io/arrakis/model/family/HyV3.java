package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.EXPERT_SCORE_BIAS;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * Tencent's Hy3 ({@code transformers/models/hy_v3}, {@code tencent/Hy3-preview}): Llama's pre-norm blocks with an
 * RMSNorm on each query and key head before the rotary embedding (biases on all four projections where
 * {@code attention_bias}), a dense gated MLP on the layers {@code mlp_layer_types} marks {@code "dense"} (the first
 * without it) and elsewhere {@code num_experts} experts of {@code moe_intermediate_size}: the router's logits made in
 * float32 from the token and its weight in float32, their sigmoids as scores, a token's {@code num_experts_per_tok}
 * experts chosen by score plus the float32 {@code expert_bias}, weighted by their scores over their sum and times
 * {@code router_scaling_factor}, in float32 ({@link MixtureOfExperts.Routing#SIGMOID_GROUPED} in one group);
 * {@code num_shared_experts} shared experts (one MLP of that many times the width) added as they are. The multi-token
 * prediction layer stored as the block after the last is not read.
 *
 * <p>Keys: {@code HYV3Config} of {@code transformers} 5.17 (rotary base 11158840 where no rotary object gives one),
 * plus the rotary keys files carry in place of {@code rope_parameters}; {@code enable_moe_fp32_combine} is accepted and
 * not read: adding the shared experts' output in float32 and rounding once is what a reduced-precision addition does
 * anyway. {@code mlp_bias} is refused: the published model has none, and the shared experts' biases are not
 * implemented. Checkpoint: the published names, the router {@code mlp.router.gate.weight}, {@code mlp.expert_bias}, one
 * tensor per expert and {@code mlp.shared_mlp.*}, which transformers renames when it loads them.
 */
final class HyV3 extends ModelFamily {

    HyV3() {
        super("hy-v3", "hy_v3", Keys.of(List.of(
                pos("vocab_size", 120832), pos("hidden_size", 4096), pos("intermediate_size", 13312),
                count("num_hidden_layers", 80), pos("num_attention_heads", 64), pos("num_key_value_heads", 8),
                pos("head_dim", 128), str("hidden_act", "silu"), pos("max_position_embeddings", 131072),
                dbl("initializer_range", 0.006), posDbl("rms_norm_eps", 1e-5), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", null), tok("eos_token_id", null),
                bool("tie_word_embeddings", false), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                bool("mlp_bias", false), pos("num_experts", 192), pos("num_experts_per_tok", 8),
                integer("num_shared_experts", 1), pos("moe_intermediate_size", 1536),
                posDbl("router_scaling_factor", 2.826), bool("enable_moe_fp32_combine", true),
                listOrNull("mlp_layer_types"), bool("output_router_logits", false), ropeParameters(),
                posDbl("rope_theta", 11_158_840.0), mapOrNull("rope_scaling")),
                Map.of("num_local_experts", "num_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.bool("mlp_bias")) {
            throw invalid("mlp_bias", true, "is not implemented: the shared experts' biases are not read");
        }
        int layers = s.integer("num_hidden_layers");
        List<Boolean> sparse = Glm4Moe.mlpLayerTypes(s, layers);
        if (sparse == null) {
            sparse = new ArrayList<>(layers);
            for (int i = 0; i < layers; i++) {
                sparse.add(i > 0);
            }
        }
        int experts = s.integer("num_experts");
        int topK = s.integer("num_experts_per_tok");
        if (topK > experts) {
            throw invalid("num_experts_per_tok", topK, "exceeds num_experts = " + experts
                    + ": a token cannot go to more experts than there are");
        }
        int shared = s.integer("num_shared_experts");
        if (shared < 1) {
            throw invalid("num_shared_experts", shared, "must be at least 1: with none, transformers builds a shared"
                    + " MLP of intermediate_size all the same (its width's `or` fallback), which is not implemented");
        }
        MixtureOfExperts moe = MixtureOfExperts.sigmoidGrouped(experts, topK,
                        new MixtureOfExperts.Grouped(1, 1, true, s.number("router_scaling_factor")))
                .withDenseLayers(sparse, s.integer("intermediate_size"))
                .withUngatedSharedExpert(shared * s.integer("moe_intermediate_size"));
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null).qkNorm(QkNorm.PER_HEAD)
                .biases(attentionBias, attentionBias, false).mixtureOfExperts(moe)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        MixtureOfExperts moe = a.moe();
        long dense = moe.denseWidth();
        long shared = moe.sharedWidth();
        List<CheckpointTensor> sparse = new ArrayList<>(List.of(
                linear("mlp.router.gate.weight", W_ROUTER, moe.experts(), d),
                stored("mlp.expert_bias", EXPERT_SCORE_BIAS, moe.experts())));
        sparse.addAll(LlamaLayout.experts(a, "mlp.experts."));
        if (moe.hasSharedExpert()) {
            sparse.addAll(LlamaLayout.sharedExpert("mlp.shared_mlp.", shared, d));
        }
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layer(Glm4Moe.attentionTensors(a).toArray(CheckpointTensor[]::new))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d))
                .layerWhere(l -> !moe.sparse(l), LlamaLayout.denseMlp(dense, d))
                .layerWhere(moe::sparse, sparse.toArray(CheckpointTensor[]::new))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .unread("model.layers." + a.nLayers() + ".")
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.RotaryPrecision;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * Cohere's Command A Plus ({@code transformers/models/cohere2_moe}): {@link Cohere2}'s parallel blocks (one norm,
 * attention and MLP both reading it; interleaved rotary embeddings on the sliding-window layers, none on the full
 * ones; the logit scale) whose MLP is a mixture of {@code num_experts} experts of width {@code intermediate_size}: each
 * token goes to its {@code num_experts_per_tok} largest logits, weighted by their float32 softmax
 * ({@code expert_selection_fn "softmax"}) or their sigmoids, divided by their sum where {@code norm_topk_prob}
 * ({@code "sigmoid"}), rounded to the model's dtype; {@code num_shared_experts} shared experts of
 * {@code num_shared_experts × intermediate_size} join by {@code shared_expert_combination_strategy}, averaged or
 * summed. Dense layers ({@code mlp_layer_types}, or the first {@code first_k_dense_replace}) have a gated MLP of
 * {@code prefix_dense_intermediate_size} (else {@code intermediate_size}) and, where
 * {@code prefix_dense_sliding_window_pattern} is 1, rotate whatever their attention. The norm is Cohere's LayerNorm
 * without bias, or an RMSNorm of {@code rms_norm_eps} where that is set.
 *
 * <p>Keys: {@code Cohere2MoeConfig} of {@code transformers} 5.17 (rotary base 10000), plus
 * {@code first_k_dense_replace}, which it reads as an argument, and the rotary keys. Layers by
 * {@code layer_types}, else the first {@code first_k_dense_replace} by {@code prefix_dense_sliding_window_pattern}
 * and the others by {@code sliding_window_pattern} (every such layer full, the rest sliding), as the class fills them
 * in. Checkpoint: Llama's layout with one norm per block, the router {@code mlp.gate.weight}, one tensor per expert
 * and {@code mlp.shared_experts.*}, as {@code save_pretrained} stores them.
 */
final class Cohere2Moe extends ModelFamily {

    Cohere2Moe() {
        super("cohere2-moe", "cohere2_moe", Keys.of(List.of(
                pos("vocab_size", 256000), pos("hidden_size", 8192), pos("intermediate_size", 22528),
                dbl("logit_scale", 0.0625), count("num_hidden_layers", 40), pos("num_attention_heads", 64),
                posOrNull("num_key_value_heads", null), pos("head_dim", 128), str("hidden_act", "silu"),
                pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02), posDbl("layer_norm_eps", 1e-5),
                bool("use_cache", true), tok("pad_token_id", 0), tok("bos_token_id", 5), tok("eos_token_id", 255001),
                bool("tie_word_embeddings", true), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), posOrNull("sliding_window", 4096),
                pos("num_experts_per_tok", 2), count("num_experts", 8), integer("num_shared_experts", 0),
                str("shared_expert_combination_strategy", "average"), str("expert_selection_fn", "softmax"),
                listOrNull("layer_types"), listOrNull("mlp_layer_types"),
                pos("prefix_dense_sliding_window_pattern", 1), bool("norm_topk_prob", true),
                posOrNull("prefix_dense_intermediate_size", null), dblOrNull("rms_norm_eps", null),
                pos("sliding_window_pattern", 4), integer("first_k_dense_replace", 0).optional(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        Integer window = s.integerOrNull("sliding_window");
        if (window == null) {
            throw invalid("sliding_window", null, "must be set: Cohere2MoeModel builds a sliding-window mask for"
                    + " every pass, which fails without one");
        }
        int firstDense = s.has("first_k_dense_replace") ? s.integer("first_k_dense_replace") : 0;
        List<LayerAttention> attention = layerTypes(s, layers, firstDense);
        List<Boolean> sparse = Glm4Moe.mlpLayerTypes(s, layers);
        if (sparse == null) {
            sparse = new ArrayList<>(layers);
            for (int i = 0; i < layers; i++) {
                sparse.add(i >= firstDense);
            }
        }
        boolean forceRope = s.integer("prefix_dense_sliding_window_pattern") == 1;
        List<Boolean> rotates = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            rotates.add(attention.get(i) == LayerAttention.SLIDING || !sparse.get(i) && forceRope);
        }
        Integer denseWidth = s.integerOrNull("prefix_dense_intermediate_size");
        MixtureOfExperts moe = mixture(s).withDenseLayers(sparse,
                denseWidth != null ? denseWidth : s.integer("intermediate_size"));
        int shared = s.integer("num_shared_experts");
        if (shared > 0) {
            int width = shared * s.integer("intermediate_size");
            moe = switch (s.string("shared_expert_combination_strategy")) {
                case "average" -> moe.withAveragedSharedExpert(width);
                case "sum" -> moe.withUngatedSharedExpert(width);
                default -> throw invalid("shared_expert_combination_strategy",
                        s.get("shared_expert_combination_strategy"), "can only be \"average\" or \"sum\"");
            };
        }
        Double rmsEps = s.get("rms_norm_eps") == null ? null : s.number("rms_norm_eps");
        boolean attentionBias = s.bool("attention_bias");
        ArchitectureBuilder b = LlamaLayout.standardKeys(s).headDim("head_dim");
        b = rmsEps != null ? b.norm(Norm.RMS_NORM, "rms_norm_eps") : b.norm(Norm.LAYER_NORM, "layer_norm_eps");
        return b.rotary("rope_theta", null).rotaryInterleaved().rotaryPrecision(RotaryPrecision.FLOAT32_ROTATION)
                .rotatingLayers(rotates).parallelResidual(true).sharedNorm(true)
                .biases(attentionBias, attentionBias, false).logitScale(s.number("logit_scale"))
                .slidingWindow(window).layerAttention(attention).mixtureOfExperts(moe)
                .build();
    }

    /** The routed experts as {@code expert_selection_fn} and {@code norm_topk_prob} say. */
    private static MixtureOfExperts mixture(Settings s) {
        Routing routing = switch (s.string("expert_selection_fn")) {
            case "softmax" -> Routing.TOP_K_THEN_FLOAT32_SOFTMAX;
            case "sigmoid" -> s.bool("norm_topk_prob") ? Routing.TOP_K_THEN_SIGMOID_NORMALIZED
                    : Routing.TOP_K_THEN_SIGMOID;
            default -> throw invalid("expert_selection_fn", s.get("expert_selection_fn"),
                    "can only be \"softmax\" or \"sigmoid\"");
        };
        return Mixtral.experts(s, "num_experts", routing, false, null);
    }

    /**
     * {@code layer_types}, or as Cohere2MoeConfig fills them in: the first {@code firstDense} layers full where their
     * number is a multiple of {@code prefix_dense_sliding_window_pattern}, the others where theirs, counted from the
     * first after them, is a multiple of {@code sliding_window_pattern}; sliding otherwise.
     */
    private static List<LayerAttention> layerTypes(Settings s, int layers, int firstDense) {
        List<LayerAttention> given = LayerTypes.read(s, layers);
        if (given != null) {
            return given;
        }
        if (firstDense < 0 || firstDense > layers) {
            throw invalid("first_k_dense_replace", firstDense, "must be from 0 to num_hidden_layers = " + layers
                    + ": Cohere2MoeConfig fills in that many prefix layer types before the others, and refuses the"
                    + " list of another length that it gives");
        }
        int prefix = s.integer("prefix_dense_sliding_window_pattern");
        int pattern = s.integer("sliding_window_pattern");
        List<LayerAttention> types = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            int number = i < firstDense ? i + 1 : i - firstDense + 1;
            int period = i < firstDense ? prefix : pattern;
            types.add(number % period != 0 ? LayerAttention.SLIDING : LayerAttention.FULL);
        }
        return types;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        MixtureOfExperts moe = a.moe();
        long shared = moe.sharedWidth();
        List<CheckpointTensor> sparse = new ArrayList<>(List.of(linear("mlp.gate.weight", W_ROUTER, moe.experts(), d)));
        sparse.addAll(LlamaLayout.experts(a, "mlp.experts."));
        if (moe.hasSharedExpert()) {
            sparse.addAll(LlamaLayout.sharedExpert("mlp.shared_experts.", shared, d));
        }
        long dense = moe.denseWidth();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layer(Glm4Moe.attentionTensors(a).toArray(CheckpointTensor[]::new))
                .layerWhere(l -> !moe.sparse(l), LlamaLayout.denseMlp(dense, d))
                .layerWhere(moe::sparse, sparse.toArray(CheckpointTensor[]::new))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

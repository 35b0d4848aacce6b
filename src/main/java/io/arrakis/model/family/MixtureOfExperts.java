package io.arrakis.model.family;

import java.util.List;

/**
 * A sparse mixture-of-experts MLP in place of the dense one: a linear router gives each token one logit per expert,
 * the token goes to the {@code topK} experts its {@link Routing} ranks highest, and the MLP's output for it is the sum
 * of those experts' outputs, each multiplied by its routing weight, joined with a shared expert's where there is one
 * ({@link Shared}). An expert is a gated MLP.
 *
 * @param experts how many experts each layer has ({@code num_local_experts} or {@code num_experts})
 * @param topK how many experts each token goes to ({@code num_experts_per_tok}), at most {@code experts}
 * @param routing how the routing weights follow from the router's logits
 * @param float32Weights whether the routing weights stay float32 whatever the model's dtype (mixtral), rather than
 *     rounded to it before they multiply the experts' outputs
 * @param sharedWidth the width of a shared expert every token goes to beside its routed ones; 0 for none
 * @param clampedSwiglu gpt-oss's expert activation, or null for the family's gated activation
 *     {@code act(gate) * up}
 * @param shared how a shared expert's output joins the routed experts' ({@link Shared})
 * @param grouped the settings of the grouped routings and of a scaled {@link Routing#SIGMOID_BIASED}, null for the
 *     other kinds
 * @param sparseLayers per layer, whether its MLP is this mixture rather than a dense gated MLP of
 *     {@code denseWidth} ({@code first_k_dense_replace}, {@code mlp_layer_types}); null: every layer's is
 * @param denseWidth the width of the dense layers' MLP; 0 where every layer is sparse
 * @param float32Router whether the router's weight is held in float32 whatever the model's dtype, as loaded from the
 *     checkpoint, and makes its logits in float32 from the token in float32 (HunYuan-MoE's {@code gate.wg}, ERNIE
 *     4.5's {@code gate.weight})
 * @param normMin the least sum {@link Routing#SOFTMAX_BIASED} divides the chosen scores by ({@code moe_norm_min}); 0
 *     for the other routings
 * @param jitterEps {@link Routing#SPARSE_MIXER}'s {@code router_jitter_noise}; 0 for the other routings
 */
public record MixtureOfExperts(int experts, int topK, Routing routing, boolean float32Weights, int sharedWidth,
        ClampedSwiglu clampedSwiglu, Shared shared, Grouped grouped, List<Boolean> sparseLayers,
        int denseWidth, boolean float32Router, double normMin, double jitterEps) {

    /** How a shared expert's output joins the routed experts' sum. */
    public enum Shared {
        /** Added as it is (DeepSeek-V3's {@code shared_experts}). */
        ADDED,
        /** Weighted by the sigmoid of a linear gate on the token first (qwen2-moe's {@code shared_expert_gate}). */
        GATED,
        /** Averaged with it, {@code (routed + shared) / 2} (Cohere2-MoE's {@code "average"}). */
        AVERAGED,
        /**
         * Gemma 4's: the shared expert is the block's MLP on its own input norm; the routed experts read the residual
         * stream through a norm of theirs ({@code pre_feedforward_layernorm_2}); each output is normalised
         * ({@code post_feedforward_layernorm_1}, {@code _2}) before the two are added. Routed as
         * {@link Routing#SOFTMAX_THEN_TOP_K_SCALED}.
         */
        NORMED
    }

    /** How the routing weights of a token's chosen experts are computed. */
    public enum Routing {
        /**
         * Mixtral, Qwen3-VL-MoE, and Qwen3-MoE, OLMoE and Qwen2-MoE with {@code norm_topk_prob}: the softmax over all
         * experts' logits in float32, its {@code topK} largest values, divided by their sum.
         */
        SOFTMAX_THEN_TOP_K,
        /**
         * Qwen3-MoE, OLMoE and Qwen2-MoE without {@code norm_topk_prob}: the softmax over all experts' logits in
         * float32 and its {@code topK} largest values as they are (summing to less than 1).
         */
        SOFTMAX_THEN_TOP_K_AS_IS,
        /**
         * Gemma 4's: the router reads the residual stream before the MLP, RMS-normalised without a weight, times its
         * scale ({@code router.scale}) and {@code d_model^-1/2}; {@link #SOFTMAX_THEN_TOP_K}'s weights, each times
         * its expert's scale ({@code per_expert_scale}). They stay float32. With a {@link Shared#NORMED} shared
         * expert only.
         */
        SOFTMAX_THEN_TOP_K_SCALED,
        /** gpt-oss: the softmax over the {@code topK} largest logits only, in the logits' dtype. */
        TOP_K_THEN_SOFTMAX,
        /** granitemoe: the softmax over the {@code topK} largest logits only, in float32. */
        TOP_K_THEN_FLOAT32_SOFTMAX,
        /**
         * DeepSeek-V3's, and GLM-4.5's: the router's logits made in float32 from the token and the router's weight
         * in float32, their sigmoids as scores; a token chooses its {@code topK} experts by score plus the expert's
         * correction bias, among the experts of the {@link Grouped#topGroups} groups whose two best biased scores sum
         * highest; its weights are the chosen experts' scores without the bias, divided by their sum (plus
         * {@code 1e-20}) where {@link Grouped#normalized}, times {@link Grouped#routedScale}. They stay float32.
         */
        SIGMOID_GROUPED,
        /**
         * MiniMax-M2's: the router's logits in the model's dtype, their sigmoids in float32 as scores; a token chooses
         * its {@code topK} experts by score plus the expert's correction bias, rounded to the model's dtype; its
         * weights are the chosen experts' scores without the bias, divided by their sum. They stay float32. With
         * {@link Grouped} settings (AfMoE's, one group), divided by their sum plus {@code 1e-20} where
         * {@link Grouped#normalized}, times {@link Grouped#routedScale}.
         */
        SIGMOID_BIASED,
        /**
         * LFM2-MoE's: the router's logits and their sigmoids in the model's dtype as scores; a token chooses its
         * {@code topK} experts by score plus the expert's float32 bias, best first; its weights are the chosen experts'
         * scores without the bias, in the model's dtype, divided by their sum plus {@code 1e-6} where
         * {@link Grouped#normalized}, times {@link Grouped#routedScale}. One group.
         */
        SIGMOID_BIASED_IN_MODEL_DTYPE,
        /**
         * DeepSeek-V2's: the router's logits made in float32 from the token and the router's weight in float32, their
         * softmax over all experts as scores; a token chooses its {@code topK} experts by score among the experts of
         * the {@link Grouped#topGroups} groups whose best score is highest ({@code group_limited_greedy}; one group:
         * {@code greedy}); its weights are the chosen scores times {@link Grouped#routedScale}, never normalised. They
         * stay float32.
         */
        SOFTMAX_GROUPED,
        /**
         * Mistral 4's: the router's logits and their softmax over all experts in the model's dtype as scores; a token
         * chooses its {@code topK} experts by score among the experts of the {@link Grouped#topGroups} groups whose
         * two best scores sum highest (the sums rounded to the model's dtype); its weights are the chosen scores,
         * divided by their sum (plus {@code 1e-20}) where {@link Grouped#normalized}, times
         * {@link Grouped#routedScale}, each step rounded to the model's dtype.
         */
        SOFTMAX_GROUPED_IN_MODEL_DTYPE,
        /**
         * ERNIE 4.5's: the router's logits in float32 ({@link MixtureOfExperts#float32Router}), their softmax as
         * scores; a token chooses its {@code topK} experts by score plus the expert's float32 correction bias; its
         * weights are the chosen scores without the bias, divided by their sum or by {@link MixtureOfExperts#normMin}
         * where the sum is smaller, then rounded to the model's dtype.
         */
        SOFTMAX_BIASED,
        /**
         * Cohere2-MoE's {@code "sigmoid"}: the sigmoids of the {@code topK} largest logits, in the logits' dtype, as
         * they are.
         */
        TOP_K_THEN_SIGMOID,
        /** {@link #TOP_K_THEN_SIGMOID} divided by their sum ({@code norm_topk_prob}), in the logits' dtype. */
        TOP_K_THEN_SIGMOID_NORMALIZED,
        /**
         * Llama 4's: {@link #TOP_K_THEN_SIGMOID}'s weights, rounded to the model's dtype, multiplying each chosen
         * expert's input rather than its output.
         */
        TOP_K_THEN_SIGMOID_ON_INPUTS,
        /**
         * PhiMoE's sparsemixer, as it routes outside training, in the logits' dtype: the first expert is the one with
         * the largest logit, weighted by its share of the softmax over the logits within {@code 2 · jitterEps} of it
         * (relative to the larger of the logit's magnitude and the largest); the second likewise among the others,
         * the first left out of its softmax. Two experts, whatever {@code topK} the file gives.
         */
        SPARSE_MIXER
    }

    /**
     * The settings of the grouped routings, and of AfMoE's scaled {@link Routing#SIGMOID_BIASED} routing.
     *
     * @param groups how many groups of consecutive experts there are ({@code n_group}), a divisor of the experts
     * @param topGroups how many groups a token's experts may come from ({@code topk_group})
     * @param normalized whether the chosen scores are divided by their sum ({@code norm_topk_prob})
     * @param routedScale the factor on the weights ({@code routed_scaling_factor})
     */
    public record Grouped(int groups, int topGroups, boolean normalized, double routedScale) {
    }

    /**
     * gpt-oss's expert activation: with {@code gate} clamped to at most {@code limit} and {@code up} to
     * {@code [-limit, limit]}, {@code (up + 1) * gate * sigmoid(alpha * gate)}.
     */
    public record ClampedSwiglu(double alpha, double limit) {
    }

    public MixtureOfExperts {
        if (experts < 1 || topK < 1 || topK > experts) {
            throw new IllegalArgumentException("a mixture of experts needs 1 <= topK <= experts, got topK " + topK
                    + " of " + experts);
        }
        if (sharedWidth < 0) {
            throw new IllegalArgumentException("a shared expert's width must be >= 0, got " + sharedWidth);
        }
        boolean groupedRouting = routing == Routing.SIGMOID_GROUPED || routing == Routing.SOFTMAX_GROUPED
                || routing == Routing.SOFTMAX_GROUPED_IN_MODEL_DTYPE;
        if (routing == Routing.SIGMOID_BIASED ? grouped != null && grouped.groups() != 1
                : routing == Routing.SIGMOID_BIASED_IN_MODEL_DTYPE ? grouped == null || grouped.groups() != 1
                : groupedRouting != (grouped != null)) {
            throw new IllegalArgumentException("grouped settings go with the grouped routings only, with"
                    + " SIGMOID_BIASED in one group, and SIGMOID_BIASED_IN_MODEL_DTYPE needs them in one group");
        }
        if ((routing == Routing.SOFTMAX_THEN_TOP_K_SCALED) != (shared == Shared.NORMED && sharedWidth > 0)) {
            throw new IllegalArgumentException("Gemma 4's scaled routing and its normalised shared expert go together");
        }
        sparseLayers = sparseLayers == null ? null : List.copyOf(sparseLayers);
    }

    /** Experts routed as {@code routing} says, without a shared expert, every layer sparse. */
    public MixtureOfExperts(int experts, int topK, Routing routing, boolean float32Weights,
                            ClampedSwiglu clampedSwiglu) {
        this(experts, topK, routing, float32Weights, 0, clampedSwiglu, Shared.ADDED, null, null, 0, false, 0, 0);
    }

    /** Experts routed as {@link Routing#SIGMOID_GROUPED} with {@code grouped}'s settings, every layer sparse. */
    public static MixtureOfExperts sigmoidGrouped(int experts, int topK, Grouped grouped) {
        return new MixtureOfExperts(experts, topK, Routing.SIGMOID_GROUPED, true, 0, null, Shared.ADDED, grouped, null,
                0, false, 0, 0);
    }

    /** Experts routed as {@link Routing#SOFTMAX_GROUPED} with {@code grouped}'s settings, every layer sparse. */
    public static MixtureOfExperts softmaxGrouped(int experts, int topK, Grouped grouped) {
        return new MixtureOfExperts(experts, topK, Routing.SOFTMAX_GROUPED, true, 0, null, Shared.ADDED, grouped, null,
                0, false, 0, 0);
    }

    /** Experts routed as {@link Routing#SOFTMAX_GROUPED_IN_MODEL_DTYPE} with {@code grouped}'s settings. */
    public static MixtureOfExperts softmaxGroupedInModelDtype(int experts, int topK, Grouped grouped) {
        return new MixtureOfExperts(experts, topK, Routing.SOFTMAX_GROUPED_IN_MODEL_DTYPE, false, 0, null,
                Shared.ADDED, grouped, null, 0, false, 0, 0);
    }

    /**
     * Whether the router's logits are made in float32 whatever the model's dtype (the grouped routings but
     * Mistral 4's, from a float32 copy of the model's router; a {@link #float32Router}).
     */
    public boolean float32Logits() {
        return float32Router || grouped != null && routing != Routing.SOFTMAX_GROUPED_IN_MODEL_DTYPE
                && routing != Routing.SIGMOID_BIASED && routing != Routing.SIGMOID_BIASED_IN_MODEL_DTYPE;
    }

    /**
     * AfMoE's experts, routed as {@link Routing#SIGMOID_BIASED} with the weights divided by their sum (plus
     * {@code 1e-20}) and times {@code routedScale}, kept in float32; every layer sparse.
     */
    public static MixtureOfExperts sigmoidBiasedScaled(int experts, int topK, double routedScale) {
        return new MixtureOfExperts(experts, topK, Routing.SIGMOID_BIASED, true, 0, null, Shared.ADDED,
                new Grouped(1, 1, true, routedScale), null, 0, false, 0, 0);
    }

    /** These experts with a shared expert of {@code width} beside them, its output weighted by a sigmoid gate. */
    public MixtureOfExperts withSharedExpert(int width) {
        return new MixtureOfExperts(experts, topK, routing, float32Weights, width, clampedSwiglu, Shared.GATED,
                grouped, sparseLayers, denseWidth, float32Router, normMin, jitterEps);
    }

    /** These experts with a shared expert of {@code width} beside them, its output added as it is. */
    public MixtureOfExperts withUngatedSharedExpert(int width) {
        return new MixtureOfExperts(experts, topK, routing, float32Weights, width, clampedSwiglu, Shared.ADDED,
                grouped, sparseLayers, denseWidth, float32Router, normMin, jitterEps);
    }

    /** These experts with a shared expert of {@code width} beside them, its output and theirs averaged. */
    public MixtureOfExperts withAveragedSharedExpert(int width) {
        return new MixtureOfExperts(experts, topK, routing, float32Weights, width, clampedSwiglu, Shared.AVERAGED,
                grouped, sparseLayers, denseWidth, float32Router, normMin, jitterEps);
    }

    /** Whether a shared expert's output is weighted by a sigmoid gate ({@link Shared#GATED}). */
    public boolean sharedGated() {
        return shared == Shared.GATED;
    }

    /** These experts on the layers {@code sparse} marks, a dense gated MLP of {@code width} on the others. */
    public MixtureOfExperts withDenseLayers(List<Boolean> sparse, int width) {
        return new MixtureOfExperts(experts, topK, routing, float32Weights, sharedWidth, clampedSwiglu, shared,
                grouped, sparse, width, float32Router, normMin, jitterEps);
    }

    /** These experts with their router's weight held in float32 ({@link #float32Router}). */
    public MixtureOfExperts withFloat32Router() {
        return new MixtureOfExperts(experts, topK, routing, float32Weights, sharedWidth, clampedSwiglu, shared,
                grouped, sparseLayers, denseWidth, true, normMin, jitterEps);
    }

    /**
     * ERNIE 4.5's experts, routed as {@link Routing#SOFTMAX_BIASED} by a float32 router, dividing by at least
     * {@code normMin}, every layer sparse.
     */
    public static MixtureOfExperts softmaxBiased(int experts, int topK, double normMin) {
        return new MixtureOfExperts(experts, topK, Routing.SOFTMAX_BIASED, false, 0, null, Shared.ADDED, null, null, 0,
                true, normMin, 0);
    }

    /**
     * Gemma 4's experts beside the block's MLP of {@code mlpWidth} as their shared expert ({@link Shared#NORMED}),
     * routed as {@link Routing#SOFTMAX_THEN_TOP_K_SCALED}, every layer sparse.
     */
    public static MixtureOfExperts besideNormedMlp(int experts, int topK, int mlpWidth) {
        return new MixtureOfExperts(experts, topK, Routing.SOFTMAX_THEN_TOP_K_SCALED, true, mlpWidth, null,
                Shared.NORMED, null, null, 0, false, 0, 0);
    }

    /** PhiMoE's experts, routed as {@link Routing#SPARSE_MIXER} with {@code jitterEps}, two per token. */
    public static MixtureOfExperts sparseMixer(int experts, double jitterEps) {
        return new MixtureOfExperts(experts, 2, Routing.SPARSE_MIXER, false, 0, null, Shared.ADDED, null, null, 0,
                false, 0, jitterEps);
    }

    /** Whether layer {@code layer}'s MLP is this mixture. */
    public boolean sparse(int layer) {
        return sparseLayers == null || sparseLayers.get(layer);
    }

    /** Whether a shared expert runs beside the routed ones. */
    public boolean hasSharedExpert() {
        return sharedWidth > 0;
    }
}

package io.arrakis.model.family;

/**
 * A sparse mixture-of-experts MLP in place of the dense one: a linear router gives each token one logit per expert,
 * the token goes to the {@code topK} experts with the highest logits, and the MLP's output for it is the sum of
 * those experts' outputs, each multiplied by its routing weight. An expert is a gated MLP.
 *
 * @param experts how many experts each layer has ({@code num_local_experts} or {@code num_experts})
 * @param topK how many experts each token goes to ({@code num_experts_per_tok}), at most {@code experts}
 * @param routing how the routing weights follow from the router's logits
 * @param float32Weights whether the routing weights stay float32 whatever the model's dtype (mixtral), rather than
 *     rounded to it before they multiply the experts' outputs
 * @param sharedWidth the width of a shared expert every token goes to beside its routed ones, its output weighted
 *     by the sigmoid of a linear gate (qwen2-moe's {@code shared_expert}); 0 for none
 * @param clampedSwiglu gpt-oss's expert activation, or null for the family's gated activation
 *     {@code act(gate) * up}
 */
public record MixtureOfExperts(int experts, int topK, Routing routing, boolean float32Weights, int sharedWidth,
        ClampedSwiglu clampedSwiglu) {

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
        /** gpt-oss: the softmax over the {@code topK} largest logits only, in the logits' dtype. */
        TOP_K_THEN_SOFTMAX,
        /** granitemoe: the softmax over the {@code topK} largest logits only, in float32. */
        TOP_K_THEN_FLOAT32_SOFTMAX
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
    }

    /** These experts with a shared expert of {@code width} beside them. */
    public MixtureOfExperts withSharedExpert(int width) {
        return new MixtureOfExperts(experts, topK, routing, float32Weights, width, clampedSwiglu);
    }

    /** Whether a shared expert runs beside the routed ones. */
    public boolean hasSharedExpert() {
        return sharedWidth > 0;
    }
}

package io.arrakis.model.family;

/**
 * The places of a model's weights that checkpoint tensors fill, in the layout the forward pass multiplies with
 * ({@code x @ W}); the names follow {@code io.arrakis.model.Weights}. In a mixture of experts the MLP slots
 * ({@code W_IN}, {@code W_GATE}, {@code W_OUT} and their biases) hold every expert's, with a leading expert dimension.
 */
public enum Slot {
    EMBED(false, Init.NORMAL), POS_EMBED(false, Init.NORMAL), LNF_W(false, Init.NORM), LNF_B(false, Init.ZERO),
    UNEMBED(false, Init.NORMAL), UNEMBED_BIAS(false, Init.ZERO),
    LN1_W(true, Init.NORM), LN1_B(true, Init.ZERO), LN2_W(true, Init.NORM), LN2_B(true, Init.ZERO),
    WQ(true, Init.NORMAL), BQ(true, Init.ZERO), WK(true, Init.NORMAL), BK(true, Init.ZERO),
    WV(true, Init.NORMAL), BV(true, Init.ZERO), WO(true, Init.NORMAL), BO(true, Init.ZERO),
    W_IN(true, Init.NORMAL), B_IN(true, Init.ZERO), W_GATE(true, Init.NORMAL), B_GATE(true, Init.ZERO),
    W_OUT(true, Init.NORMAL), B_OUT(true, Init.ZERO),
    /** The weight of the queries' norm ({@link Architecture.QkNorm}) */
    Q_NORM(true, Init.NORM),
    /** The weight of the keys' norm, as {@link #Q_NORM} */
    K_NORM(true, Init.NORM),
    /** The weight of the norm of the attention's output before the residual sum ({@link Architecture#outputNorms()}) */
    ATTN_OUT_NORM_W(true, Init.NORM),
    /** The weight of the norm of the MLP's output before the residual sum */
    MLP_OUT_NORM_W(true, Init.NORM),
    /** a mixture of experts' router {@code [d_model, experts]} */
    W_ROUTER(true, Init.NORMAL),
    /** the router's bias {@code [experts]}; gpt-oss draws it like a weight */
    B_ROUTER(true, Init.NORMAL),
    /** a learned sink logit per head {@code [heads]} (gpt-oss) */
    SINKS(true, Init.NORMAL),
    /**
     * the attention's output gate {@code [d_model, heads·d_head]}: each head's {@code z} is multiplied by the sigmoid
     * of its slice of {@code x @ W} before the output projection (afmoe's {@code gate_proj})
     */
    W_ATTN_GATE(true, Init.NORMAL),
    /** the gate projection {@code [d_model, d_shared]} of a shared expert beside the routed ones (qwen2-moe) */
    SHARED_W_GATE(true, Init.NORMAL),
    /** the shared expert's up projection {@code [d_model, d_shared]} */
    SHARED_W_IN(true, Init.NORMAL),
    /** the shared expert's down projection {@code [d_shared, d_model]} */
    SHARED_W_OUT(true, Init.NORMAL),
    /** the logit of the sigmoid that weights the shared expert's output, {@code [d_model, 1]} */
    SHARED_EXPERT_GATE(true, Init.NORMAL),
    /**
     * the per-expert bias {@code [experts]} added to the router's scores to choose experts, not to weight them
     * ({@code e_score_correction_bias}); held in float32 in every model, as Hugging Face keeps DeepSeek-V3's and
     * GLM-4.5's (MiniMax-M2's routing rounds it to the model's dtype where it uses it, as Hugging Face holds it there)
     */
    EXPERT_SCORE_BIAS(true, Init.ZERO),
    /**
     * xIELU's positive-side parameter {@code [1]} (Apertus's {@code mlp.act_fn.alpha_p}): the factor on {@code x^2}
     * is its softplus; it starts as {@code log(expm1(0.8))}
     */
    XIELU_ALPHA_P(true, Init.CONSTANT, Math.log(Math.expm1(0.8))),
    /**
     * xIELU's negative-side parameter {@code [1]}: the factor is {@code beta} plus its softplus; it starts as
     * {@code log(expm1(0.8 - 0.5))}
     */
    XIELU_ALPHA_N(true, Init.CONSTANT, Math.log(Math.expm1(0.8 - 0.5))),
    /** xIELU's linear factor {@code beta}, a 0-d buffer, 0.5 */
    XIELU_BETA(true, Init.CONSTANT, 0.5),
    /** xIELU's {@code eps}, a 0-d buffer capping the negative side's input, -1e-6 */
    XIELU_EPS(true, Init.CONSTANT, -1e-6),
    /** latent attention's query down-projection {@code [d_model, q_lora_rank]} ({@code q_a_proj}) */
    W_Q_A(true, Init.NORMAL),
    /** its bias {@code [q_lora_rank]} */
    B_Q_A(true, Init.ZERO),
    /** the weight of the RMSNorm of the queries' latent {@code [q_lora_rank]} ({@code q_a_layernorm}) */
    Q_A_NORM(true, Init.NORM),
    /** the queries' up-projection {@code [q_lora_rank, heads·(nope + rope)]} ({@code q_b_proj}) */
    W_Q_B(true, Init.NORMAL),
    /**
     * the keys' and values' down-projection with the shared rotated key, {@code [d_model, kv_lora_rank + rope]}
     * ({@code kv_a_proj_with_mqa})
     */
    W_KV_A(true, Init.NORMAL),
    /** its bias {@code [kv_lora_rank + rope]} */
    B_KV_A(true, Init.ZERO),
    /** the weight of the RMSNorm of the keys' and values' latent {@code [kv_lora_rank]} ({@code kv_a_layernorm}) */
    KV_A_NORM(true, Init.NORM),
    /** the keys' and values' up-projection {@code [kv_lora_rank, heads·(nope + v)]} ({@code kv_b_proj}) */
    W_KV_B(true, Init.NORMAL),
    /** linear attention's ({@link LinearAttention}) query projection {@code [d_model, key_heads·key_dim]} */
    LIN_W_Q(true, Init.NORMAL),
    /** linear attention's key projection {@code [d_model, key_heads·key_dim]} */
    LIN_W_K(true, Init.NORMAL),
    /** linear attention's value projection {@code [d_model, value_heads·value_dim]} */
    LIN_W_V(true, Init.NORMAL),
    /** linear attention's output gate {@code [d_model, value_heads·value_dim]} ({@code in_proj_z}) */
    LIN_W_Z(true, Init.NORMAL),
    /** linear attention's projection to each value head's {@code beta} {@code [d_model, value_heads]} */
    LIN_W_B(true, Init.NORMAL),
    /** linear attention's projection to each value head's decay rate {@code [d_model, value_heads]} */
    LIN_W_A(true, Init.NORMAL),
    /** linear attention's depthwise causal convolution {@code [channels, 1, kernel]} */
    LIN_CONV(true, Init.NORMAL),
    /** linear attention's {@code dt_bias} {@code [value_heads]}, added before the softplus; starts at 1 */
    LIN_DT_BIAS(true, Init.CONSTANT, 1.0),
    /**
     * linear attention's {@code A_log} {@code [value_heads]}: each step decays the state by
     * {@code exp(−exp(A_log) · softplus(a + dt_bias))}; starts at 0 (transformers draws {@code log U(0.01, 16)})
     */
    LIN_A_LOG(true, Init.CONSTANT, 0.0),
    /** the weight {@code [value_dim]} of linear attention's gated RMSNorm, which multiplies by it as it is */
    LIN_NORM(true, Init.CONSTANT, 1.0),
    /** linear attention's output projection {@code [value_heads·value_dim, d_model]} ({@code out_proj}) */
    LIN_W_OUT(true, Init.NORMAL),
    /**
     * a short convolution's ({@link ShortConvolution}) input projection {@code [d_model, 3·d_model]}: its gates
     * {@code B}, {@code C} and {@code x} side by side ({@code in_proj})
     */
    CONV_W_IN(true, Init.NORMAL),
    /** its bias {@code [3·d_model]} */
    CONV_B_IN(true, Init.ZERO),
    /** the short convolution's depthwise causal kernel {@code [d_model, 1, kernel]} */
    CONV_KERNEL(true, Init.NORMAL),
    /** its bias {@code [d_model]} */
    CONV_KERNEL_BIAS(true, Init.ZERO),
    /** the short convolution's output projection {@code [d_model, d_model]} ({@code out_proj}) */
    CONV_W_OUT(true, Init.NORMAL),
    /** its bias {@code [d_model]} */
    CONV_B_OUT(true, Init.ZERO),
    /**
     * a Mamba-2 layer's ({@link Mamba2}) input projection {@code [d_model, inner + channels + heads]}: the gate, the
     * convolution's channels {@code x}, {@code B}, {@code C} and the time steps side by side ({@code in_proj})
     */
    MAMBA_W_IN(true, Init.NORMAL),
    /** its bias {@code [inner + channels + heads]} */
    MAMBA_B_IN(true, Init.ZERO),
    /** a Mamba-2 layer's depthwise causal convolution {@code [channels, 1, kernel]} ({@code conv1d}) */
    MAMBA_CONV(true, Init.NORMAL),
    /** its bias {@code [channels]} */
    MAMBA_CONV_BIAS(true, Init.ZERO),
    /** a Mamba-2 layer's {@code dt_bias} {@code [heads]}, added to the time steps before the softplus */
    MAMBA_DT_BIAS(true, Init.CONSTANT, 1.0),
    /** a Mamba-2 layer's {@code A_log} {@code [heads]}: each step decays the state by {@code exp(−exp(A_log) · dt)} */
    MAMBA_A_LOG(true, Init.CONSTANT, 0.0),
    /** a Mamba-2 layer's {@code D} {@code [heads]}: each head's output adds {@code D · x} */
    MAMBA_D(true, Init.CONSTANT, 1.0),
    /** the weight {@code [inner]} of a Mamba-2 layer's gated RMSNorm */
    MAMBA_NORM(true, Init.CONSTANT, 1.0),
    /** a Mamba-2 layer's output projection {@code [inner, d_model]} ({@code out_proj}) */
    MAMBA_W_OUT(true, Init.NORMAL),
    /** its bias {@code [d_model]} */
    MAMBA_B_OUT(true, Init.ZERO),
    /** the scalar {@code [1]} a block multiplies the residual stream it outputs by (Gemma 4's {@code layer_scalar}) */
    LAYER_SCALAR(true, Init.CONSTANT, 1.0),
    /** the per-layer embedding {@code [vocab, layers · width]} (Gemma 4's {@code embed_tokens_per_layer}) */
    PLE_EMBED(false, Init.NORMAL),
    /** the projection of the embeddings to every layer's input {@code [d_model, layers · width]} */
    PLE_PROJECTION(false, Init.NORMAL),
    /** the weight of the norm of each layer's slice of that projection {@code [width]} */
    PLE_PROJECTION_NORM(false, Init.NORM),
    /** a block's gate on its input, {@code [d_model, width]} ({@code per_layer_input_gate}) */
    PLE_GATE(true, Init.NORMAL),
    /** a block's projection of the gated input {@code [width, d_model]} ({@code per_layer_projection}) */
    PLE_OUT(true, Init.NORMAL),
    /** the weight of the norm of that projection {@code [d_model]} ({@code post_per_layer_input_norm}) */
    PLE_OUT_NORM(true, Init.NORM),
    /** the scale {@code [d_model]} on the router's normalised input (Gemma 4's {@code router.scale}) */
    ROUTER_SCALE(true, Init.CONSTANT, 1.0),
    /** each expert's factor on its routing weights {@code [experts]} (Gemma 4's {@code router.per_expert_scale}) */
    EXPERT_SCALE(true, Init.CONSTANT, 1.0),
    /** the weight of the experts' own input norm {@code [d_model]} (Gemma 4's {@code pre_feedforward_layernorm_2}) */
    EXPERTS_IN_NORM_W(true, Init.NORM),
    /** the weight of the norm of the shared expert's output {@code [d_model]} ({@code post_feedforward_layernorm_1}) */
    SHARED_OUT_NORM_W(true, Init.NORM),
    /** the weight of the norm of the experts' output {@code [d_model]} ({@code post_feedforward_layernorm_2}) */
    EXPERTS_OUT_NORM_W(true, Init.NORM);

    /** How Hugging Face initialises a tensor of this slot in a new model. */
    public enum Init {
        /** normal(0, initializer_range) */
        NORMAL,
        /** zeros (biases) */
        ZERO,
        /** the identity scale of the norm: ones, or zeros for {@code (1 + w)} norms */
        NORM,
        /** the slot's {@link #initialValue()} everywhere */
        CONSTANT
    }

    private final boolean perLayer;
    private final Init init;
    private final double initialValue;

    Slot(boolean perLayer, Init init) {
        this(perLayer, init, 0);
    }

    Slot(boolean perLayer, Init init, double initialValue) {
        this.perLayer = perLayer;
        this.init = init;
        this.initialValue = initialValue;
    }

    /**
     * The value a new model fills a {@link Init#CONSTANT} slot with.
     *
     * @return the value
     */
    public double initialValue() {
        return initialValue;
    }

    /**
     * Whether each layer has its own.
     *
     * @return true for block parameters
     */
    public boolean perLayer() {
        return perLayer;
    }

    /**
     * Whether a float16 or bfloat16 model holds it in float32 (Hugging Face's {@code _keep_in_fp32_modules}).
     *
     * @return true for {@link #EXPERT_SCORE_BIAS}
     */
    public boolean float32() {
        return this == EXPERT_SCORE_BIAS;
    }

    /**
     * How a new model initialises it.
     *
     * @return the kind of initialisation
     */
    public Init init() {
        return init;
    }
}

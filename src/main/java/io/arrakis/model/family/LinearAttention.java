package io.arrakis.model.family;

import java.util.List;

/**
 * Gated DeltaNet, the linear attention of Qwen3.5's {@code "linear_attention"} layers, which mix tokens through a
 * recurrent state instead of a softmax over keys. One projection of the layer's input gives queries, keys and values
 * ({@code in_proj_qkv}), which pass through a causal depthwise convolution of {@code convKernel} positions and a SiLU;
 * the queries and keys are L2-normalised, the queries scaled by {@code keyDim^-1/2}; each value head {@code h} keeps a
 * state {@code S [keyDim, valueDim]} that every position decays by {@code exp(g)} and corrects towards its value by
 * the delta rule, {@code S += k ⊗ beta·(v − Sᵀk)}, and reads with its query, {@code o = Sᵀq} ({@code beta} the
 * sigmoid of {@code in_proj_b}, {@code g = −exp(A_log) · softplus(in_proj_a + dt_bias)}). Each head's output is
 * RMS-normalised, multiplied by its weight and by the SiLU of the gate {@code in_proj_z}, then projected back
 * ({@code out_proj}). Value heads outnumber key heads by a whole factor; value head {@code h} reads key head
 * {@code h / (valueHeads / keyHeads)}.
 *
 * @param keyHeads the query and key heads ({@code linear_num_key_heads})
 * @param valueHeads the value heads, each with its own state ({@code linear_num_value_heads})
 * @param keyDim the width of a query or key head ({@code linear_key_head_dim})
 * @param valueDim the width of a value head ({@code linear_value_head_dim})
 * @param convKernel the convolution's length in positions ({@code linear_conv_kernel_dim})
 * @param layers per layer, whether it is a linear-attention layer rather than a softmax-attention one
 */
public record LinearAttention(int keyHeads, int valueHeads, int keyDim, int valueDim, int convKernel,
        List<Boolean> layers) {

    public LinearAttention {
        layers = List.copyOf(layers);
    }

    /**
     * Whether a layer mixes tokens by linear attention.
     *
     * @param layer the layer index
     * @return true for a linear-attention layer
     */
    public boolean at(int layer) {
        return layers.get(layer);
    }

    /**
     * The channels the convolution runs over: queries, keys and values side by side.
     *
     * @return {@code 2 · keyHeads · keyDim + valueHeads · valueDim}
     */
    public int convChannels() {
        return 2 * keyHeads * keyDim + valueHeads * valueDim;
    }
}

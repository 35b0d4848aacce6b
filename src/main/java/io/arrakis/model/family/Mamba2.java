package io.arrakis.model.family;

import java.util.List;

/**
 * Mamba-2's selective state space, the token mixer of Granite 4.0's {@code "mamba"} layers in place of attention, as
 * transformers' {@code GraniteMoeHybridMambaLayer} (Bamba's mixer) computes it without the CUDA kernels. One projection
 * of the layer's input ({@code in_proj}) gives a gate of {@code heads · headDim} channels, the channels {@code x},
 * {@code B} and {@code C} side by side, and a time step per head. {@code x}, {@code B} and {@code C} pass through a
 * causal depthwise convolution of {@code convKernel} positions and the model's activation; the time step {@code dt} is
 * the softplus of the step plus {@code dt_bias}, clamped to {@code [dtMin, dtMax]}. Each head {@code h} keeps a state
 * {@code [headDim, stateSize]} that every position decays by {@code exp(dt · A)} ({@code A = −exp(A_log)}) and adds
 * {@code dt · x ⊗ B} to, and reads with {@code C}: {@code y = state · C + D · x}. The heads' outputs, times the
 * activation of the gate, are RMS-normalised together and multiplied by the norm's weight, then projected back
 * ({@code out_proj}). {@code B} and {@code C} come in {@code groups}; head {@code h} reads group
 * {@code h / (heads / groups)}. The state space is computed as Mamba-2's duality states it, in chunks of
 * {@code chunk} positions: within a chunk as a masked product, like attention, between chunks by the recurrence.
 *
 * @param heads the heads, each with its own state ({@code mamba_n_heads})
 * @param headDim the channels of {@code x} each head reads ({@code mamba_d_head})
 * @param groups the groups of {@code B} and {@code C} ({@code mamba_n_groups})
 * @param stateSize the width of {@code B}, {@code C} and each state's rows ({@code mamba_d_state})
 * @param convKernel the convolution's length in positions ({@code mamba_d_conv})
 * @param chunk the positions of one chunk of the computation ({@code mamba_chunk_size})
 * @param convBias whether the convolution has a bias ({@code mamba_conv_bias})
 * @param projectionBias whether {@code in_proj} and {@code out_proj} have biases ({@code mamba_proj_bias})
 * @param dtMin the least time step ({@code time_step_limit[0]})
 * @param dtMax the greatest time step ({@code time_step_limit[1]}; infinity for none)
 * @param layers per layer, whether it is a Mamba layer rather than a softmax-attention one
 */
public record Mamba2(int heads, int headDim, int groups, int stateSize, int convKernel, int chunk, boolean convBias,
        boolean projectionBias, double dtMin, double dtMax, List<Boolean> layers) {

    public Mamba2 {
        layers = List.copyOf(layers);
        if (heads % groups != 0) {
            throw new IllegalArgumentException("heads " + heads + " is not a multiple of groups " + groups);
        }
    }

    /**
     * Whether a layer mixes tokens by the state space.
     *
     * @param layer the layer index
     * @return true for a Mamba layer
     */
    public boolean at(int layer) {
        return layers.get(layer);
    }

    /**
     * The channels of {@code x}, of the gate and of the output before {@code out_proj}.
     *
     * @return {@code heads · headDim}
     */
    public int inner() {
        return heads * headDim;
    }

    /**
     * The channels the convolution runs over: {@code x}, {@code B} and {@code C} side by side.
     *
     * @return {@code inner() + 2 · groups · stateSize}
     */
    public int convChannels() {
        return inner() + 2 * groups * stateSize;
    }

    /**
     * The outputs of {@code in_proj}: the gate, the convolution's channels and a time step per head.
     *
     * @return {@code inner() + convChannels() + heads}
     */
    public int projection() {
        return inner() + convChannels() + heads;
    }
}

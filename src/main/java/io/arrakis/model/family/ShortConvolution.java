package io.arrakis.model.family;

import java.util.List;

/**
 * LFM2's short convolution, the token mixer of its {@code "conv"} layers in place of attention: one projection of the
 * layer's input gives three gates of {@code d_model} channels, {@code B}, {@code C} and {@code x}; {@code B · x} passes
 * through a causal depthwise convolution of {@code kernel} positions (no activation), is multiplied by {@code C}, and
 * projected back ({@code out_proj}). A position reads itself and the {@code kernel - 1} positions before it, through
 * weights of its own per channel: there are no heads and no pattern.
 *
 * @param kernel the convolution's length in positions ({@code conv_L_cache})
 * @param bias whether the projections and the convolution have biases ({@code conv_bias})
 * @param layers per layer, whether it is a convolution layer rather than a softmax-attention one
 */
public record ShortConvolution(int kernel, boolean bias, List<Boolean> layers) {

    public ShortConvolution {
        layers = List.copyOf(layers);
    }

    /**
     * Whether a layer mixes tokens by the short convolution.
     *
     * @param layer the layer index
     * @return true for a convolution layer
     */
    public boolean at(int layer) {
        return layers.get(layer);
    }
}

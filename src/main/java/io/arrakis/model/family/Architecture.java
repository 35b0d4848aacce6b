package io.arrakis.model.family;

import java.util.List;

/**
 * The normalised view of a configuration that the model code reads, the same for every family: sizes, the kinds of
 * norm, MLP, positions and residual wiring, which projections have biases, and each layer's attention window. A
 * family derives it from its Hugging Face keys ({@link ModelFamily#architecture}); the accessors of {@link
 * io.arrakis.model.HookedAutoConfig} document each component.
 *
 * @param activation the MLP activation's {@code transformers} name, one the forward pass implements
 *     ({@link #activationFunction()})
 * @param rope the rotary embedding, or null where the family learns position embeddings
 * @param layerAttention per layer, whether it attends to every earlier position or through a window
 * @param slidingWindow the window of {@link LayerAttention#SLIDING} layers, in positions (the query's own
 *     included); 0 when the configuration sets none
 * @param localWindow the window of {@link LayerAttention#LOCAL} layers (gpt-neo's {@code window_size}); 0 when the
 *     family has none
 * @param moe the sparse mixture of experts that replaces the dense MLP, or null for a dense MLP
 * @param attentionSinks whether each head has a learned sink logit that joins the softmax of every query's
 *     attention scores without a value (gpt-oss)
 */
public record Architecture(int dModel, int nLayers, int nHeads, int nKvHeads, int dHead, int dMlp, int vocabSize,
        int maxPositions, Norm norm, double normEps, String activation, boolean gatedMlp, Rope rope,
        boolean parallelResidual, boolean tiedEmbeddings, boolean qkvBias, boolean outBias, boolean mlpBias,
        boolean scaleAttention, List<LayerAttention> layerAttention, int slidingWindow, int localWindow,
        double embeddingScale, double initializerRange, MixtureOfExperts moe, boolean attentionSinks) {

    /** How the residual stream is normalised. */
    public enum Norm {
        /** LayerNorm with weight and bias. */
        LAYER_NORM,
        /** RMSNorm scaled by its weight. */
        RMS_NORM,
        /** RMSNorm scaled by {@code (1 + weight)}, as Gemma stores it (weights start at zero). */
        RMS_NORM_PLUS_ONE
    }

    /** Which keys a layer's queries see, besides causality. */
    public enum LayerAttention {
        /** every earlier position */
        FULL,
        /** gpt-neo's local attention: the last {@code localWindow} positions */
        LOCAL,
        /** the last {@code slidingWindow} positions */
        SLIDING
    }

    /** The MLP activations the forward pass computes, by the {@code transformers} names that mean them. */
    public enum Activation {
        /** the exact GELU, {@code x * Phi(x)} */
        GELU("gelu", "gelu_python"),
        /** the tanh approximation of GELU */
        GELU_TANH("gelu_new", "gelu_pytorch_tanh", "gelu_fast"),
        SILU("silu", "swish"),
        RELU("relu");

        private final List<String> names;

        Activation(String... names) {
            this.names = List.of(names);
        }

        /**
         * The activation a {@code transformers} name means.
         *
         * @param name an {@code ACT2FN} key
         * @return the activation, or null when it is not implemented
         */
        public static Activation of(String name) {
            for (Activation a : values()) {
                if (a.names.contains(name)) {
                    return a;
                }
            }
            return null;
        }

        /** Every implemented name. */
        static List<String> names() {
            return java.util.Arrays.stream(values()).flatMap(a -> a.names.stream()).toList();
        }
    }

    public Architecture {
        layerAttention = List.copyOf(layerAttention);
        if (layerAttention.size() != nLayers) {
            throw new IllegalArgumentException("layerAttention has " + layerAttention.size() + " entries for "
                    + nLayers + " layers");
        }
    }

    /**
     * Whether positions enter through rotary embeddings rather than learned position embeddings.
     *
     * @return true for rotary
     */
    public boolean rotary() {
        return rope != null;
    }

    /**
     * The MLP activation.
     *
     * @return the function {@link #activation()} names
     */
    public Activation activationFunction() {
        return Activation.of(activation);
    }

    /**
     * How many positions back a layer's queries may look (the query's own included), or 0 for every earlier one.
     *
     * @param layer the layer index
     * @return the window, or 0
     */
    public int attentionWindow(int layer) {
        return switch (layerAttention.get(layer)) {
            case FULL -> 0;
            case LOCAL -> localWindow;
            case SLIDING -> slidingWindow;
        };
    }
}

package io.arrakis.model.family;

import java.util.ArrayList;
import java.util.Collections;
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
 * @param embeddingScaleRounded whether the embeddings are multiplied by the scale rounded to the model's dtype (a
 *     tensor in it: gemma's normalizer) or by the number itself (granite's multiplier, a Python float)
 * @param qkNorm the norms of queries and keys after their projections, before rotary embeddings (after them where
 *     {@code qkNormAfterRotary})
 * @param inputNorms whether attention and MLP read a normalised residual stream (false: olmo2 reads it as is)
 * @param outputNorms whether the attention and MLP outputs are normalised before they are added to the residual
 *     stream (gemma2's and olmo2's post-norms)
 * @param attentionScalar attention scores are multiplied by {@code attentionScalar^-1/2} when
 *     {@code scaleAttention}: d_head, or gemma2's {@code query_pre_attn_scalar}
 * @param attentionSoftcap attention scores become {@code cap · tanh(scores / cap)} before the mask; 0 for none
 * @param logitSoftcap the logits become {@code cap · tanh(logits / cap)}; 0 for none
 * @param layerRopes per layer, its rotary embedding (gemma3's sliding layers have their own base), or null for a
 *     layer that does not rotate (smollm3's NoPE layers); null: every layer uses {@code rope}
 * @param rotaryInterleaved whether rotary embeddings turn adjacent features {@code (2i, 2i + 1)} of a head (GPT-J's
 *     {@code rotate_every_two}) rather than the halves {@code (i, i + dim / 2)} ({@code rotate_half})
 * @param attentionMultiplier a factor the attention scores are multiplied by (granite's {@code attention_multiplier},
 *     which it uses in place of {@code 1 / sqrt(d_head)}); 1 otherwise
 * @param residualMultiplier a factor the attention and MLP outputs are multiplied by before they are added to the
 *     residual stream (granite's {@code residual_multiplier}); 1 otherwise
 * @param logitScale a factor the logits are multiplied by (cohere's {@code logit_scale}, granite's
 *     {@code 1 / logits_scaling}); 1 otherwise
 * @param sharedNorm with a parallel residual, whether the MLP reads the attention's normalised input, the block
 *     having one norm (stable-lm, phi, gpt-j, cohere, some falcons), rather than normalising with a norm of its own
 * @param moe the sparse mixture of experts that replaces the dense MLP, or null for a dense MLP
 * @param attentionSinks whether each head has a learned sink logit that joins the softmax of every query's
 *     attention scores without a value (gpt-oss)
 * @param scoresInFloat32 whether a float16 or bfloat16 model computes its attention scores and their softmax from
 *     queries and keys converted to float32, the pattern then converted back (gpt-neo, gpt-j, gpt-2's
 *     {@code reorder_and_upcast_attn}, to avoid overflow)
 * @param outputsSummedFirst with a parallel residual, whether the attention and MLP outputs are summed before the
 *     residual stream is added (gpt-j, gpt-neox, falcon, phi) rather than the residual stream plus the attention's, then
 *     the MLP's (stable-lm, cohere): the same sum, rounded as the family's model rounds it
 * @param rotaryPrecision in which dtype a float16 or bfloat16 model's rotary embedding computes
 * @param queryTemperature the factor on each position's queries (ministral3's rotated ones, llama4's in the layers
 *     that do not rotate); null for none
 * @param paddingIndex the token whose embedding row a new model starts with zeros ({@code pad_token_id}, which the
 *     family's embedding takes as its {@code padding_idx}); -1 for none
 * @param queriesScaledFirst whether the queries are multiplied by the score factor before their product with the keys
 *     (opt), rather than the product after (in float16 the unscaled product can overflow where the family's does not)
 * @param latentAttention the queries', keys' and values' latents (DeepSeek-V3's multi-head latent attention), or null
 *     where they are projected per head; {@code dHead} is then a query or key head's width
 * @param normParameters whether the residual stream's norms have a weight (and a LayerNorm a bias) in the checkpoint;
 *     false for OLMo's and nanochat's, which only normalise: the model then holds a weight of ones for each, so
 *     that tools reading a norm's weight read what the norm applies
 * @param clipQkv the queries, keys and values are clamped to {@code [-clipQkv, clipQkv]} as they leave their
 *     projections (OLMo's {@code clip_qkv}); 0 for none
 * @param embeddingNorm whether the embeddings are normalised, by the final norm's function, before the first block
 *     (nanochat)
 * @param qkNormAfterRotary whether the query and key norms come after the rotary embedding rather than before it
 *     (nanochat, hunyuan-v1-dense)
 * @param rotaryReversed whether the rotary embedding turns each pair the other way, {@code (a·cos + b·sin,
 *     b·cos − a·sin)}, as nanochat's {@code rotate_half} ({@code cat(x2, -x1)}) does
 * @param attentionOutputGate whether each head's output {@code z} is multiplied by the sigmoid of a projection of the
 *     attention's input before the output projection ({@link Slot#W_ATTN_GATE}; afmoe)
 * @param sparseAttention the indexer that chooses the keys each query attends to (DeepSeek-V3.2), or null where
 *     attention is dense
 * @param linearAttention the gated DeltaNet of the layers that mix tokens by linear attention (Qwen3.5), or null where
 *     no layer does
 * @param shortConvolution the short convolution of the layers that mix tokens by one (LFM2), or null where no layer
 *     does
 * @param mamba2 the state space of the layers that mix tokens by one (Granite 4.0's Mamba-2 layers), or null where no
 *     layer does
 * @param headInputDivisor what the final norm's output is divided by before the unembedding (MiniCPM3's
 *     {@code logits_scaling}); 1 otherwise
 * @param layerShapes per layer, its key/value heads, head width, keys and MLP width where layers differ (Gemma 4's
 *     full-attention layers have wider heads, and fewer key/value heads, than its sliding ones; its last layers may
 *     attend to earlier layers' keys and values), or null where every layer has {@code nKvHeads} heads of
 *     {@code dHead}, keys of its own and an MLP of {@code dMlp}
 * @param valueNorm whether each value head is divided by its RMS, without a weight, before attention (Gemma 4's
 *     {@code v_norm})
 * @param layerScalars whether each block ends by multiplying the whole residual stream by a learned scalar of its
 *     own ({@link io.arrakis.model.family.Slot#LAYER_SCALAR}; Gemma 4's {@code layer_scalar})
 * @param perLayerInputs each block's own input from the tokens and their embeddings (Gemma 4's per-layer
 *     embeddings), or null where blocks read the residual stream alone
 * @param attentionChunk the chunk of {@link LayerAttention#CHUNKED} layers, in positions (Llama 4's
 *     {@code attention_chunk_size}); 0 when the family has none
 */
public record Architecture(int dModel, int nLayers, int nHeads, int nKvHeads, int dHead, int dMlp, int vocabSize,
        int maxPositions, Norm norm, double normEps, String activation, boolean gatedMlp, Rope rope,
        boolean parallelResidual, boolean tiedEmbeddings, boolean qkvBias, boolean outBias, boolean mlpBias,
        boolean scaleAttention, List<LayerAttention> layerAttention, int slidingWindow, int localWindow,
        double embeddingScale, boolean embeddingScaleRounded, double initializerRange, QkNorm qkNorm, boolean inputNorms, boolean outputNorms,
        double attentionScalar, double attentionSoftcap, double logitSoftcap, List<Rope> layerRopes,
        boolean rotaryInterleaved, double attentionMultiplier, double residualMultiplier, double logitScale,
        boolean sharedNorm, MixtureOfExperts moe, boolean attentionSinks, boolean scoresInFloat32,
        RotaryPrecision rotaryPrecision, QueryTemperature queryTemperature, boolean outputsSummedFirst,
        int paddingIndex, boolean queriesScaledFirst, LatentAttention latentAttention, boolean normParameters,
        double clipQkv, boolean embeddingNorm, boolean qkNormAfterRotary, boolean rotaryReversed,
        boolean unembeddingBias, boolean attentionOutputGate, SparseAttention sparseAttention,
        LinearAttention linearAttention, ShortConvolution shortConvolution, Mamba2 mamba2, double headInputDivisor,
        List<LayerShape> layerShapes, boolean valueNorm, boolean layerScalars, PerLayerInputs perLayerInputs,
        int attentionChunk) {

    /**
     * Gemma 4's per-layer embeddings (PLE): every block gets an input of {@code width} features per token, the sum,
     * times {@code 2^-1/2}, of the token's row of a second embedding ({@code [vocab, layers · width]}, times
     * {@code sqrt(width)}) and a projection of the token embeddings ({@code [d_model, layers · width]}, times
     * {@code d_model^-1/2}, each layer's slice normalised); after its MLP, the block adds
     * {@code norm(W_out · (act(W_gate · resid) ⊙ input))} to the residual stream.
     *
     * @param vocab the rows of the per-layer embedding ({@code vocab_size_per_layer_input})
     * @param width the features of a block's input ({@code hidden_size_per_layer_input})
     */
    public record PerLayerInputs(int vocab, int width) {
    }

    /**
     * One layer's attention and MLP shapes where layers differ.
     *
     * @param kvHeads its key/value heads
     * @param dHead the width of each of its query, key and value heads
     * @param valuesAreKeys whether its values are its keys' projection (Gemma 4's {@code attention_k_eq_v}: no
     *     {@code v_proj}; the values leave {@code k_proj} before the key norm and the rotary embedding)
     * @param keysFrom the earlier layer whose keys and values, as its attention uses them, this layer's queries
     *     attend to (Gemma 4's {@code num_kv_shared_layers}: the layer has no key or value projection); -1 for its own
     * @param mlpWidth the width of its MLP's hidden layer (Gemma 4's {@code use_double_wide_mlp} doubles it in layers
     *     that share keys and values)
     */
    public record LayerShape(int kvHeads, int dHead, boolean valuesAreKeys, int keysFrom, int mlpWidth) {
    }

    /** The factor the token embeddings are multiplied by in a model of {@code dtype}, as the family multiplies. */
    public double embeddingScale(io.arrakis.torch.DType dtype) {
        return embeddingScaleRounded ? dtype.round(embeddingScale) : embeddingScale;
    }

    /** In which dtype a float16 or bfloat16 model's rotary embedding computes; float32 models compute in float32. */
    public enum RotaryPrecision {
        /** cos, sin and the rotation in the model's dtype. */
        MODEL_DTYPE,
        /** cos and sin rounded to the model's dtype, the rotation in float32, its result converted back (cohere). */
        FLOAT32_ROTATION,
        /** cos, sin and the rotation in float32, the result converted back (olmo2, olmo3, ernie4_5). */
        FLOAT32
    }

    /** How the residual stream is normalised. */
    public enum Norm {
        /** LayerNorm with weight and bias. */
        LAYER_NORM,
        /**
         * RMSNorm scaled by its weight, as Llama's: normalised in float32 and converted back to the model's dtype before
         * the weight multiplies it (in float16 and bfloat16, two roundings).
         */
        RMS_NORM,
        /** RMSNorm whose weight multiplies in float32, converted back once (olmo2, gpt-oss). */
        RMS_NORM_WEIGHT_IN_FLOAT32,
        /** RMSNorm scaled by {@code (1 + weight)}, as Gemma stores it (weights start at zero). */
        RMS_NORM_PLUS_ONE,
        /**
         * LayerNorm scaled by {@code (1 + weight)} (nemotron's {@code LayerNorm1P}), {@code 1 + weight} formed in the
         * model's dtype.
         */
        LAYER_NORM_PLUS_ONE;

        /** Whether the norm subtracts the mean first (a LayerNorm). */
        public boolean centres() {
            return this == LAYER_NORM || this == LAYER_NORM_PLUS_ONE;
        }

        /** Whether the weight scales as {@code 1 + weight}. */
        public boolean addsOne() {
            return this == RMS_NORM_PLUS_ONE || this == LAYER_NORM_PLUS_ONE;
        }
    }

    /** Which keys a layer's queries see, besides causality. */
    public enum LayerAttention {
        /** every earlier position */
        FULL,
        /** gpt-neo's local attention: the last {@code localWindow} positions */
        LOCAL,
        /** the last {@code slidingWindow} positions */
        SLIDING,
        /** Llama 4's chunked attention: the earlier positions of the query's own chunk of {@code attentionChunk} */
        CHUNKED
    }

    /** The MLP activations the forward pass computes, by the {@code transformers} names that mean them. */
    public enum Activation {
        /** the exact GELU, {@code x * Phi(x)} */
        GELU("gelu", "gelu_python"),
        /** the tanh approximation of GELU */
        GELU_TANH("gelu_new", "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_fast"),
        SILU("silu", "swish"),
        RELU("relu"),
        /** {@code relu(x)^2}, rounded once where the square is made */
        RELU2("relu2"),
        /**
         * xIELU (Apertus): {@code alpha_p x^2 + beta x} for {@code x > 0}, else
         * {@code (expm1(min(x, eps)) - x) alpha_n + beta x}, with each layer's learned {@code alpha_p} and
         * {@code alpha_n}
         */
        XIELU("xielu");

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

    /** Which norm queries and keys get after their projections. */
    public enum QkNorm {
        /** none */
        NONE,
        /** one norm over each head's d_head features, its weight shared by the heads (qwen3, gemma3, exaone4) */
        PER_HEAD,
        /** one norm over the whole projection, every head's features together (olmo2, olmo3, olmoe) */
        WHOLE,
        /**
         * cohere's ({@code use_qk_norm}, Command R+): a LayerNorm without bias over each head's features, with a
         * weight of its own per head and feature ({@code [heads, d_head]}), in float32
         */
        PER_HEAD_OWN_WEIGHTS,
        /**
         * Llama 4's L2 norm: one norm over each head's features without a weight, in the layers that rotate only
         * ({@link #qkNorm(int)}), after the rotary embedding
         */
        ROTATED_UNWEIGHTED
    }

    public Architecture {
        layerAttention = List.copyOf(layerAttention);
        if (layerAttention.size() != nLayers) {
            throw new IllegalArgumentException("layerAttention has " + layerAttention.size() + " entries for "
                    + nLayers + " layers");
        }
        layerRopes = layerRopes == null ? (rope == null ? null : Collections.nCopies(nLayers, rope))
                : Collections.unmodifiableList(new ArrayList<>(layerRopes));
        if (layerRopes != null && layerRopes.size() != nLayers) {
            throw new IllegalArgumentException("layerRopes has " + layerRopes.size() + " entries for " + nLayers
                    + " layers");
        }
        if (linearAttention != null && linearAttention.layers().size() != nLayers) {
            throw new IllegalArgumentException("linearAttention has " + linearAttention.layers().size()
                    + " entries for " + nLayers + " layers");
        }
        if (shortConvolution != null && shortConvolution.layers().size() != nLayers) {
            throw new IllegalArgumentException("shortConvolution has " + shortConvolution.layers().size()
                    + " entries for " + nLayers + " layers");
        }
        if (mamba2 != null && mamba2.layers().size() != nLayers) {
            throw new IllegalArgumentException("mamba2 has " + mamba2.layers().size() + " entries for " + nLayers
                    + " layers");
        }
        layerShapes = layerShapes == null ? null : List.copyOf(layerShapes);
        if (layerShapes != null && layerShapes.size() != nLayers) {
            throw new IllegalArgumentException("layerShapes has " + layerShapes.size() + " entries for " + nLayers
                    + " layers");
        }
        if (layerShapes != null && latentAttention != null) {
            throw new IllegalArgumentException("per-layer heads and latent attention do not combine");
        }
    }

    /**
     * The key/value heads of a layer: {@code nKvHeads}, or the layer's own where layers differ.
     *
     * @param layer the layer index
     * @return its key/value heads
     */
    public int nKvHeads(int layer) {
        return layerShapes == null ? nKvHeads : layerShapes.get(layer).kvHeads();
    }

    /**
     * The width of a layer's query and key heads: {@code dHead}, or the layer's own where layers differ.
     *
     * @param layer the layer index
     * @return the width
     */
    public int dHead(int layer) {
        return layerShapes == null ? dHead : layerShapes.get(layer).dHead();
    }

    /**
     * The width of a layer's value heads, and of its {@code hook_z}'s: {@link #dHeadV()}, or the layer's own head
     * width where layers differ.
     *
     * @param layer the layer index
     * @return the width
     */
    public int dHeadV(int layer) {
        return layerShapes == null ? dHeadV() : layerShapes.get(layer).dHead();
    }

    /**
     * Whether a layer's values are its keys' projection ({@link LayerShape#valuesAreKeys}).
     *
     * @param layer the layer index
     * @return true where it has no value projection of its own
     */
    public boolean valuesAreKeys(int layer) {
        return layerShapes != null && layerShapes.get(layer).valuesAreKeys();
    }

    /**
     * The layer whose keys and values a layer's queries attend to: its own, or an earlier one's
     * ({@link LayerShape#keysFrom}).
     *
     * @param layer the layer index
     * @return that layer's index
     */
    public int keysFrom(int layer) {
        return layerShapes == null || layerShapes.get(layer).keysFrom() < 0 ? layer : layerShapes.get(layer).keysFrom();
    }

    /**
     * Whether a later layer attends to a layer's keys and values ({@link LayerShape#keysFrom}).
     *
     * @param layer the layer index
     * @return true where one does
     */
    public boolean keysShared(int layer) {
        return layerShapes != null && layerShapes.stream().anyMatch(h -> h.keysFrom() == layer);
    }

    /**
     * The width of a layer's MLP hidden layer: {@code dMlp}, or the layer's own where layers differ.
     *
     * @param layer the layer index
     * @return the width
     */
    public int dMlp(int layer) {
        return layerShapes == null ? dMlp : layerShapes.get(layer).mlpWidth();
    }

    /**
     * The widest query or key head of any layer: {@code dHead} where every layer has the same.
     *
     * @return the width
     */
    public int widestHead() {
        return layerShapes == null ? dHead : layerShapes.stream().mapToInt(LayerShape::dHead).max().orElseThrow();
    }

    /** How a layer mixes information between positions. */
    public enum Mixer {
        /** attention heads, each a softmax over keys */
        SOFTMAX_ATTENTION("softmax attention"),
        /** {@link LinearAttention}: a recurrent state per value head, no pattern */
        LINEAR_ATTENTION("linear attention (gated DeltaNet)"),
        /** {@link ShortConvolution}: a few positions back, per channel, no heads */
        SHORT_CONVOLUTION("a short convolution"),
        /** {@link Mamba2}: a decaying state per head, read by each position, no pattern */
        MAMBA2("a Mamba-2 state space");

        private final String description;

        Mixer(String description) {
            this.description = description;
        }

        /** What the mixer is, for messages: "linear attention (gated DeltaNet)". */
        public String description() {
            return description;
        }
    }

    /**
     * How a layer mixes tokens: softmax attention, or {@link #linearAttention}, {@link #shortConvolution} or
     * {@link #mamba2} where they name the layer.
     *
     * @param layer the layer index
     * @return its mixer
     */
    public Mixer mixer(int layer) {
        if (linearAttention != null && linearAttention.at(layer)) {
            return Mixer.LINEAR_ATTENTION;
        }
        if (mamba2 != null && mamba2.at(layer)) {
            return Mixer.MAMBA2;
        }
        return shortConvolution != null && shortConvolution.at(layer) ? Mixer.SHORT_CONVOLUTION
                : Mixer.SOFTMAX_ATTENTION;
    }

    /**
     * The rotary embedding of a layer.
     *
     * @param layer the layer index
     * @return its rope, or null without rotary embeddings or for a layer that does not rotate
     */
    public Rope rope(int layer) {
        return layerRopes == null ? null : layerRopes.get(layer);
    }

    /**
     * The width of a value head, and of {@code hook_z}'s heads: {@code dHead}, or the latent attention's value width.
     *
     * @return the width
     */
    public int dHeadV() {
        return latentAttention == null ? dHead : latentAttention.valueDim();
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
            case FULL, CHUNKED -> 0;
            case LOCAL -> localWindow;
            case SLIDING -> slidingWindow;
        };
    }

    /**
     * The chunk a layer's queries attend within ({@link LayerAttention#CHUNKED}), in positions.
     *
     * @param layer the layer index
     * @return {@code attentionChunk}, or 0 where the layer's attention is not chunked
     */
    public int attentionChunk(int layer) {
        return layerAttention.get(layer) == LayerAttention.CHUNKED ? attentionChunk : 0;
    }

    /**
     * The norm of a layer's queries and keys: {@code qkNorm}, but none in a layer that does not rotate where the norm
     * is {@link QkNorm#ROTATED_UNWEIGHTED}.
     *
     * @param layer the layer index
     * @return the kind of norm
     */
    public QkNorm qkNorm(int layer) {
        return qkNorm == QkNorm.ROTATED_UNWEIGHTED && rope(layer) == null ? QkNorm.NONE : qkNorm;
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.RotaryPrecision;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;

/**
 * Collects what a family reads from its keys, remembering which key each value came from, and checks what holds
 * for every family when it builds the {@link Architecture}: the activation is known, the heads divide the width
 * (unless a head dimension is given), query heads are a multiple of key/value heads, the rotary factor and base are
 * valid. Errors name the family's own key and its value.
 */
final class ArchitectureBuilder {

    /** {@code transformers.activations.ACT2CLS} keys (v5.17). */
    private static final Set<String> ACTIVATIONS = Set.of("gelu", "gelu_10", "gelu_fast", "gelu_new", "gelu_python",
            "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_accurate", "hardswish", "laplace", "leaky_relu", "linear",
            "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "sqrtsoftplus", "swish", "tanh", "prelu",
            "xielu");

    private final Settings s;
    private String widthKey;
    private int width;
    private int layers;
    private String headsKey;
    private int heads;
    private String kvHeadsKey;
    private Integer kvHeads;
    private boolean headDimMayBeExplicit;
    private Integer explicitHeadDim;
    private int mlpWidth;
    private int positions;
    private Norm norm;
    private double normEps;
    private String activationKey;
    private String activation;
    private boolean gatedMlp;
    private Boolean rotary;
    private String thetaKey;
    private String factorKey;
    private boolean factorGiven;
    private LatentAttention latentAttention;
    private String rotaryWidthKey;
    private double theta;
    private double factor;
    private Rope.Scaling scaling;
    private boolean parallelResidual;
    private boolean qkvBias;
    private boolean outBias;
    private boolean mlpBias;
    private boolean scaleAttention = true;
    private List<LayerAttention> layerAttention;
    private int slidingWindow;
    private int localWindow;
    private int attentionChunk;
    private double embeddingScale = 1.0;
    private boolean embeddingScaleRounded;
    private String paddingKey;
    private String initializerKey = "initializer_range";
    private boolean queriesScaledFirst;
    private boolean xieluLayout;
    private Architecture.QkNorm qkNorm = Architecture.QkNorm.NONE;
    private boolean inputNorms = true;
    private boolean outputNorms;
    private String attentionScalarKey;
    private double attentionScalar;
    private double attentionSoftcap;
    private double logitSoftcap;
    private final Map<LayerAttention, RotaryObject> rotaryOf = new EnumMap<>(LayerAttention.class);
    private List<Boolean> rotates;
    private String rotaryDimKey;
    private boolean rotaryInterleaved;
    private double attentionMultiplier = 1.0;
    private double residualMultiplier = 1.0;
    private double logitScale = 1.0;
    private boolean sharedNorm;
    private MixtureOfExperts moe;
    private boolean attentionSinks;
    private boolean scoresInFloat32;
    private RotaryPrecision rotaryPrecision = RotaryPrecision.MODEL_DTYPE;
    private QueryTemperature queryTemperature;
    private boolean outputsSummedFirst;
    private boolean normParameters = true;
    private double clipQkv;
    private boolean embeddingNorm;
    private boolean qkNormAfterRotary;
    private boolean rotaryReversed;
    private RopeScalings.Reading ropeReading = RopeScalings.Reading.TRANSFORMERS;
    private boolean unembeddingBias;
    private boolean attentionOutputGate;
    private SparseAttention sparseAttention;
    private LinearAttention linearAttention;
    private ShortConvolution shortConvolution;
    private Mamba2 mamba2;
    private double headInputDivisor = 1.0;
    private List<Architecture.LayerShape> layerShapes;
    private boolean valueNorm;
    private boolean layerScalars;
    private Architecture.PerLayerInputs perLayerInputs;
    private boolean proportionalRotary;

    ArchitectureBuilder(Settings s) {
        this.s = s;
    }

    /** The residual stream's width. */
    ArchitectureBuilder width(String key) {
        widthKey = key;
        width = s.integer(key);
        return this;
    }

    ArchitectureBuilder layers(String key) {
        layers = s.integer(key);
        return this;
    }

    /** The number of query heads (and of key/value heads unless {@link #keyValueHeads} says otherwise). */
    ArchitectureBuilder heads(String key) {
        headsKey = key;
        heads = s.integer(key);
        return this;
    }

    /** Key/value heads for grouped-query attention; a null value means one per query head. */
    ArchitectureBuilder keyValueHeads(String key) {
        kvHeadsKey = key;
        kvHeads = s.integerOrNull(key);
        return this;
    }

    /** Multi-query attention ({@code multiQueryKey} true): one key/value head for all query heads. */
    ArchitectureBuilder oneKeyValueHead(String multiQueryKey) {
        kvHeadsKey = multiQueryKey;
        kvHeads = 1;
        return this;
    }

    /** A head dimension that, when the key is present and not null, replaces width / heads. */
    ArchitectureBuilder headDim(String key) {
        headDimMayBeExplicit = true;
        explicitHeadDim = s.has(key) ? s.integerOrNull(key) : null;
        return this;
    }

    ArchitectureBuilder mlpWidth(String key) {
        mlpWidth = s.integer(key);
        return this;
    }

    /** The MLP width as a family computes it from its keys (LFM2's). */
    ArchitectureBuilder computedMlpWidth(int mlp) {
        mlpWidth = mlp;
        return this;
    }

    /** The MLP width, {@code 4 * width} where the key is null (gpt2's {@code n_inner}). */
    ArchitectureBuilder mlpWidthOrFourTimesWidth(String key) {
        Integer given = s.integerOrNull(key);
        if (given != null) {
            mlpWidth = given;
        } else {
            try {
                mlpWidth = Math.multiplyExact(width, 4);
            } catch (ArithmeticException e) {
                throw invalid(widthKey, width, "is too large: 4 times it overflows an int");
            }
        }
        return this;
    }

    /** The context length. */
    ArchitectureBuilder positions(String key) {
        positions = s.integer(key);
        return this;
    }

    ArchitectureBuilder norm(Norm kind, String epsKey) {
        norm = kind;
        normEps = s.number(epsKey);
        return this;
    }

    /** The key of the weights' initial standard deviation, where it is not {@code initializer_range}. */
    ArchitectureBuilder initializerRange(String key) {
        initializerKey = key;
        return this;
    }

    /** A norm whose eps no key sets (OPT's {@code nn.LayerNorm} default). */
    ArchitectureBuilder norm(Norm kind, double eps) {
        norm = kind;
        normEps = eps;
        return this;
    }

    /** The MLP activation, a {@code transformers} activation name. */
    ArchitectureBuilder activation(String key) {
        activationKey = key;
        activation = s.string(key);
        return this;
    }

    /** An MLP activation the family fixes, no key setting it (LFM2's SiLU), by its {@code transformers} name. */
    ArchitectureBuilder fixedActivation(String name) {
        activationKey = "the fixed activation";
        activation = name;
        return this;
    }

    /** A gated MLP, {@code down(act(gate(x)) * up(x))}. */
    ArchitectureBuilder gatedMlp() {
        gatedMlp = true;
        return this;
    }

    /** Learned position embeddings ({@code wpe}), no rotary. */
    ArchitectureBuilder learnedPositions() {
        rotary = false;
        return this;
    }

    /**
     * Rotary embeddings with the base under {@code thetaKey} on the fraction {@code factorKey} of each head (null:
     * the whole head); the entries of a {@code rope_scaling} or {@code rope_parameters} object take precedence, and
     * its {@code rope_type} scales the frequencies.
     */
    ArchitectureBuilder rotary(String thetaKey, String factorKey) {
        rotary = true;
        this.thetaKey = thetaKey;
        this.factorKey = factorKey;
        return this;
    }


    /**
     * Multi-head latent attention: heads of {@code latent.queryKeyDim()} query and key features, the rotary embedding
     * on the last {@code latent.ropeDim()} of them.
     */
    ArchitectureBuilder latentAttention(LatentAttention latent) {
        latentAttention = latent;
        explicitHeadDim = latent.queryKeyDim();
        return this;
    }

    /**
     * Where the configuration sets {@code dimKey}, the rotary embedding turns that many features of each head instead
     * of the fraction {@link #rotary}'s {@code factorKey} gives (MiniMax-M2's {@code rotary_dim}, which its own
     * modeling code reads); a fraction given as well must give the same width.
     */
    ArchitectureBuilder rotaryWidth(String dimKey) {
        rotaryWidthKey = dimKey;
        return this;
    }

    /**
     * Rotary embeddings on the first {@code dimKey} features of each head with a fixed base (gpt-j, whose modeling
     * file hard-codes it).
     */
    ArchitectureBuilder rotaryOnFirst(String dimKey, double base) {
        rotary = true;
        rotaryDimKey = dimKey;
        theta = base;
        return this;
    }

    /** Rotary embeddings turn adjacent features {@code (2i, 2i + 1)}, GPT-J's {@code rotate_every_two}. */
    ArchitectureBuilder rotaryInterleaved() {
        rotaryInterleaved = true;
        return this;
    }

    ArchitectureBuilder parallelResidual(boolean parallel) {
        parallelResidual = parallel;
        return this;
    }

    /** With a parallel residual, the MLP reads the attention's normalised input: one norm per block. */
    ArchitectureBuilder sharedNorm(boolean shared) {
        sharedNorm = shared;
        return this;
    }

    ArchitectureBuilder biases(boolean qkv, boolean out, boolean mlp) {
        qkvBias = qkv;
        outBias = out;
        mlpBias = mlp;
        return this;
    }

    /** Whether attention scores are divided by {@code sqrt(d_head)}. */
    ArchitectureBuilder scaleAttention(boolean scale) {
        scaleAttention = scale;
        return this;
    }

    /** A sliding window on every layer, or none for a null window. */
    ArchitectureBuilder slidingWindow(Integer window) {
        slidingWindow = window != null ? window : 0;
        return this;
    }

    /** Per layer, which attention it uses; without it every layer is full, or sliding when a window is set. */
    ArchitectureBuilder layerAttention(List<LayerAttention> perLayer) {
        layerAttention = perLayer;
        return this;
    }

    /** The window of local layers. */
    /** Llama 4's chunked attention: {@link Architecture.LayerAttention#CHUNKED} layers attend within {@code chunk}. */
    ArchitectureBuilder attentionChunk(int chunk) {
        attentionChunk = chunk;
        return this;
    }

    ArchitectureBuilder localWindow(int window) {
        localWindow = window;
        return this;
    }

    /**
     * The key of the token whose embedding row starts at zero, as the family's {@code nn.Embedding(..., padding_idx)}
     * has it; families without one do not call this.
     */
    ArchitectureBuilder paddingToken(String key) {
        paddingKey = key;
        return this;
    }

    /** The factor the token embeddings are multiplied by, as a tensor in the model's dtype (gemma's normalizer). */
    ArchitectureBuilder embeddingScale(double scale) {
        embeddingScale = scale;
        embeddingScaleRounded = true;
        return this;
    }

    /** The factor the token embeddings are multiplied by, as a number (granite's {@code embedding_multiplier}). */
    ArchitectureBuilder embeddingMultiplier(double multiplier) {
        embeddingScale = multiplier;
        embeddingScaleRounded = false;
        return this;
    }

    /** Norms of the queries and keys after their projections. */
    ArchitectureBuilder qkNorm(Architecture.QkNorm kind) {
        qkNorm = kind;
        return this;
    }

    /** A factor the attention scores are multiplied by, after any division by {@code sqrt(d_head)}. */
    ArchitectureBuilder attentionMultiplier(double multiplier) {
        attentionMultiplier = multiplier;
        return this;
    }

    /** A factor the attention and MLP outputs are multiplied by before they join the residual stream. */
    ArchitectureBuilder residualMultiplier(double multiplier) {
        residualMultiplier = multiplier;
        return this;
    }

    /** A factor the logits are multiplied by. */
    ArchitectureBuilder logitScale(double scale) {
        logitScale = scale;
        return this;
    }

    /**
     * Where the blocks normalise: the inputs of attention and MLP (pre-norm, the default), their outputs before the
     * residual sum (post-norm), or both.
     */
    ArchitectureBuilder sublayerNorms(boolean inputs, boolean outputs) {
        inputNorms = inputs;
        outputNorms = outputs;
        return this;
    }

    /** Attention scores scaled by {@code value^-1/2} instead of {@code d_head^-1/2} (gemma2's query_pre_attn_scalar). */
    ArchitectureBuilder attentionScalar(String key) {
        attentionScalarKey = key;
        attentionScalar = s.number(key);
        return this;
    }

    /**
     * Tanh soft-capping of the attention scores and of the logits, from keys whose values may be null (no capping);
     * a null key caps nothing.
     */
    ArchitectureBuilder softcaps(String attentionKey, String logitKey) {
        attentionSoftcap = softcap(attentionKey);
        logitSoftcap = softcap(logitKey);
        return this;
    }

    private double softcap(String key) {
        if (key == null) {
            return 0.0;
        }
        Double cap = (Double) s.get(key);
        if (cap != null && !(cap > 0.0)) {
            throw invalid(key, cap, "must be positive (or null for no soft-capping)");
        }
        return cap == null ? 0.0 : cap;
    }

    /**
     * The layers of one kind rotate as their own rotary object says (gemma3: one {@code rope_parameters} object per
     * layer type), read as {@link #rotary} reads the model's: its {@code rope_theta}, else the value under
     * {@code thetaKey}, and its {@code rope_type}; {@code key} names the object in messages. The rope of
     * {@link LayerAttention#FULL} layers is also the model's {@link Architecture#rope()}; the model-wide
     * {@code rope_scaling} and {@code rope_parameters} are then left to the family.
     */
    ArchitectureBuilder rotaryOf(LayerAttention kind, String key, Map<?, ?> object, String thetaKey) {
        rotaryOf.put(kind, new RotaryObject(key, object, thetaKey));
        return this;
    }

    private record RotaryObject(String key, Map<?, ?> entries, String thetaKey) {
    }

    /** Which layers apply the rotary embedding (smollm3's NoPE layers do not); every layer without this. */
    ArchitectureBuilder rotatingLayers(List<Boolean> perLayer) {
        rotates = List.copyOf(perLayer);
        return this;
    }

    /** A sparse mixture of experts in place of the dense MLP. */
    ArchitectureBuilder mixtureOfExperts(MixtureOfExperts experts) {
        moe = experts;
        return this;
    }

    /** Attention scores and their softmax in float32 for float16 and bfloat16 models. */
    ArchitectureBuilder scoresInFloat32() {
        scoresInFloat32 = true;
        return this;
    }

    /** The queries multiplied by the score factor before their product with the keys, not the product after. */
    ArchitectureBuilder queriesScaledFirst() {
        queriesScaledFirst = true;
        return this;
    }

    /** In a parallel block, the attention and MLP outputs summed before the residual stream is added. */
    ArchitectureBuilder outputsSummedFirst() {
        outputsSummedFirst = true;
        return this;
    }

    /** In which dtype float16 and bfloat16 models compute the rotary embedding (by default, theirs). */
    ArchitectureBuilder rotaryPrecision(RotaryPrecision precision) {
        rotaryPrecision = precision;
        return this;
    }

    /** A factor on each position's rotated queries. */
    ArchitectureBuilder queryTemperature(QueryTemperature temperature) {
        queryTemperature = temperature;
        return this;
    }

    /** The checkpoint holds each layer's xIELU parameters beside an ungated MLP (Apertus), should it use xIELU. */
    ArchitectureBuilder xieluLayout() {
        xieluLayout = true;
        return this;
    }

    /** Norms that only normalise, with no weight or bias in the checkpoint (OLMo's, nanochat's). */
    ArchitectureBuilder normsWithoutParameters() {
        normParameters = false;
        return this;
    }

    /** The bound that queries, keys and values are clamped to, from {@code key} (null: no clamp). */
    ArchitectureBuilder clipQkv(String key) {
        Object bound = s.get(key);
        if (bound != null) {
            clipQkv = s.number(key);
            if (!(clipQkv > 0.0)) {
                throw invalid(key, bound, "must be positive, or null for no clipping");
            }
        }
        return this;
    }

    /** The embeddings normalised before the first block, as the final norm normalises. */
    ArchitectureBuilder embeddingNorm() {
        embeddingNorm = true;
        return this;
    }

    /** The query and key norms after the rotary embedding. */
    ArchitectureBuilder qkNormAfterRotary() {
        qkNormAfterRotary = true;
        return this;
    }

    /** The rotary embedding turning each pair the other way. */
    ArchitectureBuilder rotaryReversed() {
        rotaryReversed = true;
        return this;
    }

    /** The rotary object read as PhiMoE's rotary embedding reads it ({@link RopeScalings.Reading#PHIMOE}). */
    ArchitectureBuilder phimoeRope() {
        ropeReading = RopeScalings.Reading.PHIMOE;
        return this;
    }

    /** A bias on the unembedding, {@code lm_head.bias} (phi, gpt-j, and PhiMoE where {@code lm_head_bias}). */
    ArchitectureBuilder unembeddingBias(boolean present) {
        unembeddingBias = present;
        return this;
    }

    /** Each head's output gated by the sigmoid of a projection of the attention's input ({@link Slot#W_ATTN_GATE}). */
    ArchitectureBuilder attentionOutputGate() {
        attentionOutputGate = true;
        return this;
    }

    /** Queries attending to the keys an indexer chooses ({@link Architecture#sparseAttention}). */
    ArchitectureBuilder sparseAttention(SparseAttention indexer) {
        sparseAttention = indexer;
        return this;
    }

    /** Linear attention in the layers {@code deltaNet} names ({@link Architecture#linearAttention}). */
    ArchitectureBuilder linearAttention(LinearAttention deltaNet) {
        linearAttention = deltaNet;
        return this;
    }

    /** What the final norm's output is divided by before the unembedding ({@link Architecture#headInputDivisor}). */
    ArchitectureBuilder headInputDivisor(double divisor) {
        headInputDivisor = divisor;
        return this;
    }

    /** A short convolution in the layers {@code conv} names ({@link Architecture#shortConvolution}). */
    ArchitectureBuilder shortConvolution(ShortConvolution conv) {
        shortConvolution = conv;
        return this;
    }

    /** A Mamba-2 state space in the layers {@code mamba} names ({@link Architecture#mamba2}). */
    ArchitectureBuilder mamba2(Mamba2 mamba) {
        mamba2 = mamba;
        return this;
    }

    /**
     * Each layer's heads, keys and MLP width ({@link Architecture#layerShapes}); a layer's rotary embedding then turns
     * its own head width.
     */
    ArchitectureBuilder layerShapes(List<Architecture.LayerShape> perLayer) {
        layerShapes = List.copyOf(perLayer);
        return this;
    }

    /** Value heads divided by their RMS before attention ({@link Architecture#valueNorm}). */
    ArchitectureBuilder valueNorm() {
        valueNorm = true;
        return this;
    }

    /** A learned scalar per block on the residual stream it outputs ({@link Architecture#layerScalars}). */
    ArchitectureBuilder layerScalars() {
        layerScalars = true;
        return this;
    }

    /** Rotary objects per layer type may be {@code "proportional"} ({@link Rope.Proportional}: Gemma 4's). */
    ArchitectureBuilder proportionalRotary() {
        proportionalRotary = true;
        return this;
    }

    /** Each block's own input from the tokens ({@link Architecture#perLayerInputs}). */
    ArchitectureBuilder perLayerInputs(Architecture.PerLayerInputs inputs) {
        perLayerInputs = inputs;
        return this;
    }

    /** A {@code "dynamic"} rope type with an {@code alpha} read as HunYuan's ({@link Rope.NtkAlpha}). */
    ArchitectureBuilder ntkAlphaRope() {
        ropeReading = RopeScalings.Reading.NTK_ALPHA;
        return this;
    }

    /** A learned sink logit per head in the attention softmax. */
    ArchitectureBuilder attentionSinks() {
        attentionSinks = true;
        return this;
    }

    Architecture build() {
        if (rotary == null) {
            throw new IllegalStateException("the family chose neither learned nor rotary positions");
        }
        if (rotary) {
            readRotation();
        }

        boolean activationUsed = moe == null || moe.clampedSwiglu() == null; // gpt-oss's experts fix their own
        if (activationUsed && !ACTIVATIONS.contains(activation)) {
            throw invalid(activationKey, activation, "is not an activation of transformers' ACT2FN; known: "
                    + String.join(", ", ACTIVATIONS.stream().sorted().toList()));
        }
        if (activationUsed && Architecture.Activation.of(activation) == null) {
            throw invalid(activationKey, activation, "is not implemented; implemented activations: "
                    + String.join(", ", Architecture.Activation.names()));
        }
        if (activationUsed && Architecture.Activation.of(activation) == Architecture.Activation.XIELU
                && (!xieluLayout || gatedMlp || moe != null)) {
            throw invalid(activationKey, activation, "is implemented only for Apertus's MLP, whose checkpoints hold"
                    + " each layer's xIELU parameters (mlp.act_fn.*) where this family's keep none");
        }

        int headDim;
        if (explicitHeadDim != null) {
            headDim = explicitHeadDim;
        } else {
            if (width % heads != 0) {
                throw invalid(widthKey, width, "is not divisible by " + headsKey + " = " + heads
                        + (headDimMayBeExplicit ? " (and head_dim is not set)" : ""));
            }
            headDim = width / heads;
        }
        int kv = kvHeads != null ? kvHeads : heads;
        if (heads % kv != 0) {
            throw invalid(headsKey, heads, "is not a multiple of " + kvHeadsKey + " = " + kv);
        }
        if (layerShapes != null && layerShapes.size() != layers) {
            throw new IllegalStateException("layerShapes has " + layerShapes.size() + " entries for " + layers
                    + " layers");
        }

        Rope rope = rotary ? rope(latentAttention != null ? latentAttention.ropeDim() : headDim) : null;
        List<LayerAttention> attention = layerAttention != null ? layerAttention
                : Collections.nCopies(layers, slidingWindow > 0 ? LayerAttention.SLIDING : LayerAttention.FULL);
        List<Rope> layerRopes = null;
        if (rope != null && !rotaryOf.isEmpty()) {
            record KindAndWidth(LayerAttention kind, int dim) {
            }
            Map<KindAndWidth, Rope> ropes = new java.util.HashMap<>();
            List<Rope> perLayer = new ArrayList<>(layers);
            for (int i = 0; i < layers; i++) {
                int dim = layerShapes == null ? rope.dim() : layerShapes.get(i).dHead();
                RotaryObject object = rotaryOf.get(attention.get(i));
                perLayer.add(object == null ? rope : ropes.computeIfAbsent(new KindAndWidth(attention.get(i), dim),
                        k -> rope(k.dim(), object)));
            }
            layerRopes = perLayer;
            if (rotaryOf.containsKey(LayerAttention.FULL)) { // the first full layer's, on its own head width
                int full = attention.indexOf(LayerAttention.FULL);
                rope = full >= 0 ? perLayer.get(full) : rope(rope.dim(), rotaryOf.get(LayerAttention.FULL));
            }
        }
        if (rope != null && rotates != null) {
            List<Rope> perLayer = new ArrayList<>(layers);
            for (int i = 0; i < layers; i++) {
                perLayer.add(!rotates.get(i) ? null : layerRopes == null ? rope : layerRopes.get(i));
            }
            layerRopes = perLayer;
        }

        double init = s.number(initializerKey);
        if (!(init >= 0.0)) {
            throw invalid(initializerKey, init, "must be >= 0");
        }

        if (!normParameters && (parallelResidual || outputNorms || !inputNorms)) {
            throw new IllegalStateException("norms without parameters are implemented for pre-norm sequential blocks"
                    + " only");
        }
        if (attentionScalarKey != null && !(attentionScalar > 0.0)) {
            throw invalid(attentionScalarKey, attentionScalar, "must be positive");
        }
        int vocab = s.integer("vocab_size");
        return new Architecture(width, layers, heads, kv, headDim, mlpWidth, vocab, positions,
                norm, normEps, activation, gatedMlp, rope, parallelResidual, s.bool("tie_word_embeddings"), qkvBias,
                outBias, mlpBias, scaleAttention, attention, slidingWindow, localWindow, embeddingScale, embeddingScaleRounded, init,
                qkNorm, inputNorms, outputNorms, attentionScalarKey != null ? attentionScalar : headDim,
                attentionSoftcap, logitSoftcap, layerRopes, rotaryInterleaved, attentionMultiplier, residualMultiplier,
                logitScale, sharedNorm, moe, attentionSinks, scoresInFloat32, rotaryPrecision, queryTemperature,
                outputsSummedFirst, paddingIndex(vocab), queriesScaledFirst, latentAttention, normParameters, clipQkv,
                embeddingNorm, qkNormAfterRotary, rotaryReversed, unembeddingBias, attentionOutputGate,
                sparseAttention, linearAttention, shortConvolution, mamba2, headInputDivisor, layerShapes, valueNorm,
                layerScalars, perLayerInputs, attentionChunk);
    }

    /**
     * The embedding's padding row, or -1: a negative {@code pad_token_id} counts from the vocabulary's end and one
     * outside it is refused, as {@code nn.Embedding} does.
     */
    private int paddingIndex(int vocab) {
        Object id = paddingKey == null ? null : s.get(paddingKey);
        if (id == null) {
            return -1;
        }
        if (!(id instanceof Integer index)) {
            throw invalid(paddingKey, id, "must be one token id, the embedding's padding row");
        }
        if (index < -vocab || index >= vocab) {
            throw invalid(paddingKey, id, "must lie within the vocabulary (vocab_size " + vocab + ")");
        }
        return index < 0 ? index + vocab : index;
    }

    /** The rope of one kind of layer from its own rotary object, on the model's rotary dimension. */
    private Rope rope(int dim, RotaryObject object) {
        Map<?, ?> entries = object.entries();
        if (entries.containsKey("partial_rotary_factor") && !"proportional".equals(entries.get("rope_type"))
                && !Double.valueOf(1.0).equals(ConfigValues.asDouble(entries.get("partial_rotary_factor")))) {
            throw invalid(object.key() + ".partial_rotary_factor", entries.get("partial_rotary_factor"),
                    "is not implemented per layer type (only 1, the whole head, or a proportional rope's)");
        }
        if (entries.containsKey("truncate") && !Boolean.TRUE.equals(entries.get("truncate"))) {
            // transformers' yarn reads truncate from the top level of rope_parameters, where per-layer-type
            // parameters never have it, so it always truncates
            throw invalid(object.key() + ".truncate", entries.get("truncate"), "is not read per layer type by"
                    + " transformers, which truncates all the same; refused rather than guessed");
        }
        String key = entries.containsKey("rope_theta") ? object.key() + ".rope_theta" : object.thetaKey();
        double base = entries.containsKey("rope_theta") ? ropeParameter(entries, object.key(), "rope_theta")
                : s.number(object.thetaKey());
        if (!(base > 0.0)) {
            throw invalid(key, base, "must be > 0");
        }
        Rope.Scaling scaled = RopeScalings.read(entries, object.key(), positions, null);
        if (scaled instanceof Rope.Proportional && !proportionalRotary) {
            throw invalid(object.key() + ".rope_type", "proportional", "is not implemented for this family (only for"
                    + " Gemma 4's)");
        }
        return new Rope(dim, base, scaled).checked();
    }

    /**
     * Reads the rotary base, fraction and scaling: the family's keys, overridden by the entries of the rotary
     * object, {@code rope_scaling} (the {@code config.json} form of {@code transformers} 4) or
     * {@code rope_parameters} (the form of 5); {@link #thetaKey} and {@link #factorKey} then name where the values
     * came from.
     */
    private void readRotation() {
        if (rotaryDimKey == null) {
            theta = s.number(thetaKey);
            factorGiven = factorKey != null && s.has(factorKey); // absent only where the key is optional
            factor = factorGiven ? s.number(factorKey) : 1.0;
        }
        Object topLevelFactor = factorKey == null ? s.get("partial_rotary_factor") : null;
        if (topLevelFactor != null && !Double.valueOf(1.0).equals(ConfigValues.asDouble(topLevelFactor))) {
            // refused as the rotary object's entry is below: transformers rotates the whole head or fails on it
            throw invalid("partial_rotary_factor", topLevelFactor, "is not read by this family's model in"
                    + " transformers, which rotates the whole head; refused rather than guessed");
        }
        if (!rotaryOf.isEmpty()) {
            scaling = new Rope.Unscaled(); // each kind of layer's own object scales its rope
            return;
        }
        Map<?, ?> scalingObject = nonEmptyMap("rope_scaling");
        Map<?, ?> parameters = nonEmptyMap("rope_parameters");
        if (scalingObject != null && parameters != null && !scalingObject.equals(parameters)) {
            throw new IllegalArgumentException("rope_scaling = " + describe(scalingObject) + " and rope_parameters = "
                    + describe(parameters) + " disagree; give one of them");
        }
        String rotaryKey = scalingObject != null ? "rope_scaling" : "rope_parameters";
        Map<?, ?> rp = scalingObject != null ? scalingObject : parameters != null ? parameters : Map.of();
        Integer originalMaxPositions = topLevelOriginalMaxPositions();
        if (rotaryDimKey != null) {
            refuseScalingOfFixedRotary(rp, rotaryKey, originalMaxPositions);
            return;
        }
        if (rp.containsKey("rope_theta")) {
            theta = ropeParameter(rp, rotaryKey, "rope_theta");
            thetaKey = rotaryKey + ".rope_theta";
        }
        if (rp.containsKey("partial_rotary_factor")) {
            double partial = ropeParameter(rp, rotaryKey, "partial_rotary_factor");
            if (factorKey == null && partial != 1.0) {
                // transformers accepts the entry for these families and rotates the whole head all the same
                throw invalid(rotaryKey + ".partial_rotary_factor", partial, "is not read by this family's model in"
                        + " transformers, which rotates the whole head; refused rather than guessed");
            }
            factor = partial;
            factorKey = rotaryKey + ".partial_rotary_factor";
            factorGiven = true;
        }
        scaling = RopeScalings.read(rp, rotaryKey, positions, originalMaxPositions, ropeReading);
        if (scaling instanceof Rope.Proportional) { // its fraction would also narrow the rotated features here
            throw invalid(rotaryKey + ".rope_type", "proportional", "is not implemented in a model-wide rotary"
                    + " object (only in Gemma 4's objects per layer type)");
        }
    }

    /**
     * A fixed rotary embedding ({@link #rotaryOnFirst}) takes no base, fraction or scaling from a rotary object: its
     * modeling file reads none, so any it sets is refused rather than ignored.
     */
    private void refuseScalingOfFixedRotary(Map<?, ?> rp, String rotaryKey, Integer originalMaxPositions) {
        String fixed = "is not read: this family rotates the first " + rotaryDimKey + " features with the fixed base "
                + theta + " and no scaling";
        for (String entry : List.of("rope_theta", "partial_rotary_factor")) {
            if (rp.containsKey(entry)) {
                throw invalid(rotaryKey + "." + entry, rp.get(entry), fixed);
            }
        }
        scaling = RopeScalings.read(rp, rotaryKey, positions, originalMaxPositions);
        if (!(scaling instanceof Rope.Unscaled)) {
            throw invalid(rotaryKey + ".rope_type", rp.containsKey("rope_type") ? rp.get("rope_type") : rp.get("type"),
                    fixed);
        }
    }

    /**
     * A pretraining context length at the top level of the configuration (Phi-3's configuration class has one; other
     * files may carry it): transformers moves it into a single rotary object, over the object's own, for the types
     * that read it; null when there is none.
     */
    private Integer topLevelOriginalMaxPositions() {
        String key = "original_max_position_embeddings";
        Object v = s.get(key);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Integer i) || i <= 0) {
            throw invalid(key, v, "must be a positive integer");
        }
        return i;
    }

    private Map<?, ?> nonEmptyMap(String key) {
        return s.get(key) instanceof Map<?, ?> m && !m.isEmpty() ? m : null;
    }

    private Rope rope(int headDim) {
        if (rotaryDimKey != null) {
            int dim = s.integer(rotaryDimKey);
            if (dim % 2 != 0 || dim > headDim) {
                throw invalid(rotaryDimKey, dim, "must be even and at most the head dimension " + headDim);
            }
            return new Rope(dim, theta, scaling).checked();
        }
        if (!(factor > 0.0 && factor <= 1.0)) {
            throw invalid(factorKey, factor, "must be in (0, 1]");
        }
        if (!(theta > 0.0)) {
            throw invalid(thetaKey, theta, "must be > 0");
        }
        int dim = (int) Math.floor(headDim * factor); // Python: int(head_dim * factor)
        if (rotaryWidthKey != null && s.has(rotaryWidthKey)) {
            int width = s.integer(rotaryWidthKey);
            if (width % 2 != 0 || width > headDim) {
                throw invalid(rotaryWidthKey, width, "must be even and at most the head dimension " + headDim);
            }
            if (factorGiven && width != dim) {
                throw invalid(rotaryWidthKey, width, "disagrees with " + factorKey + " = " + factor + ", which rotates "
                        + dim + " of the " + headDim + " features of a head; give one of them");
            }
            return new Rope(width, theta, scaling).checked();
        }
        if (dim < 2 || dim % 2 != 0) {
            String problem = "gives a rotary dimension of " + dim + " for head dimension " + headDim
                    + "; it must be a positive even number";
            if (factorKey != null) {
                throw invalid(factorKey, factor, problem);
            }
            String headKey = explicitHeadDim != null ? "head_dim" : widthKey;
            throw invalid(headKey, explicitHeadDim != null ? headDim : width, "with " + headsKey + " = " + heads + " "
                    + problem);
        }
        return new Rope(dim, theta, scaling).checked();
    }

    private static double ropeParameter(Map<?, ?> rp, String rotaryKey, String name) {
        Object v = rp.get(name);
        if (!(v instanceof Integer || v instanceof Long || v instanceof Double)) {
            throw invalid(rotaryKey, rp, "entry \"" + name + "\" must be a number, got " + describe(v));
        }
        return ((Number) v).doubleValue();
    }
}

package io.arrakis.composer;

import io.arrakis.Progress;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.HostMemory;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import org.apache.commons.statistics.descriptive.Mean;
import org.apache.commons.statistics.descriptive.StandardDeviation;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Q-, K- and V-composition scores between attention heads (Elhage et al., "A Mathematical Framework for Transformer
 * Circuits"; the TransformerLens definition):
 *
 * <pre>score(l1,h1 → l2,h2) = |W_OV(l1,h1) · R(l2,h2)|_F / (|W_OV(l1,h1)|_F · |R(l2,h2)|_F)</pre>
 *
 * with R = W_QK (Q-composition), W_QKᵀ (K) or W_OV (V), in the row-vector convention W_QK = W_Q W_Kᵀ and
 * W_OV = W_V W_O, each {@code d_model × d_model} per head; key/value heads of grouped-query models are repeated per
 * query head; scores are zero unless l1 &lt; l2. Where a layer's queries attend to an earlier layer's keys and values
 * (gemma4's sharing layers), its W_K and W_V are that layer's, read from that layer's stream, so its K- and
 * V-composition scores are zero unless the sender comes before that layer; heads of different widths compare as they
 * are. By default the weights are the raw ones; with
 * {@link Options#foldLn()} each block's attention-input norm scale ({@link HookedAutoModel#normWeights()}: the norm
 * weight, or 1 + w for gemma) is folded into the rows (d_model side) of its W_Q, W_K and W_V, as TransformerLens's
 * {@code fold_ln} does, and after a LayerNorm (not an RMSNorm) the folded weights are centred along d_model, as its
 * {@code center_weights} does. With {@link Options#centerWritingWeights()} each W_O is centred along d_model as well,
 * as TransformerLens's {@code center_writing_weights} does; its {@code from_pretrained} does both by default, so
 * those are the options to compare its scores with. Biases play no part in the scores.
 *
 * <p><b>Computation.</b> No {@code d_model × d_model} matrix is ever formed. Writing W_OV = A Bᵀ (A = W_V, B = W_Oᵀ,
 * both {@code [d_model, d_head]}) and R = C Dᵀ (Q: C = W_Q, D = W_K; K: C = W_K, D = W_Q; V: C = W_V, D = W_Oᵀ),
 * |A Bᵀ C Dᵀ|_F² = trace(G_A M G_D Mᵀ) with the {@code d_head × d_head} Gram matrices G_A = AᵀA, G_D = DᵀD and the
 * cross term M = Bᵀ C. Factoring G_A = PᵀP and G_D = Q Qᵀ (Cholesky of the Gram matrices in float64; the
 * eigen-decomposition where a head's is singular), the score's numerator is |(P Bᵀ)(C Q)|_F: the sender factors
 * P Bᵀ {@code [d_head, d_model]} of all heads times the receiver factors C Q {@code [d_model, d_head]} of all heads is
 * one matrix product {@code [L·H·d_head, d_model] × [d_model, L·H·d_head]} (factors and product in float32, or
 * float64 for float64 models), done in blocks of one sender layer against the later layers, whose
 * {@code d_head × d_head} blocks' Frobenius norms (accumulated in float64 on the CPU) are the numerators. The denominators are |P Bᵀ|_F = |W_OV|_F and |C Q|_F = |R|_F.
 * The factors are made a few layers at a time: besides the model, the scores hold the two factors of all heads (each
 * as large as all of W_Q in float32), the weights of those layers and one block of the product, each bounded by
 * {@link Options#maxBlockElements()} (one layer at least).
 *
 * <p><b>Rotary embeddings.</b> The score treats W_QK as the position-free bilinear form x_q W_Q W_Kᵀ x_kᵀ. In models
 * with rotary position embeddings (Llama, GPT-NeoX, ...) queries and keys are rotated by position-dependent angles
 * before their dot product, so the true QK circuit is W_Q R(Δ) W_Kᵀ, depending on the relative position Δ of query
 * and key; the score here is that circuit at Δ = 0 only (and TransformerLens computes the same). Q- and K-composition
 * scores of rotary models therefore measure subspace overlap, not the attention a head would actually give at a
 * distance. V-composition is unaffected (W_OV involves no rotation).
 *
 * <p><b>Norms inside the attention, and soft-capping.</b> Some families put non-linear steps between the linear weights
 * and what a head computes: an RMSNorm of the queries and keys after their projections (qwen3, gemma3, exaone4,
 * qwen3-5, qwen3-next and lfm2 per head, olmo2, olmo3 and flex-olmo over all heads together), an RMSNorm of the
 * attention's output before it joins the residual stream (gemma2, gemma3, olmo2, olmo3, flex-olmo, exaone4, glm4,
 * afmoe), a tanh soft-cap of the attention scores (gemma2), a scale other than {@code d_head^-1/2} (gemma2's
 * {@code query_pre_attn_scalar}), a sigmoid gate on each head's output (afmoe, qwen3-5, qwen3-next:
 * {@code sigmoid(x · W_G)}, which depends on the input and is left out of every score). Each of those RMSNorms is
 * {@code w ⊙ x / rms(x)}: a diagonal linear map (its weight, or {@code 1 + w} for gemma's and qwen3-5's) times one
 * positive number per token, the inverse RMS. The scores are defined on the linear map that remains when the per-token
 * number is left out: the query-norm scale multiplies the columns (d_head side) of W_Q, the key-norm scale those of
 * W_K, the output-norm scale the columns (d_model side) of W_O, in every score and always (they are part of the head's
 * circuit, unlike the attention-input norm, which {@link Options#foldLn()} folds on request). So the Q-composition
 * circuit of a qwen3 head is W_Q diag(w_q ⊙ w_k) W_Kᵀ at Δ = 0 (the rotation comes after the norms and cancels at equal
 * positions), and a gemma2 head writes W_V W_O diag(1 + w_post). Where the norms follow the rotation, nanochat's have
 * no weight, so it still cancels; HunYuan's weights are folded as qwen3's are, which is its circuit for a query and key
 * both at position 0 (elsewhere the rotation mixes each turning pair's two weights, unless they are equal). This is the
 * most faithful linear reading: a score is a ratio of Frobenius norms, unchanged when R or W_OV is multiplied by a
 * positive number, and the left-out RMS factors are such numbers for each (query, key) pair or token, although they
 * depend on the input (a sender's write changes the receiver's RMS), which no weight-based score can capture. The
 * soft-cap is a monotone squashing of each score after the bilinear form and the attention scalar a global factor;
 * neither enters the scores, which describe the bilinear form before them.
 *
 * <p><b>Attention sinks.</b> gpt-oss gives each head a learned sink logit that joins the softmax of its scores as
 * one more key, which has no value. A sink changes how much of each row the real keys receive (the pattern's rows sum
 * to less than 1), but not W_Q, W_K, W_V or W_O, from which alone the scores are defined: they are those of the same
 * weights without sinks, and they do not see that a head which gives most of its attention to its sink writes little.
 *
 * <p><b>Layers without heads.</b> The linear-attention layers of Qwen3.5 and Qwen3-Next (gated DeltaNet) and the
 * short-convolution layers of LFM2 have no heads in this sense: a convolution over positions comes between the
 * residual stream and what mixes tokens. The scores of such a model are those of its softmax-attention layers' heads,
 * as if the other layers were not there, and every pair with a head of another layer is NaN (in the baseline-corrected
 * scores too), as {@link ScoreReport} and the attention view leave out; a model with no softmax-attention layer is
 * refused.
 *
 * <p>A head whose W_OV or R is zero scores 0 against everything.
 */
public final class CompositionScores {
    private CompositionScores() {
    }

    /** Which circuit of the receiving head the sender's output is composed with. */
    public enum Mode { Q, K, V }

    /**
     * @param baseline        also sample the scores of Gaussian random heads of the same shapes (and ranks) and
     *                        return the scores minus their mean
     * @param baselineSamples how many random (sender, receiver) pairs the baseline draws (≥ 2)
     * @param seed            the baseline's random seed
     * @param progress        told after each block of the big product how many head pairs are scored
     * @param maxBlockElements the most elements of one block of the big product, and of the weights the factors are
     *                        made from at once (one layer's at least): bounds the memory taken beside the factors
     * @param foldLn          fold each block's attention-input norm scale into W_Q, W_K, W_V and centre them after a
     *                        LayerNorm (TransformerLens's {@code fold_ln} with {@code center_weights}); a no-op for
     *                        families whose norm has no weight
     * @param centerWritingWeights centre each W_O along d_model (TransformerLens's {@code center_writing_weights}):
     *                        every reader of the residual stream then sees the same, since a LayerNorm removes the
     *                        mean anyway; refused for an RMSNorm family, whose norm keeps the mean
     */
    public record Options(boolean baseline, int baselineSamples, long seed, Progress progress, long maxBlockElements,
                          boolean foldLn, boolean centerWritingWeights) {
        public static final Options DEFAULT = builder().build();

        public Options {
            progress = progress == null ? Progress.NONE : progress;
            if (baselineSamples < 2) {
                throw new IllegalArgumentException("baselineSamples must be at least 2, got " + baselineSamples);
            }
            if (maxBlockElements < 1) {
                throw new IllegalArgumentException("maxBlockElements must be positive, got " + maxBlockElements);
            }
        }

        /** Options without {@code centerWritingWeights}. */
        public Options(boolean baseline, int baselineSamples, long seed, Progress progress, long maxBlockElements,
                       boolean foldLn) {
            this(baseline, baselineSamples, seed, progress, maxBlockElements, foldLn, false);
        }

        /** Options without {@code foldLn} or {@code centerWritingWeights}. */
        public Options(boolean baseline, int baselineSamples, long seed, Progress progress, long maxBlockElements) {
            this(baseline, baselineSamples, seed, progress, maxBlockElements, false, false);
        }

        public static Builder builder() {
            return new Builder();
        }

        public static final class Builder {
            private boolean baseline;
            private int baselineSamples = 200;
            private long seed;
            private Progress progress = Progress.NONE;
            private long maxBlockElements = 1L << 25;
            private boolean foldLn;
            private boolean centerWritingWeights;

            private Builder() {
            }

            public Builder baseline(boolean on) {
                this.baseline = on;
                return this;
            }

            public Builder baselineSamples(int n) {
                this.baselineSamples = n;
                return this;
            }

            public Builder seed(long seed) {
                this.seed = seed;
                return this;
            }

            public Builder progress(Progress listener) {
                this.progress = listener;
                return this;
            }

            public Builder maxBlockElements(long n) {
                this.maxBlockElements = n;
                return this;
            }

            public Builder foldLn(boolean on) {
                this.foldLn = on;
                return this;
            }

            public Builder centerWritingWeights(boolean on) {
                this.centerWritingWeights = on;
                return this;
            }

            public Options build() {
                return new Options(baseline, baselineSamples, seed, progress, maxBlockElements, foldLn,
                        centerWritingWeights);
            }
        }
    }

    /**
     * Scores {@code [L, H, L, H]} float64; with a baseline, also the scores minus the baseline's mean (zero where the
     * scores are zero by definition) and the mean and standard deviation of the baseline sample, else null and NaN.
     */
    public record Result(Tensor scores, Tensor baselineCorrected, double baselineMean, double baselineStd)
            implements AutoCloseable {
        @Override
        public void close() {
            scores.close();
            if (baselineCorrected != null) {
                baselineCorrected.close();
            }
        }
    }

    /** All-pairs scores, float64 {@code [layer, head, layer, head]}: [l1, h1, l2, h2] is sender (l1,h1) → receiver (l2,h2). */
    public static Tensor allPairs(HookedAutoModel model, Mode mode) {
        return compute(model, mode, Options.DEFAULT).scores();
    }

    /** All-pairs scores with options (baseline, progress, block size). */
    public static Result compute(HookedAutoModel model, Mode mode, Options options) {
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(options, "options");
        HookedAutoConfig c = model.config();
        int[] scored = softmaxLayers(c);
        if (scored.length == 0) {
            throw new IllegalArgumentException("no layer of this " + c.family() + " model attends by softmax (they mix"
                    + " tokens by " + c.headlessMixers(0, c.nLayers()) + "): it has no attention heads to compose");
        }
        int layers = scored.length;
        int heads = c.nHeads();
        int dHead = c.widestHead(); // narrower heads' factors are padded with zero rows
        int dModel = c.dModel();
        int n = layers * heads;
        long totalPairs = (long) layers * (layers - 1) / 2 * heads * heads;
        Progress progress = options.progress();
        long donePairs = 0;
        progress.advanced(donePairs, totalPairs);
        DType productType = model.dtype() == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
        Device device = model.device();
        requireFactorMemory(c, layers, productType, device);
        try (TensorScope scope = TensorScope.open()) {
            HeadWeights weights = HeadWeights.of(model, options);
            Tensor senders = weights.senderFactors(scored, productType);           // [n, d_head, d_model]
            Tensor receivers = weights.receiverFactors(mode, scored, productType); // [n, d_head, d_model], transposed
            double[] senderNorm = safeNorms(senders, n);
            double[] receiverNorm = safeNorms(receivers, n);
            Tensor senderNorms = Tensor.of(senderNorm, layers, heads).to(device);
            Tensor receiverNorms = Tensor.of(receiverNorm, layers, heads).to(device);
            Tensor left = senders.reshape((long) n * dHead, dModel);
            Tensor right = receivers.reshape((long) n * dHead, dModel).transpose(0, 1); // a view: gemm reads it transposed
            long rowsPerLayer = (long) heads * dHead;
            int layersPerChunk = (int) Math.max(1, Math.min(layers, options.maxBlockElements() / (rowsPerLayer * rowsPerLayer)));
            List<Tensor> rows = new ArrayList<>();
            for (int l1 = 0; l1 < layers; l1++) {
                int later = layers - l1 - 1;
                if (later == 0) {
                    rows.add(Tensor.zeros(new long[] {heads, layers, heads}, DType.FLOAT64, device));
                    continue;
                }
                Tensor senderRows = left.narrow(0, l1 * rowsPerLayer, rowsPerLayer);
                List<Tensor> chunks = new ArrayList<>();
                for (int l2 = l1 + 1; l2 < layers; l2 += layersPerChunk) {
                    int k = Math.min(layersPerChunk, layers - l2);
                    try (TensorScope chunkScope = TensorScope.open()) {
                        Tensor product = senderRows.matmul(right.narrow(1, l2 * rowsPerLayer, k * rowsPerLayer));
                        // each pair's d_head × d_head block's Frobenius norm [H, k·H]: the norm of the norms of its
                        // rows, so that the pass over the product reduces contiguous memory (3× faster than both dims)
                        Tensor norms = product.view(heads, dHead, (long) k * heads, dHead).norm(3, false).norm(1, false)
                                .to(DType.FLOAT64);
                        chunks.add(chunkScope.keep(norms));
                    }
                    donePairs += (long) heads * k * heads;
                    progress.advanced(donePairs, totalPairs);
                }
                Tensor numerator = (chunks.size() == 1 ? chunks.get(0) : Tensor.cat(chunks, 1)).view(heads, later, heads);
                Tensor denominator = senderNorms.select(0, l1).view(heads, 1, 1)
                        .mul(receiverNorms.narrow(0, l1 + 1, later).view(1, later, heads));
                Tensor score = numerator.div(denominator);
                rows.add(Tensor.cat(List.of(Tensor.zeros(new long[] {heads, l1 + 1, heads}, DType.FLOAT64, device), score), 1));
            }
            Tensor scores = Tensor.stack(rows, 0);
            boolean[] notPair = new boolean[layers * layers];
            boolean unread = false; // a pair whose receiver reads keys and values made before the sender writes
            for (int l1 = 0; l1 < layers; l1++) {
                for (int l2 = 0; l2 < layers; l2++) {
                    boolean before = l1 < l2 && mode != Mode.Q && scored[l1] >= c.keysFrom(scored[l2]);
                    notPair[l1 * layers + l2] = l1 >= l2 || before;
                    unread |= before;
                }
            }
            Tensor mask = Tensor.of(notPair, layers, 1, layers, 1).to(device);
            if (unread) {
                scores = scores.maskedFill(mask, 0.0);
            }
            if (!options.baseline()) {
                return new Result(scope.keep(everyLayer(scores, scored, c)), null, Double.NaN, Double.NaN);
            }
            double[] sample = baselineSample(c, scored, options.baselineSamples(), options.seed(), device);
            double mean = Mean.of(sample).getAsDouble();
            double std = StandardDeviation.of(sample).getAsDouble(); // the sample's, with n - 1
            Tensor corrected = scores.sub(mean).maskedFill(mask, 0.0);
            return new Result(scope.keep(everyLayer(scores, scored, c)), scope.keep(everyLayer(corrected, scored, c)),
                    mean, std);
        }
    }

    /** The layers that attend by softmax, whose heads the scores are made of: every layer but linear-attention ones. */
    private static int[] softmaxLayers(HookedAutoConfig c) {
        return java.util.stream.IntStream.range(0, c.nLayers()).filter(c::attentionHeads).toArray();
    }

    /**
     * Scores {@code [S, H, S, H]} of the softmax-attention layers {@code scored} as {@code [L, H, L, H]} of all
     * layers, NaN for every pair with a head of a layer without heads; the scores themselves where every layer
     * attends by softmax.
     */
    private static Tensor everyLayer(Tensor scores, int[] scored, HookedAutoConfig c) {
        if (scored.length == c.nLayers()) {
            return scores;
        }
        int heads = c.nHeads();
        Tensor all = Tensor.full(new long[] {c.nLayers(), heads, c.nLayers(), heads}, Double.NaN, DType.FLOAT64,
                scores.device());
        for (int i = 0; i < scored.length; i++) {
            for (int j = 0; j < scored.length; j++) {
                all.select(0, scored[i]).select(1, scored[j]).copyFrom(scores.select(0, i).select(1, j));
            }
        }
        return all;
    }

    /**
     * Refuses, before anything is allocated, scores whose factors (sender and receiver, {@code [L·H, d_head, d_model]}
     * each for the {@code layers} scored, held together) cannot fit in the memory available on the CPU.
     */
    private static void requireFactorMemory(HookedAutoConfig c, int layers, DType productType, Device device) {
        double bytes = 2.0 * layers * c.nHeads() * c.widestHead() * c.dModel() * productType.byteSize();
        long available = device.isCpu() ? HostMemory.availableBytes() : -1;
        if (available >= 0 && bytes > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "composition scores of %d layers x %d heads"
                    + " need %.1f GiB for their sender and receiver factors (%s, two of [layer * head, d_head,"
                    + " d_model]), but %.1f GiB of memory is available; score a model with fewer layers, or pairs"
                    + " one at a time with pair()", layers, c.nHeads(), bytes / (1L << 30), productType,
                    available / (double) (1L << 30)));
        }
    }

    /**
     * The score of one pair, computed on its own in float64 (the norm scales a family folds into the weights are
     * formed as the model forms them: gemma's {@code 1 + w} in float32); 0 unless {@code sender.layer() <
     * receiver.layer()}, as in {@link #allPairs}. Throws {@link IllegalArgumentException} for a head the model lacks.
     */
    public static double pair(HookedAutoModel model, Head sender, Head receiver, Mode mode) {
        return pair(model, sender, receiver, mode, Options.DEFAULT);
    }

    /**
     * {@link #pair(HookedAutoModel, Head, Head, Mode)} with options; only {@link Options#foldLn()} and
     * {@link Options#centerWritingWeights()} apply (the baseline, progress and block size are for all pairs).
     */
    public static double pair(HookedAutoModel model, Head sender, Head receiver, Mode mode, Options options) {
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(options, "options");
        HookedAutoConfig c = model.config();
        sender.checkIn(c, "sender");
        receiver.checkIn(c, "receiver");
        Fold.check(c, options);
        if (sender.layer() >= receiver.layer()
                || mode != Mode.Q && sender.layer() >= c.keysFrom(receiver.layer())) { // keys made before it writes
            return 0.0;
        }
        try (TensorScope scope = TensorScope.open()) {
            HeadWeights weights = HeadWeights.of(model, options);
            Tensor s = weights.senderFactors(Heads.of(sender), DType.FLOAT64);
            Tensor r = weights.receiverFactors(mode, Heads.of(receiver), DType.FLOAT64);
            double num = s.bmm(r.transpose(1, 2)).norm().item();
            double den = s.norm().item() * r.norm().item();
            return den == 0 ? 0.0 : num / den;
        }
    }

    // ------------------------------------------------------------------------------------------------ factors

    private enum Weight { Q, K, V, O }

    /** Heads {@code head .. head + heads - 1} of each of the blocks {@code layers}, in that order. */
    private record Heads(int[] layers, int head, int heads) {
        static Heads of(Head h) {
            return new Heads(new int[] {h.layer()}, h.index(), 1);
        }
    }

    /**
     * The heads' weights as the scores read them: W_Q and W_K times their q/k norm's scales, W_O times the
     * attention-output norm's, and what the options do ({@link Fold}). Made a group of layers at a time, as many as
     * {@link Options#maxBlockElements()} allows (at least one), so that the scores hold the factors of all heads but
     * the weights of one group.
     */
    private record HeadWeights(HookedAutoModel model, Fold fold, int layersPerGroup) {
        /** The weights one layer's factors are made from, at most, in {@code d_model · d_head} blocks per head. */
        private static final int BLOCKS_PER_LAYER = 4;

        static HeadWeights of(HookedAutoModel model, Options options) {
            HookedAutoConfig c = model.config();
            long layerElements = (long) BLOCKS_PER_LAYER * c.nHeads() * c.widestHead() * c.dModel();
            int perGroup = (int) Math.max(1, Math.min(c.nLayers(), options.maxBlockElements() / layerElements));
            return new HeadWeights(model, Fold.of(model, options), perGroup);
        }

        /**
         * Weight {@code w} of {@code heads} in {@code dtype}: W_Q, W_K, W_V {@code [layer · head, d_model, d_head]}
         * (key/value heads repeated per query head), W_O {@code [layer · head, d_head, d_model]}.
         */
        Tensor group(Weight w, Heads heads, DType dtype) {
            List<Tensor> perLayer = new ArrayList<>(heads.layers().length);
            for (int layer : heads.layers()) {
                perLayer.add(layer(w, layer, heads, dtype));
            }
            Tensor x = perLayer.size() == 1 ? perLayer.get(0) : Tensor.cat(perLayer, 0);
            return x.reshape((long) heads.layers().length * heads.heads(), x.size(1), x.size(2));
        }

        /**
         * Weight {@code w} of {@code heads}' heads in block {@code layer}, {@code [head, ., .]}; a layer that attends
         * to an earlier layer's keys and values (gemma4) reads them with that layer's weights, from its stream.
         */
        private Tensor layer(Weight w, int layer, Heads heads, DType dtype) {
            int reads = w == Weight.K || w == Weight.V ? model.config().keysFrom(layer) : layer;
            Tensor all = switch (w) {
                case Q -> model.W_Q(layer);
                case K -> model.W_K(reads, true);
                case V -> model.W_V(reads, true);
                case O -> model.W_O(layer);
            };
            Tensor x = inType(all.narrow(0, heads.head(), heads.heads()), dtype);
            Tensor scale = switch (w) { // per d_head feature of each head, or per d_model feature
                case Q -> model.queryNormWeights(layer);
                case K -> model.keyNormWeights(reads, true);
                case V -> null;
                case O -> model.attentionOutNormWeights(layer);
            };
            if (scale != null) {
                x = x.mul(w == Weight.O ? scale.to(dtype).view(1, 1, -1)
                        : scale.to(dtype).narrow(0, heads.head(), heads.heads()).unsqueeze(1));
            }
            if (w == Weight.O) {
                return fold.centreWriting() ? x.sub(x.mean(2, true)) : x;
            }
            if (fold.scales() != null) {
                x = x.mul(fold.scales().select(0, reads).to(dtype).view(1, -1, 1));
                x = fold.centreReading() ? x.sub(x.mean(1, true)) : x;
            }
            return x;
        }

        /** The sender factors of every head of {@code layers}, {@code [layer · head, d_head, d_model]}. */
        Tensor senderFactors(int[] layers, DType dtype) {
            return allGroups(layers, heads -> senderFactors(heads, dtype), dtype);
        }

        /** The sender factors P Bᵀ of {@code heads}, {@code [layer · head, d_head, d_model]}. */
        Tensor senderFactors(Heads heads, DType dtype) {
            return byWidth(heads, h -> CompositionScores.senderFactors(group(Weight.V, h, dtype),
                    group(Weight.O, h, dtype)));
        }

        /** The receiver factors for {@code mode} of every head of {@code layers}, transposed. */
        Tensor receiverFactors(Mode mode, int[] layers, DType dtype) {
            return allGroups(layers, heads -> receiverFactors(mode, heads, dtype), dtype);
        }

        /**
         * The receiver factors of the circuit R = C Dᵀ of {@code heads}, transposed:
         * {@code [layer · head, d_head, d_model]}.
         */
        Tensor receiverFactors(Mode mode, Heads heads, DType dtype) {
            return byWidth(heads, h -> switch (mode) {
                case Q -> CompositionScores.receiverFactors(group(Weight.Q, h, dtype), group(Weight.K, h, dtype));
                case K -> CompositionScores.receiverFactors(group(Weight.K, h, dtype), group(Weight.Q, h, dtype));
                case V -> CompositionScores.receiverFactors(group(Weight.V, h, dtype),
                        group(Weight.O, h, dtype).transpose(1, 2));
            });
        }

        /**
         * The factors {@code [layer · head, d_head, d_model]} that {@code factors} makes of {@code heads}; where
         * layers' heads differ in width (gemma4), made a layer at a time, each padded with zero rows to the widest
         * head's: zero rows change no product's norm, so the scores are those of the heads as they are.
         */
        private Tensor byWidth(Heads heads, java.util.function.Function<Heads, Tensor> factors) {
            HookedAutoConfig c = model.config();
            int widest = c.widestHead();
            if (Arrays.stream(heads.layers()).allMatch(l -> c.dHead(l) == widest)) {
                return factors.apply(heads);
            }
            List<Tensor> perLayer = new ArrayList<>(heads.layers().length);
            for (int layer : heads.layers()) {
                Tensor f = factors.apply(new Heads(new int[] {layer}, heads.head(), heads.heads()));
                perLayer.add(f.size(1) == widest ? f : Tensor.cat(List.of(f, Tensor.zeros(
                        new long[] {f.size(0), widest - f.size(1), f.size(2)}, f.dtype(), f.device())), 1));
            }
            return perLayer.size() == 1 ? perLayer.getFirst() : Tensor.cat(perLayer, 0);
        }

        /**
         * The factors of every head of {@code layers} in one tensor: the only group's, or each group's written in as
         * it is made, its work freed before the next.
         */
        private Tensor allGroups(int[] layers, java.util.function.Function<Heads, Tensor> ofGroup, DType dtype) {
            HookedAutoConfig c = model.config();
            int heads = c.nHeads();
            if (layersPerGroup >= layers.length) {
                try (TensorScope scope = TensorScope.open()) {
                    return scope.keep(ofGroup.apply(new Heads(layers, 0, heads)));
                }
            }
            Tensor all = Tensor.empty(new long[] {(long) layers.length * heads, c.widestHead(),
                    c.dModel()}, dtype, model.device());
            for (int from = 0; from < layers.length; from += layersPerGroup) {
                int count = Math.min(layersPerGroup, layers.length - from);
                try (TensorScope scope = TensorScope.open()) {
                    all.narrow(0, (long) from * heads, (long) count * heads)
                            .copyFrom(ofGroup.apply(new Heads(Arrays.copyOfRange(layers, from, from + count), 0,
                                    heads)));
                }
            }
            return all;
        }
    }

    /** {@code w} itself when it has {@code dtype} already, else a converted copy. */
    private static Tensor inType(Tensor w, DType dtype) {
        return w.dtype() == dtype ? w : w.to(dtype);
    }

    /**
     * What the options do to the weights before scoring. TransformerLens's {@code fold_ln} for the weights that read
     * the attention-input norm: its scale {@code [layer, d_model]} (null for none asked, or a norm without one)
     * multiplied into their rows, and, after a LayerNorm (whose output has zero mean, so a constant row changes
     * nothing), each column centred along d_model ({@code center_weights}). And its {@code center_writing_weights}:
     * each W_O's rows centred along d_model.
     */
    private record Fold(Tensor scales, boolean centreReading, boolean centreWriting) {
        static Fold of(HookedAutoModel model, Options options) {
            check(model.config(), options);
            Tensor scales = options.foldLn() ? model.normWeights() : null;
            return new Fold(scales, scales != null && !model.config().rmsNorm(), options.centerWritingWeights());
        }

        static void check(HookedAutoConfig c, Options options) {
            if (options.centerWritingWeights() && c.rmsNorm()) {
                throw new IllegalArgumentException("centerWritingWeights needs a LayerNorm model: " + c.family()
                        + " normalises with an RMSNorm, which keeps the mean that centring W_O would remove, so the"
                        + " centred weights would not be the model's");
            }
        }
    }

    /**
     * P Bᵀ with PᵀP = G_A = AᵀA: A {@code [n, d_model, d_head]}, Bᵀ {@code [n, d_head, d_model]} →
     * {@code [n, d_head, d_model]}, in A's dtype.
     */
    private static Tensor senderFactors(Tensor a, Tensor bt) {
        Tensor p = gramRoot(a);
        return p.bmm(bt);
    }

    /**
     * The receiver factors C Q with Q Qᵀ = G_D = DᵀD (Q = Pᵀ), transposed: P Cᵀ, for C, D {@code [n, d_model, d_head]}
     * → {@code [n, d_head, d_model]}; in that layout all heads' factors, read transposed, are the big product's right
     * operand without a copy.
     */
    private static Tensor receiverFactors(Tensor c, Tensor d) {
        return gramRoot(d).bmm(c.transpose(1, 2));
    }

    /**
     * P with PᵀP = XᵀX for X {@code [n, d_model, d_head]}: the d_head × d_head Gram matrices are decomposed in float64,
     * by Cholesky (G = L Lᵀ, P = Lᵀ), or, when a head's is singular (a rank-deficient or zero head), by the
     * eigen-decomposition (G = V diag(λ) Vᵀ, P = diag(√λ) Vᵀ); P is returned in X's dtype.
     */
    private static Tensor gramRoot(Tensor x) {
        Tensor gram = x.transpose(1, 2).bmm(x).to(DType.FLOAT64);
        // a head whose weights hold NaN or infinite values has a root of NaN, and the others theirs: the batched
        // decompositions fail on such a matrix
        int n = (int) gram.size(0);
        double[] sums = gram.reshape(n, -1).sum(1, false).toDoubleArray();
        boolean[] broken = new boolean[n];
        boolean any = false;
        for (int i = 0; i < n; i++) {
            broken[i] = !Double.isFinite(sums[i]);
            any |= broken[i];
        }
        if (!any) {
            return decomposed(gram).to(x.dtype());
        }
        Tensor mask = Tensor.of(broken, n, 1, 1).to(gram.device());
        return decomposed(gram.maskedFill(mask, 0.0)).maskedFill(mask, Double.NaN).to(x.dtype());
    }

    /** P with PᵀP = G for Gram matrices G {@code [n, d_head, d_head]}, as {@link #gramRoot} says. */
    private static Tensor decomposed(Tensor gram) {
        try {
            return gram.cholesky().transpose(1, 2);
        } catch (IllegalArgumentException singular) {
            List<Tensor> eigen = gram.eigh();
            return eigen.get(0).relu().sqrt().unsqueeze(-1).mul(eigen.get(1).transpose(1, 2));
        }
    }

    /** Frobenius norms of the n factors; a zero norm becomes +∞ so that its (zero) scores divide to 0. */
    private static double[] safeNorms(Tensor factors, int n) {
        double[] norms = factors.reshape(n, -1).norm(1, false).toDoubleArray();
        for (int i = 0; i < n; i++) {
            if (norms[i] == 0) {
                norms[i] = Double.POSITIVE_INFINITY;
            }
        }
        return norms;
    }

    /**
     * Scores of independent Gaussian random heads with the model's shapes (rank d_head each). Where layers' heads
     * differ in width (gemma4), each pair of sender and receiver widths gets the share of the samples that the pairs
     * of {@code scored} layers with those widths have, its largest-remainder rounding.
     */
    private static double[] baselineSample(HookedAutoConfig c, int[] scored, int samples, long seed, Device device) {
        record Widths(int sender, int receiver) {
        }
        java.util.Map<Widths, Long> pairs = new java.util.TreeMap<>(java.util.Comparator.comparingInt(Widths::sender)
                .thenComparingInt(Widths::receiver));
        for (int i = 0; i < scored.length; i++) {
            for (int j = i + 1; j < scored.length; j++) {
                pairs.merge(new Widths(c.dHead(scored[i]), c.dHead(scored[j])), 1L, Long::sum);
            }
        }
        if (pairs.isEmpty()) { // one layer: no pair, but the baseline of its heads' width all the same
            pairs.put(new Widths(c.dHead(scored[0]), c.dHead(scored[0])), 1L);
        }
        List<Widths> widths = List.copyOf(pairs.keySet());
        int[] counts = shares(widths.stream().mapToLong(pairs::get).toArray(), samples);
        Generator g = new Generator(seed);
        double[] sample = new double[samples];
        int filled = 0;
        try (TensorScope scope = TensorScope.open()) {
            for (int w = 0; w < widths.size(); w++) {
                int n = counts[w];
                if (n == 0) {
                    continue;
                }
                long[] sending = {n, c.dModel(), widths.get(w).sender()};
                long[] receiving = {n, c.dModel(), widths.get(w).receiver()};
                Tensor a = Tensor.randn(g, sending, DType.FLOAT64, device);
                Tensor b = Tensor.randn(g, sending, DType.FLOAT64, device);
                Tensor cc = Tensor.randn(g, receiving, DType.FLOAT64, device);
                Tensor d = Tensor.randn(g, receiving, DType.FLOAT64, device);
                Tensor s = senderFactors(a, b.transpose(1, 2));
                Tensor r = receiverFactors(cc, d);
                Tensor num = s.bmm(r.transpose(1, 2)).reshape(n, -1).norm(1, false);
                Tensor den = s.reshape(n, -1).norm(1, false).mul(r.reshape(n, -1).norm(1, false));
                double[] scores = num.div(den).toDoubleArray();
                System.arraycopy(scores, 0, sample, filled, n);
                filled += n;
            }
        }
        return sample;
    }

    /** {@code total} split in proportion to {@code weights}, rounded by largest remainder (ties to the first). */
    static int[] shares(long[] weights, int total) {
        long sum = Arrays.stream(weights).sum();
        int[] counts = new int[weights.length];
        double[] remainders = new double[weights.length];
        int given = 0;
        for (int i = 0; i < weights.length; i++) {
            double exact = (double) total * weights[i] / sum;
            counts[i] = (int) Math.floor(exact);
            remainders[i] = exact - counts[i];
            given += counts[i];
        }
        for (; given < total; given++) {
            int best = 0;
            for (int i = 1; i < weights.length; i++) {
                if (remainders[i] > remainders[best]) {
                    best = i;
                }
            }
            counts[best]++;
            remainders[best] = -1;
        }
        return counts;
    }
}

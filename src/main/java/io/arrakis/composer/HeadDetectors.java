package io.arrakis.composer;

import io.arrakis.model.ActivationCache;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.HostMemory;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;

/**
 * Scores every attention head for the three classic attention signatures, measured on seeded repeated random token
 * sequences {@code [r_1..r_n, r_1..r_n]} (as in Olsson et al. 2022, "In-context Learning and Induction Heads", and
 * TransformerLens's head detectors).
 *
 * <ul>
 *   <li><b>previous-token</b>: the mean attention from position {@code i} to {@code i - 1}, over {@code i >= 1}
 *       (both copies) and the batch;</li>
 *   <li><b>induction</b>: the mean attention from each second-copy position {@code n + j} to {@code j + 1} — the
 *       token after that token's first occurrence (for the last, {@code j = n-1}, the second copy's first token) —
 *       over {@code j = 0 .. n-1} and the batch;</li>
 *   <li><b>duplicate-token</b>: the mean attention from {@code n + j} to {@code j} — the token's first occurrence —
 *       over {@code j = 0 .. n-1} and the batch.</li>
 * </ul>
 *
 * <p>Each score lies in [0, 1]: 1 means the head puts all its attention there. A layer whose sliding or local window
 * does not reach back as far as a score looks (1 position, {@code n - 1}, {@code n}) gets NaN for it: its heads cannot
 * attend there, which says nothing of what they would do, where a 0 would read as "not such a head"; a chunked layer
 * (llama4) averages over the queries whose key lies in their chunk alone, NaN where none does; so does a
 * layer without heads ({@link HookedAutoConfig#attentionHeads}: linear attention, a short convolution), which has no
 * pattern. The model runs
 * once, caching only the attention patterns (so hooks added with {@link HookedAutoModel#addHook} that rewrite a pattern
 * are seen); a pattern that holds NaN (from NaN weights, or a hook) gives NaN scores too. Random tokens may repeat
 * inside the first copy; as in the fixed-offset scores of Olsson et al. and ARENA, this is not corrected for
 * (TransformerLens's {@code detect_head} builds its induction and duplicate patterns from token equality, so it counts
 * such repeats).
 *
 * <p>With a beginning-of-sequence token ({@link #detect(HookedAutoModel, int, int, long, OptionalLong)}) every row
 * starts with it, as TransformerLens's {@code to_tokens} prepends one by default: pretrained models park attention on
 * their first position, and without it the first random token takes that role. The positions above then count from
 * the token after it, and attention to it counts for no score.
 */
public final class HeadDetectors {
    private HeadDetectors() {
    }

    /**
     * The scores, each {@code [layers, heads]} float32 on the CPU. Closing the record frees the three tensors.
     *
     * @param previousToken mean attention from {@code i} to {@code i - 1}
     * @param induction mean attention from {@code n + j} to {@code j + 1}
     * @param duplicateToken mean attention from {@code n + j} to {@code j}
     */
    public record Scores(Tensor previousToken, Tensor induction, Tensor duplicateToken) implements AutoCloseable {
        @Override
        public void close() {
            previousToken.close();
            induction.close();
            duplicateToken.close();
        }
    }

    /**
     * The seeded repeated random tokens {@code [batch, 2 * seqLen]}: {@code batch} rows of {@code seqLen} ids drawn
     * uniformly from {@code [0, vocab)} by {@code new Generator(seed)}, each row followed by itself.
     */
    public static Tensor repeatedTokens(HookedAutoModel model, int seqLen, int batch, long seed) {
        return repeatedTokens(model, seqLen, batch, seed, OptionalLong.empty());
    }

    /** {@link #repeatedTokens(HookedAutoModel, int, int, long)}, each row after {@code bos} where it is present. */
    public static Tensor repeatedTokens(HookedAutoModel model, int seqLen, int batch, long seed, OptionalLong bos) {
        check(model, seqLen, batch, bos);
        try (TensorScope scope = TensorScope.open()) {
            Tensor first = Tensor.randint(new Generator(seed), 0, model.config().vocabSize(), new long[] {batch, seqLen},
                    Device.CPU);
            List<Tensor> parts = new ArrayList<>();
            if (bos.isPresent()) {
                parts.add(Tensor.full(new long[] {batch, 1}, bos.getAsLong(), DType.INT64, Device.CPU));
            }
            parts.add(first);
            parts.add(first);
            return scope.keep(Tensor.cat(parts, 1));
        }
    }

    /**
     * Runs {@code model} once on {@link #repeatedTokens} and scores every head.
     *
     * @param seqLen the length {@code n} of each random sequence (at least 2; {@code 2 n} must fit the model's
     *     positions)
     * @param batch how many sequences (at least 1)
     * @param seed the seed of the token draw
     * @throws IllegalArgumentException on a seqLen below 2, a batch below 1, or {@code 2 seqLen} over the model's
     *     maximum positions
     */
    public static Scores detect(HookedAutoModel model, int seqLen, int batch, long seed) {
        return detect(model, seqLen, batch, seed, OptionalLong.empty());
    }

    /**
     * {@link #detect(HookedAutoModel, int, int, long)} on rows that start with {@code bos} where it is present (see
     * the class comment); {@code 2 seqLen + 1} positions must then fit the model.
     *
     * @throws IllegalArgumentException also on a {@code bos} outside the vocabulary
     */
    public static Scores detect(HookedAutoModel model, int seqLen, int batch, long seed, OptionalLong bos) {
        check(model, seqLen, batch, bos);
        HookedAutoConfig c = model.config();
        int layers = c.nLayers();
        int o = bos.isPresent() ? 1 : 0; // where the repeated tokens start
        List<String> names = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            if (c.attentionHeads(l)) {
                names.add(pattern(l));
            }
        }
        try (TensorScope scope = TensorScope.open()) {
            Tensor ids = repeatedTokens(model, seqLen, batch, seed, bos);
            List<Tensor> p = new ArrayList<>();
            List<Tensor> in = new ArrayList<>();
            List<Tensor> d = new ArrayList<>();
            try (ModelOutput out = model.forward(ids, CacheSpec.only(names.toArray(String[]::new)))) {
                ActivationCache cache = out.cache();
                for (int l = 0; l < layers; l++) {
                    if (!c.attentionHeads(l)) { // no pattern to score
                        Tensor none = Tensor.full(new long[] {c.nHeads()}, Double.NaN, DType.FLOAT32, model.device());
                        p.add(none);
                        in.add(none);
                        d.add(none);
                        continue;
                    }
                    Tensor pattern = cache.get(pattern(l)).to(DType.FLOAT32); // [batch, head, query, key]
                    int window = window(c, l);
                    int chunk = c.attentionChunk(l);
                    // each query of the repeat looks back seqLen - 1 keys (the token after its first occurrence) for
                    // induction, seqLen (the first occurrence itself) for duplicates; every query but the first one
                    // back 1 for the previous token
                    p.add(score(pattern, window, chunk, 1, o, 2L * seqLen - 1));
                    in.add(score(pattern, window, chunk, seqLen - 1, o + 1, seqLen));
                    d.add(score(pattern, window, chunk, seqLen, o, seqLen));
                }
            }
            return new Scores(scope.keep(Tensor.stack(p, 0).to(Device.CPU)), scope.keep(Tensor.stack(in, 0).to(Device.CPU)),
                    scope.keep(Tensor.stack(d, 0).to(Device.CPU)));
        }
    }

    private static String pattern(int layer) {
        return "blocks." + layer + ".attn.hook_pattern";
    }

    /** How many positions a query of {@code layer} sees, its own included; 0 for every earlier one. */
    private static int window(HookedAutoConfig c, int layer) {
        if (c.isSlidingWindowLayer(layer)) {
            return c.slidingWindow().orElse(0);
        }
        return c.isLocalAttentionLayer(layer) ? c.localWindow() : 0;
    }

    /**
     * The mean attention of {@code count} queries to the key {@code distance} positions back, averaged over the batch:
     * {@code [head]}; the queries are entries {@code first ..} of that diagonal of the pattern (the keys at
     * {@code first ..}), in a chunked layer (a {@code chunk} other than 0) those whose key lies in their chunk alone.
     * NaN where the layer's window (0: none) does not reach {@code distance} positions back, or no query's chunk does.
     */
    private static Tensor score(Tensor pattern, int window, int chunk, int distance, long first, long count) {
        Tensor diagonal = pattern.diagonal(-distance, 2, 3).narrow(2, first, count);
        double[] seen = new double[(int) count];
        int queries = 0;
        for (int j = 0; j < count; j++) {
            long key = first + j;
            if (chunk == 0 || (key + distance) / chunk == key / chunk) {
                seen[j] = 1;
                queries++;
            }
        }
        if (window > 0 && distance >= window || queries == 0) {
            return Tensor.full(new long[] {pattern.size(1)}, Double.NaN, DType.FLOAT32, pattern.device());
        }
        if (queries == count) {
            return diagonal.sum(2, false).mean(0, false).div(count);
        }
        try (Tensor host = Tensor.of(seen, count); Tensor mask = host.to(DType.FLOAT32, pattern.device())) {
            return diagonal.mul(mask).sum(2, false).mean(0, false).div(queries);
        }
    }

    /**
     * The head with the highest score in a {@code [layers, heads]} score tensor, NaN scores left out (the first of
     * equal ones).
     *
     * @throws IllegalArgumentException when every score is NaN
     */
    public static Head argmax(Tensor scores) {
        if (scores.dim() != 2) {
            throw new IllegalArgumentException("scores must be [layers, heads], got shape "
                    + java.util.Arrays.toString(scores.shape()));
        }
        int heads = (int) scores.size(1);
        double[] values = scores.toDoubleArray(); // path patching's effects are float64: close ones must not tie
        int best = -1;
        for (int i = 0; i < values.length; i++) {
            if (!Double.isNaN(values[i]) && (best < 0 || values[i] > values[best])) {
                best = i;
            }
        }
        if (best < 0) {
            throw new IllegalArgumentException("no head has a score: every layer's window is too short for it");
        }
        return new Head(best / heads, best % heads);
    }

    /**
     * Refuses, before any work, what {@link #detect(HookedAutoModel, int, int, long, OptionalLong)} would refuse for
     * these inputs.
     *
     * @throws IllegalArgumentException as {@code detect} does
     */
    public static void check(HookedAutoModel model, int seqLen, int batch, OptionalLong bos) {
        if (model == null) {
            throw new IllegalArgumentException("model is null");
        }
        if (seqLen < 2) {
            throw new IllegalArgumentException("seqLen must be at least 2 (the induction score needs a token after the"
                    + " first occurrence), got " + seqLen);
        }
        if (batch < 1) {
            throw new IllegalArgumentException("batch must be at least 1, got " + batch);
        }
        long vocab = model.config().vocabSize();
        if (bos.isPresent() && (bos.getAsLong() < 0 || bos.getAsLong() >= vocab)) {
            throw new IllegalArgumentException("the beginning-of-sequence token " + bos.getAsLong() + " is outside the"
                    + " vocabulary [0, " + vocab + ")");
        }
        long max = model.config().longestPass();
        long positions = 2L * seqLen + (bos.isPresent() ? 1 : 0);
        long least = 4 + (bos.isPresent() ? 1 : 0);
        if (max < least) {
            throw new IllegalArgumentException("the model takes " + max + " positions, too few for the head detectors:"
                    + " the shortest repeated sequence (seqLen 2) has " + (bos.isPresent() ? "1 + " : "") + "2 * 2 = "
                    + least);
        }
        if (positions > max) {
            throw new IllegalArgumentException("the repeated sequence has " + (bos.isPresent() ? "1 + " : "") + "2 * "
                    + seqLen + " = " + positions + " positions but the model has " + max + "; use seqLen <= "
                    + ((max - (bos.isPresent() ? 1 : 0)) / 2));
        }
        // the cached patterns of every layer, at least, are held at once: refuse what cannot fit before allocating
        HookedAutoConfig c = model.config();
        double patternBytes = (double) c.nLayers() * batch * c.nHeads() * positions * positions
                * model.dtype().byteSize();
        long available = model.device().isCpu() ? HostMemory.availableBytes() : -1;
        if (available >= 0 && patternBytes > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "a batch of %,d sequences of %,d positions"
                    + " needs %.1f GiB for the attention patterns of %d layers, but %.1f GiB of memory is available;"
                    + " use a smaller batch or seqLen", batch, positions, patternBytes / (1L << 30), c.nLayers(),
                    available / (double) (1L << 30)));
        }
    }
}

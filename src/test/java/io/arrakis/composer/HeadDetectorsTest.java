package io.arrakis.composer;

import io.arrakis.model.CacheSpec;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.function.IntUnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HeadDetectorsTest {
    private static final int N = 8;
    private static final int BATCH = 3;

    static HookedAutoConfig tinyGpt2(int layers) {
        return HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 32, "n_layer", layers, "n_head", 4, "vocab_size", 64,
                "n_positions", 32));
    }

    /**
     * A hook that overwrites one head's pattern with a one-hot pattern: query q attends only to key {@code target(q)}
     * (which must be ≤ q, so the pattern stays causal and each row sums to 1).
     */
    static HookSpec forceHead(int layer, int head, IntUnaryOperator target) {
        return HookSpec.at("blocks." + layer + ".attn.hook_pattern", (pattern, name) -> {
            int t = (int) pattern.size(2);
            float[] m = new float[t * t];
            for (int q = 0; q < t; q++) {
                int k = target.applyAsInt(q);
                if (k < 0 || k > q) {
                    throw new IllegalStateException("not causal: " + q + " -> " + k);
                }
                m[q * t + k] = 1f;
            }
            Tensor forced = Tensor.of(m, 1, 1, t, t).to(pattern.dtype())
                    .expand(pattern.size(0), 1, t, t);
            List<Tensor> parts = new ArrayList<>();
            if (head > 0) {
                parts.add(pattern.narrow(1, 0, head));
            }
            parts.add(forced);
            if (head < pattern.size(1) - 1) {
                parts.add(pattern.narrow(1, head + 1, pattern.size(1) - head - 1));
            }
            return Tensor.cat(parts, 1);
        });
    }

    static final IntUnaryOperator PREVIOUS = q -> Math.max(q - 1, 0);
    static final IntUnaryOperator INDUCTION = q -> q >= N ? q - N + 1 : 0;
    static final IntUnaryOperator DUPLICATE = q -> q >= N ? q - N : q;

    private static float at(Tensor scores, Head h) {
        return scores.toFloatArray()[h.layer() * (int) scores.size(1) + h.index()];
    }

    @Test
    void aHeadForcedOntoThePreviousTokenScoresOneAndIsTheArgmax() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2(2), 1, DType.FLOAT32, Device.CPU);
             var hook = model.addHook(forceHead(0, 1, PREVIOUS));
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 7)) {
            assertArrayEquals(new long[] {2, 4}, s.previousToken().shape());
            assertEquals(1.0, at(s.previousToken(), new Head(0, 1)), 1e-6);
            assertEquals(new Head(0, 1), HeadDetectors.argmax(s.previousToken()));
            float[] prev = s.previousToken().toFloatArray();
            for (int i = 0; i < prev.length; i++) {
                if (i != 1) {
                    assertTrue(prev[i] < 0.6, "an unforced random head scores " + prev[i]);
                }
            }
            // a previous-token head attends from n+j to n+j-1, never to j+1 or j (j+1 = n+j-1 only for n = 2)
            assertEquals(0.0, at(s.induction(), new Head(0, 1)), 1e-6);
            assertEquals(0.0, at(s.duplicateToken(), new Head(0, 1)), 1e-6);
        }
    }

    @Test
    void theHandBuiltInductionCircuitIsSingledOut() {
        // layer 0 head 2: previous-token head; layer 1 head 3: the induction head it K-composes with (its pattern
        // forced to n+j -> j+1); layer 1 head 0: a duplicate-token head (n+j -> j)
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2(2), 2, DType.FLOAT32, Device.CPU);
             var h1 = model.addHook(forceHead(0, 2, PREVIOUS));
             var h2 = model.addHook(forceHead(1, 3, INDUCTION));
             var h3 = model.addHook(forceHead(1, 0, DUPLICATE));
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 3)) {
            assertEquals(new Head(1, 3), HeadDetectors.argmax(s.induction()));
            assertEquals(1.0, at(s.induction(), new Head(1, 3)), 1e-6);
            assertEquals(new Head(0, 2), HeadDetectors.argmax(s.previousToken()));
            assertEquals(new Head(1, 0), HeadDetectors.argmax(s.duplicateToken()));
            assertEquals(1.0, at(s.duplicateToken(), new Head(1, 0)), 1e-6);
            float[] ind = s.induction().toFloatArray();
            for (int i = 0; i < ind.length; i++) {
                if (i != 4 + 3) {
                    assertTrue(ind[i] < 0.5, "head " + i + " has induction score " + ind[i]);
                }
            }
            // the induction head attends to the previous token only where j+1 = n+j-1 (never for n > 2): the
            // second copy's n-1 queries of 2n-1 give no previous-token attention; the first copy's query 1 does
            assertEquals(1.0 / (2 * N - 1), at(s.previousToken(), new Head(1, 3)), 1e-6);
        }
    }

    /**
     * Was: the last second-copy query ({@code 2n-1}, the token {@code r_n}) was left out of the induction score,
     * although the token after {@code r_n}'s first occurrence (position {@code n}) is its induction target, as in
     * TransformerLens's detection pattern; a head doing induction only there scored 0.
     */
    @Test
    void theLastQueryOfTheSecondCopyIsAnInductionQueryToo() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2(1), 1, DType.FLOAT32, Device.CPU);
             var hook = model.addHook(forceHead(0, 1, q -> q == 2 * N - 1 ? N : 0));
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 4)) {
            assertEquals(1.0 / N, at(s.induction(), new Head(0, 1)), 1e-6);
        }
    }

    /**
     * With a beginning-of-sequence token every row is {@code [bos, r_1..r_n, r_1..r_n]}: the signatures are those of
     * the repeated tokens one position later, and attention to the first position counts for no score.
     */
    @Test
    void aBeginningOfSequenceTokenShiftsEverySignatureByOnePosition() {
        OptionalLong bos = OptionalLong.of(5);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2(2), 2, DType.FLOAT32, Device.CPU)) {
            long[] ids = HeadDetectors.repeatedTokens(model, N, BATCH, 3, bos).toLongArray();
            long[] plain = HeadDetectors.repeatedTokens(model, N, BATCH, 3).toLongArray();
            for (int b = 0; b < BATCH; b++) {
                assertEquals(5, ids[b * (2 * N + 1)]);
                for (int i = 0; i < 2 * N; i++) {
                    assertEquals(plain[b * 2 * N + i], ids[b * (2 * N + 1) + 1 + i]);
                }
            }
            try (var previous = model.addHook(forceHead(0, 1, q -> Math.max(q - 1, 0)));
                 var sink = model.addHook(forceHead(0, 3, q -> 0));
                 var induction = model.addHook(forceHead(1, 3, q -> q >= N + 1 ? q - N + 1 : 0));
                 var duplicate = model.addHook(forceHead(1, 0, q -> q >= N + 1 ? q - N : q));
                 HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 3, bos)) {
                assertEquals(1.0, at(s.previousToken(), new Head(0, 1)), 1e-6);
                assertEquals(1.0, at(s.induction(), new Head(1, 3)), 1e-6);
                assertEquals(1.0, at(s.duplicateToken(), new Head(1, 0)), 1e-6);
                for (Tensor scores : List.of(s.previousToken(), s.induction(), s.duplicateToken())) {
                    assertEquals(0.0, at(scores, new Head(0, 3)), 0.0, "attention to the first position scores nothing");
                }
            }
        }
    }

    @Test
    void aBeginningOfSequenceTokenMustBeInTheVocabularyAndFitThePositions() {
        try (HookedAutoModel model = HookedAutoModel.create(tinyGpt2(1), 1, DType.FLOAT32, Device.CPU)) {
            assertThrows(IllegalArgumentException.class,
                    () -> HeadDetectors.detect(model, N, BATCH, 0, OptionalLong.of(64)));
            assertThrows(IllegalArgumentException.class,
                    () -> HeadDetectors.detect(model, N, BATCH, 0, OptionalLong.of(-1)));
            // 32 positions: 2 * 16 fit without it, not with it
            HeadDetectors.detect(model, 16, 1, 0).close();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> HeadDetectors.detect(model, 16, 1, 0, OptionalLong.of(1)));
            assertTrue(e.getMessage().contains("seqLen <= 15"), e.getMessage());
        }
    }

    @Test
    void scoresMatchADirectComputationFromTheCachedPatterns() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2(2).with("initializer_range", 0.3), 5,
                     DType.FLOAT32, Device.CPU);
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 11)) {
            Tensor ids = HeadDetectors.repeatedTokens(model, N, BATCH, 11);
            long[] flat = ids.toLongArray();
            for (int b = 0; b < BATCH; b++) {
                for (int j = 0; j < N; j++) {
                    assertEquals(flat[b * 2 * N + j], flat[b * 2 * N + N + j]);
                    assertTrue(flat[b * 2 * N + j] >= 0 && flat[b * 2 * N + j] < 64);
                }
            }
            int t = 2 * N;
            try (ModelOutput out = model.forward(ids, CacheSpec.all())) {
                for (int l = 0; l < 2; l++) {
                    float[] p = out.cache().get("blocks." + l + ".attn.hook_pattern").toFloatArray();
                    for (int h = 0; h < 4; h++) {
                        double prev = 0;
                        double ind = 0;
                        double dup = 0;
                        for (int b = 0; b < BATCH; b++) {
                            int base = (b * 4 + h) * t * t;
                            for (int i = 1; i < t; i++) {
                                prev += p[base + i * t + i - 1];
                            }
                            for (int j = 0; j < N; j++) {
                                dup += p[base + (N + j) * t + j];
                                ind += p[base + (N + j) * t + j + 1];
                            }
                        }
                        Head head = new Head(l, h);
                        assertEquals(prev / BATCH / (t - 1), at(s.previousToken(), head), 1e-5);
                        assertEquals(ind / BATCH / N, at(s.induction(), head), 1e-5);
                        assertEquals(dup / BATCH / N, at(s.duplicateToken(), head), 1e-5);
                    }
                }
            }
            // the same seed gives the same scores; another seed other tokens
            try (HeadDetectors.Scores again = HeadDetectors.detect(model, N, BATCH, 11)) {
                assertTrue(again.induction().allclose(s.induction(), 0, 0));
            }
            Tensor other = HeadDetectors.repeatedTokens(model, N, BATCH, 12);
            assertTrue(!java.util.Arrays.equals(other.toLongArray(), flat));
        }
    }

    /**
     * Was: a sliding window shorter than the distance a score looks back forced it to 0, as if no head did that. Here
     * layer 0 slides with a window of {@code N}: it sees the induction position ({@code N - 1} back) but not the
     * duplicate ({@code N} back), so only the latter is NaN there; layer 1 attends in full. With a window of 1 nothing
     * reaches even the previous token. The argmax leaves NaN out.
     */
    @Test
    void layersWhoseWindowDoesNotReachAreNotScored() {
        Map<String, Object> sizes = Map.of("hidden_size", 32, "num_hidden_layers", 2, "num_attention_heads", 4,
                "num_key_value_heads", 2, "intermediate_size", 48, "vocab_size", 64, "max_position_embeddings", 32,
                "use_sliding_window", true, "sliding_window", N);
        HookedAutoConfig config = HookedAutoConfig.of("qwen2").with(sizes)
                .with("layer_types", List.of("sliding_attention", "full_attention"));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 2, DType.FLOAT32, Device.CPU);
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 0)) {
            float[] dup = s.duplicateToken().toFloatArray();
            float[] ind = s.induction().toFloatArray();
            float[] prev = s.previousToken().toFloatArray();
            for (int h = 0; h < 4; h++) {
                assertTrue(Float.isNaN(dup[h]), "layer 0 cannot see " + N + " back");
                assertTrue(!Float.isNaN(ind[h]) && !Float.isNaN(prev[h]), "layer 0 sees " + (N - 1) + " back");
                assertTrue(!Float.isNaN(dup[4 + h]) && dup[4 + h] > 0, "layer 1 attends in full");
            }
            assertEquals(1, HeadDetectors.argmax(s.duplicateToken()).layer(), "NaN is never the argmax");
        }
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config.with("sliding_window", 1)
                     .with("layer_types", List.of("sliding_attention", "sliding_attention")), 2, DType.FLOAT32, Device.CPU);
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 0)) {
            for (float v : s.previousToken().toFloatArray()) {
                assertTrue(Float.isNaN(v), "a window of 1 sees only the query itself");
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> HeadDetectors.argmax(s.previousToken()));
            assertTrue(e.getMessage().contains("window"), e.getMessage());
        }
    }

    /**
     * A chunked layer (llama4's, chunks of {@code N}: the first and the repeated tokens each fill one) scores the
     * queries whose key lies in their chunk alone: no duplicate's first occurrence does (NaN), one induction key does
     * (the last query's), and the previous token of every query but the repeat's first; the full layer scores all.
     */
    @Test
    void chunkedLayersScoreTheQueriesWhoseKeyIsInTheirChunk() {
        HookedAutoConfig config = HookedAutoConfig.fromJson(Fixtures.huggingFace("llama4").resolve("config.json"))
                .with("attention_chunk_size", N);
        int t = 2 * N;
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 4, DType.FLOAT32, Device.CPU);
             HeadDetectors.Scores s = HeadDetectors.detect(model, N, BATCH, 3);
             ModelOutput out = model.forward(HeadDetectors.repeatedTokens(model, N, BATCH, 3), CacheSpec.all())) {
            assertEquals(List.of(N, 0), List.of(config.attentionChunk(0), config.attentionChunk(3)));
            for (int l = 0; l < 4; l++) {
                float[] p = out.cache().get("blocks." + l + ".attn.hook_pattern").toFloatArray();
                boolean chunked = l < 3;
                for (int h = 0; h < 4; h++) {
                    double prev = 0;
                    double ind = 0;
                    for (int b = 0; b < BATCH; b++) {
                        int base = (b * 4 + h) * t * t;
                        for (int i = 1; i < t; i++) {
                            prev += chunked && i == N ? 0 : p[base + i * t + i - 1];
                        }
                        for (int j = chunked ? N - 1 : 0; j < N; j++) {
                            ind += p[base + (N + j) * t + j + 1];
                        }
                    }
                    Head head = new Head(l, h);
                    assertEquals(prev / BATCH / (chunked ? t - 2 : t - 1), at(s.previousToken(), head), 1e-5);
                    assertEquals(ind / BATCH / (chunked ? 1 : N), at(s.induction(), head), 1e-5);
                    assertEquals(chunked, Double.isNaN(at(s.duplicateToken(), head)), head.toString());
                }
            }
        }
    }

    @Test
    void invalidArgumentsAreRejected() {
        try (HookedAutoModel model = HookedAutoModel.create(tinyGpt2(1), 1, DType.FLOAT32, Device.CPU)) {
            assertThrows(IllegalArgumentException.class, () -> HeadDetectors.detect(model, 1, 2, 0));
            assertThrows(IllegalArgumentException.class, () -> HeadDetectors.detect(model, 4, 0, 0));
            assertThrows(IllegalArgumentException.class, () -> HeadDetectors.detect(model, 17, 1, 0)); // 34 > 32
            assertThrows(IllegalArgumentException.class, () -> HeadDetectors.detect(null, 4, 1, 0));
            // was: libtorch's allocation failed, printing its C++ stack trace
            String tooMany = assertThrows(IllegalArgumentException.class,
                    () -> HeadDetectors.detect(model, 16, Integer.MAX_VALUE, 0)).getMessage();
            assertTrue(tooMany.contains("GiB for the attention patterns") && tooMany.contains("smaller batch"), tooMany);
            try (HeadDetectors.Scores s = HeadDetectors.detect(model, 16, 1, 0)) { // 32 positions: just fits
                assertArrayEquals(new long[] {1, 4}, s.induction().shape());
            }
        }
        // was: "use seqLen <= 1", a length it refuses too
        try (HookedAutoModel shortContext = HookedAutoModel.create(tinyGpt2(1).with("n_positions", 3), 1, DType.FLOAT32,
                Device.CPU)) {
            String message = assertThrows(IllegalArgumentException.class,
                    () -> HeadDetectors.detect(shortContext, 2, 1, 0)).getMessage();
            assertTrue(message.contains("takes 3 positions, too few for the head detectors"), message);
        }
    }
}

package io.arrakis.composer;

import io.arrakis.composer.CompositionScores.Mode;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.testing.Close;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompositionScoresTest {

    static Path fixture(String name) {
        return Fixtures.dir(name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny-gqa"})
    void allPairsMatchTheReferenceScores(String name) {
        Path dir = fixture(name);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            HookedAutoConfig c = model.config();
            for (Mode mode : Mode.values()) {
                Tensor scores = CompositionScores.allPairs(model, mode);
                assertEquals(DType.FLOAT64, scores.dtype());
                assertArrayEquals(new long[] {c.nLayers(), c.nHeads(), c.nLayers(), c.nHeads()}, scores.shape());
                Close.assertAllClose(reference.tensor("composition." + mode).toDoubleArray(), scores.toDoubleArray(), 0,
                        1e-5, name + " " + mode);
            }
        }
    }

    /**
     * The composer runs on the Hugging Face fixtures of the newer families: each score is finite, in [0, 1], and zero
     * unless the sender's layer comes first.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mixtral", "gpt_oss", "qwen3_moe", "qwen2_moe"})
    void allPairsRunOnTheNewerFamilies(String modelType) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace(modelType))) {
            HookedAutoConfig c = model.config();
            int perLayer = c.nHeads() * c.nLayers() * c.nHeads();
            for (Mode mode : Mode.values()) {
                Tensor scores = CompositionScores.allPairs(model, mode);
                assertArrayEquals(new long[] {c.nLayers(), c.nHeads(), c.nLayers(), c.nHeads()}, scores.shape());
                double[] v = scores.toDoubleArray();
                double largest = 0;
                for (int i = 0; i < v.length; i++) {
                    int sender = i / perLayer;
                    int receiver = i / c.nHeads() % c.nLayers();
                    assertTrue(Double.isFinite(v[i]) && v[i] >= 0 && v[i] <= 1 + 1e-9, mode + " score " + v[i]);
                    if (sender >= receiver) {
                        assertEquals(0.0, v[i], mode + " L" + sender + " -> L" + receiver);
                    }
                    largest = Math.max(largest, v[i]);
                }
                assertTrue(largest > 0, mode + ": every score is zero");
            }
        }
    }

    @Test
    void pairAgreesWithAllPairs() {
        Path dir = fixture("llama-tiny-gqa");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            HookedAutoConfig c = model.config();
            for (Mode mode : Mode.values()) {
                double[] all = CompositionScores.allPairs(model, mode).toDoubleArray();
                for (int l1 = 0; l1 < c.nLayers(); l1++) {
                    for (int h1 = 0; h1 < c.nHeads(); h1++) {
                        for (int l2 = 0; l2 < c.nLayers(); l2++) {
                            for (int h2 = 0; h2 < c.nHeads(); h2++) {
                                int i = ((l1 * c.nHeads() + h1) * c.nLayers() + l2) * c.nHeads() + h2;
                                assertEquals(all[i], CompositionScores.pair(model, Head.of(l1, h1), Head.of(l2, h2), mode),
                                        1e-6, mode + " L" + l1 + "H" + h1 + " -> L" + l2 + "H" + h2);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * A 2-layer Llama (d_model 8, 2 heads of d_head 4) with hand-set attention weights, e_i the unit vectors:
     * <ul>
     * <li>L0H0: W_OV = e0 e4ᵀ (reads e0, writes e4), rank 1, |W_OV| = 1;</li>
     * <li>L0H1: W_OV = e0 e4ᵀ + e1 e5ᵀ, rank 2, |W_OV| = √2;</li>
     * <li>L1H0: W_QK = e6 e4ᵀ (queries read e6, keys read e4), W_OV = e4 e7ᵀ (values read e4);</li>
     * <li>L1H1: W_QK = e4 e5ᵀ (queries read e4, keys read e5), W_OV = e6 e7ᵀ (values read e6).</li>
     * </ul>
     * L0H0 → L1H0: K = |e0e4ᵀ·e4e6ᵀ| / (1·1) = 1, V = |e0e4ᵀ·e4e7ᵀ| = 1, Q = |e0e4ᵀ·e6e4ᵀ| = 0 (e4 ⟂ e6).
     * L0H0 → L1H1: Q = |e0e4ᵀ·e4e5ᵀ| = 1, K = |e0e4ᵀ·e5e4ᵀ| = 0, V = |e0e4ᵀ·e6e7ᵀ| = 0.
     * L0H1 → L1H0: K = |e0e6ᵀ| / √2 = 1/√2, V = 1/√2, Q = 0. L0H1 → L1H1: Q = |e0e5ᵀ| / √2, K = |e1e4ᵀ| / √2, V = 0.
     */
    @Test
    void handBuiltHeadsGiveTheAnalyticScores(@TempDir Path dir) throws Exception {
        int dm = 8;
        int heads = 2;
        int dh = 4;
        HookedAutoConfig config = HookedAutoConfig.of("llama").with(Map.of("hidden_size", dm, "num_hidden_layers", 2,
                "num_attention_heads", heads, "num_key_value_heads", heads, "intermediate_size", 8, "vocab_size", 16,
                "max_position_embeddings", 16));
        // TransformerLens layout: W_Q/W_K/W_V [layer][head][d_model][d_head], W_O [layer][head][d_head][d_model]
        float[][][][] wq = new float[2][heads][dm][dh];
        float[][][][] wk = new float[2][heads][dm][dh];
        float[][][][] wv = new float[2][heads][dm][dh];
        float[][][][] wo = new float[2][heads][dh][dm];
        wv[0][0][0][0] = 1;
        wo[0][0][0][4] = 1;
        wv[0][1][0][0] = 1;
        wo[0][1][0][4] = 1;
        wv[0][1][1][1] = 1;
        wo[0][1][1][5] = 1;
        wq[1][0][6][0] = 1;
        wk[1][0][4][0] = 1;
        wv[1][0][4][0] = 1;
        wo[1][0][0][7] = 1;
        wq[1][1][4][0] = 1;
        wk[1][1][5][0] = 1;
        wv[1][1][6][0] = 1;
        wo[1][1][0][7] = 1;
        writeLlama(dir, config, wq, wk, wv, wo);
        double r = Math.sqrt(0.5);
        // expected[mode][sender head][receiver head] for layer 0 -> layer 1
        Map<Mode, double[][]> expected = Map.of(
                Mode.Q, new double[][] {{0, 1}, {0, r}},
                Mode.K, new double[][] {{1, 0}, {r, r}},
                Mode.V, new double[][] {{1, 0}, {r, 0}});
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            for (Mode mode : Mode.values()) {
                double[] all = CompositionScores.allPairs(model, mode).toDoubleArray();
                for (int l1 = 0; l1 < 2; l1++) {
                    for (int h1 = 0; h1 < heads; h1++) {
                        for (int l2 = 0; l2 < 2; l2++) {
                            for (int h2 = 0; h2 < heads; h2++) {
                                double want = l1 == 0 && l2 == 1 ? expected.get(mode)[h1][h2] : 0.0;
                                String what = mode + " L" + l1 + "H" + h1 + " -> L" + l2 + "H" + h2;
                                assertEquals(want, all[((l1 * heads + h1) * 2 + l2) * heads + h2], 1e-6, what);
                                assertEquals(want, CompositionScores.pair(model, Head.of(l1, h1), Head.of(l2, h2), mode),
                                        1e-9, what + " (pair)");
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void invalidHeadsAreRejectedWithTheValidRange() {
        Path dir = fixture("llama-tiny-gqa");
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CompositionScores.pair(model, Head.of(0, 4), Head.of(1, 0), Mode.K));
            assertTrue(e.getMessage().contains("L0H4") && e.getMessage().contains("heads 0..3")
                    && e.getMessage().contains("query head"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> CompositionScores.pair(model, Head.of(0, 0), Head.of(2, 0), Mode.Q));
            assertTrue(e.getMessage().contains("receiver") && e.getMessage().contains("L2H0")
                    && e.getMessage().contains("layers 0..1"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Head.of(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> Head.of(0, -2));
        assertEquals("L0H3", Head.of(0, 3).toString());
    }

    @Test
    void theBaselineIsSeededAndCentresRandomModels() {
        Path dir = fixture("gpt2-tiny");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            CompositionScores.Options options = CompositionScores.Options.builder().baseline(true).seed(7)
                    .baselineSamples(400).build();
            CompositionScores.Result a = CompositionScores.compute(model, Mode.K, options);
            CompositionScores.Result b = CompositionScores.compute(model, Mode.K, options);
            assertEquals(a.baselineMean(), b.baselineMean(), 0);
            assertEquals(a.baselineStd(), b.baselineStd(), 0);
            assertTrue(a.baselineMean() > 0 && a.baselineMean() < 1 && a.baselineStd() > 0, a.toString());
            HookedAutoConfig c = model.config();
            double[] scores = a.scores().toDoubleArray();
            double[] corrected = a.baselineCorrected().toDoubleArray();
            double sum = 0;
            int count = 0;
            for (int l1 = 0; l1 < c.nLayers(); l1++) {
                for (int h1 = 0; h1 < c.nHeads(); h1++) {
                    for (int l2 = 0; l2 < c.nLayers(); l2++) {
                        for (int h2 = 0; h2 < c.nHeads(); h2++) {
                            int i = ((l1 * c.nHeads() + h1) * c.nLayers() + l2) * c.nHeads() + h2;
                            double want = l1 < l2 ? scores[i] - a.baselineMean() : 0.0;
                            assertEquals(want, corrected[i], 1e-12);
                            if (l1 < l2) {
                                sum += corrected[i];
                                count++;
                            }
                        }
                    }
                }
            }
            // the fixture's weights are Gaussian random: its scores are baseline samples, so they centre near 0
            assertTrue(Math.abs(sum / count) < 3 * a.baselineStd(), "mean corrected " + sum / count + ", baseline "
                    + a.baselineMean() + " ± " + a.baselineStd());
            CompositionScores.Result other = CompositionScores.compute(model, Mode.K,
                    CompositionScores.Options.builder().baseline(true).seed(8).baselineSamples(400).build());
            assertTrue(other.baselineMean() != a.baselineMean());
            assertNull(CompositionScores.compute(model, Mode.K, CompositionScores.Options.DEFAULT).baselineCorrected());
        }
    }

    @Test
    void progressIsReportedFromNothingToEveryPair() {
        Path dir = fixture("gpt2-tiny");
        List<long[]> reports = new ArrayList<>();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            CompositionScores.compute(model, Mode.V, CompositionScores.Options.builder().maxBlockElements(1)
                    .progress((done, total) -> reports.add(new long[] {done, total})).build());
        }
        // 2 layers of 4 heads: 16 (sender, later receiver) pairs, one block per receiving layer
        assertArrayEquals(new long[] {0, 16}, reports.getFirst());
        assertArrayEquals(new long[] {16, 16}, reports.getLast());
        for (int i = 1; i < reports.size(); i++) {
            assertTrue(reports.get(i)[0] > reports.get(i - 1)[0], "progress only grows");
        }
    }

    /** A Llama checkpoint in Hugging Face names with the given attention weights, everything else simple. */
    static void writeLlama(Path dir, HookedAutoConfig c, float[][][][] wq, float[][][][] wk, float[][][][] wv,
                           float[][][][] wo) throws Exception {
        int dm = c.dModel();
        int heads = c.nHeads();
        int dh = c.dHead();
        int mlp = c.dMlp();
        int vocab = c.vocabSize();
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("model.embed_tokens.weight", Tensor.of(new float[vocab * dm], vocab, dm));
            for (int l = 0; l < c.nLayers(); l++) {
                String p = "model.layers." + l + ".";
                t.put(p + "input_layernorm.weight", Tensor.ones(dm));
                t.put(p + "self_attn.q_proj.weight", inProj(wq[l], dm, dh));
                t.put(p + "self_attn.k_proj.weight", inProj(wk[l], dm, dh));
                t.put(p + "self_attn.v_proj.weight", inProj(wv[l], dm, dh));
                float[] o = new float[dm * heads * dh];           // o_proj.weight [d_model, heads·d_head]
                for (int h = 0; h < heads; h++) {
                    for (int j = 0; j < dh; j++) {
                        for (int i = 0; i < dm; i++) {
                            o[i * heads * dh + h * dh + j] = wo[l][h][j][i];
                        }
                    }
                }
                t.put(p + "self_attn.o_proj.weight", Tensor.of(o, dm, (long) heads * dh));
                t.put(p + "post_attention_layernorm.weight", Tensor.ones(dm));
                t.put(p + "mlp.gate_proj.weight", Tensor.of(new float[mlp * dm], mlp, dm));
                t.put(p + "mlp.up_proj.weight", Tensor.of(new float[mlp * dm], mlp, dm));
                t.put(p + "mlp.down_proj.weight", Tensor.of(new float[dm * mlp], dm, mlp));
            }
            t.put("model.norm.weight", Tensor.ones(dm));
            if (!c.tiedEmbeddings()) {
                t.put("lm_head.weight", Tensor.of(new float[vocab * dm], vocab, dm));
            }
            Fixtures.writeCheckpoint(c, t, dir);
        }
    }

    /** q/k/v_proj.weight [heads·d_head, d_model] from per-head [head][d_model][d_head]. */
    private static Tensor inProj(float[][][] w, int dm, int dh) {
        int heads = w.length;
        float[] out = new float[heads * dh * dm];
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < dh; j++) {
                for (int i = 0; i < dm; i++) {
                    out[(h * dh + j) * dm + i] = w[h][i][j];
                }
            }
        }
        return Tensor.of(out, (long) heads * dh, dm);
    }

    /**
     * A head whose weights hold NaN (a checkpoint being debugged) has NaN scores as a sender, which a score table shows
     * as pairs without a score; every other pair keeps its score, a zero head beside it (whose Gram matrix is
     * singular, so that its layer is decomposed another way) included.
     */
    @Test
    void aHeadWithNaNWeightsHasNaNScoresAndTheOthersTheirOwn(@TempDir Path dir) throws Exception {
        Path clean = fixture("gpt2-tiny");
        Fixtures.writeEdited(clean, dir, (name, t) -> {
            if (!name.equals("transformer.h.0.attn.c_attn.weight")) {
                return t;
            }
            // Conv1D [d_model, 3 d_model]: the value columns start at 2 d_model, head 0's first
            float[] values = t.toFloatArray();
            values[2 * 32] = Float.NaN;
            for (int row = 0; row < 32; row++) { // head 1's values: zero
                java.util.Arrays.fill(values, row * 96 + 2 * 32 + 8, row * 96 + 2 * 32 + 16, 0f);
            }
            return Tensor.of(values, t.shape());
        });
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             HookedAutoModel reference = HookedAutoModel.fromPretrained(clean)) {
            for (Mode mode : Mode.values()) {
                double[] scores = CompositionScores.allPairs(model, mode).toDoubleArray();
                double[] expected = CompositionScores.allPairs(reference, mode).toDoubleArray();
                for (int i = 0; i < scores.length; i++) { // [l1, h1, l2, h2] of 2 layers and 4 heads
                    int l1 = i / 32;
                    int h1 = i / 8 % 4;
                    int l2 = i / 4 % 2;
                    if (l1 == 0 && h1 == 0 && l2 == 1) {
                        assertTrue(Double.isNaN(scores[i]), mode + " L0H0 -> L1H" + i % 4 + ": " + scores[i]);
                    } else if (l1 == 0 && h1 == 1) {
                        assertEquals(0.0, scores[i], mode + " L0H1, a zero head");
                    } else {
                        assertEquals(expected[i], scores[i], 1e-6, mode + " pair " + i);
                    }
                }
                assertTrue(Double.isNaN(CompositionScores.pair(model, Head.of(0, 0), Head.of(1, 2), mode)));
                assertEquals(CompositionScores.pair(reference, Head.of(0, 2), Head.of(1, 2), mode),
                        CompositionScores.pair(model, Head.of(0, 2), Head.of(1, 2), mode), mode.name());
                assertEquals(0.0, CompositionScores.pair(model, Head.of(0, 1), Head.of(1, 2), mode));
            }
        }
    }

    /**
     * The baseline's samples split between pairs of head widths in proportion to the pairs of layers with each, by
     * largest remainder: 3, 5, 1 and 1 pairs of 10 take 15, 25, 5 and 5 of 50 samples; thirds of 10 give the extra one
     * to the first; 2 to 1 of 4 is 2.67 and 1.33, the larger remainder rounding up.
     */
    @Test
    void baselineSamplesAreSharedByLargestRemainder() {
        assertArrayEquals(new int[] {15, 25, 5, 5}, CompositionScores.shares(new long[] {3, 5, 1, 1}, 50));
        assertArrayEquals(new int[] {4, 3, 3}, CompositionScores.shares(new long[] {1, 1, 1}, 10));
        assertArrayEquals(new int[] {3, 1}, CompositionScores.shares(new long[] {2, 1}, 4));
        assertArrayEquals(new int[] {7}, CompositionScores.shares(new long[] {6}, 7));
    }
}

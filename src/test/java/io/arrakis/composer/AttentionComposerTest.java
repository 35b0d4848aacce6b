package io.arrakis.composer;

import io.arrakis.composer.AttentionComposer.HeadComposition;
import io.arrakis.composer.CompositionScores.Mode;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AttentionComposerTest {
    private static final Tensor IDS = Tensor.of(new long[] {5, 9, 2, 33, 4, 17, 8, 1, 60, 12, 3, 44, 7, 7, 21, 2}, 2, 8);

    private static Path gpt2Tiny() {
        return CompositionScoresTest.fixture("gpt2-tiny");
    }

    /** A tiny llama with grouped-query attention (rotary, RMSNorm), large weights so one head's effect is visible. */
    private static HookedAutoModel llamaGqa() {
        HookedAutoConfig c = HookedAutoConfig.of("llama").with(Map.of("hidden_size", 32, "num_hidden_layers", 2,
                "num_attention_heads", 4, "num_key_value_heads", 2, "intermediate_size", 48, "vocab_size", 64,
                "max_position_embeddings", 16, "initializer_range", 0.3));
        return HookedAutoModel.create(c, 11, DType.FLOAT32, Device.CPU);
    }

    private static double maxAbsDiff(Tensor a, Tensor b) {
        try (Tensor d = a.to(DType.FLOAT64).sub(b.to(DType.FLOAT64)).abs(); Tensor m = d.max()) {
            return m.item();
        }
    }

    // ------------------------------------------------------------------------------------------------ headComposition

    @Test
    void headCompositionAveragesTheWeightsExactly() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2Tiny())) {
            HookedAutoConfig c = model.config();
            int dm = c.dModel();
            int dh = c.dHead();
            int heads = c.nHeads();
            Head h1 = Head.of(0, 1);
            Head h2 = Head.of(1, 3);
            double alpha = 0.3;
            AttentionComposer composer = new AttentionComposer(model);
            try (HeadComposition hc = composer.headComposition(h1, h2, alpha)) {
                float[] wq = model.W_Q().toFloatArray();
                float[] wk = model.W_K(true).toFloatArray();
                float[] wv = model.W_V(true).toFloatArray();
                float[] wo = model.W_O().toFloatArray();
                assertArrayEquals(new long[] {dm, dh}, hc.wQ().shape());
                assertArrayEquals(new long[] {dm, dh}, hc.wK().shape());
                assertArrayEquals(new long[] {dm, dh}, hc.wV().shape());
                assertArrayEquals(new long[] {dh, dm}, hc.wO().shape());
                float[] gq = hc.wQ().toFloatArray();
                float[] gk = hc.wK().toFloatArray();
                float[] gv = hc.wV().toFloatArray();
                float[] go = hc.wO().toFloatArray();
                int off1 = (h1.layer() * heads + h1.index()) * dm * dh;
                int off2 = (h2.layer() * heads + h2.index()) * dm * dh;
                for (int i = 0; i < dm * dh; i++) {
                    assertEquals((wq[off1 + i] + wq[off2 + i]) / 2.0, gq[i], 1e-7, "W_Q " + i);
                    assertEquals((wk[off1 + i] + wk[off2 + i]) / 2.0, gk[i], 1e-7, "W_K " + i);
                    assertEquals((wv[off1 + i] + wv[off2 + i]) / 2.0, gv[i], 1e-7, "W_V " + i);
                    assertEquals(alpha * wo[off1 + i] + (1 - alpha) * wo[off2 + i], go[i], 1e-6, "W_O " + i);
                }
                assertEquals(CompositionScores.pair(model, h1, h2, Mode.Q), hc.qComposition(), 1e-12);
                assertEquals(CompositionScores.pair(model, h1, h2, Mode.K), hc.kComposition(), 1e-12);
                assertEquals(CompositionScores.pair(model, h1, h2, Mode.V), hc.vComposition(), 1e-12);
                assertTrue(hc.qComposition() > 0 && hc.kComposition() > 0 && hc.vComposition() > 0, hc.toString());
                assertTrue(hc.toString().contains("L0H1") && hc.toString().contains("L1H3"), hc.toString());
            }
            // same layer, or backwards: no composition
            try (HeadComposition hc = composer.headComposition(h2, h1, 1.0)) {
                assertEquals(0.0, hc.qComposition());
                assertEquals(0.0, hc.kComposition());
                assertEquals(0.0, hc.vComposition());
            }
        }
    }

    @Test
    void headCompositionRejectsBadAlphaAndHeads() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2Tiny())) {
            AttentionComposer composer = new AttentionComposer(model);
            Head a = Head.of(0, 0);
            Head b = Head.of(0, 1);
            for (double alpha : new double[] {-0.01, 1.01, Double.NaN, Double.POSITIVE_INFINITY}) {
                assertThrows(IllegalArgumentException.class, () -> composer.headComposition(a, b, alpha), "alpha " + alpha);
            }
            composer.headComposition(a, b, 0.0).close();
            composer.headComposition(a, b, 1.0).close();
            // Arrakis's default alpha, 0.5: the output weights averaged, as the explicit call gives them
            try (HeadComposition byDefault = composer.headComposition(a, b);
                 HeadComposition half = composer.headComposition(a, b, 0.5)) {
                assertEquals(0.5, byDefault.alpha());
                assertTrue(byDefault.wO().allclose(half.wO(), 0, 0));
                assertTrue(byDefault.wO().allclose(model.W_O().select(0, 0).select(0, 0)
                        .add(model.W_O().select(0, 0).select(0, 1)).mul(0.5), 1e-6, 1e-6));
            }
            assertThrows(IllegalArgumentException.class, () -> composer.headComposition(Head.of(2, 0), b, 0.5));
            assertThrows(IllegalArgumentException.class, () -> composer.headComposition(a, Head.of(0, 4), 0.5));
            assertThrows(IllegalArgumentException.class, () -> composer.attentionPathPatching(IDS, a, Head.of(5, 0)));
        }
    }

    /**
     * Was: a composite of llama-tiny-gqa's heads, applied by gpt2-tiny's composer (both d_model 32, d_head 8), gave a
     * tensor mixing the two models' weights, biases, norms and residual streams.
     */
    @Test
    void aCompositeRunsOnlyOnTheModelWhoseHeadsItMixes() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel gpt2 = HookedAutoModel.fromPretrained(gpt2Tiny());
             HookedAutoModel llama = HookedAutoModel.fromPretrained(CompositionScoresTest.fixture("llama-tiny-gqa"))) {
            AttentionComposer composer = new AttentionComposer(gpt2);
            try (HeadComposition ofLlama = new AttentionComposer(llama).headComposition(Head.of(0, 0), Head.of(1, 3))) {
                assertArrayEquals(ofLlama.wQ().shape(), composer.headComposition(Head.of(0, 0), Head.of(1, 3)).wQ().shape());
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> composer.applyComposedHead(IDS, ofLlama));
                assertTrue(e.getMessage().contains("another model"), e.getMessage());
            }
            try (HeadComposition own = composer.headComposition(Head.of(0, 0), Head.of(1, 3))) {
                HeadComposition transposed = new HeadComposition(gpt2, own.head1(), own.head2(), own.alpha(), own.wQ(),
                        own.wK(), own.wV(), own.wQ(), 0, 0, 0);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> composer.applyComposedHead(IDS, transposed));
                assertTrue(e.getMessage().contains("W_O must be [8, 32]"), e.getMessage());
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ applyComposedHead

    /** Head (l, h)'s own contribution to hook_attn_out: its hook_z slice times its W_O slice, from a plain forward. */
    private static Tensor ownContribution(HookedAutoModel model, Tensor ids, Head h) {
        String zName = "blocks." + h.layer() + ".attn.hook_z";
        try (TensorScope scope = TensorScope.open(); ModelOutput out = model.forward(ids, CacheSpec.only(zName))) {
            Tensor z = out.cache().get(zName).select(2, h.index());                     // [batch, pos, d_head]
            Tensor wo = model.W_O().select(0, h.layer()).select(0, h.index());          // [d_head, d_model]
            return scope.keep(z.matmul(wo));
        }
    }

    private static void checkOwnHead(HookedAutoModel model, Head h) {
        AttentionComposer composer = new AttentionComposer(model);
        try (TensorScope scope = TensorScope.open(); HeadComposition hc = composer.headComposition(h, h, 1.0)) {
            Tensor composed = composer.applyComposedHead(IDS, hc);
            assertArrayEquals(new long[] {IDS.size(0), IDS.size(1), model.config().dModel()}, composed.shape());
            Tensor own = ownContribution(model, IDS, h);
            double scale = own.abs().max().item();
            assertTrue(scale > 1e-3, "the head contributes something: " + scale);
            assertTrue(maxAbsDiff(composed, own) <= 1e-5 * Math.max(1, scale),
                    h + ": composed head differs from its own contribution by " + maxAbsDiff(composed, own));
        }
    }

    @Test
    void composedHeadOfOneHeadIsThatHeadsContribution() {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2Tiny())) {
            checkOwnHead(model, Head.of(0, 2));
            checkOwnHead(model, Head.of(1, 3));
        }
        try (HookedAutoModel model = llamaGqa()) {
            checkOwnHead(model, Head.of(1, 3)); // rotary, RMSNorm, key/value head 1
        }
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("gpt_oss"))) {
            checkOwnHead(model, Head.of(0, 1)); // attention sinks, a sliding window, YaRN
            checkOwnHead(model, Head.of(1, 2));
        }
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("olmo"))) {
            checkOwnHead(model, Head.of(1, 2)); // queries, keys and values clamped by clip_qkv
        }
    }

    @Test
    void composedHeadIsLinearInAlphaAndDependsOnBothHeads() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2Tiny())) {
            AttentionComposer composer = new AttentionComposer(model);
            Head h1 = Head.of(1, 0);
            Head h2 = Head.of(1, 2);
            Tensor mixed;
            Tensor one;
            Tensor zero;
            try (HeadComposition hc = composer.headComposition(h1, h2, 0.25)) {
                mixed = composer.applyComposedHead(IDS, hc);
            }
            try (HeadComposition hc = composer.headComposition(h1, h2, 1.0)) {
                one = composer.applyComposedHead(IDS, hc);
            }
            try (HeadComposition hc = composer.headComposition(h1, h2, 0.0)) {
                zero = composer.applyComposedHead(IDS, hc);
            }
            assertTrue(maxAbsDiff(mixed, one.mul(0.25).add(zero.mul(0.75))) < 1e-5);
            assertTrue(maxAbsDiff(one, ownContribution(model, IDS, h1)) > 1e-4, "the mean Q/K/V differ from h1's");
        }
    }

    // ------------------------------------------------------------------------------------------------ attentionPathPatching

    private static void checkPathPatching(HookedAutoModel model, Head other, Head dest) {
        AttentionComposer composer = new AttentionComposer(model);
        try (TensorScope scope = TensorScope.open(); ModelOutput clean = model.forward(IDS, CacheSpec.none())) {
            Tensor same = composer.attentionPathPatching(IDS, dest, dest);
            assertArrayEquals(new long[] {IDS.size(0), IDS.size(1), model.config().vocabSize()}, same.shape());
            assertTrue(maxAbsDiff(same, clean.logits()) <= 1e-5, "src == dest: " + maxAbsDiff(same, clean.logits()));
            Tensor swapped = composer.attentionPathPatching(IDS, other, dest);
            assertArrayEquals(same.shape(), swapped.shape());
            assertTrue(maxAbsDiff(swapped, clean.logits()) > 1e-3, "src != dest: " + maxAbsDiff(swapped, clean.logits()));
            // the swap keeps the model causal: the first 4 positions' logits are those of the swap on the first 4 ids
            Tensor swappedPrefix = composer.attentionPathPatching(IDS.narrow(1, 0, 4), other, dest);
            assertTrue(maxAbsDiff(swappedPrefix, swapped.narrow(1, 0, 4)) <= 1e-5, "causal");
        }
    }

    @Test
    void attentionPathPatchingWithTheSameHeadChangesNothing() {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2Tiny())) {
            checkPathPatching(model, Head.of(0, 1), Head.of(1, 2));
            checkPathPatching(model, Head.of(1, 0), Head.of(0, 3)); // a later layer's weights on an earlier input
        }
        try (HookedAutoModel model = llamaGqa()) {
            checkPathPatching(model, Head.of(0, 0), Head.of(1, 3));
        }
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("gpt_oss"))) {
            checkPathPatching(model, Head.of(1, 0), Head.of(0, 2)); // attention sinks
        }
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("olmo"))) {
            checkPathPatching(model, Head.of(0, 3), Head.of(1, 1)); // clip_qkv
        }
    }

    // ------------------------------------------------------------------------------------------------ delegates

    @Test
    void delegatesToTheComposerTools() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2Tiny())) {
            AttentionComposer composer = new AttentionComposer(model);
            Tensor v = composer.compositionScores(Mode.V);
            assertTrue(maxAbsDiff(v, CompositionScores.allPairs(model, Mode.V)) == 0);
            try (HeadDetectors.Scores s = composer.detectHeads(6, 2, 3)) {
                assertArrayEquals(new long[] {2, 4}, s.induction().shape());
            }
            Tensor corrupted = Tensor.of(new long[] {5, 9, 2, 33, 40, 17, 8, 11, 60, 12, 30, 44, 7, 7, 21, 2}, 2, 8);
            PathPatching.Metric metric = PathPatching.Metric.logitDiff(3, 7);
            double viaComposer = composer.pathPatching(IDS, corrupted, Head.of(0, 1), Head.of(1, 2),
                    PathPatching.Route.Q, metric);
            double direct = PathPatching.patch(model, IDS, corrupted, Head.of(0, 1), Head.of(1, 2), PathPatching.Route.Q,
                    metric);
            assertEquals(direct, viaComposer, 1e-9);
        }
    }

    // ------------------------------------------------------------------------------------------------ foldLn

    @Test
    void foldLnWithUnitRmsNormWeightsChangesNothing() {
        // an RMSNorm's output is not centred, so fold_ln only scales (by 1 here) and never centres
        HookedAutoConfig c = HookedAutoConfig.of("llama").with(Map.of("hidden_size", 32, "num_hidden_layers", 3,
                "num_attention_heads", 4, "num_key_value_heads", 4, "intermediate_size", 64, "vocab_size", 64,
                "max_position_embeddings", 16));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(c, 4, DType.FLOAT32, Device.CPU)) {
            Tensor weights = model.normWeights();
            assertArrayEquals(new long[] {3, 32}, weights.shape());
            assertEquals(1.0, weights.min().item());
            assertEquals(1.0, weights.max().item());
            CompositionScores.Options fold = CompositionScores.Options.builder().foldLn(true).build();
            for (Mode mode : Mode.values()) {
                Tensor raw = CompositionScores.allPairs(model, mode);
                Tensor folded = CompositionScores.compute(model, mode, fold).scores();
                assertTrue(maxAbsDiff(raw, folded) < 1e-12, mode + ": " + maxAbsDiff(raw, folded));
            }
        }
    }

    @Test
    void foldLnMatchesScoresOfHandFoldedWeights() {
        assertMatchesHandPreparedWeights(false);
    }

    @Test
    void centerWritingWeightsMatchesScoresOfHandCentredWeights() {
        assertMatchesHandPreparedWeights(true);
    }

    @Test
    void centerWritingWeightsIsRefusedForAnRmsNormModel() {
        HookedAutoConfig c = HookedAutoConfig.of("llama").with(Map.of("hidden_size", 32, "num_hidden_layers", 2,
                "num_attention_heads", 4, "num_key_value_heads", 4, "intermediate_size", 64, "vocab_size", 64,
                "max_position_embeddings", 16));
        try (HookedAutoModel model = HookedAutoModel.create(c, 4, DType.FLOAT32, Device.CPU)) {
            CompositionScores.Options centre = CompositionScores.Options.builder().centerWritingWeights(true).build();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CompositionScores.compute(model, Mode.Q, centre));
            assertTrue(e.getMessage().contains("RMSNorm"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> CompositionScores.pair(model, Head.of(0, 0), Head.of(1, 0), Mode.V, centre));
            assertThrows(IllegalArgumentException.class, // refused as every pair is, not scored 0 as a same-layer pair
                    () -> CompositionScores.pair(model, Head.of(1, 0), Head.of(1, 1), Mode.Q, centre));
        }
    }

    /**
     * Scores with {@code foldLn} (and {@code centerWritingWeights} if asked) against TransformerLens's recipe applied
     * by hand to the checkpoint's tensors.
     */
    private static void assertMatchesHandPreparedWeights(boolean centreWriting) {
        Path dir = gpt2Tiny();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile file = SafeTensorsFile.open(dir.resolve("model.safetensors"))) {
            HookedAutoConfig c = model.config();
            int heads = c.nHeads();
            Tensor[] ln = new Tensor[c.nLayers()];
            for (int l = 0; l < c.nLayers(); l++) {
                ln[l] = file.tensor("transformer.h." + l + ".ln_1.weight").to(DType.FLOAT64).view(-1, 1); // [d_model, 1]
            }
            Tensor normWeights = model.normWeights();
            for (int l = 0; l < c.nLayers(); l++) {
                assertTrue(maxAbsDiff(normWeights.select(0, l), ln[l].view(-1)) == 0);
            }
            Tensor wq = model.W_Q().to(DType.FLOAT64);
            Tensor wk = model.W_K(true).to(DType.FLOAT64);
            Tensor wv = model.W_V(true).to(DType.FLOAT64);
            Tensor wo = model.W_O().to(DType.FLOAT64);
            if (centreWriting) { // TransformerLens: W_O minus its mean over d_model
                wo = Tensor.of(centred(wo.reshape(-1, c.dModel()).transpose(0, 1)).transpose(0, 1).toDoubleArray(),
                        wo.shape());
            }
            CompositionScores.Options fold = CompositionScores.Options.builder().foldLn(true)
                    .centerWritingWeights(centreWriting).build();
            CompositionScores.Options foldOnly = CompositionScores.Options.builder().foldLn(true).build();
            for (Mode mode : Mode.values()) {
                Tensor raw = CompositionScores.allPairs(model, mode);
                Tensor folded = CompositionScores.compute(model, mode, fold).scores();
                assertTrue(maxAbsDiff(raw, folded) > 1e-3, mode + ": folding the random ln weights changes the scores");
                if (centreWriting) {
                    Tensor notCentred = CompositionScores.compute(model, mode, foldOnly).scores();
                    assertTrue(maxAbsDiff(notCentred, folded) > 1e-4, mode + ": centring W_O changes the scores");
                }
                double[] f = folded.toDoubleArray();
                for (int h1 = 0; h1 < heads; h1++) {
                    // TransformerLens: W * ln.w[:, None], then (center_weights, after a LayerNorm) minus its d_model mean
                    Tensor ov = centred(wv.select(0, 0).select(0, h1).mul(ln[0])).matmul(wo.select(0, 0).select(0, h1));
                    for (int h2 = 0; h2 < heads; h2++) {
                        Tensor q = centred(wq.select(0, 1).select(0, h2).mul(ln[1]));
                        Tensor k = centred(wk.select(0, 1).select(0, h2).mul(ln[1]));
                        Tensor v = centred(wv.select(0, 1).select(0, h2).mul(ln[1]));
                        Tensor r = switch (mode) {
                            case Q -> q.matmul(k.transpose(0, 1));
                            case K -> k.matmul(q.transpose(0, 1));
                            case V -> v.matmul(wo.select(0, 1).select(0, h2));
                        };
                        double expected = ov.matmul(r).norm().item() / (ov.norm().item() * r.norm().item());
                        int index = ((0 * heads + h1) * c.nLayers() + 1) * heads + h2;
                        // all pairs: one float32 product; pair: float64 throughout
                        assertEquals(expected, f[index], 1e-6, mode + " L0H" + h1 + " -> L1H" + h2);
                        assertEquals(expected, CompositionScores.pair(model, Head.of(0, h1), Head.of(1, h2), mode, fold),
                                1e-9);
                    }
                }
            }
        }
    }

    /**
     * {@code foldLn} on a model with RMSNorm and grouped-query attention, against TransformerLens's recipe applied by
     * hand to the checkpoint's own tensors: each head's {@code W_Q}, {@code W_K}, {@code W_V} (query head {@code h}
     * reads key and value head {@code h / (heads / kvHeads)}) times {@code input_layernorm.weight} over d_model, with no
     * centring after an RMSNorm.
     */
    @Test
    void foldLnOnAnRmsNormGqaModelMatchesScoresOfWeightsFoldedByHandFromTheCheckpoint() {
        Path dir = CompositionScoresTest.fixture("llama-tiny-gqa");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile file = SafeTensorsFile.open(dir.resolve("model.safetensors"))) {
            HookedAutoConfig c = model.config();
            int heads = c.nHeads();
            int group = heads / c.nKvHeads();
            long dh = c.dHead();
            CompositionScores.Options fold = CompositionScores.Options.builder().foldLn(true).build();
            for (Mode mode : Mode.values()) {
                double[] f = CompositionScores.compute(model, mode, fold).scores().toDoubleArray();
                for (int h1 = 0; h1 < heads; h1++) {
                    Tensor ov = headIn(file, 0, "v_proj", h1 / group, dh).matmul(headOut(file, 0, h1, dh));
                    for (int h2 = 0; h2 < heads; h2++) {
                        Tensor q = headIn(file, 1, "q_proj", h2, dh);
                        Tensor k = headIn(file, 1, "k_proj", h2 / group, dh);
                        Tensor r = switch (mode) {
                            case Q -> q.matmul(k.transpose(0, 1));
                            case K -> k.matmul(q.transpose(0, 1));
                            case V -> headIn(file, 1, "v_proj", h2 / group, dh).matmul(headOut(file, 1, h2, dh));
                        };
                        double expected = ov.matmul(r).norm().item() / (ov.norm().item() * r.norm().item());
                        int index = ((0 * heads + h1) * c.nLayers() + 1) * heads + h2;
                        assertEquals(expected, f[index], 1e-6, mode + " L0H" + h1 + " -> L1H" + h2);
                    }
                }
            }
        }
    }

    /** Head {@code h}'s {@code [d_model, d_head]} input weight of a llama projection, folded with the layer's RMSNorm. */
    private static Tensor headIn(SafeTensorsFile file, int layer, String projection, int h, long dh) {
        String prefix = "model.layers." + layer + ".";
        Tensor rows = file.tensor(prefix + "self_attn." + projection + ".weight").to(DType.FLOAT64).narrow(0, h * dh, dh);
        Tensor norm = file.tensor(prefix + "input_layernorm.weight").to(DType.FLOAT64).view(-1, 1);
        return rows.transpose(0, 1).mul(norm);
    }

    /** Head {@code h}'s {@code [d_head, d_model]} output weight, from the columns of {@code o_proj}. */
    private static Tensor headOut(SafeTensorsFile file, int layer, int h, long dh) {
        Tensor o = file.tensor("model.layers." + layer + ".self_attn.o_proj.weight").to(DType.FLOAT64);
        return o.narrow(1, h * dh, dh).transpose(0, 1);
    }

    /** Each column minus its mean over the rows (d_model), computed in plain Java. */
    private static Tensor centred(Tensor w) {
        long rows = w.size(0);
        long cols = w.size(1);
        double[] x = w.toDoubleArray();
        for (int j = 0; j < cols; j++) {
            double mean = 0;
            for (int i = 0; i < rows; i++) {
                mean += x[(int) (i * cols + j)];
            }
            mean /= rows;
            for (int i = 0; i < rows; i++) {
                x[(int) (i * cols + j)] -= mean;
            }
        }
        return Tensor.of(x, rows, cols);
    }
}

package io.arrakis.composer;

import io.arrakis.composer.AttentionComposer.HeadComposition;
import io.arrakis.composer.CompositionScores.Mode;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The composer on the fixture models of the families with query/key norms, output norms and soft-capping (qwen3, olmo2,
 * gemma2, gemma3, and nanochat, whose norms follow the rotation): composition scores by their definition in
 * {@link CompositionScores} (norm scales folded into W_Q, W_K and W_O), composite heads and weight swaps computed as
 * the forward pass computes a head.
 */
class ComposerOnQkNormFamiliesTest {
    private static final Tensor IDS = Tensor.of(new long[] {5, 9, 2, 33, 4, 17, 8, 1, 60, 12, 3, 44, 7, 7, 21, 2}, 2, 8);

    private static HookedAutoModel load(String family) {
        return HookedAutoModel.fromPretrained(Fixtures.huggingFace(family));
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "olmo2", "gemma2", "gemma3"})
    void allPairsScoresAreFiniteFractionsOfEarlierToLaterHeads(String family) {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = load(family)) {
            int layers = model.config().nLayers();
            int heads = model.config().nHeads();
            for (Mode mode : Mode.values()) {
                Tensor scores = CompositionScores.allPairs(model, mode);
                assertArrayEquals(new long[] {layers, heads, layers, heads}, scores.shape());
                double[] s = scores.toDoubleArray();
                double positive = 0;
                for (int i = 0; i < s.length; i++) {
                    int l1 = i / (heads * layers * heads);
                    int l2 = i / heads % layers;
                    assertTrue(Double.isFinite(s[i]) && s[i] >= 0 && s[i] <= 1, family + " " + mode + ": " + s[i]);
                    if (l1 >= l2) {
                        assertEquals(0.0, s[i], family + " " + mode + ": no composition from a layer to itself or back");
                    }
                    positive = Math.max(positive, s[i]);
                }
                assertTrue(positive > 0.01, family + " " + mode + " scores something: " + positive);
                // the one-pair path computes the same score
                assertEquals(s[((0 * heads + 1) * layers + 1) * heads + 3],
                        CompositionScores.pair(model, Head.of(0, 1), Head.of(1, 3), mode),
                        1e-5, family + " " + mode);
            }
        }
    }

    /**
     * The definition, computed here the slow way in float64 with explicit d_model × d_model matrices: the sender's
     * W_V W_O diag(s_out) against the receiver's W_Q diag(s_q ⊙ s_k) W_Kᵀ, with s the effective norm scales.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "gemma2", "gemma3", "olmo2"})
    void qCompositionFoldsTheNormScalesIntoTheCircuits(String family) {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = load(family)) {
            Head sender = Head.of(0, 2);
            Head receiver = Head.of(1, 1);
            Tensor wv = model.W_V(0, true).select(0, sender.index()).to(DType.FLOAT64);     // [d_model, d_head]
            Tensor wo = model.W_O(0).select(0, sender.index()).to(DType.FLOAT64);           // [d_head, d_model]
            Tensor wq = model.W_Q(1).select(0, receiver.index()).to(DType.FLOAT64);
            Tensor wk = model.W_K(1, true).select(0, receiver.index()).to(DType.FLOAT64);
            Tensor outScales = model.attentionOutNormWeights();
            if (outScales != null) {
                wo = wo.mul(outScales.select(0, 0).to(DType.FLOAT64));
            }
            Tensor qScales = model.queryNormWeights();
            if (qScales != null) {
                wq = wq.mul(qScales.select(0, 1).select(0, receiver.index()).to(DType.FLOAT64));
                wk = wk.mul(model.keyNormWeights(true).select(0, 1).select(0, receiver.index()).to(DType.FLOAT64));
            }
            Tensor ov = wv.matmul(wo);
            Tensor qk = wq.matmul(wk.transpose(0, 1));
            double expected = ov.matmul(qk).norm().item() / (ov.norm().item() * qk.norm().item());
            assertEquals(expected, CompositionScores.pair(model, sender, receiver, Mode.Q), 1e-9, family);
            assertEquals(expected, CompositionScores.allPairs(model, Mode.Q).select(0, 0).select(0, 2).select(0, 1)
                    .select(0, 1).item(), 1e-5, family);
            if (qScales != null || outScales != null) { // the fixtures' norm weights are not ones: folding matters
                Tensor rawQk = model.W_Q(1).select(0, 1).to(DType.FLOAT64)
                        .matmul(model.W_K(1, true).select(0, 1).to(DType.FLOAT64).transpose(0, 1));
                Tensor rawOv = wv.matmul(model.W_O(0).select(0, 2).to(DType.FLOAT64));
                double raw = rawOv.matmul(rawQk).norm().item() / (rawOv.norm().item() * rawQk.norm().item());
                assertTrue(Math.abs(raw - expected) > 1e-4, family + ": folded " + expected + " vs raw " + raw);
            }
        }
    }

    /** A composite of a head with itself, alpha = 1, is that head's term of the attention output. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "gemma2", "gemma3", "nanochat"})
    void composedHeadOfOneHeadIsThatHeadsTerm(String family) {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = load(family)) {
            AttentionComposer composer = new AttentionComposer(model);
            for (Head h : new Head[] {Head.of(0, 3), Head.of(1, 0)}) { // a sliding and a full layer in the gemmas
                try (HeadComposition hc = composer.headComposition(h, h, 1.0);
                     ModelOutput out = model.forward(IDS, CacheSpec.only("blocks." + h.layer() + ".attn.hook_z"))) {
                    Tensor z = out.cache().get("blocks." + h.layer() + ".attn.hook_z").select(2, h.index());
                    Tensor own = z.matmul(model.W_O(h.layer()).select(0, h.index()));
                    Tensor composed = composer.applyComposedHead(IDS, hc);
                    double diff = composed.sub(own).abs().max().item();
                    assertTrue(diff <= 1e-5, family + " " + h + ": " + diff);
                    assertTrue(own.abs().max().item() > 1e-3, "the head contributes");
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "gemma2", "gemma3", "nanochat"})
    void swappingAHeadForItselfChangesNothing(String family) {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = load(family);
             ModelOutput clean = model.forward(IDS, CacheSpec.none())) {
            AttentionComposer composer = new AttentionComposer(model);
            Tensor same = composer.attentionPathPatching(IDS, Head.of(1, 2), Head.of(1, 2));
            assertTrue(same.sub(clean.logits()).abs().max().item() <= 1e-5, family);
            Tensor swapped = composer.attentionPathPatching(IDS, Head.of(0, 1), Head.of(1, 2));
            assertTrue(swapped.sub(clean.logits()).abs().max().item() > 1e-4, family + ": a swap changes the logits");
        }
    }

    /** olmo2 normalises all query heads together: one head's query has no normalised value, so composites are refused. */
    @Test
    void olmo2CompositeHeadsAreRefused() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = load("olmo2")) {
            AttentionComposer composer = new AttentionComposer(model);
            try (HeadComposition hc = composer.headComposition(Head.of(0, 0), Head.of(1, 1), 0.5)) {
                assertTrue(Double.isFinite(hc.qComposition()) && hc.qComposition() > 0, hc.toString());
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> composer.applyComposedHead(IDS, hc));
                assertTrue(e.getMessage().contains("all 4 heads together"), e.getMessage());
            }
        }
    }
}

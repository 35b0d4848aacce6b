package io.arrakis.composer;

import io.arrakis.composer.CompositionScores.Mode;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The composer on the Hugging Face models of {@code shared/fixtures-hf-more}: all-pairs composition scores have the
 * shape [layer, head, layer, head], lie in [0, 1], are zero unless the sender's layer is earlier and positive where
 * it is, and a composite head reports the same scores. Swapping a head's weights for its own recomputes its attention
 * as the forward pass does (scaling, rotary convention, window), leaving the logits unchanged.
 */
class MoreFamiliesCompositionTest {

    @ParameterizedTest
    @ValueSource(strings = {"granite", "starcoder2", "phi", "gptj", "falcon", "cohere"})
    void compositionScoresOfEveryHeadPair(String fixture) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace(fixture))) {
            HookedAutoConfig c = model.config();
            int layers = c.nLayers();
            int heads = c.nHeads();
            for (Mode mode : Mode.values()) {
                Tensor scores = CompositionScores.allPairs(model, mode);
                assertArrayEquals(new long[] {layers, heads, layers, heads}, scores.shape());
                double[] s = scores.toDoubleArray();
                for (int l1 = 0; l1 < layers; l1++) {
                    for (int h1 = 0; h1 < heads; h1++) {
                        for (int l2 = 0; l2 < layers; l2++) {
                            for (int h2 = 0; h2 < heads; h2++) {
                                double v = s[((l1 * heads + h1) * layers + l2) * heads + h2];
                                String pair = fixture + " " + mode + " L" + l1 + "H" + h1 + " -> L" + l2 + "H" + h2;
                                if (l1 < l2) {
                                    assertTrue(v > 0 && v <= 1, pair + ": " + v);
                                } else {
                                    assertEquals(0.0, v, pair);
                                }
                            }
                        }
                    }
                }
            }
            try (AttentionComposer.HeadComposition hc = new AttentionComposer(model)
                    .headComposition(Head.of(0, 1), Head.of(1, heads - 1), 0.5)) {
                assertEquals(CompositionScores.pair(model, Head.of(0, 1), Head.of(1, heads - 1), Mode.V),
                        hc.vComposition(), 1e-9);
                assertArrayEquals(new long[] {c.dModel(), c.dHead()}, hc.wQ().shape());
            }
            Tensor ids = Tensor.of(new long[] {5, 17, 3, 99, 42, 8, 61, 23}, 1, 8);
            Tensor logits = model.runWithHooks(ids);
            for (int layer = 0; layer < layers; layer++) {
                Head head = Head.of(layer, heads - 1);
                Tensor swapped = new AttentionComposer(model).attentionPathPatching(ids, head, head);
                assertTrue(swapped.allclose(logits, 1e-4, 1e-5), fixture + " " + head);
            }
        }
    }
}

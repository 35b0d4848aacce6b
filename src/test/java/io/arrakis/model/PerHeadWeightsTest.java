package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The per-head weights in TransformerLens layout reproduce the fixtures' composition scores, which an independent
 * PyTorch reference computed from the raw weights: score = |W_OV(l1,h1) · R(l2,h2)|_F / (|W_OV|_F · |R|_F), with
 * R = W_QK (Q), W_QKᵀ (K) or W_OV (V), key/value heads repeated. Computed here with plain matrix products per pair.
 */
class PerHeadWeightsTest {

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny-gqa"})
    void perHeadWeightsGiveTheReferenceCompositionScores(String fixture) {
        Path dir = Fixtures.dir(fixture);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            Tensor wq = model.W_Q();
            Tensor wk = model.W_K(true);
            Tensor wv = model.W_V(true);
            Tensor wo = model.W_O();
            HookedAutoConfig c = model.config();
            assertArrayEquals(new long[] {c.nLayers(), c.nHeads(), c.dModel(), c.dHead()}, wk.shape());
            assertArrayEquals(new long[] {c.nLayers(), c.nHeads(), c.dHead(), c.dModel()}, wo.shape());
            for (String mode : new String[] {"Q", "K", "V"}) {
                double[] expected = reference.tensor("composition." + mode).toDoubleArray();
                int heads = c.nHeads();
                for (int l1 = 0; l1 < c.nLayers(); l1++) {
                    for (int h1 = 0; h1 < heads; h1++) {
                        Tensor ov = wv.select(0, l1).select(0, h1).matmul(wo.select(0, l1).select(0, h1));
                        for (int l2 = 0; l2 < c.nLayers(); l2++) {
                            for (int h2 = 0; h2 < heads; h2++) {
                                int index = ((l1 * heads + h1) * c.nLayers() + l2) * heads + h2;
                                if (l1 >= l2) {
                                    assertEquals(0.0, expected[index], 0, "scores are zero unless l1 < l2");
                                    continue;
                                }
                                Tensor qk = wq.select(0, l2).select(0, h2).matmul(wk.select(0, l2).select(0, h2).transpose(0, 1));
                                Tensor r = switch (mode) {
                                    case "Q" -> qk;
                                    case "K" -> qk.transpose(0, 1);
                                    default -> wv.select(0, l2).select(0, h2).matmul(wo.select(0, l2).select(0, h2));
                                };
                                double score = ov.matmul(r).norm().item() / (ov.norm().item() * r.norm().item());
                                assertEquals(expected[index], score, 1e-5, fixture + " " + mode + " (" + l1 + "," + h1
                                        + ") -> (" + l2 + "," + h2 + ")");
                            }
                        }
                    }
                }
            }
            assertArrayEquals(new long[] {c.nLayers(), c.nHeads(), c.dHead()}, model.b_Q().shape());
            assertArrayEquals(new long[] {c.nLayers(), c.dModel()}, model.b_O().shape());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny-gqa"})
    void oneLayersWeightsAreThatLayersSliceAndCopies(String fixture) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.dir(fixture))) {
            HookedAutoConfig c = model.config();
            for (int l = 0; l < c.nLayers(); l++) {
                assertArrayEquals(model.W_Q().select(0, l).toFloatArray(), model.W_Q(l).toFloatArray());
                assertArrayEquals(model.W_K(false).select(0, l).toFloatArray(), model.W_K(l, false).toFloatArray());
                assertArrayEquals(model.W_K(true).select(0, l).toFloatArray(), model.W_K(l, true).toFloatArray());
                assertArrayEquals(model.W_V(true).select(0, l).toFloatArray(), model.W_V(l, true).toFloatArray());
                assertArrayEquals(model.W_O().select(0, l).toFloatArray(), model.W_O(l).toFloatArray());
                assertArrayEquals(model.b_Q().select(0, l).toFloatArray(), model.b_Q(l).toFloatArray());
                assertArrayEquals(model.b_V(true).select(0, l).toFloatArray(), model.b_V(l, true).toFloatArray());
                assertArrayEquals(model.b_O().select(0, l).toFloatArray(), model.b_O(l).toFloatArray());
                assertArrayEquals(new long[] {c.nKvHeads(), c.dModel(), c.dHead()}, model.W_V(l, false).shape());
                // a copy: writing to it leaves the model's weights alone
                Tensor w = model.W_Q(l);
                float before = model.W_Q(l).toFloatArray()[0];
                w.asSegment().set(java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, 123f);
                assertEquals(before, model.W_Q(l).toFloatArray()[0]);
            }
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> model.W_Q(c.nLayers()));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("layer " + c.nLayers()), e.getMessage());
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> model.W_O(-1));
        }
    }
}

package io.arrakis.model;

import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.CompositionScores.Mode;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.composer.PathPatching.Route;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import io.arrakis.view.AttentionView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The composer on a model whose layers mix softmax and linear attention: Qwen3.5's blocks, layers full, linear, full,
 * full, random weights written as a checkpoint. Composition scores of the softmax layers' heads are the definition's
 * (TransformerLens's {@code |W_OV·R|_F / (|W_OV|_F·|R|_F)}), computed here in float64 from the checkpoint's own
 * tensors: Qwen3.5's {@code q_proj} holds each head's query rows and then its gate rows, and its query and key norms
 * scale by {@code 1 + w}; every pair with a head of the linear layer is NaN. Path patching reaches across the linear
 * layer, whose output {@link PathPatching.Mode#PATH} freezes as any attention output, and the attention view shows
 * that layer without a pattern.
 */
class HybridComposerTest {
    private static final int LAYERS = 4;
    private static final int HEADS = 4;
    private static final int KV_HEADS = 2;
    private static final int D_HEAD = 8;
    private static final int D_MODEL = 32;
    private static final int LINEAR = 1;

    @TempDir
    Path dir;

    private static HookedAutoConfig config() {
        return config("full_attention", "linear_attention", "full_attention", "full_attention");
    }

    private static HookedAutoConfig config(String... layerTypes) {
        return TinyConfigs.of("qwen3-5").with(Map.of("num_hidden_layers", LAYERS, "num_key_value_heads", KV_HEADS,
                "head_dim", D_HEAD, "layer_types", List.of(layerTypes)));
    }

    /** Writes the checkpoint, its query and key norms random too (they start at zero), and returns its tensors. */
    private Map<String, Tensor> checkpoint() throws Exception {
        return checkpoint(config());
    }

    private Map<String, Tensor> checkpoint(HookedAutoConfig config) throws Exception {
        HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 11, DType.FLOAT32);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (String name : source.names()) {
            tensors.put(name, source.load(name));
        }
        io.arrakis.torch.Generator g = new io.arrakis.torch.Generator(5);
        for (String name : tensors.keySet()) {
            if (name.endsWith("q_norm.weight") || name.endsWith("k_norm.weight")) {
                tensors.put(name, Tensor.randn(g, new long[] {D_HEAD}, DType.FLOAT32, Device.CPU).mul(0.5));
            }
        }
        Fixtures.writeCheckpoint(config, tensors, dir);
        return tensors;
    }

    @Test
    void compositionScoresTheSoftmaxLayersAsDefinedAndLeavesTheLinearLayerNaN() throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> t = checkpoint();
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertFalse(model.config().attentionHeads(LINEAR));
                for (Mode mode : Mode.values()) {
                    Tensor scores = CompositionScores.allPairs(model, mode);
                    assertArrayEquals(new long[] {LAYERS, HEADS, LAYERS, HEADS}, scores.shape());
                    double[] s = scores.toDoubleArray();
                    int checked = 0;
                    for (int l1 = 0; l1 < LAYERS; l1++) {
                        for (int h1 = 0; h1 < HEADS; h1++) {
                            for (int l2 = 0; l2 < LAYERS; l2++) {
                                for (int h2 = 0; h2 < HEADS; h2++) {
                                    double v = s[((l1 * HEADS + h1) * LAYERS + l2) * HEADS + h2];
                                    String pair = mode + " L" + l1 + "H" + h1 + " -> L" + l2 + "H" + h2;
                                    if (l1 == LINEAR || l2 == LINEAR) {
                                        assertTrue(Double.isNaN(v), pair + ": " + v);
                                    } else if (l1 < l2) {
                                        assertEquals(definition(t, mode, l1, h1, l2, h2), v, 1e-6, pair);
                                        checked++;
                                    } else {
                                        assertEquals(0.0, v, pair);
                                    }
                                }
                            }
                        }
                    }
                    assertEquals(3 * HEADS * HEADS, checked, "pairs 0 -> 2, 0 -> 3 and 2 -> 3");
                    assertEquals(definition(t, mode, 0, 3, 2, 1),
                            CompositionScores.pair(model, Head.of(0, 3), Head.of(2, 1), mode), 1e-7, mode.name());
                }
                String m = assertThrows(IllegalArgumentException.class, () -> CompositionScores.pair(model,
                        Head.of(LINEAR, 0), Head.of(2, 0), Mode.V)).getMessage();
                assertTrue(m.contains("L1H0") && m.contains("linear attention"), m);
                try (CompositionScores.Result r = CompositionScores.compute(model, Mode.K,
                        CompositionScores.Options.builder().baseline(true).baselineSamples(20).build())) {
                    double[] s = r.scores().toDoubleArray();
                    double[] c = r.baselineCorrected().toDoubleArray();
                    for (int i = 0; i < s.length; i++) {
                        int l1 = i / (HEADS * LAYERS * HEADS);
                        int l2 = i / HEADS % LAYERS;
                        double expected = Double.isNaN(s[i]) ? Double.NaN : l1 < l2 ? s[i] - r.baselineMean() : 0.0;
                        assertEquals(expected, c[i], 1e-12, "entry " + i);
                    }
                }
            }
        }
    }

    /** The score of one pair from the checkpoint's tensors, as the published definition states it, in float64. */
    private static double definition(Map<String, Tensor> t, Mode mode, int l1, int h1, int l2, int h2) {
        Tensor ov = wv(t, l1, h1).matmul(wo(t, l1, h1));
        Tensor qk = wq(t, l2, h2).matmul(wk(t, l2, h2).transpose(0, 1));
        Tensor r = switch (mode) {
            case Q -> qk;
            case K -> qk.transpose(0, 1);
            case V -> wv(t, l2, h2).matmul(wo(t, l2, h2));
        };
        return ov.matmul(r).norm().item() / (ov.norm().item() * r.norm().item());
    }

    private static Tensor tensor(Map<String, Tensor> t, int layer, String name) {
        return t.get("model.layers." + layer + ".self_attn." + name).to(DType.FLOAT64);
    }

    /** Head h's query map {@code [d_model, d_head]}: its query rows of q_proj (the gate's follow), times 1 + q_norm. */
    private static Tensor wq(Map<String, Tensor> t, int layer, int h) {
        Tensor rows = tensor(t, layer, "q_proj.weight").view(HEADS, 2 * D_HEAD, D_MODEL).select(0, h)
                .narrow(0, 0, D_HEAD);
        return rows.transpose(0, 1).mul(tensor(t, layer, "q_norm.weight").add(1.0).view(1, D_HEAD));
    }

    /** The key map of head h's key/value head {@code [d_model, d_head]}, times 1 + k_norm. */
    private static Tensor wk(Map<String, Tensor> t, int layer, int h) {
        Tensor rows = tensor(t, layer, "k_proj.weight").view(KV_HEADS, D_HEAD, D_MODEL).select(0, h / 2);
        return rows.transpose(0, 1).mul(tensor(t, layer, "k_norm.weight").add(1.0).view(1, D_HEAD));
    }

    private static Tensor wv(Map<String, Tensor> t, int layer, int h) {
        return tensor(t, layer, "v_proj.weight").view(KV_HEADS, D_HEAD, D_MODEL).select(0, h / 2).transpose(0, 1);
    }

    /** Head h's rows of the output map {@code [d_head, d_model]}: its columns of o_proj. */
    private static Tensor wo(Map<String, Tensor> t, int layer, int h) {
        return tensor(t, layer, "o_proj.weight").narrow(1, (long) h * D_HEAD, D_HEAD).transpose(0, 1);
    }

    @Test
    void pathPatchingReachesAcrossTheLinearLayerWhichItFreezes() throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            checkpoint();
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                Tensor clean = Tensor.of(new long[] {3, 14, 15, 9, 26, 5, 35, 8}, 1, 8);
                Tensor corrupted = Tensor.of(new long[] {3, 14, 15, 9, 26, 5, 35, 60}, 1, 8);
                PathPatching.Metric metric = PathPatching.Metric.logitDiff(7, 21);
                Head receiver = Head.of(2, 1);
                Tensor all = PathPatching.patchAllSenders(model, clean, corrupted, receiver, Route.Q, metric,
                        PathPatching.Mode.PATH);
                double[] effects = all.toDoubleArray();
                for (int l = 0; l < LAYERS; l++) {
                    for (int h = 0; h < HEADS; h++) {
                        assertEquals(l != 0, Double.isNaN(effects[l * HEADS + h]), "L" + l + "H" + h);
                    }
                }
                double patched = PathPatching.patch(model, clean, corrupted, Head.of(0, 2), receiver, Route.Q, metric);
                assertEquals(effects[2], patched, 1e-12);
                assertEquals(byHooks(model, clean, corrupted, metric, true), patched, 1e-9);
                // the linear layer carries the sender's change on: left to recompute, it changes the effect
                assertTrue(Math.abs(byHooks(model, clean, corrupted, metric, false) - patched) > 1e-6);

                String m = assertThrows(IllegalArgumentException.class, () -> PathPatching.patch(model, clean,
                        corrupted, Head.of(LINEAR, 0), receiver, Route.Q, metric)).getMessage();
                assertTrue(m.contains("sender") && m.contains("linear attention"), m);
                m = assertThrows(IllegalArgumentException.class, () -> PathPatching.patch(model, clean, corrupted,
                        Head.of(0, 0), Head.of(LINEAR, 0), Route.K, metric)).getMessage();
                assertTrue(m.contains("receiver") && m.contains("linear attention"), m);
            }
        }
    }

    /**
     * Path patching of L0H2 into L2H1's query assembled from the model's hooks, the outputs between sender and
     * receiver (the sender layer's MLP, the linear layer's output and its MLP; or the MLPs alone) clean.
     */
    private static double byHooks(HookedAutoModel model, Tensor clean, Tensor corrupted, PathPatching.Metric metric,
                                  boolean freezeLinear) {
        List<String> frozen = new ArrayList<>(List.of("blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"));
        if (freezeLinear) {
            frozen.add("blocks.1.hook_attn_out");
        }
        return PathPatchingByHooks.queryEffect(model, clean, corrupted, metric, Head.of(0, 2), Head.of(2, 1), frozen);
    }

    @Test
    void theViewShowsTheLinearLayerWithoutAPatternAndPatchesTheLastSoftmaxLayer() throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            checkpoint();
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                Tensor ids = Tensor.of(new long[] {3, 14, 15, 9, 26}, 1, 5);
                Tensor corrupted = Tensor.of(new long[] {3, 14, 15, 9, 60}, 1, 5);
                AttentionView view = AttentionView.of(model, ids, AttentionView.Options.defaults()
                        .withPatching(corrupted, 7, 21, List.of(), List.of(Route.V)));
                Map<String, Object> data = view.data();
                List<?> patterns = (List<?>) data.get("patterns");
                for (int l = 0; l < LAYERS; l++) {
                    if (l == LINEAR) {
                        assertNull(patterns.get(l));
                    } else {
                        assertEquals(HEADS * 5 * 5, ((List<?>) patterns.get(l)).size(), "layer " + l);
                    }
                }
                Map<?, ?> q = (Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) data.get("composition")).get("modes")).get("Q");
                List<?> fromL0H0 = (List<?>) ((List<?>) ((List<?>) q.get("scores")).get(0)).get(0);
                assertNull(((List<?>) fromL0H0.get(LINEAR)).get(0));
                assertNotNull(((List<?>) fromL0H0.get(2)).get(0));
                List<?> effects = (List<?>) ((Map<?, ?>) data.get("patching")).get("effects");
                assertEquals(HEADS, effects.size());
                for (int h = 0; h < HEADS; h++) {
                    assertEquals("L3H" + h, ((Map<?, ?>) effects.get(h)).get("receiver"));
                }
            }
        }
    }

    /** Patching's default receivers are the heads of the last layer that attends by softmax. */
    @Test
    void theViewPatchesTheLastSoftmaxLayerWhereTheLastLayerIsLinear() throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            checkpoint(config("full_attention", "full_attention", "full_attention", "linear_attention"));
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                AttentionView view = AttentionView.of(model, Tensor.of(new long[] {3, 14, 15, 9}, 1, 4),
                        AttentionView.Options.defaults().withPatching(Tensor.of(new long[] {3, 14, 15, 60}, 1, 4), 7,
                                21, List.of(), List.of(Route.V)));
                List<?> effects = (List<?>) ((Map<?, ?>) view.data().get("patching")).get("effects");
                assertEquals(List.of("L2H0", "L2H1", "L2H2", "L2H3"), effects.stream()
                        .map(e -> ((Map<?, ?>) e).get("receiver")).toList());
            }
        }
    }

    /** A model none of whose layers attends by softmax has no heads to compose: refused, saying so. */
    @Test
    void compositionRefusesAModelWithoutAttentionHeads() {
        HookedAutoConfig linear = config("linear_attention", "linear_attention", "linear_attention",
                "linear_attention");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(linear, 1, DType.FLOAT32, Device.CPU)) {
            String m = assertThrows(IllegalArgumentException.class, () -> CompositionScores.allPairs(model, Mode.K))
                    .getMessage();
            assertTrue(m.contains("no layer") && m.contains("linear attention") && m.contains("no attention heads"),
                    m);
        }
    }
}

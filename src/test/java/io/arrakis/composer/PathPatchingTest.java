package io.arrakis.composer;

import io.arrakis.composer.PathPatching.Ablation;
import io.arrakis.composer.PathPatching.Metric;
import io.arrakis.composer.PathPatching.Mode;
import io.arrakis.composer.PathPatching.Route;
import io.arrakis.model.ActivationCache;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.HookedAutoModel.HookHandle;
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
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PathPatchingTest {
    private static final Metric METRIC = Metric.logitDiff(3, 7);
    private static final Head SENDER = new Head(0, 1);
    private static final Head RECEIVER = new Head(1, 2);

    /** A tiny gpt2 with a large initialiser range, so that one head's effect on the logits is far above rounding. */
    private static HookedAutoModel model(int layers, long seed) {
        HookedAutoConfig c = HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 32, "n_layer", layers, "n_head", 4,
                "vocab_size", 64, "n_positions", 16, "initializer_range", 0.3));
        return HookedAutoModel.create(c, seed, DType.FLOAT32, Device.CPU);
    }

    private static final Tensor CLEAN = Tensor.of(new long[] {5, 9, 2, 33, 4, 17, 8, 1, 60, 12, 3, 44}, 2, 6);
    private static final Tensor CORRUPTED = Tensor.of(new long[] {5, 9, 21, 33, 40, 17, 8, 11, 60, 12, 30, 44}, 2, 6);

    private static Tensor headReplaced(Tensor x, int index, Tensor value) {
        return PathPatching.replaceHead(x, index, value);
    }

    /**
     * Patching one receiver head's query or key leaves every other head of its layer as in the clean run: the
     * patterns the final (patched) pass computes differ from the clean run's in the receiver's head only (its whole
     * key-value group for the key route). Was: olmo2, which normalises all heads' queries and keys together, had
     * the raw query replaced, and the shared norm carried the change into the other heads.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"olmo2", "qwen3", "llama"})
    void patchingOneHeadLeavesTheOtherHeadsOfItsLayerAlone(String family) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel m = HookedAutoModel.fromPretrained(io.arrakis.model.Fixtures.huggingFace(family))) {
            Tensor clean = Tensor.of(new long[] {5, 9, 2, 33, 4, 17}, 1, 6);
            Tensor corrupted = Tensor.of(new long[] {5, 9, 21, 33, 40, 17}, 1, 6);
            int heads = m.config().nHeads();
            int group = heads / m.config().nKvHeads();
            Head receiver = new Head(1, 1);
            for (Route route : new Route[] {Route.Q, Route.K}) {
                List<float[]> patterns = new ArrayList<>();
                try (HookHandle h = m.addHook(HookSpec.at("blocks.1.attn.hook_pattern", (a, n) -> {
                    patterns.add(a.toFloatArray());
                    return a;
                }))) {
                    double effect = PathPatching.patch(m, clean, corrupted, new Head(0, 2), receiver, route, METRIC);
                    assertTrue(Double.isFinite(effect));
                }
                float[] first = patterns.getFirst(); // the clean run
                float[] last = patterns.getLast(); // the run with the receiver's input replaced
                int perHead = first.length / heads;
                boolean receiverChanged = false;
                for (int head = 0; head < heads; head++) {
                    boolean patchedHead = route == Route.Q ? head == receiver.index() : head / group == receiver.index() / group;
                    for (int i = head * perHead; i < (head + 1) * perHead; i++) {
                        if (patchedHead) {
                            receiverChanged |= first[i] != last[i];
                        } else {
                            assertEquals(first[i], last[i], family + " " + route + ": head " + head + " changed");
                        }
                    }
                }
                assertTrue(receiverChanged, family + " " + route + ": the receiver's pattern should change");
            }
        }
    }

    @Test
    void theEffectIsExactlyZeroWhenCleanEqualsCorrupted() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(3, 1)) {
            for (Route route : Route.values()) {
                for (Mode mode : Mode.values()) {
                    assertEquals(0.0, PathPatching.patch(m, CLEAN, CLEAN, new Head(0, 3), new Head(2, 1), route,
                            METRIC, mode), 0.0, route + " " + mode);
                }
            }
            Tensor all = PathPatching.patchAllSenders(m, CLEAN, CLEAN, new Head(2, 0), Route.K, METRIC, Mode.PATH);
            assertArrayEquals(new long[] {3, 4}, all.shape());
            float[] v = all.toFloatArray();
            for (int i = 0; i < v.length; i++) {
                if (i < 8) {
                    assertEquals(0f, v[i], 0f);
                } else {
                    assertTrue(Float.isNaN(v[i]), "layer 2 is no sender to a layer-2 receiver: NaN");
                }
            }
        }
    }

    /**
     * Was: each pass of a tool took the model's hooks as they were when it started, so a hook another thread added
     * between the clean and the patched passes went into one side of the difference only (a value neither with nor
     * without it). Here the metric has it added, after the clean pass, on a second thread.
     */
    @Test
    void aHookAddedWhileAToolRunsCountsFromItsNextCall() throws Exception {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(2, 3)) {
            double without = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.Q, METRIC);
            AtomicReference<HookHandle> added = new AtomicReference<>();
            Metric addingOne = logits -> {
                if (added.get() == null) {
                    Thread other = Thread.ofPlatform().start(() -> added.set(m.addHook(
                            HookSpec.at("blocks.1.hook_mlp_out", (a, name) -> a.mul(3.0)))));
                    try {
                        other.join();
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                }
                return METRIC.apply(logits);
            };
            assertEquals(without, PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.Q, addingOne), 0.0);
            double with = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.Q, METRIC);
            assertTrue(with != without, "the next call runs the hook: " + with);
            added.get().close();
        }
    }

    /** A hold keeps this thread's passes on the hooks it found; one inside it keeps the outer one. */
    @Test
    void holdingTheHooksKeepsThisThreadsPassesOnThem() throws Exception {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(2, 3)) {
            float[] plain = m.runWithHooks(CLEAN).toFloatArray();
            AtomicReference<HookHandle> added = new AtomicReference<>();
            try (HookHandle held = m.holdHooks()) {
                Thread other = Thread.ofPlatform().start(() -> added.set(m.addHook(
                        HookSpec.at("blocks.1.hook_mlp_out", (a, name) -> a.mul(3.0)))));
                other.join();
                try (HookHandle inner = m.holdHooks()) {
                    assertArrayEquals(plain, m.runWithHooks(CLEAN).toFloatArray());
                }
                assertArrayEquals(plain, m.runWithHooks(CLEAN).toFloatArray(), "the inner hold left the outer");
                float[][] elsewhere = new float[1][];
                Thread reader = Thread.ofPlatform().start(() -> elsewhere[0] = m.runWithHooks(CLEAN).toFloatArray());
                reader.join();
                assertTrue(!java.util.Arrays.equals(plain, elsewhere[0]), "another thread's pass runs the new hook");
            }
            float[] hooked = m.runWithHooks(CLEAN).toFloatArray();
            assertTrue(!java.util.Arrays.equals(plain, hooked), "held no more");
            // an old handle ends no later hold, and another thread cannot end this one
            HookHandle first = m.holdHooks();
            first.close();
            try (HookHandle second = m.holdHooks()) {
                first.close();
                AtomicReference<String> refused = new AtomicReference<>("not refused");
                Thread stranger = Thread.ofPlatform().start(() -> {
                    try {
                        second.close();
                    } catch (IllegalStateException e) {
                        refused.set(e.getMessage());
                    }
                });
                stranger.join();
                assertTrue(refused.get().contains("ends on the thread that took it"), refused.get());
                added.get().close();
                assertArrayEquals(hooked, m.runWithHooks(CLEAN).toFloatArray(), "still held");
            }
            assertArrayEquals(plain, m.runWithHooks(CLEAN).toFloatArray());
        }
    }

    @Test
    void everySendersEffectIsThePairsOwnValueInFloat64() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(2, 3)) {
            Tensor all = PathPatching.patchAllSenders(m, CLEAN, CORRUPTED, RECEIVER, Route.Q, METRIC, Mode.PATH);
            assertEquals(io.arrakis.torch.DType.FLOAT64, all.dtype());
            double[] v = all.toDoubleArray();
            for (int h = 0; h < 4; h++) {
                assertEquals(PathPatching.patch(m, CLEAN, CORRUPTED, new Head(0, h), RECEIVER, Route.Q, METRIC), v[h], 0.0);
            }
        }
    }

    @Test
    void groupedQueryRotaryModelsPatchTheSharedKeyValueHead() {
        HookedAutoConfig c = HookedAutoConfig.of("llama").with(Map.of("hidden_size", 32, "num_hidden_layers", 2,
                "num_attention_heads", 4, "num_key_value_heads", 2, "intermediate_size", 48, "vocab_size", 64,
                "max_position_embeddings", 16, "initializer_range", 0.3));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = HookedAutoModel.create(c, 3, DType.FLOAT32, Device.CPU)) {
            for (Route route : Route.values()) {
                assertEquals(0.0, PathPatching.patch(m, CLEAN, CLEAN, SENDER, new Head(1, 3), route, METRIC), 0.0);
                double e = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, new Head(1, 3), route, METRIC);
                assertTrue(Double.isFinite(e) && e != 0.0, route + ": " + e);
            }
            // heads 2 and 3 share key/value head 1: through K and V they are patched together, so equal
            assertEquals(PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, new Head(1, 2), Route.V, METRIC),
                    PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, new Head(1, 3), Route.V, METRIC), 0.0);
        }
    }

    /**
     * The construction: in a 2-layer model, the sender L0H1 is read by MLP 0, by every head of layer 1 through q, k and
     * v, by MLP 1 and directly by the unembedding. Persistent hooks cut every reader but the receiver L1H2's value,
     * each by freezing it to its clean value:
     * <ul>
     *   <li>{@code blocks.0.hook_mlp_out} := clean (MLP 0);</li>
     *   <li>{@code blocks.1.attn.hook_pattern} := clean (every q and k of layer 1);</li>
     *   <li>{@code blocks.1.attn.hook_z} of heads other than 2 := clean (their v);</li>
     *   <li>{@code blocks.1.hook_mlp_out} := clean (MLP 1);</li>
     *   <li>{@code blocks.1.hook_resid_post} := clean resid_post + (attn_out_1 − clean attn_out_1) (the direct path:
     *       the final residual changes only by what layer 1's attention, i.e. the receiver, changes).</li>
     * </ul>
     * On the clean input every hook is the identity (exactly: {@code a + (b - b) = a}). With them in place the only
     * path from the sender to the logits is sender → residual → receiver's v → receiver → logits, so the path-patching
     * effect through V equals the effect of changing the sender's z in an ordinary (hooked) forward pass, and the
     * effect through Q or K is exactly zero.
     */
    private static List<HookHandle> onlyReaderIsReceiverValue(HookedAutoModel m, Tensor clean) {
        ModelOutput out = m.forward(clean, CacheSpec.all());
        ActivationCache c = out.cache();
        AtomicReference<Tensor> attnOut1 = new AtomicReference<>();
        List<HookHandle> handles = new ArrayList<>();
        handles.add(m.addHook(HookSpec.at("blocks.0.hook_mlp_out", (a, n) -> c.get(n).copy())));
        handles.add(m.addHook(HookSpec.at("blocks.1.attn.hook_pattern", (a, n) -> c.get(n).copy())));
        handles.add(m.addHook(HookSpec.at("blocks.1.attn.hook_z",
                (a, n) -> headReplaced(c.get(n), RECEIVER.index(), a.select(2, RECEIVER.index())))));
        handles.add(m.addHook(HookSpec.at("blocks.1.hook_mlp_out", (a, n) -> c.get(n).copy())));
        handles.add(m.addHook(HookSpec.at("blocks.1.hook_attn_out", (a, n) -> {
            attnOut1.set(a);
            return null;
        })));
        handles.add(m.addHook(HookSpec.at("blocks.1.hook_resid_post",
                (a, n) -> c.get(n).add(attnOut1.get().sub(c.get("blocks.1.hook_attn_out"))))));
        handles.add(out::close);
        return handles;
    }

    private static double fullEffect(HookedAutoModel m, Tensor clean, Tensor senderZ) {
        try (TensorScope scope = TensorScope.open()) {
            double base = METRIC.apply(m.runWithHooks(clean));
            Tensor patched = m.runWithHooks(clean, HookSpec.at("blocks.0.attn.hook_z",
                    (z, n) -> headReplaced(z, SENDER.index(), senderZ)));
            return METRIC.apply(patched) - base;
        }
    }

    @Test
    void whenTheReceiverIsTheSendersOnlyReaderThePathEffectIsTheFullEffect() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(2, 4)) {
            Tensor corruptZ;
            Tensor cleanZ;
            try (ModelOutput corr = m.forward(CORRUPTED, CacheSpec.only("blocks.0.attn.hook_z"));
                 ModelOutput cl = m.forward(CLEAN, CacheSpec.only("blocks.0.attn.hook_z"))) {
                corruptZ = corr.cache().get("blocks.0.attn.hook_z").select(2, SENDER.index()).copy();
                cleanZ = cl.cache().get("blocks.0.attn.hook_z").select(2, SENDER.index()).copy();
            }
            // without the construction, other readers make the path effect differ from the full effect
            double unconstrainedFull = fullEffect(m, CLEAN, corruptZ);
            double unconstrainedPath = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.V, METRIC);
            assertTrue(Math.abs(unconstrainedFull - unconstrainedPath) > 1e-3,
                    "the model is too degenerate for this test: " + unconstrainedFull + " vs " + unconstrainedPath);

            List<HookHandle> handles = onlyReaderIsReceiverValue(m, CLEAN);
            try {
                double full = fullEffect(m, CLEAN, corruptZ);
                assertTrue(Math.abs(full) > 1e-3, "the sender must matter: " + full);
                for (Mode mode : Mode.values()) {
                    double path = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.V, METRIC, mode);
                    assertEquals(full, path, 1e-5 * Math.max(1, Math.abs(full)), mode.toString());
                    assertEquals(0.0, PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.Q, METRIC, mode), 0.0);
                    assertEquals(0.0, PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.K, METRIC, mode), 0.0);
                }
                // one-sided: zero and mean ablation of the sender
                double zeroFull = fullEffect(m, CLEAN, Tensor.zeros(cleanZ.shape(), cleanZ.dtype(), cleanZ.device()));
                double zeroPath = PathPatching.ablate(m, CLEAN, SENDER, RECEIVER, Route.V, METRIC, Ablation.ZERO);
                assertTrue(Math.abs(zeroFull) > 1e-3);
                assertEquals(zeroFull, zeroPath, 1e-5 * Math.max(1, Math.abs(zeroFull)));
                Tensor mean = cleanZ.mean(0, true).mean(1, true).expand(cleanZ.shape()).contiguous();
                double meanFull = fullEffect(m, CLEAN, mean);
                double meanPath = PathPatching.ablate(m, CLEAN, SENDER, RECEIVER, Route.V, METRIC, Ablation.MEAN);
                assertEquals(meanFull, meanPath, 1e-5 * Math.max(1, Math.abs(meanFull)));
                assertTrue(Math.abs(meanFull - zeroFull) > 1e-3, "mean and zero ablation should differ");
                // all senders to the receiver: layer 0 gives each head's own patch; layer 1 is NaN
                Tensor all = PathPatching.ablateAllSenders(m, CLEAN, RECEIVER, Route.V, METRIC, Ablation.ZERO, Mode.PATH);
                float[] v = all.toFloatArray();
                assertEquals(zeroPath, v[SENDER.index()], 1e-5 * Math.max(1, Math.abs(zeroPath)));
                for (int h = 4; h < 8; h++) {
                    assertTrue(Float.isNaN(v[h]));
                }
            } finally {
                handles.forEach(HookHandle::close);
            }
        }
    }

    @Test
    void pathModeFreezesIntermediateLayersAndTotalModeDoesNot() {
        // sender L0H1, receiver L2H0 in a 3-layer model. With layer 1 entirely frozen to its clean outputs by hooks,
        // PATH and TOTAL agree; without, they differ (layer 1 reads the sender), and PATH matches the result with
        // layer 1 frozen (in PATH, freezing layer 1 by hand changes nothing).
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(3, 9)) {
            Head receiver = new Head(2, 0);
            double path = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, Route.Q, METRIC, Mode.PATH);
            double total = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, Route.Q, METRIC, Mode.TOTAL);
            assertTrue(Math.abs(path - total) > 1e-4, path + " vs " + total);
            try (ModelOutput out = m.forward(CLEAN, CacheSpec.all());
                 HookHandle h1 = m.addHook(HookSpec.matching(n -> n.equals("blocks.1.hook_attn_out")
                         || n.equals("blocks.1.hook_mlp_out") || n.equals("blocks.0.hook_mlp_out"),
                         (a, n) -> out.cache().get(n).copy()))) {
                double frozenTotal = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, Route.Q, METRIC, Mode.TOTAL);
                double frozenPath = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, Route.Q, METRIC, Mode.PATH);
                assertEquals(path, frozenTotal, 1e-5 * Math.max(1, Math.abs(path)));
                assertEquals(path, frozenPath, 1e-5 * Math.max(1, Math.abs(path)));
            }
        }
    }

    @Test
    void pathThroughMlpsFreezesTheIntermediateHeadsAndLetsTheMlpsRecompute() {
        // sender L0H1, receiver L2H0 in a 3-layer model: the sender reaches the receiver directly, through MLP 0, layer
        // 1's heads and MLP 1. PATH_THROUGH_MLPS cuts layer 1's heads only: with MLPs 0 and 1 frozen by hand it is PATH,
        // and TOTAL with layer 1's attention frozen by hand is it.
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(3, 9)) {
            Head receiver = new Head(2, 0);
            for (Route route : Route.values()) {
                double path = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, route, METRIC, Mode.PATH);
                double viaMlps = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, route, METRIC,
                        Mode.PATH_THROUGH_MLPS);
                double total = PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, route, METRIC, Mode.TOTAL);
                assertTrue(Math.abs(viaMlps - path) > 1e-4, route + ": " + viaMlps + " vs path " + path);
                assertTrue(Math.abs(viaMlps - total) > 1e-4, route + ": " + viaMlps + " vs total " + total);
                double tolerance = 1e-5 * Math.max(1, Math.abs(viaMlps));
                try (ModelOutput out = m.forward(CLEAN, CacheSpec.all())) {
                    try (HookHandle mlps = m.addHook(HookSpec.matching(n -> n.equals("blocks.0.hook_mlp_out")
                            || n.equals("blocks.1.hook_mlp_out"), (a, n) -> out.cache().get(n).copy()))) {
                        assertEquals(path, PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, route, METRIC,
                                Mode.PATH_THROUGH_MLPS), 1e-5 * Math.max(1, Math.abs(path)), route.toString());
                    }
                    try (HookHandle heads = m.addHook(HookSpec.at("blocks.1.hook_attn_out",
                            (a, n) -> out.cache().get(n).copy()))) {
                        assertEquals(viaMlps, PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, receiver, route, METRIC,
                                Mode.TOTAL), tolerance, route.toString());
                    }
                }
            }
        }
    }

    @Test
    void theLogitDifferenceMetricAveragesTheLastPositionOverTheBatch() {
        float[] v = new float[2 * 3 * 5];
        for (int i = 0; i < v.length; i++) {
            v[i] = i * 0.5f;
        }
        try (Tensor logits = Tensor.of(v, 2, 3, 5)) {
            // batch 0, last pos: indices 10..14; batch 1: 25..29; token 4 minus token 1: 3 * 0.5 each
            assertEquals(1.5, Metric.logitDiff(4, 1).apply(logits), 1e-9);
            assertEquals(-1.5, Metric.logitDiff(1, 4).apply(logits), 1e-9);
            assertThrows(IllegalArgumentException.class, () -> Metric.logitDiff(5, 1).apply(logits));
        }
    }

    @Test
    void invalidArgumentsAreRejected() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel m = model(2, 1)) {
            Class<IllegalArgumentException> iae = IllegalArgumentException.class;
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, new Head(1, 0), new Head(1, 1), Route.Q, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, new Head(1, 0), new Head(0, 1), Route.Q, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED.narrow(1, 0, 5), SENDER, RECEIVER, Route.V, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, new Head(0, 4), RECEIVER, Route.V, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, new Head(-1, 0), RECEIVER, Route.V, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, new Head(2, 0), Route.V, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, new Head(1, 4), Route.V, METRIC));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, null, METRIC));
            assertThrows(iae, () -> PathPatching.patchAllSenders(m, CLEAN, CORRUPTED, new Head(0, 0), Route.K, METRIC, Mode.PATH));
            assertThrows(iae, () -> PathPatching.ablate(m, CLEAN, new Head(1, 0), RECEIVER, Route.K, METRIC, Ablation.ZERO));
            assertThrows(iae, () -> PathPatching.patch(m, CLEAN, CORRUPTED, SENDER, RECEIVER, Route.V, Metric.logitDiff(64, 0)));
        }
    }
}

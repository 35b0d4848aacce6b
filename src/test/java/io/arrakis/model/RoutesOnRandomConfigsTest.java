package io.arrakis.model;

import io.arrakis.model.family.CheckpointTensor;
import io.arrakis.model.family.Slot;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The forward pass's two routes (fused attention and products where no hook reads a layer's scores or pattern,
 * explicit ops where one does) compute the same model, on random configurations of every family whose checkpoint is
 * random throughout (biases and norms included): in float64, where rounding cannot hide a difference in what is
 * computed, the fused pass against one whose every layer runs explicitly and one where a single layer does, and a
 * batch against its rows alone; in float32 (packed products) both routes against float64. Lengths 1, the longest, and
 * each window's length and one more, where the edge of a sliding window's mask moves.
 */
class RoutesOnRandomConfigsTest {
    private static final int CONFIGS_PER_FAMILY = 6;

    static Stream<Arguments> configurations() {
        return HookedAutoConfig.supportedFamilies().stream()
                .flatMap(family -> IntStream.range(0, CONFIGS_PER_FAMILY).mapToObj(i -> Arguments.of(family, i)));
    }

    @ParameterizedTest(name = "{0} #{1}")
    @MethodSource("configurations")
    void theRoutesAgree(String family, int index, @TempDir Path dir) throws IOException {
        Random random = new Random(family.hashCode() * 31L + index);
        HookedAutoConfig config = RandomConfigs.of(family, random);
        writeFullyRandomCheckpoint(config, family.hashCode() + index, dir);
        String which = family + " #" + index + ", config " + config.toJson().replace("\n", " ");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel f64 = HookedAutoModel.fromPretrained(dir, DType.FLOAT64, Device.CPU);
             HookedAutoModel f32 = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU)) {
            for (int pos : lengths(config)) {
                int batch = 2;
                long[] ids = random.longs(batch * (long) pos, 0, config.vocabSize()).toArray();
                try (TensorScope inner = TensorScope.open()) {
                    check(which + ", " + batch + " × " + pos + " tokens", config, f64, f32, Tensor.of(ids, batch, pos),
                            softmaxLayer(config, random));
                }
            }
        }
    }

    private static void check(String where, HookedAutoConfig config, HookedAutoModel f64, HookedAutoModel f32,
                              Tensor ids, int layer) {
        CacheSpec everyLayerExplicit = CacheSpec.matching(n -> n.endsWith("hook_pattern"));
        ModelOutput explicit32 = f32.forward(ids, CacheSpec.matching(n -> n.endsWith("hook_pattern")
                || n.endsWith("mlp.hook_expert_indices") || n.endsWith("mlp.hook_expert_weights")));
        // float64 takes float32's expert choices, so that a near tie in a router does not read as a difference
        boolean routed = f32.hookNames().stream().anyMatch(n -> n.endsWith("mlp.hook_expert_indices"));
        HookedAutoModel.HookSpec[] sameExperts = !routed ? new HookedAutoModel.HookSpec[0]
                : new HookedAutoModel.HookSpec[] {HookedAutoModel.HookSpec.matching(
                        n -> n.endsWith("mlp.hook_expert_indices") || n.endsWith("mlp.hook_expert_weights"),
                        (t, n) -> explicit32.cache().get(n).to(t.dtype()))};
        Tensor fused = f64.runWithHooks(ids, CacheSpec.none(), sameExperts).logits();
        assertClose(where, "float64, every layer explicit",
                f64.runWithHooks(ids, everyLayerExplicit, sameExperts).logits(), fused, 1e-10);
        if (layer >= 0) {
            assertClose(where, "float64, layer " + layer + " explicit", f64.runWithHooks(ids,
                    CacheSpec.only("blocks." + layer + ".attn.hook_attn_scores"), sameExperts).logits(), fused, 1e-10);
        }
        if (config.numExperts() == 0) {
            for (int row = 0; row < ids.size(0); row++) {
                assertClose(where, "float64, row " + row + " alone",
                        f64.forward(ids.narrow(0, row, 1).contiguous(), CacheSpec.none()).logits(),
                        fused.narrow(0, row, 1), 1e-10);
            }
        }
        // float32's rounding grows with the model's conditioning: its explicit route's distance from float64 says how far
        double conditioning = relativeMax(explicit32.logits(), fused);
        assertTrue(conditioning < 1e-3, where + ": float32, every layer explicit, " + conditioning + " from float64");
        assertClose(where, "float32 fused", f32.runWithHooks(ids, CacheSpec.none(), sameExperts).logits(), fused,
                Math.max(1e-5, 4 * conditioning));
        explicit32.close();
    }

    /** A random layer that attends by softmax, or -1 where no layer does. */
    private static int softmaxLayer(HookedAutoConfig config, Random random) {
        int[] softmax = IntStream.range(0, config.nLayers()).filter(config::attentionHeads).toArray();
        return softmax.length == 0 ? -1 : softmax[random.nextInt(softmax.length)];
    }

    /** 1, the longest, and each window's length and one more. */
    private static TreeSet<Integer> lengths(HookedAutoConfig config) {
        TreeSet<Integer> lengths = new TreeSet<>(List.of(1, config.maxPositions()));
        for (int l = 0; l < config.nLayers(); l++) {
            int window = config.architecture().attentionWindow(l);
            if (window > 0) {
                lengths.add(Math.min(window, config.maxPositions()));
                lengths.add(Math.min(window + 1, config.maxPositions()));
            }
        }
        return lengths;
    }

    private static void assertClose(String where, String what, Tensor actual, Tensor expected, double tolerance) {
        double relative = relativeMax(actual, expected);
        assertTrue(relative <= tolerance, where + ": " + what + " differs by " + relative + " (relative to the largest"
                + " logit), more than " + tolerance);
    }

    /** The largest difference relative to the largest magnitude of {@code expected}; NaN where either holds one. */
    private static double relativeMax(Tensor actual, Tensor expected) {
        double[] a = actual.to(DType.FLOAT64).contiguous().toDoubleArray();
        double[] b = expected.to(DType.FLOAT64).contiguous().toDoubleArray();
        double difference = 0;
        double scale = 0;
        for (int i = 0; i < a.length; i++) {
            difference = Math.max(difference, Math.abs(a[i] - b[i]));
            scale = Math.max(scale, Math.abs(b[i]));
            if (Double.isNaN(a[i]) || Double.isNaN(b[i])) {
                return Double.NaN;
            }
        }
        return difference / Math.max(scale, 1e-12);
    }

    /**
     * Every tensor of the checkpoint drawn at random: norms around their identity, biases and embeddings of unit
     * scale, matrices scaled so that attention is sharp; in float32 values that bfloat16 holds exactly.
     */
    private static void writeFullyRandomCheckpoint(HookedAutoConfig config, long seed, Path dir) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        double embedStd = 1.0 / Math.max(1.0, config.architecture().embeddingScale());
        try (TensorScope scope = TensorScope.open()) {
            for (Map.Entry<String, CheckpointTensor> e : config.checkpoint().tensors().entrySet()) {
                CheckpointTensor t = e.getValue();
                Generator g = new Generator(seed * 31 + e.getKey().hashCode());
                Tensor v = switch (t.init()) {
                    case NORM -> Tensor.normal(g, t.shape(), config.normAddsOne() ? 0.0 : 1.0, 0.3, DType.FLOAT32,
                            Device.CPU);
                    case ZERO -> Tensor.normal(g, t.shape(), 0.0, 0.3, DType.FLOAT32, Device.CPU);
                    case NORMAL -> Tensor.normal(g, t.shape(), 0.0, embedding(t) ? embedStd
                            : 1.3 / Math.sqrt(config.dModel()), DType.FLOAT32, Device.CPU);
                    case CONSTANT -> Tensor.normal(g, t.shape(), t.parts().getFirst().slot().initialValue(), 0.3,
                            DType.FLOAT32, Device.CPU); // apertus's xIELU parameters
                };
                tensors.put(e.getKey(), v.to(DType.BFLOAT16).to(DType.FLOAT32));
            }
            Fixtures.writeCheckpoint(config, tensors, dir);
        }
    }

    private static boolean embedding(CheckpointTensor t) {
        return t.parts().stream().anyMatch(p -> p.slot() == Slot.EMBED || p.slot() == Slot.POS_EMBED);
    }
}

package io.arrakis.suite;

import io.arrakis.composer.CompositionScores;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * Suite row {@code composition_all_pairs_q_tl_algorithm}, ours: {@link TlComposition} (TransformerLens's algorithm on
 * our libtorch) for the first {@code senderLayers} sender layers; its cost is linear in the sender layers, so the
 * suite scales the time by {@code L / senderLayers} (12 in full mode is the whole computation, no scaling).
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx6g"})
@State(Scope.Benchmark)
public class OursCompositionTl {
    @Param({"1"})
    public int senderLayers;

    private HookedAutoModel model;

    @Setup
    public void setUp() {
        model = HookedAutoModel.fromPretrained(BenchFiles.gpt2Small(), DType.FLOAT32, Device.CPU);
        // the TransformerLens algorithm must give our scores (first sender layer)
        try (TensorScope scope = TensorScope.open()) {
            Tensor tl = TlComposition.qScores(model, 1);
            Tensor ours = CompositionScores.compute(model, CompositionScores.Mode.Q,
                    CompositionScores.Options.DEFAULT).scores().narrow(0, 0, 1);
            double diff = tl.sub(ours).abs().max().item();
            System.out.printf("bench: TransformerLens algorithm vs CompositionScores (sender layer 0): max |diff| %.3g%n", diff);
            if (!(diff < 1e-4)) {
                throw new IllegalStateException("the TransformerLens algorithm's scores differ from ours by " + diff);
            }
        }
    }

    @TearDown
    public void tearDown() {
        model.close();
    }

    @Benchmark
    public long tlAlgorithm() {
        try (Tensor scores = TlComposition.qScores(model, senderLayers)) {
            return scores.numel();
        }
    }
}

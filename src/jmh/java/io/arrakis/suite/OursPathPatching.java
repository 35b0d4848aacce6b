package io.arrakis.suite;

import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.model.BenchCheckpoint;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * Suite row {@code path_patching}: one path-patching call on the GPT-2-small-shaped model, 128 tokens, sender L4H3 →
 * receiver L9H6 through its query input, clean vs corrupted ids, logit-difference metric.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class OursPathPatching {
    private HookedAutoModel model;
    private Tensor clean;
    private Tensor corrupted;

    @Setup
    public void setUp() {
        model = HookedAutoModel.fromPretrained(BenchFiles.gpt2Small(), DType.FLOAT32, Device.CPU);
        clean = BenchFiles.gpt2SmallIds();
        corrupted = Tensor.randint(new Generator(7), 0, model.config().vocabSize(), new long[] {1, BenchCheckpoint.SEQ}, Device.CPU);
    }

    @TearDown
    public void tearDown() {
        clean.close();
        corrupted.close();
        model.close();
    }

    @Benchmark
    public double patch() {
        return PathPatching.patch(model, clean, corrupted, Head.of(4, 3), Head.of(9, 6), PathPatching.Route.Q,
                PathPatching.Metric.logitDiff(11, 12));
    }
}

package io.arrakis.suite;

import io.arrakis.model.BenchCheckpoint;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
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
 * Suite row {@code gpt2_tiny_forward}: the float32 forward pass (no cache) of the suite's tiny GPT-2 (2 layers,
 * d_model 128, 4 heads, 32 tokens), where a pass is a few dozen small ops and what each costs the host shows.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class OursTinyForward {
    private HookedAutoModel model;
    private Tensor ids;

    @Setup
    public void setUp() {
        model = HookedAutoModel.fromPretrained(BenchFiles.tiny(), DType.FLOAT32, Device.CPU);
        ids = Tensor.of(BenchCheckpoint.readIds(BenchFiles.tiny()), 1, BenchCheckpoint.TINY_SEQ);
    }

    @TearDown
    public void tearDown() {
        ids.close();
        model.close();
    }

    @Benchmark
    public long noCache() {
        try (ModelOutput out = model.forward(ids, CacheSpec.none())) {
            return out.logits().numel();
        }
    }
}

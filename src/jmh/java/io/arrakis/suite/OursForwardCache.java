package io.arrakis.suite;

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

/** Suite row {@code gpt2s_forward_f32_cache}: the float32 forward pass with every hook point cached. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class OursForwardCache {
    private HookedAutoModel model;
    private Tensor ids;

    @Setup
    public void setUp() {
        model = HookedAutoModel.fromPretrained(BenchFiles.gpt2Small(), DType.FLOAT32, Device.CPU);
        ids = BenchFiles.gpt2SmallIds();
    }

    @TearDown
    public void tearDown() {
        ids.close();
        model.close();
    }

    @Benchmark
    public long fullCache() {
        try (ModelOutput out = model.forward(ids)) {
            return out.cache().size();
        }
    }
}

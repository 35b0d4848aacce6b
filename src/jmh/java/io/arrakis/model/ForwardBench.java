package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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
 * A GPT-2-small-shaped model (12 layers, 12 heads, d_model 768, random weights) on one sequence of 128 tokens: the
 * forward pass with no cache and with every hook point cached.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 5)
@Measurement(iterations = 5, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class ForwardBench {
    @Param({"float32"})
    public String dtype;

    private HookedAutoModel model;
    private Tensor ids;

    @Setup(Level.Trial)
    public void setUp() {
        model = HookedAutoModel.create(HookedAutoConfig.of("gpt2"), 0, DType.parse(dtype), Device.CPU);
        ids = Tensor.randint(new Generator(1), 0, 50257, new long[] {1, 128}, Device.CPU);
    }

    @TearDown(Level.Trial)
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

    @Benchmark
    public long fullCache() {
        try (ModelOutput out = model.forward(ids)) {
            return out.cache().size();
        }
    }
}

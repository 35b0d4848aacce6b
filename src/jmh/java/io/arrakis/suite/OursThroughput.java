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
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * Suite rows {@code throughput_threads_N}: N threads running small forwards (the tiny GPT-2 of
 * {@link BenchCheckpoint}, 32 tokens, no cache) on one shared model; JMH sums the threads' forwards per second.
 * Configured as a service with many concurrent callers would be: one thread per op ({@code -Darrakis.threads=1}),
 * so that callers do not each start a pool as large as the machine (with the default pools, 4 callers on 2 cores
 * got 0.2-0.8x the throughput of one).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx2g", "-Darrakis.threads=1"})
@State(Scope.Benchmark)
public class OursThroughput {
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

    private long forward() {
        try (ModelOutput out = model.forward(ids, CacheSpec.none())) {
            return out.logits().numel();
        }
    }

    @Benchmark
    @Threads(1)
    public long threads1() {
        return forward();
    }

    @Benchmark
    @Threads(2)
    public long threads2() {
        return forward();
    }

    @Benchmark
    @Threads(4)
    public long threads4() {
        return forward();
    }

    @Benchmark
    @Threads(8)
    public long threads8() {
        return forward();
    }
}

package io.arrakis.suite;

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

/** Suite rows {@code op_mul_2x2} and {@code op_matmul_64}, ours: one op through the API, its result freed. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Thread)
public class OursOps {
    private Tensor a2;
    private Tensor b2;
    private Tensor a64;
    private Tensor b64;

    @Setup
    public void setUp() {
        Generator g = new Generator(0);
        a2 = Tensor.randn(g, new long[] {2, 2}, DType.FLOAT32, Device.CPU);
        b2 = Tensor.randn(g, new long[] {2, 2}, DType.FLOAT32, Device.CPU);
        a64 = Tensor.randn(g, new long[] {64, 64}, DType.FLOAT32, Device.CPU);
        b64 = Tensor.randn(g, new long[] {64, 64}, DType.FLOAT32, Device.CPU);
    }

    @TearDown
    public void tearDown() {
        a2.close();
        b2.close();
        a64.close();
        b64.close();
    }

    @Benchmark
    public long mul2x2() {
        try (Tensor c = a2.mul(b2)) {
            return c.dataAddress();
        }
    }

    @Benchmark
    public long matmul64() {
        try (Tensor c = a64.matmul(b64)) {
            return c.dataAddress();
        }
    }
}

package io.arrakis.composer;

import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
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
 * All-pairs Q-composition scores on a GPT-2-small-shaped model (12 layers × 12 heads, d_model 768, d_head 64, random
 * weights: 9,504 earlier→later head pairs), next to the one unavoidable matrix product
 * {@code [L·H·d_head, d_model] × [d_model, L·H·d_head]} = {@code [9216, 768] × [768, 9216]} in float32 (all blocks,
 * {@code fullProduct}; only the earlier→later blocks the scores need, {@code laterBlocksProduct}).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class CompositionBench {
    @Param({"float32", "bfloat16"})
    public String dtype;

    private HookedAutoModel model;
    private Tensor left;
    private Tensor right;
    private int layers;
    private long rowsPerLayer;

    @Setup(Level.Trial)
    public void setUp() {
        HookedAutoConfig c = HookedAutoConfig.of("gpt2");
        model = HookedAutoModel.create(c, 0, DType.parse(dtype), Device.CPU);
        layers = c.nLayers();
        rowsPerLayer = (long) c.nHeads() * c.dHead();
        long n = layers * rowsPerLayer;
        Generator g = new Generator(1);
        left = Tensor.randn(g, new long[] {n, c.dModel()}, DType.FLOAT32, Device.CPU);
        right = Tensor.randn(g, new long[] {c.dModel(), n}, DType.FLOAT32, Device.CPU);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        left.close();
        right.close();
        model.close();
    }

    @Benchmark
    public double allPairsQ() {
        try (Tensor scores = CompositionScores.compute(model, CompositionScores.Mode.Q,
                CompositionScores.Options.builder().progress(false).build()).scores()) {
            return scores.numel();
        }
    }

    @Benchmark
    public long fullProduct() {
        try (Tensor product = left.matmul(right)) {
            return product.numel();
        }
    }

    @Benchmark
    public long laterBlocksProduct() {
        long total = 0;
        try (TensorScope scope = TensorScope.open()) {
            for (int l1 = 0; l1 < layers - 1; l1++) {
                Tensor block = left.narrow(0, l1 * rowsPerLayer, rowsPerLayer)
                        .matmul(right.narrow(1, (l1 + 1) * rowsPerLayer, (layers - l1 - 1) * rowsPerLayer));
                total += block.numel();
                block.close();
            }
        }
        return total;
    }
}

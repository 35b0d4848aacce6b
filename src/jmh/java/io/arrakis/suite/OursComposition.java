package io.arrakis.suite;

import io.arrakis.composer.CompositionScores;
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
 * Suite row {@code composition_all_pairs_q} (float32) and issue #4's benchmark (float32 and bfloat16 models):
 * all-pairs Q-composition scores of the GPT-2-small-shaped checkpoint ({@code allPairsQ}), and its {@code reference},
 * the one unavoidable matrix product alone
 * ({@code unavoidableProduct}: the earlier→later blocks of {@code [L·H·d_head, d_model] × [d_model, L·H·d_head]},
 * float32, one sender layer at a time as {@link CompositionScores} does it).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class OursComposition {
    @Param({"float32", "bfloat16"})
    public String dtype;

    private HookedAutoModel model;
    private Tensor left;
    private Tensor right;
    private int layers;
    private long rowsPerLayer;
    private final CompositionScores.Options options = CompositionScores.Options.DEFAULT;

    @Setup
    public void setUp() {
        model = HookedAutoModel.fromPretrained(BenchFiles.gpt2Small(), DType.parse(dtype), Device.CPU);
        HookedAutoConfig c = model.config();
        layers = c.nLayers();
        rowsPerLayer = (long) c.nHeads() * c.dHead();
        long n = layers * rowsPerLayer;
        Generator g = new Generator(1);
        left = Tensor.randn(g, new long[] {n, c.dModel()}, DType.FLOAT32, Device.CPU);
        right = Tensor.randn(g, new long[] {c.dModel(), n}, DType.FLOAT32, Device.CPU);
    }

    @TearDown
    public void tearDown() {
        left.close();
        right.close();
        model.close();
    }

    @Benchmark
    public long allPairsQ() {
        try (Tensor scores = CompositionScores.compute(model, CompositionScores.Mode.Q, options).scores()) {
            return scores.numel();
        }
    }

    @Benchmark
    public long unavoidableProduct() {
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

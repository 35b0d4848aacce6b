package io.arrakis.suite;

import io.arrakis.model.BenchCheckpoint;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LinearWeight;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
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
 * d_model 128, 4 heads, 32 tokens), where a pass is a few dozen small ops and what each costs the host shows; its
 * {@code reference}, {@code matmulsAlone}: the pass's matrix products alone, with their biases, on operands of the same
 * shapes (per layer Q/K/V, output, MLP in and out; then the unembedding), each weight a {@link LinearWeight} as the
 * model's are.
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
    private final java.util.List<Product> products = new java.util.ArrayList<>();

    private record Product(Tensor input, LinearWeight weight, Tensor bias) {
    }

    @Setup
    public void setUp() {
        model = HookedAutoModel.fromPretrained(BenchFiles.tiny(), DType.FLOAT32, Device.CPU);
        ids = Tensor.of(BenchCheckpoint.readIds(BenchFiles.tiny()), 1, BenchCheckpoint.TINY_SEQ);
        HookedAutoConfig c = model.config();
        Generator g = new Generator(2);
        long d = c.dModel();
        for (int layer = 0; layer < c.nLayers(); layer++) {
            products.add(operands(g, d, 3 * d, true));
            products.add(operands(g, d, d, true));
            products.add(operands(g, d, c.dMlp(), true));
            products.add(operands(g, c.dMlp(), d, true));
        }
        products.add(operands(g, d, c.vocabSize(), false));
    }

    private static Product operands(Generator g, long in, long out, boolean bias) {
        return new Product(Tensor.randn(g, new long[] {1, BenchCheckpoint.TINY_SEQ, in}, DType.FLOAT32, Device.CPU),
                new LinearWeight(Tensor.randn(g, new long[] {out, in}, DType.FLOAT32, Device.CPU)),
                bias ? Tensor.randn(g, new long[] {out}, DType.FLOAT32, Device.CPU) : null);
    }

    @TearDown
    public void tearDown() {
        for (Product p : products) {
            p.weight().close();
            p.weight().weight().close();
            p.input().close();
            if (p.bias() != null) {
                p.bias().close();
            }
        }
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
    public long matmulsAlone() {
        long n = 0;
        try (TensorScope scope = TensorScope.open()) {
            for (Product p : products) {
                n += p.weight().apply(p.input(), p.bias()).numel();
            }
        }
        return n;
    }
}

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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Suite rows {@code gpt2s_forward_f32} / {@code _bf16} ({@code noCache}), {@code gpt2s_forward_f32_cache}
 * ({@code fullCache}, every hook point cached) and their {@code reference}: {@code matmulsAlone}, the forward pass's
 * matrix products alone on operands of the same shapes, dtype and layout, through the same ops (per layer Q, K, V, O,
 * MLP in and out as linear layers, each weight a {@link LinearWeight} as the model's are, the two attention products of
 * 12 heads as einsums, then the unembedding {@code [128, 768] × [768, 50257]}).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@State(Scope.Benchmark)
public class OursForward {
    @Param({"float32", "bfloat16"})
    public String dtype;

    private HookedAutoModel model;
    private Tensor ids;
    private final List<Tensor> operands = new ArrayList<>();
    private Tensor x;
    private Tensor h;
    private Tensor q;
    private Tensor pattern;
    private LinearWeight wd;
    private LinearWeight wIn;
    private LinearWeight wOut;
    private LinearWeight unembed;

    @Setup
    public void setUp() {
        DType type = DType.parse(dtype);
        model = HookedAutoModel.fromPretrained(BenchFiles.gpt2Small(), type, Device.CPU);
        ids = BenchFiles.gpt2SmallIds();
        HookedAutoConfig c = model.config();
        Generator g = new Generator(2);
        long seq = BenchCheckpoint.SEQ;
        x = operand(g, type, 1, seq, c.dModel());
        h = operand(g, type, 1, seq, c.dMlp());
        q = operand(g, type, 1, seq, c.nHeads(), c.dHead());
        pattern = operand(g, type, 1, c.nHeads(), seq, seq);
        // as the model passes them to linear layers: contiguous [out, in]
        wd = new LinearWeight(operand(g, type, c.dModel(), c.dModel()));
        wIn = new LinearWeight(operand(g, type, c.dMlp(), c.dModel()));
        wOut = new LinearWeight(operand(g, type, c.dModel(), c.dMlp()));
        unembed = new LinearWeight(operand(g, type, c.vocabSize(), c.dModel()));
    }

    private Tensor operand(Generator g, DType type, long... shape) {
        try (Tensor f = Tensor.randn(g, shape, DType.FLOAT32, Device.CPU)) {
            Tensor t = f.to(type);
            operands.add(t);
            return t;
        }
    }

    @TearDown
    public void tearDown() {
        for (LinearWeight w : new LinearWeight[] {wd, wIn, wOut, unembed}) {
            w.close();
        }
        operands.forEach(Tensor::close);
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
            for (int layer = 0; layer < model.config().nLayers(); layer++) {
                for (int i = 0; i < 4; i++) { // Q, K, V, O
                    n += wd.apply(x, null).numel();
                }
                n += wIn.apply(x, null).numel();
                n += wOut.apply(h, null).numel();
                n += Tensor.einsum("bqhd,bkhd->bhqk", q, q).numel();
                n += Tensor.einsum("bhqk,bkhd->bqhd", pattern, q).numel();
            }
            n += unembed.apply(x, null).numel();
        }
        return n;
    }
}

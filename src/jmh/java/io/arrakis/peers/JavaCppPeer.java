package io.arrakis.peers;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
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
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.TimeUnit;

/**
 * The suite's workloads through JavaCPP's PyTorch API (org.bytedeco:pytorch, JNI over the same libtorch 2.10 build as
 * ours): per-op overhead and the GPT-2-small forward pass on the suite's checkpoint. Runs in its own JMH fork; never
 * loads io.arrakis.torch. JavaCPP must not preload CUDA here ({@code preloadpath=/nonexistent}).
 */
public final class JavaCppPeer {
    private JavaCppPeer() {
    }

    /**
     * Loads JavaCPP's libtorch; every benchmark's set-up calls it before touching {@code torch}. JavaCPP extracts a
     * jar's libraries into its cache one by one as it loads them, and it loads libtorch.so before libtorch_cpu.so. On
     * a first run the dynamic linker then finds no libtorch_cpu.so beside libtorch.so and takes the system's (Debian's
     * python3-torch, which the suite installs, brings libtorch 1.13's): the process gets two libtorch copies, and the
     * second one's static registrations crash in the first one's dispatcher. With the whole folder extracted first,
     * every dependency is found beside its dependent.
     */
    static void loadLibtorch() {
        try {
            Loader.cacheResources("/org/bytedeco/pytorch/" + Loader.getPlatform() + "/");
        } catch (IOException e) {
            throw new UncheckedIOException("could not extract JavaCPP's libtorch into its cache", e);
        }
        Loader.load(torch.class);
    }

    static Tensor fromFloats(float[] values, long... shape) {
        try (FloatPointer p = new FloatPointer(values)) {
            return torch.from_blob(p, shape).clone();
        }
    }

    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    @Fork(value = 1, jvmArgsAppend = {"-Dorg.bytedeco.javacpp.platform.preloadpath=/nonexistent", "-Xmx4g"})
    @State(Scope.Thread)
    public static class Ops {
        private Tensor a2;
        private Tensor b2;
        private Tensor a64;
        private Tensor b64;

        @Setup
        public void setUp() {
            loadLibtorch();
            System.out.println("bench: javacpp libtorch threads " + torch.get_num_threads());
            a2 = torch.randn(2, 2);
            b2 = torch.randn(2, 2);
            a64 = torch.randn(64, 64);
            b64 = torch.randn(64, 64);
        }

        @Benchmark
        public long mul2x2() {
            try (Tensor c = a2.mul(b2)) {
                return c.dim();
            }
        }

        @Benchmark
        public long matmul64() {
            try (Tensor c = a64.matmul(b64)) {
                return c.dim();
            }
        }
    }

    /** GPT-2 in JavaCPP's API, written the way Hugging Face's GPT2Model computes it (Conv1D weights {@code [in, out]}). */
    static final class Gpt2 {
        final int layers;
        final int heads;
        final int d;
        final double eps;
        final Tensor wte;
        final Tensor wteT;
        final Tensor wpe;
        final Tensor lnfW;
        final Tensor lnfB;
        final Tensor[][] blocks; // ln1w, ln1b, attnW, attnB, projW, projB, ln2w, ln2b, fcW, fcB, mlpProjW, mlpProjB

        Gpt2(Gpt2Checkpoint ckpt, torch.ScalarType dtype) {
            layers = ckpt.layers;
            heads = ckpt.heads;
            d = ckpt.dModel;
            eps = ckpt.eps;
            wte = load(ckpt, "transformer.wte.weight", dtype);
            wteT = wte.transpose(0, 1);
            wpe = load(ckpt, "transformer.wpe.weight", dtype);
            lnfW = load(ckpt, "transformer.ln_f.weight", dtype);
            lnfB = load(ckpt, "transformer.ln_f.bias", dtype);
            String[] names = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                    "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                    "mlp.c_proj.weight", "mlp.c_proj.bias"};
            blocks = new Tensor[layers][names.length];
            for (int i = 0; i < layers; i++) {
                for (int j = 0; j < names.length; j++) {
                    blocks[i][j] = load(ckpt, "transformer.h." + i + "." + names[j], dtype);
                }
            }
        }

        private static Tensor load(Gpt2Checkpoint ckpt, String name, torch.ScalarType dtype) {
            try (Tensor f = fromFloats(ckpt.floats(name), ckpt.shape(name))) {
                return f.to(dtype);
            }
        }

        private Tensor layerNorm(Tensor x, Tensor w, Tensor b) {
            return torch.layer_norm(x, new long[] {d}, new TensorOptional(w), new TensorOptional(b), eps, false);
        }

        /** Logits {@code [1, T, vocab]}; everything made inside belongs to the caller's PointerScope. */
        Tensor forward(Tensor ids, Tensor futureMask) {
            long t = ids.size(1);
            int dh = d / heads;
            Tensor x = torch.embedding(wte, ids).add(wpe.narrow(0, 0, t));
            Scalar scale = new Scalar(1.0 / Math.sqrt(dh));
            Scalar minusInf = new Scalar(Double.NEGATIVE_INFINITY);
            for (Tensor[] b : blocks) {
                Tensor h = layerNorm(x, b[0], b[1]);
                TensorVector qkv = h.matmul(b[2]).add(b[3]).split(d, 2);
                Tensor q = qkv.get(0).reshape(1, t, heads, dh).transpose(1, 2);
                Tensor k = qkv.get(1).reshape(1, t, heads, dh).transpose(1, 2);
                Tensor v = qkv.get(2).reshape(1, t, heads, dh).transpose(1, 2);
                Tensor scores = q.matmul(k.transpose(-2, -1)).mul(scale).masked_fill(futureMask, minusInf);
                Tensor z = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(1, t, d);
                x = x.add(z.matmul(b[4]).add(b[5]));
                Tensor m = torch.gelu(layerNorm(x, b[6], b[7]).matmul(b[8]).add(b[9]), "tanh");
                x = x.add(m.matmul(b[10]).add(b[11]));
            }
            return layerNorm(x, lnfW, lnfB).matmul(wteT);
        }
    }

    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3, time = 3)
    @Measurement(iterations = 5, time = 3)
    @Fork(value = 1, jvmArgsAppend = {"-Dorg.bytedeco.javacpp.platform.preloadpath=/nonexistent", "-Xmx4g"})
    @State(Scope.Benchmark)
    public static class Forward {
        @Param({"float32", "bfloat16"})
        public String dtype;

        private Gpt2Run run;

        @Setup
        public void setUp() {
            run = new Gpt2Run(Gpt2Checkpoint.gpt2Small(), dtype);
        }

        @Benchmark
        public long forward() {
            return run.forward();
        }
    }

    /** Suite row {@code gpt2_tiny_forward}: the suite's tiny GPT-2 (2 layers, d_model 128, 4 heads, 32 tokens), float32. */
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    @Fork(value = 1, jvmArgsAppend = {"-Dorg.bytedeco.javacpp.platform.preloadpath=/nonexistent", "-Xmx4g"})
    @State(Scope.Benchmark)
    public static class TinyForward {
        private Gpt2Run run;

        @Setup
        public void setUp() {
            run = new Gpt2Run(Gpt2Checkpoint.tiny(), "float32");
        }

        @Benchmark
        public long forward() {
            return run.forward();
        }
    }

    /** A GPT-2 checkpoint loaded in a dtype, with its ids and mask, its logits checked against ours once. */
    static final class Gpt2Run {
        private final Gpt2 model;
        private final Tensor ids;
        private final Tensor mask;

        Gpt2Run(java.nio.file.Path dir, String dtype) {
            loadLibtorch();
            System.out.println("bench: javacpp libtorch threads " + torch.get_num_threads());
            Gpt2Checkpoint ckpt = new Gpt2Checkpoint(dir);
            torch.ScalarType type = dtype.equals("float32") ? torch.ScalarType.Float : torch.ScalarType.BFloat16;
            model = new Gpt2(ckpt, type);
            float[] idValues = new float[ckpt.ids.length];
            for (int i = 0; i < idValues.length; i++) {
                idValues[i] = ckpt.ids[i];
            }
            try (Tensor f = fromFloats(idValues, 1, idValues.length)) {
                ids = f.to(torch.ScalarType.Long);
            }
            int t = idValues.length;
            try (Tensor ones = torch.ones(t, t)) {
                mask = ones.triu(1).to(torch.ScalarType.Bool);
            }
            try (PointerScope scope = new PointerScope()) {
                Tensor logits = model.forward(ids, mask).to(torch.ScalarType.Float);
                Tensor mine = torch.cat(new org.bytedeco.pytorch.TensorArrayRef(new org.bytedeco.pytorch.TensorVector(
                        logits.select(1, 0), logits.select(1, t - 1))), 0);
                Tensor ours = fromFloats(ckpt.referenceLogits(), 2, ckpt.vocab);
                double diff = mine.sub(ours).abs().max().item_float();
                double scale = ours.abs().max().item_float();
                if (dtype.equals("float32")) {
                    Gpt2Checkpoint.checkLogits("javacpp", diff, scale);
                } else {
                    System.out.printf("bench: javacpp bfloat16 logits vs ours (float32): max |diff| %.3g of %.3g%n", diff, scale);
                }
            }
        }

        long forward() {
            try (PointerScope scope = new PointerScope()) {
                return model.forward(ids, mask).dim();
            }
        }
    }
}

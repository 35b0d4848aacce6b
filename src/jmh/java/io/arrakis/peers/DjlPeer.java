package io.arrakis.peers;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.norm.LayerNorm;
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
 * The suite's workloads through DJL's PyTorch engine (ai.djl.pytorch 0.36.0 over its own libtorch 2.7.1 CPU from the
 * pytorch-native-cpu jar, JNI through pytorch-jni): per-op overhead and the GPT-2-small forward pass. Offline: the
 * natives come from the jars on the class path, nothing is downloaded. Runs in its own JMH fork.
 */
public final class DjlPeer {
    private DjlPeer() {
    }

    static NDManager manager() {
        System.setProperty("ai.djl.offline", "true");
        Engine engine = Engine.getEngine("PyTorch");
        System.out.println("bench: djl " + Engine.getDjlVersion() + " engine " + engine.getEngineName() + " "
                + engine.getVersion());
        return NDManager.newBaseManager();
    }

    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    @Fork(value = 1, jvmArgsAppend = {"-Dai.djl.offline=true", "-Xmx4g"})
    @State(Scope.Thread)
    public static class Ops {
        private NDManager manager;
        private NDArray a2;
        private NDArray b2;
        private NDArray a64;
        private NDArray b64;

        @Setup
        public void setUp() {
            manager = manager();
            a2 = manager.randomNormal(new Shape(2, 2));
            b2 = manager.randomNormal(new Shape(2, 2));
            a64 = manager.randomNormal(new Shape(64, 64));
            b64 = manager.randomNormal(new Shape(64, 64));
        }

        @TearDown
        public void tearDown() {
            manager.close();
        }

        @Benchmark
        public long mul2x2() {
            try (NDArray c = a2.mul(b2)) {
                return c.getShape().dimension();
            }
        }

        @Benchmark
        public long matmul64() {
            try (NDArray c = a64.matMul(b64)) {
                return c.getShape().dimension();
            }
        }
    }

    /** GPT-2 in DJL's NDArray API (Hugging Face's GPT2Model; Conv1D weights {@code [in, out]}, tanh GELU). */
    static final class Gpt2 {
        final int heads;
        final int d;
        final float eps;
        final NDArray wte;
        final NDArray wteT;
        final NDArray wpe;
        final NDArray lnfW;
        final NDArray lnfB;
        final NDArray[][] blocks;

        Gpt2(NDManager manager, Gpt2Checkpoint ckpt) {
            heads = ckpt.heads;
            d = ckpt.dModel;
            eps = (float) ckpt.eps;
            wte = load(manager, ckpt, "transformer.wte.weight");
            wteT = wte.transpose();
            wpe = load(manager, ckpt, "transformer.wpe.weight");
            lnfW = load(manager, ckpt, "transformer.ln_f.weight");
            lnfB = load(manager, ckpt, "transformer.ln_f.bias");
            String[] names = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                    "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                    "mlp.c_proj.weight", "mlp.c_proj.bias"};
            blocks = new NDArray[ckpt.layers][names.length];
            for (int i = 0; i < ckpt.layers; i++) {
                for (int j = 0; j < names.length; j++) {
                    blocks[i][j] = load(manager, ckpt, "transformer.h." + i + "." + names[j]);
                }
            }
        }

        private static NDArray load(NDManager manager, Gpt2Checkpoint ckpt, String name) {
            return manager.create(ckpt.floats(name), new Shape(ckpt.shape(name)));
        }

        private NDArray layerNorm(NDArray x, NDArray w, NDArray b) {
            return LayerNorm.layerNorm(x, new Shape(d), w, b, eps).singletonOrThrow();
        }

        private static NDArray geluTanh(NDArray x) {
            return x.mul(0.5f).mul(x.pow(3).mul(0.044715f).add(x).mul((float) Math.sqrt(2 / Math.PI)).tanh().add(1f));
        }

        /** Logits {@code [1, T, vocab]}; {@code futureMask} is additive ({@code -inf} above the diagonal). */
        NDArray forward(NDArray ids, NDArray futureMask) {
            long t = ids.getShape().get(1);
            int dh = d / heads;
            NDArray x = ids.getNDArrayInternal().embedding(ids, wte, SparseFormat.DENSE).singletonOrThrow()
                    .add(wpe.get("0:" + t));
            for (NDArray[] b : blocks) {
                NDList qkv = layerNorm(x, b[0], b[1]).matMul(b[2]).add(b[3]).split(new long[] {d, 2L * d}, 2);
                NDArray q = qkv.get(0).reshape(1, t, heads, dh).transpose(0, 2, 1, 3);
                NDArray k = qkv.get(1).reshape(1, t, heads, dh).transpose(0, 2, 3, 1);
                NDArray v = qkv.get(2).reshape(1, t, heads, dh).transpose(0, 2, 1, 3);
                NDArray scores = q.matMul(k).mul((float) (1.0 / Math.sqrt(dh))).add(futureMask);
                NDArray z = scores.softmax(-1).matMul(v).transpose(0, 2, 1, 3).reshape(1, t, d);
                x = x.add(z.matMul(b[4]).add(b[5]));
                NDArray m = geluTanh(layerNorm(x, b[6], b[7]).matMul(b[8]).add(b[9]));
                x = x.add(m.matMul(b[10]).add(b[11]));
            }
            return layerNorm(x, lnfW, lnfB).matMul(wteT);
        }
    }

    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3, time = 3)
    @Measurement(iterations = 5, time = 3)
    @Fork(value = 1, jvmArgsAppend = {"-Dai.djl.offline=true", "-Xmx4g"})
    @State(Scope.Benchmark)
    public static class Forward {
        private NDManager manager;
        private Gpt2Run run;

        /** The checkpoint this row runs. */
        java.nio.file.Path checkpoint() {
            return Gpt2Checkpoint.gpt2Small();
        }

        @Setup
        public void setUp() {
            manager = manager();
            run = new Gpt2Run(manager, checkpoint());
        }

        @TearDown
        public void tearDown() {
            manager.close();
        }

        @Benchmark
        public long forward() {
            return run.forward();
        }
    }

    /** Suite row {@code gpt2_tiny_forward}: the suite's tiny GPT-2 (2 layers, d_model 128, 4 heads, 32 tokens). */
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    @Fork(value = 1, jvmArgsAppend = {"-Dai.djl.offline=true", "-Xmx4g"})
    @State(Scope.Benchmark)
    public static class TinyForward extends Forward {
        @Override
        java.nio.file.Path checkpoint() {
            return Gpt2Checkpoint.tiny();
        }
    }

    /** A GPT-2 checkpoint loaded with its ids and additive mask, its logits checked against ours once. */
    static final class Gpt2Run {
        private final Gpt2 model;
        private final NDArray ids;
        private final NDArray mask;

        Gpt2Run(NDManager manager, java.nio.file.Path dir) {
            Gpt2Checkpoint ckpt = new Gpt2Checkpoint(dir);
            model = new Gpt2(manager, ckpt);
            int t = ckpt.ids.length;
            ids = manager.create(ckpt.ids, new Shape(1, t));
            float[] m = new float[t * t];
            for (int q = 0; q < t; q++) {
                for (int k = q + 1; k < t; k++) {
                    m[q * t + k] = Float.NEGATIVE_INFINITY;
                }
            }
            mask = manager.create(m, new Shape(t, t));
            try (NDScope scope = new NDScope()) {
                NDArray logits = model.forward(ids, mask);
                NDArray mine = NDArrays.stack(logits.get(":, 0, :").squeeze(0), logits.get(":, " + (t - 1) + ", :").squeeze(0));
                NDArray ours = manager.create(ckpt.referenceLogits(), new Shape(2, ckpt.vocab));
                double diff = mine.sub(ours).abs().max().getFloat();
                double scale = ours.abs().max().getFloat();
                Gpt2Checkpoint.checkLogits("djl", diff, scale);
            }
        }

        long forward() {
            try (NDScope scope = new NDScope()) {
                return model.forward(ids, mask).getShape().dimension();
            }
        }
    }

    private static final class NDArrays {
        static NDArray stack(NDArray a, NDArray b) {
            return ai.djl.ndarray.NDArrays.stack(new NDList(a, b));
        }
    }

    static final DataType FLOAT = DataType.FLOAT32;
}

package io.arrakis.torch;

import java.util.List;
import java.util.function.Supplier;

/**
 * For OpenBlasThreadsTest, in a child JVM with two threads per op: prints {@code fused=} and {@code explicit=}, the median
 * of seven timings in milliseconds of causal attention over 384 positions and 12 heads, fused and as three ops, and
 * {@code threadsAfter=}, OpenBLAS's thread count afterwards.
 */
public final class AttentionSpeedProbe {
    private AttentionSpeedProbe() {
    }

    public static void main(String[] args) {
        Generator g = new Generator(3);
        long pos = 384;
        long heads = 12;
        List<Tensor> qkv = Tensor.randn(g, new long[] {1, pos, 3 * heads * 64}, DType.FLOAT32, Device.CPU)
                .view(1, pos, 3 * heads, 64).split(new long[] {heads, heads, heads}, 2);
        Tensor q = qkv.get(0).transpose(1, 2);
        Tensor k = qkv.get(1).transpose(1, 2);
        Tensor v = qkv.get(2).transpose(1, 2);
        System.out.println("fused=" + medianMillis(() -> Tensor.scaledDotProductAttention(q, k, v, null, true, 0.125)));
        System.out.println("explicit=" + medianMillis(() -> q.matmul(k.transpose(2, 3)).mul(0.125).softmax(-1).matmul(v)));
        System.out.println("threadsAfter=" + OpenBlasThreads.threads());
    }

    private static double medianMillis(Supplier<Tensor> op) {
        double[] times = new double[7];
        for (int i = 0; i < times.length; i++) {
            try (TensorScope scope = TensorScope.open()) {
                long t0 = System.nanoTime();
                op.get();
                times[i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        java.util.Arrays.sort(times);
        return times[times.length / 2];
    }
}

package io.arrakis.suite;

import java.util.Arrays;
import java.util.function.LongSupplier;

/**
 * Our side of the suite's paired comparison with Python: the float32 forward passes, without a cache, of the tiny
 * GPT-2 ({@code gpt2_tiny_forward}, µs) and of GPT-2-small ({@code gpt2s_forward_f32}, ms), the same passes as their
 * JMH rows, each the median of several timed batches after a warm-up; prints one JSON object on stdout.
 * {@code bench_python.py --forward-times} measures Python's the same way, {@code JavaCppForwardTimes} JavaCPP's, and
 * the suite runs ours and each peer in turn, several times, taking the median of the per-turn ratios, so that a
 * machine whose speed drifts between processes does not decide the verdict.
 */
public final class ForwardTimes {
    /** As the suite's JMH row: on few cores the JIT competes with a millisecond pass for seconds after start. */
    public static final long TINY_WARM_UP_NANOS = 8_000_000_000L;

    private ForwardTimes() {
    }

    /** Runs {@code pass} again and again for {@code nanos}. */
    public static void warmUp(LongSupplier pass, long nanos) {
        long until = System.nanoTime() + nanos;
        while (System.nanoTime() < until) {
            pass.getAsLong();
        }
    }

    public static void main(String[] args) {
        OursTinyForward tiny = new OursTinyForward();
        tiny.setUp();
        warmUp(tiny::noCache, TINY_WARM_UP_NANOS);
        double tinyMicros = medianMicros(tiny::noCache, 0, 100, 7);
        tiny.tearDown();
        OursForward small = new OursForward();
        small.dtype = "float32";
        small.setUp();
        double smallMillis = medianMicros(small::noCache, 3, 1, 5) / 1e3;
        small.tearDown();
        printResult(tinyMicros, smallMillis);
    }

    /** The one JSON line the suite reads: the tiny pass in µs, GPT-2-small's in ms. */
    public static void printResult(double tinyMicros, double smallMillis) {
        System.out.printf("{\"gpt2_tiny_forward\": %.3f, \"gpt2s_forward_f32\": %.3f}%n", tinyMicros, smallMillis);
    }

    /** The median over {@code batches} of the mean time of {@code perBatch} passes, after {@code warmUp} passes. */
    public static double medianMicros(LongSupplier pass, int warmUp, int perBatch, int batches) {
        for (int i = 0; i < warmUp; i++) {
            pass.getAsLong();
        }
        double[] means = new double[batches];
        for (int b = 0; b < batches; b++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < perBatch; i++) {
                pass.getAsLong();
            }
            means[b] = (System.nanoTime() - t0) / 1e3 / perBatch;
        }
        Arrays.sort(means);
        return means[batches / 2];
    }
}

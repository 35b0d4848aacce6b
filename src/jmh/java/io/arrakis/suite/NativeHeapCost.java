package io.arrakis.suite;

import io.arrakis.torch.LibTorch;
import io.arrakis.torch.OpOverheadBench;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * What the library's native-heap policy costs: each workload timed with glibc's mmap threshold fixed at 128 KiB (the
 * policy) and at 32 MiB, the most glibc's dynamic threshold rises to, which is where it settles once a process has
 * freed its largest tensors (every tensor then comes from a malloc arena). The two settings alternate round after
 * round in one JVM, and the figure is the median of the per-round ratios policy / arenas. Prints one JSON object.
 * Usage: {@code NativeHeapCost [ROUNDS]}.
 */
public final class NativeHeapCost {
    private static final int M_MMAP_THRESHOLD = -3;
    private static final int POLICY = 128 * 1024;
    private static final int ARENAS = 32 * 1024 * 1024;

    private NativeHeapCost() {
    }

    public static void main(String[] args) throws Throwable {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 9;
        System.err.println("bench: " + LibTorch.load());
        MethodHandle mallopt = Linker.nativeLinker().downcallHandle(
                Linker.nativeLinker().defaultLookup().find("mallopt").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

        OpOverheadBench ops = new OpOverheadBench();
        ops.setUp();
        OursForward forward = new OursForward();
        forward.dtype = "float32";
        forward.setUp();
        String json = "{\"op_mul_2x2\": " + ratio(mallopt, rounds, () -> repeat(200_000, ops::mul2x2))
                + ", \"op_matmul_64\": " + ratio(mallopt, rounds, () -> repeat(5_000, ops::matmul64))
                + ", \"gpt2s_forward_f32\": " + ratio(mallopt, rounds, () -> repeat(3, forward::noCache)) + "}";
        forward.tearDown();
        ops.tearDown();
        System.out.println(json);
    }

    private static long repeat(int times, LongSupplier call) {
        long sink = 0;
        for (int i = 0; i < times; i++) {
            sink += call.getAsLong();
        }
        return sink;
    }

    /** The median over rounds of time(policy) / time(arenas), each timed after one untimed call in its setting. */
    private static String ratio(MethodHandle mallopt, int rounds, LongSupplier work) throws Throwable {
        List<Double> ratios = new ArrayList<>();
        for (int i = 0; i < rounds + 1; i++) {
            boolean policyFirst = i % 2 == 0;
            long policy = 0;
            long arenas = 0;
            for (int k = 0; k < 2; k++) {
                boolean isPolicy = (k == 0) == policyFirst;
                int ok = (int) mallopt.invokeExact(M_MMAP_THRESHOLD, isPolicy ? POLICY : ARENAS);
                if (ok != 1) {
                    throw new IllegalStateException("mallopt refused");
                }
                work.getAsLong();
                long t0 = System.nanoTime();
                work.getAsLong();
                long elapsed = System.nanoTime() - t0;
                if (isPolicy) {
                    policy = elapsed;
                } else {
                    arenas = elapsed;
                }
            }
            if (i > 0) { // the first round warms the JIT up
                ratios.add((double) policy / arenas);
            }
        }
        int restored = (int) mallopt.invokeExact(M_MMAP_THRESHOLD, POLICY);
        assert restored == 1;
        Collections.sort(ratios);
        System.err.println("bench: paired ratios policy/arenas " + ratios);
        return String.format(Locale.ROOT, "%.4f", ratios.get(ratios.size() / 2));
    }
}

package io.arrakis.torch;

import io.arrakis.model.CacheSpec;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Products keep the C heap whole while a sampling profiler's signals arrive: a child JVM handles {@code SIGPROF}, as
 * async-profiler does, with a timer firing every 200 µs of CPU time, while it multiplies by plain and packed weights
 * in float32 (and bfloat16 where oneDNN runs it), runs batched products, and runs GPT-2's and Llama's forward passes
 * in float32 and bfloat16 with and without a cache. Each result must equal the one computed before the signals, and
 * the child must live to exit cleanly: a signal's frame written into the heap (where oneDNN's JIT GEMM kernels in
 * libtorch 2.10 point the stack pointer) may only show when that memory is freed, as late as the JVM's exit.
 */
class ProfilerSignalsTest {

    @Test
    void productsSurviveAProfilersSignals() {
        assumeTrue(System.getProperty("os.name").equals("Linux") && System.getProperty("os.arch").equals("amd64"),
                "the signal set-up below is Linux x86-64's");
        String out = ChildJvm.of(Probe.class, Fixtures.huggingFace("gpt2").toString(),
                Fixtures.huggingFace("llama").toString()).run();
        assertTrue(out.contains("survived"), out);
    }

    /** The child: products before the timer, then again and again under it, each compared with the first. */
    public static final class Probe {
        private static final int SIGPROF = 27;
        private static final int ITIMER_PROF = 2;
        private static final int SA_RESTART = 0x10000000;
        /** glibc's x86-64 {@code struct sigaction}: handler, a 1024-bit mask, flags, restorer. */
        private static final long SIGACTION_BYTES = 8 + 128 + 8 + 8;
        private static final long FLAGS_OFFSET = 8 + 128;

        public static void main(String[] args) throws Throwable {
            Generator g = new Generator(5);
            List<Supplier<Tensor>> products = new ArrayList<>();
            Tensor x = Tensor.randn(g, new long[] {128, 768}, DType.FLOAT32, Device.CPU);
            Tensor w = Tensor.randn(g, new long[] {3072, 768}, DType.FLOAT32, Device.CPU);
            products.add(() -> x.linear(w, null));
            LinearWeight model = new LinearWeight(w);
            products.add(() -> model.apply(x, null));
            products.add(() -> model.applyGelu(x, null, true));
            Tensor q = Tensor.randn(g, new long[] {1, 128, 12, 64}, DType.FLOAT32, Device.CPU);
            products.add(() -> Tensor.einsum("bqhd,bkhd->bhqk", q, q));
            if (OneDnnLinear.bfloat16()) {
                Tensor x16 = x.to(DType.BFLOAT16);
                LinearWeight model16 = new LinearWeight(w.to(DType.BFLOAT16));
                products.add(() -> model16.apply(x16, null));
            }
            // whole passes, fused and explicit attention, in both dtypes: every kernel a forward pass reaches
            Tensor ids = Tensor.of(new long[] {1, 7, 42, 9, 3, 3, 0, 12, 5, 8, 13, 21, 34, 55, 2, 4}, 1, 16);
            for (String folder : args) {
                for (DType dtype : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
                    HookedAutoModel m = HookedAutoModel.fromPretrained(Path.of(folder), dtype, Device.CPU);
                    for (CacheSpec spec : new CacheSpec[] {CacheSpec.none(), CacheSpec.all()}) {
                        products.add(() -> {
                            try (ModelOutput out = m.forward(ids, spec)) {
                                return out.logits().to(DType.FLOAT64);
                            }
                        });
                    }
                }
            }
            List<Tensor> expected = products.stream().map(Supplier::get).toList();

            Linker linker = Linker.nativeLinker();
            MethodHandle sigaction = linker.downcallHandle(linker.defaultLookup().find("sigaction").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                            ValueLayout.ADDRESS));
            MethodHandle setitimer = linker.downcallHandle(linker.defaultLookup().find("setitimer").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                            ValueLayout.ADDRESS));
            try (Arena arena = Arena.ofConfined()) {
                // the handler does nothing: getpid, async-signal-safe, ignores the signal number it is passed
                MemorySegment action = arena.allocate(SIGACTION_BYTES, 8);
                action.set(ValueLayout.ADDRESS, 0, linker.defaultLookup().find("getpid").orElseThrow());
                action.set(ValueLayout.JAVA_INT, FLAGS_OFFSET, SA_RESTART);
                check((int) sigaction.invokeExact(SIGPROF, action, MemorySegment.NULL), "sigaction");
                MemorySegment timer = arena.allocate(32, 8); // two struct timevals: interval, first expiry
                timer.set(ValueLayout.JAVA_LONG, 8, 200);
                timer.set(ValueLayout.JAVA_LONG, 24, 200);
                check((int) setitimer.invokeExact(ITIMER_PROF, timer, MemorySegment.NULL), "setitimer");
                long until = System.nanoTime() + 3_000_000_000L;
                while (System.nanoTime() < until) {
                    for (int i = 0; i < products.size(); i++) {
                        try (TensorScope scope = TensorScope.open()) {
                            Tensor actual = products.get(i).get();
                            double diff = actual.to(DType.FLOAT64).sub(expected.get(i).to(DType.FLOAT64)).abs().max()
                                    .item();
                            if (!(diff <= 1e-6 * expected.get(i).abs().max().item())) {
                                throw new AssertionError("product " + i + " differs under signals by " + diff);
                            }
                        }
                    }
                }
                check((int) setitimer.invokeExact(ITIMER_PROF, arena.allocate(32, 8), MemorySegment.NULL), "setitimer");
            }
            System.out.println("survived");
        }

        private static void check(int rc, String call) {
            if (rc != 0) {
                throw new IllegalStateException(call + " failed");
            }
        }
    }
}

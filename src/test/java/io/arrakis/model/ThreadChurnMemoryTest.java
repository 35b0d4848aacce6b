package io.arrakis.model;

import io.arrakis.testing.ChildJvm;
import io.arrakis.testing.ResidentMemory;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A service's thread pool that keeps replacing its threads, each running forward passes: the process's resident set
 * must not grow with the number of threads that have come and gone. Measured in a fresh JVM, since the malloc arenas
 * a process already has (from whatever ran before in it) decide how much memory a freed thread can leave behind.
 */
class ThreadChurnMemoryTest {
    private static final long MB = ResidentMemory.MB;
    /**
     * The growth allowed: above what the per-thread state of libtorch and oneDNN grows to while new threads keep
     * coming (it levels off only after about a hundred), below what glibc's own settings keep in finished threads'
     * arenas here.
     */
    private static final long SLACK = 80 * MB;
    /** Threads alive at once. */
    private static final int POOL = 8;
    private static final int ROUNDS = 9;
    /** Tokens per pass: with d_model 256 and a 2,048-word vocabulary, the logits (1 MB) and MLP activations (512 KB)
     *  are tensors that glibc serves from malloc arenas once its dynamic mmap threshold has risen. */
    private static final int POS = 128;

    /**
     * 64 threads, 8 at a time, each running a forward pass and ending. A first round brings libtorch's per-thread
     * state, the JIT and the malloc arenas to their working size. What the later rounds leave behind, once the
     * library's heap trimmer has seen the threads end, must be within the slack of a loop that leaks nothing; with
     * glibc's own settings each finished thread's arena would keep its passes' tensors.
     */
    @Test
    void rssStaysBoundedAsThreadsComeAndGo() {
        String out = ChildJvm.of(Churn.class).run();
        Matcher m = Pattern.compile("RSS (\\d+) -> (\\d+)").matcher(out);
        assertTrue(m.find(), out);
        long before = Long.parseLong(m.group(1));
        long after = Long.parseLong(m.group(2));
        assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB as threads came and went:\n" + out);
    }

    /** The churn, in a JVM of its own: prints {@code RSS <before> -> <after>} in bytes. */
    public static final class Churn {
        public static void main(String[] args) throws InterruptedException {
            HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 256, "n_layer", 2, "n_head", 4,
                    "vocab_size", 2048, "n_positions", POS));
            try (HookedAutoModel model = HookedAutoModel.create(config, 7, DType.FLOAT32, Device.CPU);
                 Tensor ids = Tensor.randint(new Generator(11), 0, 2048, new long[] {1, POS}, Device.CPU)) {
                float[] expected = lastLogits(model, ids);
                round(model, ids, expected);
                long before = ResidentMemory.settled();
                for (int r = 1; r < ROUNDS; r++) {
                    round(model, ids, expected);
                    System.out.println("after round " + r + ": RSS " + ResidentMemory.rss() / MB + " MB");
                }
                long after = ResidentMemory.settledWithin(before, SLACK, 10);
                ResidentMemory.report("ThreadChurnMemoryTest", (ROUNDS - 1) * POOL + " threads x 1 forward pass",
                        before, after);
                System.out.println("RSS " + before + " -> " + after);
            }
        }

        /** The logits of the last position: every pass on every thread must compute the same. */
        private static float[] lastLogits(HookedAutoModel model, Tensor ids) {
            try (ModelOutput out = model.forward(ids, CacheSpec.none());
                 Tensor last = out.logits().select(1, POS - 1).contiguous()) {
                return last.toFloatArray();
            }
        }

        /** Starts {@link #POOL} threads that each run a pass and end, and waits for them. */
        private static void round(HookedAutoModel model, Tensor ids, float[] expected) throws InterruptedException {
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < POOL; t++) {
                Thread thread = new Thread(() -> assertArrayEquals(expected, lastLogits(model, ids)));
                thread.setUncaughtExceptionHandler((th, e) -> failure.compareAndSet(null, e));
                threads.add(thread);
                thread.start();
            }
            for (Thread thread : threads) {
                thread.join();
            }
            if (failure.get() != null) {
                throw new AssertionError("a worker failed", failure.get());
            }
        }
    }
}

package io.arrakis.model;

import io.arrakis.testing.ResidentMemory;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A service's thread pool that keeps replacing its threads, each running forward passes: the process's resident set
 * must not grow with the number of threads that have come and gone.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ThreadChurnMemoryTest {
    private static final long MB = ResidentMemory.MB;
    /** The growth allowed for a loop that should leak nothing (as in the torch package's MemoryTest). */
    private static final long SLACK = 50 * MB;
    /** Threads alive at once. */
    private static final int POOL = 8;
    private static final int ROUNDS = 13;
    private static final int FORWARDS_PER_THREAD = 1;
    /** Tokens per pass: with d_model 256 and a 2,048-word vocabulary, the logits (1 MB) and MLP activations (512 KB)
     *  are tensors that glibc serves from malloc arenas once its dynamic mmap threshold has risen. */
    private static final int POS = 128;

    private static HookedAutoModel model;
    private static Tensor ids;
    private static float[] expectedLogits;

    @BeforeAll
    static void makeModel() {
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 256, "n_layer", 2, "n_head", 4,
                "vocab_size", 2048, "n_positions", POS));
        model = HookedAutoModel.create(config, 7, DType.FLOAT32, Device.CPU);
        ids = Tensor.randint(new Generator(11), 0, 2048, new long[] {1, POS}, Device.CPU);
        expectedLogits = lastLogits();
    }

    @AfterAll
    static void closeModel() {
        ids.close();
        model.close();
    }

    /** The logits of the last position: every pass on every thread must compute the same. */
    private static float[] lastLogits() {
        try (ModelOutput out = model.forward(ids, CacheSpec.none());
             Tensor last = out.logits().select(1, POS - 1).contiguous()) {
            return last.toFloatArray();
        }
    }

    /** Starts {@link #POOL} threads that each run {@link #FORWARDS_PER_THREAD} passes and end, and waits for them. */
    private static void round() throws InterruptedException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < POOL; t++) {
            Thread thread = new Thread(() -> {
                for (int f = 0; f < FORWARDS_PER_THREAD; f++) {
                    assertArrayEquals(expectedLogits, lastLogits());
                }
            });
            thread.setUncaughtExceptionHandler((th, e) -> failure.compareAndSet(null, e));
            threads.add(thread);
            thread.start();
        }
        for (Thread thread : threads) {
            thread.join();
        }
        assertNull(failure.get(), () -> "a worker failed: " + failure.get());
    }

    /**
     * 96 threads, 8 at a time, each running a forward pass and ending. A first round brings libtorch's per-thread
     * state, the JIT and the malloc arenas (glibc keeps at most 8 per core, reused by later threads) to their working
     * size. What the later rounds leave behind, once the library's heap trimmer has seen the threads end, must be within
     * the slack of a loop that leaks nothing; with glibc's own settings each finished thread's arena would keep its
     * passes' tensors.
     */
    @Test
    void rssStaysBoundedAsThreadsComeAndGo() throws InterruptedException {
        round();
        long before = ResidentMemory.settled();
        round();
        for (int r = 1; r < ROUNDS; r++) {
            round();
        }
        long after = ResidentMemory.settledWithin(before, SLACK, 10);
        ResidentMemory.report("ThreadChurnMemoryTest", (ROUNDS - 1) * POOL + " threads x " + FORWARDS_PER_THREAD
                + " forward pass", before, after);
        assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB as threads came and went");
    }
}

package io.arrakis.torch;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tensors used as op inputs from many threads at once give exactly the single-threaded results. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ThreadSafetyTest {
    private static final int THREADS = 8;
    private static final int OPS_PER_THREAD = 10_000;

    private static Tensor a;
    private static Tensor b;
    private static Tensor bias;

    @BeforeAll
    static void inputs() {
        LibTorch.load();
        Generator g = new Generator(42);
        try (Tensor x = Tensor.randn(g, new long[] {24, 24}, DType.FLOAT32, Device.CPU);
             Tensor y = Tensor.randn(g, new long[] {24, 24}, DType.FLOAT32, Device.CPU);
             Tensor z = Tensor.randn(g, new long[] {24}, DType.FLOAT32, Device.CPU)) {
            // fresh handles whose metadata no thread has read yet, so the threads also race to read it
            a = x.mul(1.0);
            b = y.mul(1.0);
            bias = z.mul(1.0);
        }
    }

    @AfterAll
    static void close() {
        a.close();
        b.close();
        bias.close();
    }

    /** The mix: each op reads the shared inputs and returns a new tensor. */
    private static final List<Function<Tensor[], Tensor>> OPS = List.of(
            t -> t[0].matmul(t[1]),
            t -> t[0].add(t[1]),
            t -> t[0].softmax(1),
            t -> t[0].mul(1.5),
            t -> t[0].sum(),
            t -> t[1].sum(0, false),
            t -> t[0].linear(t[1], t[2]),
            t -> t[0].transpose(0, 1).contiguous(),
            t -> t[1].layerNorm(t[2], t[2], 1e-5),
            t -> t[0].gelu());

    private static float[] run(int op) {
        try (Tensor r = OPS.get(op).apply(new Tensor[] {a, b, bias})) {
            return r.toFloatArray();
        }
    }

    @Test
    void manyThreadsGiveExactlyTheSingleThreadedResults() throws Exception {
        float[][] expected = new float[OPS.size()][];
        for (int op = 0; op < OPS.size(); op++) {
            expected[op] = run(op);
            assertTrue(expected[op].length > 0);
        }
        // sanity: the mix is not trivial (matmul differs from add, softmax rows sum to 1)
        assertFalse(Arrays.equals(expected[0], expected[1]));
        float row = 0;
        for (int j = 0; j < 24; j++) {
            row += expected[2][j];
        }
        assertEquals(1.0f, row, 1e-5f);

        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch start = new CountDownLatch(1);
        try {
            List<Callable<Integer>> tasks = new ArrayList<>();
            for (int thread = 0; thread < THREADS; thread++) {
                int offset = thread;
                tasks.add(() -> {
                    start.await();
                    int mismatches = 0;
                    for (int i = 0; i < OPS_PER_THREAD; i++) {
                        int op = (i + offset) % OPS.size();
                        if (!Arrays.equals(expected[op], run(op))) {
                            mismatches++;
                        }
                    }
                    return mismatches;
                });
            }
            List<Future<Integer>> futures = new ArrayList<>();
            for (Callable<Integer> task : tasks) {
                futures.add(pool.submit(task));
            }
            start.countDown();
            int mismatches = 0;
            for (Future<Integer> f : futures) {
                mismatches += f.get(90, TimeUnit.SECONDS); // an op's exception fails the test here
            }
            assertEquals(0, mismatches, "results differing from the single-threaded ones");
        } finally {
            pool.shutdownNow();
            assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
        }
        assertFalse(a.isClosed() || b.isClosed() || bias.isClosed());
        assertTrue(Arrays.equals(expected[0], run(0)), "the shared inputs changed");
    }

    /** Each thread's scopes track only its own tensors, while other threads make and free tensors alongside. */
    @Test
    void scopesOnManyThreadsStayApart() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<Integer>> futures = new ArrayList<>();
            for (int thread = 0; thread < THREADS; thread++) {
                futures.add(pool.submit(() -> {
                    int wrong = 0;
                    for (int i = 0; i < 500; i++) {
                        Tensor kept;
                        Tensor dropped;
                        try (TensorScope scope = TensorScope.open()) {
                            dropped = a.add(b);
                            kept = scope.keep(dropped.sum());
                        }
                        if (!dropped.isClosed() || kept.isClosed()) {
                            wrong++;
                        }
                        kept.close();
                    }
                    return wrong;
                }));
            }
            int wrong = 0;
            for (Future<Integer> f : futures) {
                wrong += f.get(60, TimeUnit.SECONDS);
            }
            assertEquals(0, wrong);
        } finally {
            pool.shutdownNow();
            assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
        }
    }

    /** Closing the same tensors from several threads at once frees each exactly once. */
    @Test
    void concurrentClosesOfTheSameTensorsAreHarmless() throws Exception {
        List<Tensor> ts = new ArrayList<>();
        for (int i = 0; i < 20_000; i++) {
            ts.add(Tensor.of(new float[] {i}, 1));
        }
        ExecutorService pool = Executors.newFixedThreadPool(4);
        CountDownLatch start = new CountDownLatch(1);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int thread = 0; thread < 4; thread++) {
                boolean reverse = thread % 2 == 1;
                futures.add(pool.submit(() -> {
                    start.await();
                    for (int i = 0; i < ts.size(); i++) {
                        ts.get(reverse ? ts.size() - 1 - i : i).close();
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : futures) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
            assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
        }
        ts.forEach(t -> assertTrue(t.isClosed()));
        try (Tensor x = Tensor.of(new float[] {1, 2, 3}, 3); Tensor s = x.sum()) { // the allocator is still sound
            assertEquals(6.0, s.item());
        }
    }
}

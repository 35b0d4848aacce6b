package io.arrakis.torch;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link CudaGraph}: the frees a capture holds back (everywhere), what a CPU build refuses, and on a GPU, replays of
 * captured work, work that cannot be captured, and device memory across captures.
 */
class CudaGraphTest {
    private static final Device GPU = Device.cuda(0);

    @Test
    void whileHoldingBackAThreadsFreedTensorsWaitAndOtherThreadsFreeAtOnce() throws Exception {
        List<Long> held = Native.holdBackFrees();
        try {
            assertTrue(Native.holdsBackFrees());
            Tensor a = Tensor.ones(1000);
            Tensor b = a.add(a);
            a.close();
            b.close();
            assertEquals(2, held.size(), "the two handles freed on this thread are held back");
            assertThrows(IllegalStateException.class, Native::holdBackFrees, "no capture inside a capture");
            boolean elsewhere = CompletableFuture.supplyAsync(() -> {
                try (Tensor c = Tensor.ones(10)) {
                    return Native.holdsBackFrees();
                }
            }).get();
            assertFalse(elsewhere);
            assertEquals(2, held.size(), "another thread's frees are not held back");
        } finally {
            Native.stopHoldingBack();
        }
        assertFalse(Native.holdsBackFrees());
        try (Tensor c = Tensor.ones(10)) {
            c.add(c).close();
        }
        assertEquals(2, held.size(), "frees after the capture are not held back");
        Native.deleteHeldBack(held);
        assertEquals(0, held.size());
    }

    @Test
    void theCpuIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CudaGraph.capture(Device.CPU, null, () -> { }));
        assertTrue(e.getMessage().contains("cpu"), e.getMessage());
    }

    @Test
    void noWorkIsRefusedBeforeTheWarmUpRuns() {
        boolean[] warmedUp = new boolean[1];
        NullPointerException e = assertThrows(NullPointerException.class,
                () -> CudaGraph.capture(GPU, () -> warmedUp[0] = true, null));
        assertTrue(e.getMessage().contains("work"), e.getMessage());
        assertFalse(warmedUp[0]);
    }

    @Test
    void aVirtualThreadIsRefused() throws Exception {
        Throwable[] thrown = new Throwable[1];
        Thread.ofVirtual().start(() -> {
            try {
                CudaGraph.capture(GPU, null, () -> { });
            } catch (Throwable t) {
                thrown[0] = t;
            }
        }).join();
        assertTrue(thrown[0] instanceof UnsupportedOperationException && thrown[0].getMessage().contains("virtual thread"),
                String.valueOf(thrown[0]));
    }

    @Test
    void aCpuBuildOfLibtorchIsRefused() {
        assumeFalse(Cuda.cudaBuild(), "a CUDA build");
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> CudaGraph.capture(GPU, null, () -> { }));
        assertTrue(e.getMessage().contains("CUDA build"), e.getMessage());
    }

    @Test
    void aCpuBuildLacksTheCudaRuntimeAndSaysWhatIsNeeded() {
        assumeFalse(Cuda.cudaBuild(), "a CUDA build");
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, CudaRuntime::freeBytes);
        assertTrue(e.getMessage().contains("cudaMemGetInfo") && e.getMessage().contains("ARRAKIS_LIBTORCH"), e.getMessage());
    }

    @Test
    @Tag("gpu")
    void aReplayRecomputesFromTheCapturedInputs() {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
        Generator g = new Generator(3);
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = Tensor.randn(g, new long[] {64, 256}, DType.FLOAT32, GPU);
            Tensor w = Tensor.randn(g, new long[] {256, 128}, DType.FLOAT32, GPU);
            Tensor[] y = new Tensor[1];
            try (CudaGraph graph = CudaGraph.capture(GPU, () -> x.matmul(w).gelu(false).close(),
                    () -> y[0] = scope.keep(x.matmul(w).gelu(false).softmax(-1)))) {
                assertTrue(graph.nodeCount() >= 3, graph.nodeCount() + " nodes");
                for (int i = 0; i < 5; i++) {
                    x.copyFrom(Tensor.randn(g, new long[] {64, 256}, DType.FLOAT32, Device.CPU));
                    graph.replay();
                    assertTrue(y[0].allclose(x.matmul(w).gelu(false).softmax(-1), 0, 0), "replay " + i);
                }
            }
        }
    }

    @Test
    @Tag("gpu")
    void workThatReadsBackFailsWithAClearMessageAndTheGpuStaysUsable() {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = Tensor.ones(new long[] {1000}, DType.FLOAT32, GPU);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> CudaGraph.capture(GPU, null, () -> x.sum().item()));
            assertTrue(e.getMessage().contains("could not be captured"), e.getMessage());
            assertEquals(1000.0, x.sum().item(), "eager work after the failed capture");
            assertFalse(Native.holdsBackFrees());
        }
    }

    /**
     * Graphs captured on two threads at once, each closing its graphs while the other captures: nothing waits for the
     * whole device (which would break the other thread's capture), and every replay computes its own inputs.
     */
    @Test
    @Tag("gpu")
    void twoThreadsCaptureReplayAndCloseAtOnce() throws Exception {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
        java.util.concurrent.CyclicBarrier together = new java.util.concurrent.CyclicBarrier(2);
        java.util.concurrent.Callable<Void> worker = () -> {
            for (int round = 0; round < 10; round++) {
                try (TensorScope scope = TensorScope.open()) {
                    Tensor x = Tensor.randn(new Generator(round), new long[] {256, 256}, DType.FLOAT32, GPU);
                    Tensor[] y = new Tensor[1];
                    together.await(60, java.util.concurrent.TimeUnit.SECONDS);
                    try (CudaGraph graph = CudaGraph.capture(GPU, () -> x.matmul(x).relu().close(),
                            () -> y[0] = scope.keep(x.matmul(x).relu()))) {
                        for (int i = 0; i < 3; i++) {
                            x.copyFrom(Tensor.randn(new Generator(100 + i), new long[] {256, 256}, DType.FLOAT32,
                                    Device.CPU));
                            graph.replay();
                            assertTrue(y[0].allclose(x.matmul(x).relu(), 0, 0), "round " + round + " replay " + i);
                        }
                    }
                }
            }
            return null;
        };
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        try {
            for (java.util.concurrent.Future<Void> f : pool.invokeAll(List.of(worker, worker))) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    @Tag("gpu")
    void closingGraphsReturnsTheirMemory() {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
        long[] free = new long[21];
        for (int round = 0; round < free.length; round++) {
            try (TensorScope scope = TensorScope.open()) {
                Tensor x = Tensor.ones(new long[] {1024, 1024}, DType.FLOAT32, GPU);
                try (CudaGraph graph = CudaGraph.capture(GPU, null, () -> x.matmul(x).add(x).relu())) {
                    graph.replay();
                }
            }
            free[round] = CudaRuntime.freeBytes();
        }
        long drift = free[1] - free[free.length - 1];
        assertTrue(Math.abs(drift) < 8L << 20, "device memory moved by " + drift + " bytes over 20 captures");
    }
}

package io.arrakis.model;

import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Closing a model while another thread runs it waits for that pass instead of freeing the weights under it. */
class ClosingWhileInUseTest {
    /** Threads for a pass and a close at once: the common pool may have a single thread, which the pass would hold. */
    private static final java.util.concurrent.Executor THREADS = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "closing-while-in-use");
        t.setDaemon(true);
        return t;
    });

    @Test
    void closeWaitsForAPassInFlightAndLaterCallsAreRefused() throws Exception {
        HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 4, DType.FLOAT32, Device.CPU);
        try (Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4)) {
            Tensor expected = model.runWithHooks(ids);
            CountDownLatch inPass = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            // the hook holds the pass half-way through its blocks, with block 1's weights still to be read
            HookSpec pause = HookSpec.at("blocks.0.hook_resid_post", (activation, name) -> {
                inPass.countDown();
                await(release);
                return activation;
            });
            CompletableFuture<Tensor> pass = CompletableFuture.supplyAsync(() -> model.runWithHooks(ids, pause), THREADS);
            assertTrue(inPass.await(30, TimeUnit.SECONDS), "the pass reached its hook");
            CompletableFuture<Void> closing = CompletableFuture.runAsync(model::close, THREADS);
            Thread.sleep(300);
            assertFalse(closing.isDone(), "close returned while a pass was using the weights");
            release.countDown();
            try (Tensor logits = pass.get(30, TimeUnit.SECONDS)) {
                assertTrue(logits.allclose(expected, 0, 0), "the pass in flight finished on intact weights");
            }
            closing.get(30, TimeUnit.SECONDS);
            expected.close();

            IllegalStateException forward = assertThrows(IllegalStateException.class, () -> model.forward(ids));
            assertTrue(forward.getMessage().contains("model is closed"), forward.getMessage());
            IllegalStateException weights = assertThrows(IllegalStateException.class, () -> model.W_Q(0));
            assertTrue(weights.getMessage().contains("model is closed"), weights.getMessage());
            model.close(); // a second close does nothing
        }
    }

    @Test
    void aHookCannotCloseItsOwnModel() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("llama"), 5, DType.FLOAT32, Device.CPU);
             Tensor ids = Tensor.of(new long[] {1, 2, 3}, 1, 3)) {
            HookSpec closer = HookSpec.at("blocks.0.hook_resid_pre", (activation, name) -> {
                model.close();
                return activation;
            });
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.runWithHooks(ids, closer));
            assertEquals("this llama model cannot be closed by code running inside one of its own passes (a hook, say)",
                    e.getMessage());
            try (Tensor logits = model.runWithHooks(ids)) {
                assertEquals(3, logits.size(1), "the model is still open");
            }
        }
    }

    @Test
    void weightsReadInsideAHookWhileCloseWaits() throws Exception {
        HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 6, DType.FLOAT32, Device.CPU);
        try (Tensor wq = model.W_Q(1)) {
            Tensor[] readInHook = new Tensor[1];
            // a reader queued behind a waiting close must not block a pass that already holds the model
            closeWhileAHookRuns(model, () -> readInHook[0] = TensorScope.unscoped(() -> List.of(model.W_Q(1))).getFirst());
            try (Tensor read = readInHook[0]) { // outlived the pass
                assertTrue(read.allclose(wq, 0, 0));
            }
        }
    }

    /**
     * A hook that hands a read of the model to another thread while close waits for the hook's pass: that thread is
     * refused at once ("closed"), where queueing it behind close would hang all three threads.
     */
    @Test
    void aReadHandedToAnotherThreadWhileCloseWaitsIsRefusedNotHung() throws Exception {
        HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 7, DType.FLOAT32, Device.CPU);
        java.util.concurrent.ExecutorService helper = java.util.concurrent.Executors.newSingleThreadExecutor();
        try {
            Throwable[] handedOff = new Throwable[1];
            closeWhileAHookRuns(model, () -> {
                try {
                    helper.submit(() -> {
                        model.W_Q(0).close();
                        return null;
                    }).get(20, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    handedOff[0] = e.getCause();
                } catch (Exception e) {
                    handedOff[0] = e;
                }
            });
            assertTrue(handedOff[0] instanceof IllegalStateException e && e.getMessage().contains("model is closed"),
                    "the other thread's read: " + handedOff[0]);
        } finally {
            helper.shutdownNow();
        }
    }

    /** Was: two threads closing one output at once could throw ConcurrentModificationException from its cache. */
    @Test
    void anOutputClosedByTwoThreadsAtOnceClosesOnce() throws Exception {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("gpt2"))) {
            Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4);
            for (int i = 0; i < 300; i++) {
                ModelOutput out = model.forward(ids);
                java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(2);
                Runnable close = () -> {
                    try {
                        start.await();
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                    out.close();
                };
                CompletableFuture<Void> other = CompletableFuture.runAsync(close, THREADS);
                close.run();
                other.get(1, TimeUnit.MINUTES);
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> out.cache().get("blocks.0.hook_resid_pre"));
                assertTrue(e.getMessage().contains("cache is closed"), e.getMessage());
            }
            ids.close();
        }
    }

    /** Was: names() and get() copied or searched the entries while remove() changed them on another thread. */
    @Test
    void aCacheReadWhileAnotherThreadRemovesEntriesGivesEntriesOrNamesTheMissingOne() throws Exception {
        HookedAutoConfig deep = TinyConfigs.of("gpt2").with(java.util.Map.of("n_layer", 48));
        try (HookedAutoModel model = HookedAutoModel.create(deep, 1, io.arrakis.torch.DType.FLOAT32,
                io.arrakis.torch.Device.CPU); Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4)) {
            for (int round = 0; round < 100; round++) {
                try (ModelOutput out = model.forward(ids)) {
                    java.util.List<String> names = java.util.List.copyOf(out.cache().names());
                    CompletableFuture<Void> reader = CompletableFuture.runAsync(() -> {
                        for (String name : names) {
                            out.cache().names();
                            if (out.cache().contains(name)) {
                                try {
                                    out.cache().get(name);
                                } catch (IllegalArgumentException removedMeanwhile) {
                                    assertTrue(removedMeanwhile.getMessage().startsWith("no activation '" + name),
                                            removedMeanwhile.getMessage());
                                }
                            }
                        }
                    }, THREADS);
                    names.forEach(out.cache()::remove);
                    reader.get(1, TimeUnit.MINUTES);
                }
            }
        }
    }

    /**
     * Runs a pass whose hook, once {@code close()} has been called on another thread and waits for the pass, runs
     * {@code inHook}; returns when the pass and the close have both finished.
     */
    private static void closeWhileAHookRuns(HookedAutoModel model, Runnable inHook) throws Exception {
        CountDownLatch inPass = new CountDownLatch(1);
        CountDownLatch closeQueued = new CountDownLatch(1);
        HookSpec hook = HookSpec.at("blocks.0.hook_resid_post", (activation, name) -> {
            inPass.countDown();
            await(closeQueued);
            inHook.run();
            return activation;
        });
        try (Tensor ids = Tensor.of(new long[] {1, 2}, 1, 2)) {
            CompletableFuture<Tensor> pass = CompletableFuture.supplyAsync(() -> model.runWithHooks(ids, hook), THREADS);
            assertTrue(inPass.await(30, TimeUnit.SECONDS), "the pass reached its hook");
            CompletableFuture<Void> closing = CompletableFuture.runAsync(model::close, THREADS);
            Thread.sleep(300);
            closeQueued.countDown();
            pass.get(30, TimeUnit.SECONDS).close();
            closing.get(30, TimeUnit.SECONDS);
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            if (!latch.await(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("timed out");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}

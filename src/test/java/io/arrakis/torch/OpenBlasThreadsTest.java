package io.arrakis.torch;

import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * OpenBLAS keeps to one thread exactly while some thread runs an op that calls it from libtorch's parallel regions,
 * and CPU attention long enough for OpenBLAS to split its blocks stays about as fast as the same attention computed in
 * three ops (in a child JVM with two threads per op: this machine's libtorch may default to one, where nothing nests).
 */
class OpenBlasThreadsTest {

    @Test
    void oneThreadWhileAnyCallerIsInside() throws Exception {
        int before = OpenBlasThreads.threads();
        assumeTrue(before > 1, "OpenBLAS runs on one thread here anyway");
        OpenBlasThreads.enter();
        assertEquals(1, OpenBlasThreads.threads());
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch firstLeft = new CountDownLatch(1);
        AtomicInteger seenAfterFirstLeft = new AtomicInteger();
        Thread second = new Thread(() -> {
            OpenBlasThreads.enter();
            entered.countDown();
            try {
                firstLeft.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            seenAfterFirstLeft.set(OpenBlasThreads.threads());
            OpenBlasThreads.leave();
        });
        second.start();
        entered.await();
        OpenBlasThreads.leave();
        firstLeft.countDown();
        second.join();
        assertEquals(1, seenAfterFirstLeft.get(), "the second caller was still inside");
        assertEquals(before, OpenBlasThreads.threads(), "put back when the last caller left");
    }

    @Test
    void longAttentionStaysAsFastAsItsExplicitOps() {
        String out = ChildJvm.of(AttentionSpeedProbe.class).property(LibTorch.PROPERTY_THREADS, "2").run();
        Map<String, String> seen = new HashMap<>();
        out.lines().filter(line -> line.contains("="))
                .forEach(line -> seen.put(line.substring(0, line.indexOf('=')), line.substring(line.indexOf('=') + 1)));
        double fused = Double.parseDouble(seen.get("fused"));
        double explicit = Double.parseDouble(seen.get("explicit"));
        // OpenBLAS splitting each block over its own threads from every OpenMP thread made the fused op many times slower
        assertTrue(fused < 4 * explicit, "fused attention took " + fused + " ms against " + explicit + " ms explicitly");
        assertTrue(Integer.parseInt(seen.get("threadsAfter")) != 1, "OpenBLAS was left on one thread: " + out);
    }
}

package io.arrakis.torch;

import io.arrakis.testing.ChildJvm;
import io.arrakis.testing.ResidentMemory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Native memory is freed: by close, by {@link TensorScope} and by the cleaner. Leaks are measured as growth of the
 * process's resident set (VmRSS), after a warm-up of the same loop so that allocator pools, JIT code and the Java heap
 * have reached their working size.
 */
@SuppressWarnings("try") // scopes opened only to be closed
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MemoryTest {
    private static final long MB = ResidentMemory.MB;
    /** The growth allowed for a loop that should leak nothing. */
    private static final long SLACK = 50 * MB;
    /** float32 elements in 1 MB. */
    private static final int ONE_MB_FLOATS = 1 << 18;

    /** Loads libtorch first, so that its one-time cost and memory are not measured as a leak. */
    @BeforeAll
    static void loadLibTorch() {
        LibTorch.load();
    }

    private static void report(String what, long before, long after) {
        ResidentMemory.report("MemoryTest", what, before, after);
    }

    // ------------------------------------------------------------------------------------------------ leaks

    /** One iteration: two small tensors (a factory result and an op result), both closed. */
    private static double smallPair(int i) {
        Tensor a = Tensor.of(new float[] {1, 2, 3, i}, 2, 2);
        Tensor b = a.add(1.0);
        double last = b.toFloatArray()[3];
        b.close();
        a.close();
        return last;
    }

    @Test
    void millionSmallTensorsCreatedAndClosedDoNotLeak() {
        for (int i = 0; i < 100_000; i++) {
            smallPair(i);
        }
        long before = ResidentMemory.settled();
        for (int i = 0; i < 500_000; i++) { // 2 tensors each: 1,000,000 in all
            assertEquals(i + 1, smallPair(i));
        }
        long after = ResidentMemory.settled();
        report("1,000,000 small tensors", before, after);
        assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB over 1,000,000 closed tensors");
    }

    @Test
    void tenThousandOneMegabyteTensorsDoNotLeak() {
        float[] data = new float[ONE_MB_FLOATS];
        data[ONE_MB_FLOATS - 1] = 7;
        for (int i = 0; i < 300; i++) {
            oneMegabyte(i, data);
        }
        long before = ResidentMemory.settled();
        double total = 0;
        for (int i = 0; i < 10_000; i++) {
            total += oneMegabyte(i, data);
        }
        long after = ResidentMemory.settled();
        report("10,000 x 1 MB tensors", before, after);
        assertEquals(5_000 * 7.0 + 5_000 * ONE_MB_FLOATS, total);
        assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB over 10,000 closed 1 MB tensors");
    }

    /** A 1 MB tensor whose pages are all written (so a leak shows in RSS): a copy of {@code data}, or ones. */
    private static double oneMegabyte(int i, float[] data) {
        try (Tensor t = i % 2 == 0 ? Tensor.of(data, ONE_MB_FLOATS) : Tensor.ones(ONE_MB_FLOATS)) {
            MemorySegment s = t.asSegment();
            return i % 2 == 0 ? s.getAtIndex(ValueLayout.JAVA_FLOAT, ONE_MB_FLOATS - 1) : ONE_MB_FLOATS;
        }
    }

    @Test
    void scopesFreeOpResultsWithoutLeaking() {
        try (Tensor w = Tensor.of(new float[] {0, 1, 1, 0}, 2, 2)) {
            for (int i = 0; i < 20_000; i++) {
                scopedOps(w, i);
            }
            long before = ResidentMemory.settled();
            for (int i = 0; i < 100_000; i++) { // 4 tensors each
                assertEquals(2 * i + 2, scopedOps(w, i), 1e-3);
            }
            long after = ResidentMemory.settled();
            report("400,000 tensors in scopes", before, after);
            assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB over 100,000 scopes");
        }
    }

    private static double scopedOps(Tensor w, int i) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = Tensor.of(new float[] {i, 1}, 1, 2);
            Tensor y = x.matmul(w).add(x); // [1 + i, i + 1]
            return y.sum().item();
        }
    }

    /** Ops that libtorch rejects must still free the argument handles they were given. */
    @Test
    void failedLibtorchCallsDoNotLeakTheirArguments() {
        // integer softmax and gelu, which libtorch refuses (Tensor's own methods refuse them before it)
        Op softmax = Op.of("aten::softmax", "int");
        Op gelu = Op.of("aten::gelu", "");
        try (Tensor big = Tensor.zeros(new long[] {1 << 20}, DType.INT64, Device.CPU)) { // 8 MB
            Executable failedSoftmax = () -> Call.begin(softmax, big).tensor(big).i64(0).optDtype(null).tensorResult();
            Executable failedGelu = () -> Call.begin(gelu, big).tensor(big).str("none").tensorResult();
            for (int i = 0; i < 5; i++) {
                assertThrows(TorchException.class, failedSoftmax);
            }
            long before = ResidentMemory.settled();
            for (int i = 0; i < 50; i++) { // 400 MB if the argument were leaked
                assertThrows(TorchException.class, failedSoftmax);
                assertThrows(TorchException.class, failedGelu);
            }
            long after = ResidentMemory.settled();
            report("100 failed libtorch calls on 8 MB", before, after);
            assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB over 100 failed calls");
        }
    }

    /**
     * An input another thread closes after {@code Call.begin} checked it fails the op when its handle is taken, and
     * what the stack held by then is freed: a tensor, a list of tensors, an optional tensor and the lists before it.
     */
    @Test
    void anInputClosedWhileACallIsBuiltLeavesNothingBehind() {
        Op mul = Op.of("aten::mul", "Tensor");
        Op cat = Op.of("aten::cat", "");
        Op layerNorm = Op.of("aten::layer_norm", "");
        for (int i = 0; i < 2; i++) {
            failHalfBuilt(mul, cat, layerNorm);
        }
        long before = trimmedResident();
        for (int i = 0; i < 5; i++) { // 180 MB a kind of call if the handles taken were leaked
            failHalfBuilt(mul, cat, layerNorm);
        }
        long after = trimmedResident();
        report("15 calls failed half built with 36 MB inputs", before, after);
        assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB");
        try (Tensor two = Tensor.ones(2)) {
            assertEquals(2.0, two.mul(two).sum().item(), "the thread's stack works after");
        }
    }

    private static void failHalfBuilt(Op mul, Op cat, Op layerNorm) {
        // above glibc's largest mmap threshold, so that freeing it returns it at once
        try (Tensor big = Tensor.ones(36 * ONE_MB_FLOATS)) {
            Tensor closed = Tensor.ones(1);
            Call product = Call.begin(mul, big, closed).tensor(big);
            closed.close(); // as another thread may, once begin has checked it
            assertThrows(IllegalStateException.class, () -> product.tensor(closed));

            Tensor closedInList = Tensor.ones(1);
            Call joined = Call.begin(cat, big, closedInList);
            closedInList.close();
            assertThrows(IllegalStateException.class, () -> joined.tensors(List.of(big, big, closedInList)));

            Tensor weight = Tensor.ones(1);
            Call normed = Call.begin(layerNorm, big, weight).tensor(big).ints(1);
            weight.close();
            assertThrows(IllegalStateException.class, () -> normed.optTensor(weight));
        }
    }

    /**
     * Was: a dim refused after the input's handle was pushed (softmax, sum, max, ... of a dim out of range) left the
     * handle on the thread's stack, holding the tensor's memory for good. The reductions check first now, and a call
     * built and never run is freed by the thread's next call whatever threw.
     */
    @Test
    void aCallThatThrowsWhileItIsBuiltLeavesNothingBehind() {
        Op mul = Op.of("aten::mul", "Tensor");
        refusedMidBuild(mul);
        long before = trimmedResident();
        refusedMidBuild(mul); // 36 MB a call if its handle were leaked: 7 ops' checks, and 4 calls a late check fails
        long after = trimmedResident();
        report("11 calls refused mid-build, each with a 36 MB input", before, after);
        assertTrue(after - before < SLACK, "RSS grew by " + (after - before) / MB + " MB");
    }

    /**
     * RSS once settled, the C heap's free memory handed back first: glibc may serve a 36 MB input from a free block
     * of a malloc arena that an earlier trim left unbacked, which faults it back in and keeps it resident once freed,
     * where a leaked input would stay allocated and resident through any trim.
     */
    private static long trimmedResident() {
        NativeHeap.trim();
        return ResidentMemory.settled();
    }

    private static void refusedMidBuild(Op mul) {
        List<java.util.function.Function<Tensor, Object>> refused = List.of(t -> t.softmax(1), t -> t.logSoftmax(-2),
                t -> t.sum(1, false), t -> t.mean(2, true), t -> t.max(1, false), t -> t.min(-2, false),
                t -> t.argmax(1, false));
        List<java.util.function.Function<Tensor, Object>> lateChecks = java.util.Collections.nCopies(4,
                t -> Call.begin(mul, t, t).tensor(t).i64(Shapes.normDim(5, 1, "a late check")));
        refused = java.util.stream.Stream.concat(refused.stream(), lateChecks.stream()).toList();
        for (var call : refused) {
            try (Tensor big = Tensor.ones(36 * ONE_MB_FLOATS)) {
                assertThrows(IllegalArgumentException.class, () -> call.apply(big));
            }
        }
        try (Tensor empty = Tensor.ones(0)) {
            assertThrows(IllegalArgumentException.class, () -> empty.max(0, false));
        }
        try (Tensor two = Tensor.ones(2)) {
            assertEquals(2.0, two.mul(two).sum().item(), "the thread's stack works after");
        }
    }

    /** Tensors nobody closes are freed by the cleaner once unreachable: 4 GB made, RSS stays far below. */
    @Test
    void droppedTensorsAreFreedByTheCleaner() {
        for (int i = 0; i < 200; i++) {
            Tensor.ones(ONE_MB_FLOATS); // dropped
        }
        long before = ResidentMemory.settled();
        long peak = before;
        double sum = 0;
        for (int i = 0; i < 4_000; i++) {
            Tensor t = Tensor.ones(ONE_MB_FLOATS); // dropped without close
            if (i % 500 == 0) {
                sum += t.asSegment().getAtIndex(ValueLayout.JAVA_FLOAT, i % ONE_MB_FLOATS);
            }
            if (i % 100 == 99) {
                System.gc();
                peak = Math.max(peak, ResidentMemory.rss());
            }
        }
        long after = ResidentMemory.settled();
        report("4,000 dropped 1 MB tensors (peak " + peak / MB + " MB)", before, after);
        assertEquals(8, sum);
        assertTrue(peak - before < 600 * MB, "RSS peaked " + (peak - before) / MB + " MB above start: the cleaner is not freeing");
        assertTrue(after - before < 2 * SLACK, "RSS still " + (after - before) / MB + " MB above start after GC");
    }

    /**
     * Was: a loop that drops its tensors and makes little Java garbage held gigabytes, since collections come from the
     * Java heap, where a tensor is a few dozen bytes. The native bytes left to the backstop now ask for collections
     * themselves: three steps of them are dropped, and nobody calls {@code System.gc()}. In a JVM of its own, so that
     * no earlier test's tensors have set where the first collection is asked for.
     */
    @Test
    void droppedTensorsAreFreedWithoutAnyoneAskingForACollection() {
        // a young generation the loop's Java garbage does not fill: a collection must come from the native bytes
        String out = ChildJvm.of(DroppedTensors.class).jvmOption("-Xmn256m").run();
        Matcher m = Pattern.compile("RSS (\\d+) -> peak (\\d+), step (\\d+)").matcher(out);
        assertTrue(m.find(), out);
        long before = Long.parseLong(m.group(1));
        long peak = Long.parseLong(m.group(2));
        long step = Long.parseLong(m.group(3));
        assertTrue(peak - before < 2 * step + SLACK, "RSS peaked " + (peak - before) / MB
                + " MB above start: the dropped tensors waited for the Java heap to fill:\n" + out);
    }

    /** Drops three steps of 1 MB tensors: prints {@code RSS <before> -> peak <peak>, step <step>} in bytes. */
    public static final class DroppedTensors {
        public static void main(String[] args) {
            LibTorch.load();
            long before = ResidentMemory.settled();
            long peak = before;
            long tensors = 3 * NativePressure.STEP / (4L * ONE_MB_FLOATS);
            for (long i = 0; i < tensors; i++) {
                Tensor.ones(ONE_MB_FLOATS); // dropped without close
                if (i % 50 == 49) {
                    peak = Math.max(peak, ResidentMemory.rss());
                }
            }
            ResidentMemory.report("MemoryTest", tensors + " dropped 1 MB tensors, no System.gc() (peak " + peak / MB
                    + " MB, step " + NativePressure.STEP / MB + " MB)", before, ResidentMemory.settled());
            System.out.println("RSS " + before + " -> peak " + peak + ", step " + NativePressure.STEP);
        }
    }

    /**
     * Tensors in use that grow past a step and are closed each time (a large cache per pass) must not cost a
     * collection each time. The tensors are made, not written, so that this takes no memory.
     */
    @Test
    void tensorsInUseThatAreClosedEachTimeDoNotAskForACollectionEachTime() throws InterruptedException {
        long before = NativePressure.collectionsAsked();
        for (int round = 0; round < 6; round++) {
            List<Tensor> held = new ArrayList<>();
            for (long bytes = 0; bytes < NativePressure.STEP * 5 / 4; bytes += 64 * MB) {
                held.add(Tensor.empty(new long[] {64 * MB}, DType.UINT8, Device.CPU));
            }
            held.forEach(Tensor::close);
            Thread.sleep(150); // past the least interval between two collections
        }
        long asked = NativePressure.collectionsAsked() - before;
        assertTrue(asked <= 1, asked + " collections asked for over 6 rounds of tensors in use");
    }

    /**
     * A scope that is never closed, on a thread that ends, becomes unreachable with its tensors: its backstop frees
     * them. 40 threads one after another each make and abandon 50 MB (2 GB in all), in a fresh JVM (the malloc arenas
     * a process already has decide how much a freed thread can leave behind). The library allows one malloc arena per
     * core (at least 2), and glibc keeps an arena's top free block for the next thread that takes the arena; the heap
     * trimmer returns every other free block once a thread has ended. So what may stay is at most one thread's 50 MB
     * per arena, not the 2 GB; the peak may add the last thread's 50 MB and one more whose backstop has not yet run.
     */
    @Test
    void abandonedScopesOfFinishedThreadsAreFreed() {
        String out = ChildJvm.of(AbandonedScopes.class).run();
        Matcher m = Pattern.compile("RSS (\\d+) -> (\\d+), peak (\\d+)").matcher(out);
        assertTrue(m.find(), out);
        long before = Long.parseLong(m.group(1));
        long after = Long.parseLong(m.group(2));
        long peak = Long.parseLong(m.group(3));
        long arenas = Math.max(2, Runtime.getRuntime().availableProcessors());
        long kept = arenas * 50 * MB;
        assertTrue(peak - before < kept + 2 * 50 * MB + SLACK, "RSS peaked " + (peak - before) / MB
                + " MB above start: scopes are not freed, or finished threads' arenas keep their memory:\n" + out);
        assertTrue(after - before < kept + SLACK, "RSS still " + (after - before) / MB + " MB above start once the"
                + " threads ended:\n" + out);
    }

    @Test
    void keepRefusesATensorThatAnotherScopeWillFree() throws Exception {
        try (TensorScope outer = TensorScope.open()) {
            Tensor mine = Tensor.zeros(2);
            try (TensorScope inner = TensorScope.open()) {
                Tensor innerTensor = Tensor.zeros(2);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> outer.keep(innerTensor));
                assertTrue(e.getMessage().contains("belongs to another TensorScope"), e.getMessage());
                assertSame(mine, inner.keep(mine), "a tensor of an enclosing scope already outlives this one");
                assertSame(innerTensor, inner.keep(innerTensor));
            }
            Tensor[] otherThreads = new Tensor[1];
            java.util.concurrent.CountDownLatch made = new java.util.concurrent.CountDownLatch(1);
            java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
            Thread other = new Thread(() -> {
                try (TensorScope scope = TensorScope.open()) {
                    otherThreads[0] = Tensor.zeros(2);
                    made.countDown();
                    done.await();
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            });
            other.start();
            made.await();
            try {
                assertThrows(IllegalStateException.class, () -> outer.keep(otherThreads[0]));
            } finally {
                done.countDown();
                other.join();
            }
        }
        TensorScope closed = TensorScope.open();
        Tensor t = Tensor.zeros(2);
        closed.close();
        assertThrows(IllegalStateException.class, () -> closed.keep(t));
    }

    /** The abandoned scopes, in a JVM of its own: prints {@code RSS <before> -> <after>, peak <peak>} in bytes. */
    public static final class AbandonedScopes {
        public static void main(String[] args) throws InterruptedException {
            LibTorch.load();
            long before = ResidentMemory.settled();
            long peak = before;
            for (int round = 0; round < 40; round++) {
                Thread worker = new Thread(() -> {
                    TensorScope.open(); // never closed: a bug the backstop must survive
                    for (int i = 0; i < 50; i++) {
                        Tensor.ones(ONE_MB_FLOATS);
                    }
                });
                worker.start();
                worker.join();
                System.gc();
                peak = Math.max(peak, ResidentMemory.rss());
            }
            long after = ResidentMemory.settledWithin(before, SLACK, 5);
            ResidentMemory.report("MemoryTest", "40 abandoned scopes of 50 MB (peak " + peak / MB + " MB)", before, after);
            System.out.println("RSS " + before + " -> " + after + ", peak " + peak);
        }
    }

    // ------------------------------------------------------------------------------------------------ scopes

    @Test
    void scopeClosesWhatWasMadeInsideAndNothingElse() {
        Tensor outside = Tensor.ones(2);
        Tensor a;
        Tensor b;
        List<Tensor> parts;
        try (TensorScope scope = TensorScope.open()) {
            a = Tensor.ones(2);
            b = a.add(outside);
            parts = b.split(1, 0);
            assertFalse(a.isClosed());
            assertFalse(b.isClosed());
        }
        assertTrue(a.isClosed());
        assertTrue(b.isClosed());
        parts.forEach(p -> assertTrue(p.isClosed()));
        assertFalse(outside.isClosed(), "a tensor made before the scope was closed by it");
        assertArrayEquals(new float[] {1, 1}, outside.toFloatArray());
        outside.close();
    }

    @Test
    void keptTensorsSurviveAndMoveToTheParentScope() {
        Tensor kept;
        Tensor keptToOuter;
        Tensor inner;
        List<Tensor> keptAll;
        try (TensorScope outer = TensorScope.open()) {
            try (TensorScope scope = TensorScope.open()) {
                inner = Tensor.ones(3);
                kept = scope.keep(inner.mul(2.0));
                keptAll = scope.keepAll(inner.chunk(3, 0));
                assertSame(kept, scope.keep(kept), "keep returns its argument");
            }
            assertTrue(inner.isClosed());
            assertFalse(kept.isClosed(), "a kept tensor was closed by its scope");
            keptAll.forEach(t -> assertFalse(t.isClosed()));
            assertArrayEquals(new float[] {2, 2, 2}, kept.toFloatArray());
            assertEquals(1.0, keptAll.get(2).item());
            try (TensorScope top = TensorScope.open()) {
                keptToOuter = top.keep(Tensor.ones(1)); // kept past the innermost scope: moves to outer
            }
            assertFalse(keptToOuter.isClosed());
        }
        assertTrue(kept.isClosed(), "the parent scope did not close the tensor kept from its child");
        keptAll.forEach(t -> assertTrue(t.isClosed()));
        assertTrue(keptToOuter.isClosed());

        Tensor free;
        try (TensorScope only = TensorScope.open()) {
            free = only.keep(Tensor.ones(2));
        }
        assertFalse(free.isClosed(), "a tensor kept from the outermost scope belongs to the caller");
        assertEquals(2.0, free.sum().item()); // this result belongs to nobody either
        free.close();
    }

    @Test
    void aClaimedTensorLivesAsLongAsTheClaimingScope() {
        Tensor claimed;
        Tensor left;
        Tensor outerOwn;
        try (TensorScope outer = TensorScope.open()) {
            outerOwn = Tensor.ones(1);
            try (TensorScope inner = TensorScope.open()) {
                claimed = outer.claim(Tensor.ones(2));
                left = Tensor.ones(3);
                assertSame(outerOwn, inner.claim(outerOwn), "a tensor of an enclosing scope stays where it is");
            }
            assertTrue(left.isClosed());
            assertFalse(claimed.isClosed(), "the inner scope freed a tensor the outer one claimed");
            assertEquals(2.0, claimed.sum().item());
        }
        assertTrue(claimed.isClosed(), "the claiming scope did not free it");
        assertTrue(outerOwn.isClosed());
    }

    @Test
    void callInMakesAnEnclosingScopeInnermostForItsBody() {
        Tensor made;
        Tensor inBlock;
        try (TensorScope outer = TensorScope.open()) {
            try (TensorScope block = TensorScope.open()) {
                made = outer.callIn(() -> {
                    TensorScope.open(); // left open: closed when the body returns, with what was made in it
                    return Tensor.ones(2);
                });
                assertTrue(made.isClosed(), "made inside a scope the body left open, which callIn closed");
                inBlock = Tensor.ones(1); // the block is innermost again
            }
            assertTrue(inBlock.isClosed());
            Tensor kept;
            try (TensorScope block = TensorScope.open()) {
                kept = outer.callIn(() -> Tensor.ones(4));
            }
            assertFalse(kept.isClosed(), "made in callIn, it belongs to the outer scope");
        }
        try (TensorScope a = TensorScope.open()) {
            TensorScope b;
            try (TensorScope inner = TensorScope.open()) {
                b = inner;
            }
            assertThrows(IllegalStateException.class, () -> b.callIn(() -> null), "a closed scope");
            // was: the body closed the scope it ran in, and its thread's innermost scope was then a closed one
            try (TensorScope inner = TensorScope.open()) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.callIn(() -> {
                    a.close();
                    return null;
                }));
                assertTrue(e.getMessage().contains("cannot close while code runs in it"), e.getMessage());
                assertEquals(1.0, Tensor.ones(1).item(), "the inner scope is innermost again");
            }
        }
    }

    @Test
    void nestedScopesEachCloseTheirOwn() {
        Tensor outerBefore;
        Tensor inner;
        Tensor outerAfter;
        try (TensorScope outer = TensorScope.open()) {
            outerBefore = Tensor.ones(1);
            try (TensorScope scope = TensorScope.open()) {
                inner = outerBefore.add(1.0);
            }
            assertTrue(inner.isClosed());
            assertFalse(outerBefore.isClosed(), "the inner scope closed a tensor of the outer one");
            outerAfter = outerBefore.add(2.0); // tracked by outer again
            assertEquals(3.0, outerAfter.item());
        }
        assertTrue(outerBefore.isClosed());
        assertTrue(outerAfter.isClosed());
    }

    @Test
    void tensorsClosedEarlyOrKeptAndClosedAreNotFreedTwice() {
        Tensor early;
        Tensor kept;
        try (TensorScope outer = TensorScope.open()) {
            try (TensorScope scope = TensorScope.open()) {
                early = Tensor.ones(4);
                early.close();
                kept = scope.keep(Tensor.ones(4));
            }
            kept.close();
        }
        assertTrue(early.isClosed());
        assertTrue(kept.isClosed());
        try (Tensor t = Tensor.ones(2); Tensor s = t.sum()) { // the allocator is still sound
            assertEquals(2.0, s.item());
        }
    }

    @Test
    void closingScopesOutOfOrderThrows() {
        TensorScope outer = TensorScope.open();
        TensorScope inner = TensorScope.open();
        try {
            Tensor t = Tensor.ones(1);
            IllegalStateException e = assertThrows(IllegalStateException.class, outer::close);
            assertTrue(e.getMessage().contains("out of order"), e.getMessage());
            assertFalse(t.isClosed(), "the failed close freed tensors");
            inner.close();
            assertTrue(t.isClosed());
            Tensor u = Tensor.ones(1); // outer is current again
            outer.close();
            assertTrue(u.isClosed());
            outer.close(); // closing twice is harmless
            inner.close();
        } finally { // never leave a scope open on this thread for the tests that follow
            inner.close();
            outer.close();
        }
        Tensor untracked = Tensor.ones(1); // no scope is open any more
        assertFalse(untracked.isClosed());
        untracked.close();
    }

    @Test
    void scopeBelongsToItsThread() throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            Tensor mine = Tensor.ones(1);
            Tensor theirs = CompletableFuture.supplyAsync(() -> Tensor.ones(1)).get(30, TimeUnit.SECONDS);
            IllegalStateException closeElsewhere = CompletableFuture.supplyAsync(
                    () -> assertThrows(IllegalStateException.class, scope::close)).get(30, TimeUnit.SECONDS);
            assertTrue(closeElsewhere.getMessage().contains("thread"), closeElsewhere.getMessage());
            CompletableFuture.runAsync(() -> assertThrows(IllegalStateException.class, () -> scope.keep(mine)))
                    .get(30, TimeUnit.SECONDS);
            scope.close();
            assertTrue(mine.isClosed());
            assertFalse(theirs.isClosed(), "a scope closed a tensor made on another thread");
            theirs.close();
        }
    }

    // ------------------------------------------------------------------------------------------------ close

    @Test
    void doubleCloseIsHarmless() {
        List<Tensor> ts = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            Tensor t = Tensor.of(new float[] {i}, 1);
            Tensor v = t.view(-1);
            t.close();
            t.close();
            ts.add(v);
        }
        for (Tensor v : ts) { // views keep their storage after the base is closed
            v.close();
            v.close();
            assertTrue(v.isClosed());
        }
        try (Tensor t = Tensor.of(new float[] {1, 2}, 2); Tensor s = t.sum()) {
            assertEquals(3.0, s.item());
        }
    }

    @Test
    void useAfterCloseThrowsNamingTheTensor() {
        Tensor t = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
        t.close();
        String name = t.toString().substring("Tensor[closed ".length(), t.toString().length() - 1);
        assertTrue(name.startsWith("0x") && name.contains("float32[2, 2]"), name);
        List<org.junit.jupiter.api.function.Executable> uses = List.of(
                () -> t.add(1.0), () -> t.matmul(t), t::sum, () -> t.softmax(0), t::toFloatArray, () -> t.view(-1),
                t::asSegment, t::contiguous, t::copy, t::dataAddress, () -> t.to(DType.FLOAT64));
        for (var use : uses) {
            IllegalStateException e = assertThrows(IllegalStateException.class, use);
            assertTrue(e.getMessage().contains(name) && e.getMessage().contains("closed"), e.getMessage());
        }
    }
}

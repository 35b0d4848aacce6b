package io.arrakis.torch;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Tensor#fromSegment} and {@link Tensor#asSegment} share memory with Java segments without copying, safely. */
class ZeroCopyTest {

    @BeforeAll
    static void loadLibTorch() {
        LibTorch.load();
    }

    /** Elements already on the host, contiguous and in the asked dtype are read in place: no libtorch op. */
    @Test
    void readingOutAHostTensorCopiesOnlyWhenItMust() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor t = Tensor.of(new long[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3, 4);
            long before = LibTorch.opCalls();
            assertArrayEquals(new long[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, t.toLongArray());
            Tensor rows = t.narrow(0, 1, 2);                  // contiguous, at an offset
            long afterView = LibTorch.opCalls();
            assertArrayEquals(new long[] {4, 5, 6, 7, 8, 9, 10, 11}, rows.toLongArray());
            assertEquals(afterView, LibTorch.opCalls(), "a contiguous int64 host tensor is read without an op");
            assertEquals(0, afterView - before, "a view runs no op");
            assertArrayEquals(new long[] {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, t.transpose(0, 1).toLongArray());
            assertArrayEquals(new int[] {4, 5, 6, 7, 8, 9, 10, 11}, rows.toIntArray());
            assertArrayEquals(new double[] {1, 5, 9}, t.select(1, 1).toDoubleArray());
        }
    }

    @Test
    void fromSegmentSharesTheSegmentsMemoryBothWays() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(ValueLayout.JAVA_FLOAT, 6);
            for (int i = 0; i < 6; i++) {
                seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 1);
            }
            try (Tensor t = Tensor.fromSegment(seg, DType.FLOAT32, 2, 3)) {
                assertEquals(seg.address(), t.dataAddress());
                assertArrayEquals(new long[] {2, 3}, t.shape());
                assertArrayEquals(new long[] {3, 1}, t.strides());
                assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, t.toFloatArray());

                // segment -> tensor
                seg.setAtIndex(ValueLayout.JAVA_FLOAT, 4, 50f);
                try (Tensor s = t.sum()) {
                    assertEquals(1 + 2 + 3 + 4 + 50 + 6, s.item());
                }
                assertArrayEquals(new float[] {1, 2, 3, 4, 50, 6}, t.toFloatArray());

                // tensor -> segment, through the tensor's own segment
                MemorySegment view = t.asSegment();
                assertEquals(seg.address(), view.address());
                assertEquals(24, view.byteSize());
                view.setAtIndex(ValueLayout.JAVA_FLOAT, 0, -7f);
                assertEquals(-7f, seg.getAtIndex(ValueLayout.JAVA_FLOAT, 0));

                // tensor -> segment, through a second tensor over the same memory
                try (Tensor again = Tensor.fromSegment(seg, DType.FLOAT32, 6); Tensor row = t.select(0, 1)) {
                    MemorySegment rowSeg = row.asSegment();
                    assertEquals(seg.address() + 12, rowSeg.address());
                    rowSeg.setAtIndex(ValueLayout.JAVA_FLOAT, 2, 60f);
                    assertEquals(60f, seg.getAtIndex(ValueLayout.JAVA_FLOAT, 5));
                    assertArrayEquals(new float[] {-7, 2, 3, 4, 50, 60}, again.toFloatArray());
                }
            }
            // closing the tensor leaves the segment alone
            assertEquals(60f, seg.getAtIndex(ValueLayout.JAVA_FLOAT, 5));
        }
    }

    @Test
    void fromSegmentOfEachDtypeAndAnOffsetSlice() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment whole = arena.allocate(256, 16);
            MemorySegment slice = whole.asSlice(16, 64);
            slice.setAtIndex(ValueLayout.JAVA_DOUBLE, 0, 2.5);
            slice.setAtIndex(ValueLayout.JAVA_DOUBLE, 1, -1.0);
            try (Tensor d = Tensor.fromSegment(slice, DType.FLOAT64, 2)) {
                assertEquals(whole.address() + 16, d.dataAddress());
                assertArrayEquals(new double[] {2.5, -1.0}, d.toDoubleArray());
            }
            slice.setAtIndex(ValueLayout.JAVA_LONG, 0, 1L << 40);
            try (Tensor l = Tensor.fromSegment(slice, DType.INT64, 1)) {
                assertEquals(1L << 40, l.itemLong());
            }
            slice.setAtIndex(ValueLayout.JAVA_INT, 0, 9);
            slice.setAtIndex(ValueLayout.JAVA_INT, 1, -9);
            try (Tensor i = Tensor.fromSegment(slice, DType.INT32, 2)) {
                assertArrayEquals(new int[] {9, -9}, i.toIntArray());
            }
            try (Tensor empty = Tensor.fromSegment(slice, DType.FLOAT32, 0)) {
                assertEquals(0, empty.numel());
            }
        }
    }

    @Test
    void asSegmentOfAContiguousTensorIsItsMemory() {
        try (Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3)) {
            MemorySegment s = t.asSegment();
            assertEquals(t.dataAddress(), s.address());
            assertEquals(6 * 4, s.byteSize());
            assertEquals(3f, s.getAtIndex(ValueLayout.JAVA_FLOAT, 2));
            s.setAtIndex(ValueLayout.JAVA_FLOAT, 2, 30f);
            try (Tensor sum = t.sum(); Tensor doubled = t.mul(2.0)) {
                assertEquals(1 + 2 + 30 + 4 + 5 + 6, sum.item());
                assertArrayEquals(new float[] {2, 4, 60, 8, 10, 12}, doubled.toFloatArray());
            }
            // a contiguous view at an offset: its segment starts at its first element
            try (Tensor row = t.narrow(0, 1, 1)) {
                MemorySegment r = row.asSegment();
                assertEquals(t.dataAddress() + 12, r.address());
                assertEquals(row.dataAddress(), r.address());
                r.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 40f);
                assertEquals(40f, s.getAtIndex(ValueLayout.JAVA_FLOAT, 3));
            }
            assertEquals(s.address(), t.asSegment().address());
        }
        try (Tensor longs = Tensor.of(new long[] {5, 6}, 2)) {
            MemorySegment s = longs.asSegment();
            assertEquals(16, s.byteSize());
            s.setAtIndex(ValueLayout.JAVA_LONG, 1, 60);
            assertArrayEquals(new long[] {5, 60}, longs.toLongArray());
        }
    }

    @Test
    void asSegmentBecomesInaccessibleWhenTheTensorCloses() {
        Tensor t = Tensor.of(new float[] {1, 2, 3, 4}, 4);
        MemorySegment s = t.asSegment();
        assertTrue(s.scope().isAlive());
        t.close();
        assertFalse(s.scope().isAlive());
        assertThrows(IllegalStateException.class, () -> s.getAtIndex(ValueLayout.JAVA_FLOAT, 0));
        assertThrows(IllegalStateException.class, () -> s.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 1f));
        assertThrows(IllegalStateException.class, t::asSegment);
    }

    @Test
    void usingATensorAfterItsArenaClosesThrows() {
        Arena arena = Arena.ofConfined();
        MemorySegment seg = arena.allocate(ValueLayout.JAVA_FLOAT, 8);
        Tensor t = Tensor.fromSegment(seg, DType.FLOAT32, 2, 4);
        Tensor flat = t.view(-1);
        Tensor tail = t.narrow(1, 2, 2);
        List<Tensor> halves = t.chunk(2, 0);
        Tensor copy = t.copy(); // its own memory: unaffected
        assertEquals(seg.address(), flat.dataAddress());
        assertEquals(seg.address() + 8, tail.dataAddress());
        assertEquals(seg.address() + 16, halves.get(1).dataAddress());
        arena.close();

        for (Tensor x : List.of(t, flat, tail, halves.get(0), halves.get(1))) {
            List<Executable> uses = List.of(x::sum, () -> x.add(1.0), x::toFloatArray, () -> x.view(-1), x::asSegment,
                    x::dataAddress, x::contiguous, x::copy, () -> x.softmax(-1), () -> x.reshape(-1), () -> x.to(DType.FLOAT64));
            for (Executable use : uses) {
                IllegalStateException e = assertThrows(IllegalStateException.class, use);
                assertTrue(e.getMessage().contains("arena"), e.getMessage());
            }
        }
        assertArrayEquals(new float[8], copy.toFloatArray());
        // closing tensors over a closed arena's memory is harmless
        t.close();
        flat.close();
        tail.close();
        halves.forEach(Tensor::close);
        copy.close();
        assertTrue(t.isClosed());
        try (Tensor ok = Tensor.ones(3); Tensor s = ok.sum()) {
            assertEquals(3.0, s.item());
        }
    }

    @Test
    void aTensorKeepsAnAutomaticArenasMemoryAlive() {
        Tensor t = Tensor.fromSegment(filled(Arena.ofAuto(), 1 << 16, 3f), DType.FLOAT32, 1 << 16);
        for (int i = 0; i < 3; i++) { // the segment is unreachable; only the tensor holds its arena
            System.gc();
            byte[] churn = new byte[1 << 20];
            churn[0] = 1;
        }
        try (Tensor s = t.sum(); Tensor later = Tensor.fromSegment(filled(Arena.ofAuto(), 1 << 16, 5f), DType.FLOAT32, 1 << 16)) {
            assertEquals(3.0 * (1 << 16), s.item());
            assertEquals(5.0 * (1 << 16), later.sum().item());
        }
        t.close();
    }

    private static MemorySegment filled(Arena arena, int floats, float value) {
        MemorySegment seg = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
        for (int i = 0; i < floats; i++) {
            seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, value);
        }
        return seg;
    }

    @Test
    void badSegmentsAreRejected() throws InterruptedException {
        try (Arena arena = Arena.ofConfined()) {
            List<Executable> bad = List.of(
                    () -> Tensor.fromSegment(MemorySegment.ofArray(new float[4]), DType.FLOAT32, 4), // on the heap
                    () -> Tensor.fromSegment(MemorySegment.ofArray(new byte[64]), DType.INT8, 64),
                    () -> Tensor.fromSegment(arena.allocate(15, 8), DType.FLOAT32, 4), // too small
                    () -> Tensor.fromSegment(arena.allocate(16, 8), DType.FLOAT64, 2, 2),
                    () -> Tensor.fromSegment(MemorySegment.NULL, DType.FLOAT32, 1),
                    () -> Tensor.fromSegment(arena.allocate(64, 8).asSlice(1), DType.FLOAT32, 4), // misaligned
                    () -> Tensor.fromSegment(arena.allocate(64, 8).asSlice(4), DType.FLOAT64, 2),
                    () -> Tensor.fromSegment(arena.allocate(64, 8).asSlice(2), DType.INT32, 1),
                    () -> Tensor.fromSegment(arena.allocate(16, 8).asReadOnly(), DType.FLOAT32, 4), // read-only
                    () -> Tensor.fromSegment(arena.allocate(16, 8), DType.FLOAT32, -1, -4), // negative size
                    () -> Tensor.fromSegment(arena.allocate(16, 8), DType.FLOAT64, 1L << 61)); // bytes overflow
            for (Executable call : bad) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
                assertTrue(e.getMessage().contains("fromSegment"), e.getMessage());
            }
            // the same sizes and alignments that are right are accepted
            try (Tensor t = Tensor.fromSegment(arena.allocate(64, 8).asSlice(4), DType.FLOAT32, 15)) {
                assertEquals(15, t.numel());
            }
        }
        Arena closed = Arena.ofConfined();
        MemorySegment dead = closed.allocate(16, 8);
        closed.close();
        assertThrows(IllegalStateException.class, () -> Tensor.fromSegment(dead, DType.FLOAT32, 4));
        try (Arena mine = Arena.ofConfined()) {
            MemorySegment confined = mine.allocate(16, 8);
            Throwable[] thrown = new Throwable[1];
            Thread other = new Thread(() -> {
                try {
                    Tensor.fromSegment(confined, DType.FLOAT32, 4).close();
                } catch (Throwable t) {
                    thrown[0] = t;
                }
            });
            other.start();
            other.join();
            assertTrue(thrown[0] instanceof WrongThreadException, "from another thread: " + thrown[0]);
        }
    }

    // ------------------------------------------------------------------------------------------------ bugs

    @Test
    void asSegmentOfABorrowedTensorDiesWithItsArena() {
        BadInputTest.Child.expectInFreshJvm("asSegmentAfterArenaCloses");
    }

    /**
     * Was: add/sub/mul(Tensor) with a fromSegment operand whose arena had closed read the freed memory (no exception, a
     * SIGSEGV once the pages are unmapped); in a child JVM so that a regression cannot kill the test run.
     */
    @Test
    void binaryOpsOnATensorWhoseArenaClosedThrow() {
        BadInputTest.Child.expectInFreshJvm("binaryOpAfterArenaCloses");
    }

    /**
     * Was: an einsum of one operand, which libtorch returns as a view of it, lost its tie to the operand's arena, and
     * using it after the arena closed read freed memory; in a child JVM, as above.
     */
    @Test
    void einsumViewsOfATensorWhoseArenaClosedThrow() {
        BadInputTest.Child.expectInFreshJvm("einsumViewAfterArenaCloses");
    }

    /**
     * Was: a tensor over another tensor's {@code asSegment()} read freed memory (SIGSEGV) once the garbage collector's
     * backstop freed the other tensor, which nothing kept reachable; the segment now keeps it. In a child JVM, as above.
     */
    @Test
    void aSegmentKeepsItsTensorFromTheGarbageCollector() {
        BadInputTest.Child.expectInFreshJvm("viewOfAnUnreachableTensorsSegment");
    }

    /**
     * Was: closing a tensor while another thread's op read it freed the handle under the op (SIGSEGV); the op now
     * holds the handle, and the last hold frees it. In a child JVM, as above.
     */
    @Test
    void closingATensorWhileAnotherThreadComputesWithIt() {
        BadInputTest.Child.expectInFreshJvm("closeWhileAnotherThreadComputes");
    }

    /** Was: another thread could use a tensor over a confined arena, whose owner could close it meanwhile. */
    @Test
    void aConfinedArenasTensorIsRefusedOnOtherThreads() {
        BadInputTest.Child.expectInFreshJvm("foreignThreadOnAConfinedArenasTensor");
    }

    /** The segment keeps its tensor, but nothing keeps both: dropped together, the tensor is collected. */
    @Test
    void aTensorAndItsSegmentDroppedTogetherAreCollected() throws InterruptedException {
        java.lang.ref.WeakReference<Tensor> ref = tensorWithASegment();
        for (int i = 0; i < 50 && ref.get() != null; i++) {
            System.gc();
            Thread.sleep(20);
        }
        assertTrue(ref.get() == null, "a tensor whose segment is gone stayed reachable");
    }

    private static java.lang.ref.WeakReference<Tensor> tensorWithASegment() {
        Tensor t = TensorScope.unscoped(() -> List.of(Tensor.ones(4))).getFirst();
        assertEquals(1.0f, t.asSegment().getAtIndex(ValueLayout.JAVA_FLOAT, 3));
        return new java.lang.ref.WeakReference<>(t);
    }

    /**
     * Closing a tensor while a native call on another thread reads its {@code asSegment()} memory waits for that
     * call instead of freeing the memory under it (the arena refuses to close while the call holds the segment).
     */
    @Test
    void closingATensorWhoseSegmentANativeCallReadsFreesItAfterTheCall() throws Exception {
        java.lang.foreign.Linker linker = java.lang.foreign.Linker.nativeLinker();
        java.lang.invoke.MethodHandle nanosleep = linker.downcallHandle(linker.defaultLookup().find("nanosleep").orElseThrow(),
                java.lang.foreign.FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        Tensor request = TensorScope.unscoped(() -> List.of(Tensor.of(new long[] {0, 300_000_000L}, 2))).getFirst(); // 0.3 s
        MemorySegment timespec = request.asSegment();
        Thread sleeper = Thread.ofPlatform().start(() -> {
            try {
                int rc = (int) nanosleep.invokeExact(timespec, MemorySegment.NULL);
                assertEquals(0, rc);
            } catch (Throwable e) {
                throw new AssertionError(e);
            }
        });
        Thread.sleep(100); // the call now holds the segment
        request.close(); // must not throw, nor free the memory the call reads
        assertTrue(request.isClosed());
        sleeper.join();
        for (int i = 0; i < 100 && timespec.scope().isAlive(); i++) {
            Thread.sleep(20);
        }
        assertFalse(timespec.scope().isAlive(), "freed once the call was done");
    }

    /**
     * A tensor over another tensor's memory ({@code fromSegment(t.asSegment())}): closing {@code t} while an op on
     * another thread reads that memory leaves it to the op's end, as closing a tensor in use does; later ops refuse.
     */
    @Test
    void closingATensorWhileAnotherThreadReadsItsMemoryThroughASegmentWaitsForTheRead() throws Exception {
        long n = 1L << 24;
        for (int round = 0; round < 5; round++) {
            Tensor t = Tensor.ones(new long[] {n}, DType.FLOAT32, Device.CPU);
            Tensor u = Tensor.fromSegment(t.asSegment(), DType.FLOAT32, n);
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(1);
            List<Double> sums = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
            int[] refused = new int[1];
            Thread reader = new Thread(() -> {
                started.countDown();
                for (int i = 0; i < 40; i++) {
                    try (TensorScope scope = TensorScope.open()) {
                        sums.add(u.sum().item());
                    } catch (IllegalStateException closed) {
                        refused[0]++;
                    }
                }
            });
            reader.start();
            started.await();
            Thread.sleep(3);
            t.close();
            try (Tensor reuse = Tensor.zeros(new long[] {n}, DType.FLOAT32, Device.CPU)) { // takes freed memory, if any
                reader.join();
                assertEquals(40, sums.size() + refused[0]);
                assertTrue(refused[0] > 0, "ops after the close are refused");
                for (double sum : sums) {
                    assertEquals(n, sum, 0.0, "a read that began before the close saw the tensor's own memory");
                }
            }
            assertThrows(IllegalStateException.class, u::sum);
            u.close();
        }
    }

    /** fromSegment over part of a tensor's asSegment, in its dtype or another: the same bytes, both ways. */
    @Test
    void aTensorOverPartOfAnotherTensorsMemorySharesItInAnyDtype() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor t = Tensor.of(new float[] {0, 1, 2, 3, 4, 5, 6, 7}, 8);
            MemorySegment middle = t.asSegment().asSlice(8, 16); // elements 2..5
            Tensor same = Tensor.fromSegment(middle, DType.FLOAT32, 2, 2);
            assertArrayEquals(new float[] {2, 3, 4, 5}, same.toFloatArray());
            Tensor bits = Tensor.fromSegment(middle, DType.INT32, 4);
            assertArrayEquals(new int[] {Float.floatToIntBits(2), Float.floatToIntBits(3), Float.floatToIntBits(4),
                    Float.floatToIntBits(5)}, bits.toIntArray());
            Tensor bytes = Tensor.fromSegment(middle.asSlice(4, 4), DType.UINT8, 4);
            bits.select(0, 1).copyFrom(Tensor.of(new int[] {Float.floatToIntBits(-9)}));
            assertArrayEquals(new float[] {0, 1, 2, -9, 4, 5, 6, 7}, t.toFloatArray());
            byte[] nine = new byte[4];
            java.nio.ByteBuffer.wrap(nine).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(-9f);
            long[] expected = new long[4];
            for (int i = 0; i < 4; i++) {
                expected[i] = nine[i] & 0xFF;
            }
            assertArrayEquals(expected, bytes.toLongArray());
        }
    }

    /** What an op copies out of Java memory is the op's own: usable after the arena closes, unlike views of it. */
    @Test
    void copiesOutOfJavaMemoryOutliveItsArenaAndViewsDoNot() {
        Arena arena = Arena.ofConfined();
        try (TensorScope scope = TensorScope.open()) {
            MemorySegment memory = arena.allocate(4L * 6, 4);
            for (int i = 0; i < 6; i++) {
                memory.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            Tensor t = Tensor.fromSegment(memory, DType.FLOAT32, 2, 3);
            Tensor copied = t.transpose(0, 1).reshape(6); // not a view: reshape copies
            Tensor summed = Tensor.einsum("ij->i", t);
            Tensor viewed = t.reshape(3, 2);
            Tensor permuted = Tensor.einsum("ij->ji", t);
            arena.close();
            assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, copied.toFloatArray());
            assertArrayEquals(new float[] {3, 12}, summed.toFloatArray());
            assertThrows(IllegalStateException.class, viewed::toFloatArray);
            assertThrows(IllegalStateException.class, permuted::toFloatArray);
        }
    }

    /**
     * The memory of a tensor closed while an op still reads it is freed when that op ends: a tensor over it would
     * outlive it, so fromSegment refuses it, though the segment's arena stays open until then.
     */
    @Test
    void fromSegmentRefusesTheMemoryOfATensorClosedWhileInUse() {
        Tensor t = Tensor.ones(new long[] {16}, DType.FLOAT32, Device.CPU);
        MemorySegment memory = t.asSegment();
        try (Tensor.Held inUse = t.hold()) { // as an op on another thread would hold it
            t.close();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Tensor.fromSegment(memory, DType.FLOAT32, 16));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }
}

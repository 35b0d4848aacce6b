package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Products through {@link LinearWeight} equal {@code x · weightᵀ + bias} (and its GELU) computed in float64, whether
 * they read oneDNN's packed copy of the weight (large weights, enough rows) or the weight as it is, for any number of
 * rows after the copy was made, from several threads at once, and after the scope that made the copy has closed.
 */
class LinearWeightTest {
    private final Generator g = new Generator(11);

    private Tensor randn(DType dtype, long... shape) {
        return Tensor.randn(g, shape, dtype, Device.CPU);
    }

    private static void assumeOneDnn() {
        assumeTrue(OneDnnLinear.float32(), "no oneDNN float32 linear layers to pack weights for here (libtorch or CPU)");
    }

    /** {@code x · weightᵀ + bias} in float64, through libtorch's matmul and add. */
    private static Tensor reference(Tensor x, Tensor weight, Tensor bias) {
        Tensor product = x.to(DType.FLOAT64).matmul(weight.to(DType.FLOAT64).transpose(0, 1));
        return bias == null ? product : product.add(bias.to(DType.FLOAT64));
    }

    private static void assertClose(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = Math.max(1, expected.abs().max().item());
        double diff = actual.to(DType.FLOAT64).sub(expected).abs().max().item();
        assertTrue(diff <= 1e-5 * scale, what + " off by " + diff + " (largest value " + scale + ")");
    }

    @Test
    void aLargeWeightIsPackedAndItsProductsAreRight() {
        assumeOneDnn();
        try (TensorScope scope = TensorScope.open(); LinearWeight w = new LinearWeight(randn(DType.FLOAT32, 1024, 768))) {
            Tensor bias = randn(DType.FLOAT32, 1024);
            Tensor x = randn(DType.FLOAT32, 2, 8, 768);
            assertClose(reference(x, w.weight(), bias), w.apply(x, bias), "16 rows");
            assertTrue(w.isPacked(), "a [1024, 768] weight times 16 rows reads the packed copy");
            for (long rows : new long[] {1, 5, 300}) { // fewer or more rows than it was packed for
                Tensor y = randn(DType.FLOAT32, rows, 768);
                assertClose(reference(y, w.weight(), bias), w.apply(y, bias), rows + " rows");
                assertClose(reference(y, w.weight(), null), w.apply(y, null), rows + " rows, no bias");
            }
            Tensor pre = reference(x, w.weight(), bias);
            assertClose(pre.gelu(false), w.applyGelu(x, bias, false), "erf GELU");
            assertClose(pre.gelu(true), w.applyGelu(x, bias, true), "tanh GELU");
        }
    }

    @Test
    void smallWeightsPackedAtOneRowAreRightForAnyRowsAfterwards() {
        assumeOneDnn();
        try (TensorScope scope = TensorScope.open(); LinearWeight small = new LinearWeight(randn(DType.FLOAT32, 128, 64))) {
            Tensor bias = randn(DType.FLOAT32, 128);
            Tensor row = randn(DType.FLOAT32, 1, 64);
            assertClose(reference(row, small.weight(), bias), small.apply(row, bias), "one row");
            assertTrue(small.isPacked(), "a [128, 64] weight is packed at its first product, of one row");
            for (long rows : new long[] {2, 31, 257}) {
                Tensor x = randn(DType.FLOAT32, rows, 64);
                assertClose(reference(x, small.weight(), bias), small.apply(x, bias), rows + " rows");
            }
        }
    }

    @Test
    void outputSizesLibtorchMultipliesWronglyWhenPackedArePackedWithZeroRowsAdded() {
        assumeOneDnn();
        for (long out : new long[] {1000, 1008, 50257}) {
            try (TensorScope scope = TensorScope.open(); LinearWeight w = new LinearWeight(randn(DType.FLOAT32, out, 768))) {
                Tensor bias = randn(DType.FLOAT32, out);
                Tensor x = randn(DType.FLOAT32, 2, 8, 768);
                assertClose(reference(x, w.weight(), null), w.apply(x, null), out + " outputs");
                assertTrue(w.isPacked(), out + " outputs are packed as " + OneDnnLinear.packedOutputs(out, DType.FLOAT32));
                assertClose(reference(x, w.weight(), bias), w.apply(x, bias), out + " outputs, bias");
                for (long rows : new long[] {1, 300}) {
                    Tensor y = randn(DType.FLOAT32, rows, 768);
                    assertClose(reference(y, w.weight(), bias), w.apply(y, bias), out + " outputs, " + rows + " rows");
                }
                assertClose(reference(x, w.weight(), bias).gelu(true), w.applyGelu(x, bias, true), out + " outputs, GELU");
            }
        }
    }

    @Test
    void aWeightWhoseOutputsWouldNeedManyZeroRowsOrWhoseInputsAreNoMultipleOf64ReadsTheWeightAsItIs() {
        assumeOneDnn();
        for (long[] size : new long[][] {{96, 768}, {8, 768}, {1024, 700}}) {
            try (TensorScope scope = TensorScope.open();
                 LinearWeight w = new LinearWeight(randn(DType.FLOAT32, size[0], size[1]))) {
                Tensor x = randn(DType.FLOAT32, 16, size[1]);
                assertClose(reference(x, w.weight(), null), w.apply(x, null), java.util.Arrays.toString(size));
                assertFalse(w.isPacked(), java.util.Arrays.toString(size));
            }
        }
    }

    @Test
    void theCheckOfAPackedCopyRefusesOneThatMultipliesWrongly() {
        assumeOneDnn();
        try (TensorScope scope = TensorScope.open()) {
            Tensor weight = randn(DType.FLOAT32, 1024, 768);
            assertTrue(LinearWeight.agrees(weight, OneDnnLinear.pack(weight, 16)));
            Tensor other = weight.add(randn(DType.FLOAT32, 1024, 768).mul(1e-2)); // off by about 1%
            assertFalse(LinearWeight.agrees(weight, OneDnnLinear.pack(other, 16)));
        }
    }

    /**
     * bfloat16 products against float64 from the same bfloat16 operands: each output is rounded once to 8 significant
     * bits (up to 2^-8 of it), and the float32 sums of 768 terms may round differently, so 1% of the largest value.
     */
    private static void assertCloseBfloat16(Tensor expected, Tensor actual, String what) {
        assertEquals(DType.BFLOAT16, actual.dtype(), what);
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = expected.abs().max().item();
        double diff = actual.to(DType.FLOAT64).sub(expected).abs().max().item();
        assertTrue(diff <= 1e-2 * scale, what + " off by " + diff + " (largest value " + scale + ")");
    }

    @Test
    void bfloat16WeightsArePackedOnCpusWithAvx512AndTheirProductsAreRight() {
        assumeOneDnn();
        // output sizes that are not multiples of 32 included: libtorch's packed float32 weights get those wrong
        for (long out : new long[] {384, 1000, 2056}) {
            try (TensorScope scope = TensorScope.open(); LinearWeight w = new LinearWeight(randn(DType.BFLOAT16, out, 128))) {
                Tensor bias = randn(DType.BFLOAT16, out);
                for (long rows : new long[] {1, 7, 32, 130}) {
                    Tensor x = randn(DType.BFLOAT16, rows, 128);
                    assertCloseBfloat16(reference(x, w.weight(), bias), w.apply(x, bias), out + " outputs, " + rows + " rows");
                    assertEquals(OneDnnLinear.covers(x, w.weight(), bias), w.isPacked(),
                            "bfloat16 weights are packed wherever oneDNN runs bfloat16 (AVX-512)");
                }
                Tensor x = randn(DType.BFLOAT16, 2, 9, 128);
                Tensor pre = reference(x, w.weight(), bias);
                assertCloseBfloat16(pre.gelu(true), w.applyGelu(x, bias, true), out + " outputs, tanh GELU");
                assertCloseBfloat16(pre.gelu(false), w.applyGelu(x, bias, false), out + " outputs, erf GELU");
            }
        }
    }

    @Test
    void theCheckOfAPackedBfloat16CopyRefusesOneThatMultipliesWrongly() {
        assumeOneDnn();
        try (TensorScope scope = TensorScope.open()) {
            Tensor weight = randn(DType.BFLOAT16, 256, 128);
            assumeTrue(OneDnnLinear.covers(randn(DType.BFLOAT16, 1, 128), weight, null),
                    "oneDNN runs no bfloat16 linear layers on this CPU");
            assertTrue(LinearWeight.agrees(weight, OneDnnLinear.pack(weight, 16)));
            Tensor other = weight.add(randn(DType.BFLOAT16, 256, 128).mul(0.1)); // off by about 10%
            assertFalse(LinearWeight.agrees(weight, OneDnnLinear.pack(other, 16)));
        }
    }

    @Test
    void otherDtypesTakeLibtorchsLinear() {
        try (TensorScope scope = TensorScope.open(); LinearWeight w = new LinearWeight(randn(DType.FLOAT64, 1024, 768))) {
            Tensor x = randn(DType.FLOAT64, 16, 768);
            Tensor bias = randn(DType.FLOAT64, 1024);
            Tensor expected = x.matmul(w.weight().transpose(0, 1)).add(bias);
            assertTrue(w.apply(x, bias).sub(expected).abs().max().item() <= 1e-9 * expected.abs().max().item());
            assertFalse(w.isPacked(), "oneDNN's linear layers are float32 and bfloat16");
        }
    }

    @Test
    void thePackedCopyOutlivesTheScopeOfTheProductThatMadeIt() {
        assumeOneDnn();
        try (TensorScope outer = TensorScope.open(); LinearWeight w = new LinearWeight(randn(DType.FLOAT32, 1024, 768))) {
            Tensor x = randn(DType.FLOAT32, 16, 768);
            try (TensorScope pass = TensorScope.open()) {
                w.apply(x, null);
            }
            assertTrue(w.isPacked());
            assertClose(reference(x, w.weight(), null), w.apply(x, null), "after the first scope closed");
            w.close();
            assertFalse(w.isPacked(), "close frees the packed copy");
            assertFalse(w.weight().isClosed(), "the weight stays its owner's");
            assertClose(reference(x, w.weight(), null), w.apply(x, null), "after close, from the weight itself");
        }
    }

    @Test
    void threadsMakingTheFirstProductsAtOnceShareOneRightCopy() throws Exception {
        assumeOneDnn();
        try (TensorScope scope = TensorScope.open(); LinearWeight w = new LinearWeight(randn(DType.FLOAT32, 1024, 768))) {
            List<Tensor> inputs = new ArrayList<>();
            List<Tensor> expected = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                inputs.add(randn(DType.FLOAT32, 16 + i, 768));
                expected.add(reference(inputs.get(i), w.weight(), null));
            }
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<double[]>> results = new ArrayList<>();
                for (int i = 0; i < inputs.size(); i++) {
                    Tensor x = inputs.get(i);
                    Tensor e = expected.get(i);
                    results.add(pool.submit(() -> {
                        try (TensorScope own = TensorScope.open()) {
                            Tensor y = w.apply(x, null);
                            return new double[] {y.to(DType.FLOAT64).sub(e).abs().max().item(), e.abs().max().item()};
                        }
                    }));
                }
                for (Future<double[]> r : results) {
                    double[] diffAndScale = r.get();
                    assertTrue(diffAndScale[0] <= 1e-5 * diffAndScale[1], "off by " + diffAndScale[0]);
                }
            } finally {
                pool.shutdown();
            }
            assertTrue(w.isPacked());
        }
    }

    @Test
    void aPackedCopyLeavesAnEighthOfTheMemoryAndAtLeastItsOwnSizeAvailable() {
        long gib = 1L << 30;
        assertTrue(LinearWeight.roomFor(gib, 10 * gib, 16 * gib), "9 GiB left of 16");
        assertFalse(LinearWeight.roomFor(gib, 3 * gib, 24 * gib), "2 GiB left of 24 is under an eighth");
        assertTrue(LinearWeight.roomFor(gib, 4 * gib, 24 * gib), "3 GiB left of 24 is an eighth");
        assertFalse(LinearWeight.roomFor(4 * gib, 7 * gib, 16 * gib), "3 GiB left is less than the copy");
        assertFalse(LinearWeight.roomFor(gib, 0, 16 * gib), "none left (a full cgroup), not unknown");
        assertTrue(LinearWeight.roomFor(gib, 2 * gib, 0), "usable memory unknown: the copy's size must stay");
        assertTrue(LinearWeight.roomFor(gib, -1, 16 * gib), "available memory unknown (not Linux)");
    }

    @Test
    void packedCopiesAreOnUnlessTurnedOffAndOtherSettingsAreRefused() {
        assertTrue(LibTorch.packedWeightsSetting(null, null));
        assertTrue(LibTorch.packedWeightsSetting(null, "on"));
        assertFalse(LibTorch.packedWeightsSetting(null, "off"));
        assertFalse(LibTorch.packedWeightsSetting("off", "on"), "the property wins");
        assertTrue(LibTorch.packedWeightsSetting(" on ", null));
        LibTorchException e = assertThrows(LibTorchException.class, () -> LibTorch.packedWeightsSetting(null, "no"));
        assertTrue(e.getMessage().contains("$ARRAKIS_PACKED_WEIGHTS") && e.getMessage().contains("'no'"), e.getMessage());
        e = assertThrows(LibTorchException.class, () -> LibTorch.packedWeightsSetting("false", null));
        assertTrue(e.getMessage().contains("-Darrakis.packedWeights"), e.getMessage());
        assertTrue(LibTorch.packedWeights(), "on in this JVM");
    }

    @Test
    void withPackedWeightsTurnedOffNoCopyIsMade() {
        assumeOneDnn();
        String on = io.arrakis.testing.ChildJvm.of(PackedOrNot.class).run();
        String off = io.arrakis.testing.ChildJvm.of(PackedOrNot.class)
                .property(LibTorch.PROPERTY_PACKED_WEIGHTS, "off").run();
        assertTrue(on.contains("packed true"), on);
        assertTrue(off.contains("packed false"), off);
    }

    /**
     * oneDNN lays a packed weight out for the number of threads that packs it: on two threads, small weights packed for
     * one or four rows and multiplied on one thread gave wrong products (every row, off by a quarter or more). Each
     * copy's products therefore run on the team it was packed on; here, in a JVM with two threads, small weights first
     * multiplied by 1 or 4 rows (one thread) and then by 600 (enough for two) are packed, and every product is right.
     */
    @Test
    void productsThroughACopyRunOnTheTeamItWasPackedOn() {
        assumeOneDnn();
        assertAllPackedAndRight("2", "64,128", "1,4", "1,4,17,600", 40);
    }

    /**
     * oneDNN chooses a packed layout by the number of threads, whatever the cores, so a JVM told to use 16 lays copies
     * out as a many-core machine would (there, float32 copies packed on 16 threads and multiplied by a few rows on one
     * were wrong for half the products): with weights of 128 and 768, first products of 1 and 128 rows (one thread,
     * or all sixteen for 768 outputs) and later ones of other counts, every copy is used and every product is right.
     */
    @Test
    void productsOnSixteenThreadsThroughTheirCopiesAreRight() {
        assumeOneDnn();
        assertAllPackedAndRight("16", "128,768", "1,128", "1,17,333", 32);
    }

    /** Runs {@link TeamsAndRows} on {@code threads} and expects its 8 weights packed and its products all right. */
    private static void assertAllPackedAndRight(String threads, String sizes, String firsts, String later, int products) {
        String out = io.arrakis.testing.ChildJvm.of(TeamsAndRows.class, sizes, firsts, later)
                .property(LibTorch.PROPERTY_THREADS, threads).run();
        String all = "wrong 0 of " + products + ", packed 8 of 8";
        assertTrue(out.contains("float32: " + all), out);
        assertTrue(out.contains("bfloat16: " + all) || out.contains("bfloat16: not packed here"), out);
    }

    /**
     * A copy laid out for one thread must not hold later large products to one thread: in a JVM with two threads, a
     * weight first multiplied by one row and then by 600 (enough for two) gets a copy for each team, and a weight first
     * multiplied by 600 rows serves one row from its two-thread copy rather than making another.
     */
    @Test
    void largeProductsAfterASmallFirstOneGetACopyForAllThreads() {
        assumeOneDnn();
        String out = io.arrakis.testing.ChildJvm.of(TeamsOfCopies.class).property(LibTorch.PROPERTY_THREADS, "2").run();
        assertTrue(out.contains("small first: teams [1, 2], wrong 0"), out);
        assertTrue(out.contains("large first: teams [2], wrong 0"), out);
    }

    /** Prints the teams of the copies a float32 {@code [128, 64]} weight gets from products of 1, 600 and 1 rows. */
    public static final class TeamsOfCopies {
        public static void main(String[] args) {
            Generator g = new Generator(3);
            for (long[] rows : new long[][] {{1, 600, 1}, {600, 1, 600}}) {
                try (TensorScope scope = TensorScope.open();
                     LinearWeight w = new LinearWeight(Tensor.randn(g, new long[] {128, 64}, DType.FLOAT32, Device.CPU))) {
                    int wrong = 0;
                    for (long r : rows) {
                        Tensor x = Tensor.randn(g, new long[] {r, 64}, DType.FLOAT32, Device.CPU);
                        Tensor expected = reference(x, w.weight(), null);
                        double diff = w.apply(x, null).to(DType.FLOAT64).sub(expected).abs().max().item();
                        wrong += diff <= 1e-5 * Math.max(1, expected.abs().max().item()) ? 0 : 1;
                    }
                    System.out.println((rows[0] == 1 ? "small" : "large") + " first: teams "
                            + new java.util.TreeSet<>(w.packedTeams()) + ", wrong " + wrong);
                }
            }
        }
    }

    /**
     * Prints, per dtype, how many products through packed weights were wrong (float32: 1e-5 of the largest value;
     * bfloat16: 1e-2) and how many weights were packed. Arguments, each a comma-separated list: the sizes (every pair
     * is a weight's out and in), the rows of each weight's first product, and the rows of the products after it.
     */
    public static final class TeamsAndRows {
        public static void main(String[] args) {
            long[] sizes = longs(args[0]);
            long[] firsts = longs(args[1]);
            long[] later = longs(args[2]);
            for (DType dtype : new DType[] {DType.FLOAT32, DType.BFLOAT16}) {
                Generator g = new Generator(5);
                if (!OneDnnLinear.covers(Tensor.zeros(new long[] {1, 64}, dtype, Device.CPU),
                        Tensor.zeros(new long[] {64, 64}, dtype, Device.CPU), null)) {
                    System.out.println(dtype + ": not packed here");
                    continue;
                }
                double tolerance = dtype == DType.BFLOAT16 ? 1e-2 : 1e-5;
                int wrong = 0;
                int products = 0;
                int packed = 0;
                int weights = 0;
                for (long out : sizes) {
                    for (long in : sizes) {
                        for (long first : firsts) {
                            try (TensorScope scope = TensorScope.open();
                                 LinearWeight w = new LinearWeight(Tensor.randn(g, new long[] {out, in}, dtype, Device.CPU))) {
                                for (long rows : LongStream.concat(LongStream.of(first), LongStream.of(later)).toArray()) {
                                    Tensor x = Tensor.randn(g, new long[] {rows, in}, dtype, Device.CPU);
                                    Tensor expected = reference(x, w.weight(), null);
                                    double diff = w.apply(x, null).to(DType.FLOAT64).sub(expected).abs().max().item();
                                    wrong += diff <= tolerance * Math.max(1, expected.abs().max().item()) ? 0 : 1;
                                    products++;
                                }
                                packed += w.isPacked() ? 1 : 0;
                                weights++;
                            }
                        }
                    }
                }
                System.out.println(dtype + ": wrong " + wrong + " of " + products + ", packed " + packed + " of " + weights);
            }
        }

        private static long[] longs(String list) {
            return java.util.Arrays.stream(list.split(",")).mapToLong(Long::parseLong).toArray();
        }
    }

    /** Prints whether a float32 {@code [128, 64]} weight is packed after a product, in a JVM of its own. */
    public static final class PackedOrNot {
        public static void main(String[] args) {
            try (TensorScope scope = TensorScope.open();
                 LinearWeight w = new LinearWeight(Tensor.randn(new Generator(1), new long[] {128, 64}, DType.FLOAT32,
                         Device.CPU))) {
                w.apply(Tensor.randn(new Generator(2), new long[] {4, 64}, DType.FLOAT32, Device.CPU), null);
                System.out.println("packed " + w.isPacked());
            }
        }
    }

    @Test
    void aWeightMustBeTwoDimensional() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor cube = randn(DType.FLOAT32, 2, 3, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new LinearWeight(cube));
            assertTrue(e.getMessage().contains("[out, in]"), e.getMessage());
            LinearWeight w = new LinearWeight(randn(DType.FLOAT32, 4, 3));
            assertThrows(IllegalArgumentException.class, () -> w.apply(randn(DType.FLOAT32, 2, 5), null));
            assertEquals(2, w.weight().dim());
        }
    }

    /** Was: a product racing close() threw "tensor ... was closed", where the class says it reads the weight as it is. */
    @Test
    void productsRacingCloseReadTheWeightAsItIs() throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            Tensor weight = randn(DType.FLOAT32, 1000, 768); // a copy padded to 1,024 outputs, with added bias zeros
            Tensor x = randn(DType.FLOAT32, 17, 768);
            Tensor bias = randn(DType.FLOAT32, 1000);
            Tensor expected = reference(x, weight, bias);
            for (int round = 0; round < 5; round++) {
                LinearWeight w = new LinearWeight(weight);
                w.apply(x, bias).close(); // packs where this machine can
                java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
                java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
                List<Thread> threads = new java.util.ArrayList<>();
                for (int t = 0; t < 3; t++) {
                    threads.add(Thread.ofPlatform().start(() -> {
                        while (!stop.get() && failure.get() == null) {
                            try (TensorScope inner = TensorScope.open()) {
                                assertClose(expected, w.apply(x, bias), "racing close");
                            } catch (Throwable e) {
                                failure.compareAndSet(null, e);
                            }
                        }
                    }));
                }
                Thread.sleep(20);
                w.close();
                Thread.sleep(20);
                stop.set(true);
                for (Thread t : threads) {
                    t.join();
                }
                if (failure.get() != null) {
                    throw new AssertionError("round " + round, failure.get());
                }
            }
        }
    }
}

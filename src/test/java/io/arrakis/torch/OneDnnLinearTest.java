package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * oneDNN's linear layers run where the CPU has the kernels they are safe with (brgemm: AVX2 for float32, AVX-512 for
 * bfloat16, read from {@code /proc/cpuinfo}), on packed weights only, and equal the product computed in float64 by
 * libtorch; {@link Tensor#linear} itself is libtorch's route for any operands and right too.
 */
class OneDnnLinearTest {
    private final Generator g = new Generator(11);

    private Tensor randn(long... shape) {
        return Tensor.randn(g, shape, DType.FLOAT32, Device.CPU);
    }

    /** {@code x · wᵀ + b} in float64 (a dtype the oneDNN route never takes), as float32. */
    private static Tensor reference(Tensor x, Tensor w, Tensor b) {
        Tensor y = x.to(DType.FLOAT64).matmul(w.to(DType.FLOAT64).transpose(0, 1));
        return (b == null ? y : y.add(b.to(DType.FLOAT64))).to(DType.FLOAT32);
    }

    private static void assertLinear(Tensor x, Tensor w, Tensor b) {
        assertClose(reference(x, w, b), x.linear(w, b), "linear of " + x.describe() + " and " + w.describe());
    }

    private static void assertClose(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double scale = Math.max(1, expected.abs().max().item());
        double diff = actual.sub(expected).abs().max().item();
        assertTrue(diff <= 1e-5 * scale, what + " off by " + diff + " (largest value " + scale + ")");
    }

    @Test
    void theBundledLibtorchHasTheShim() {
        assumeTrue(System.getProperty("os.arch").equals("amd64") && LibTorch.load().source().equals("maven"),
                "the bundled x86-64 build is the one known to have oneDNN");
        assertTrue(OneDnnLinear.available());
    }

    @Test
    void oneDnnRunsWhereTheCpuHasItsBrgemmKernels() throws Exception {
        assumeTrue(OneDnnLinear.available(), "this libtorch has no oneDNN");
        Path cpuinfo = Path.of("/proc/cpuinfo");
        assumeTrue(Files.isReadable(cpuinfo), "no /proc/cpuinfo to read the CPU's features from");
        Set<String> flags = Files.readAllLines(cpuinfo).stream().filter(line -> line.startsWith("flags"))
                .findFirst().map(line -> Set.of(line.substring(line.indexOf(':') + 1).trim().split("\\s+")))
                .orElseThrow();
        assertEquals(flags.contains("avx2"), OneDnnLinear.float32(), "float32 needs AVX2: " + flags);
        assertEquals(flags.containsAll(Set.of("avx512f", "avx512bw", "avx512vl", "avx512dq")), OneDnnLinear.bfloat16(),
                "bfloat16 needs AVX-512 F, BW, VL and DQ: " + flags);
    }

    @Test
    void linearMatchesFloat64ForModelShapes() {
        long[][] shapes = {{1, 32, 128, 384}, {1, 128, 768, 2304}, {1, 32, 3072, 768}, {2, 7, 64, 1000}, {1, 1, 16, 8}};
        for (long[] s : shapes) {
            Tensor x = randn(s[0], s[1], s[2]);
            Tensor b = randn(s[3]);
            Tensor w = randn(s[3], s[2]);
            assertLinear(x, w, b);
            assertLinear(x, w, null);
        }
    }

    @Test
    void linearTakesAnyInputRankAndLayout() {
        Tensor w = randn(6, 5);
        Tensor b = randn(6);
        assertLinear(randn(5), w, b);                          // a vector: [6]
        assertLinear(randn(3, 5), w, b);
        assertLinear(randn(2, 3, 4, 5), w, b);
        Tensor strided = randn(5, 3).transpose(0, 1);          // [3, 5], not contiguous
        assertFalse(strided.isContiguous());
        assertLinear(strided, w, b);
        Tensor rows = randn(10, 5).narrow(0, 4, 6);            // contiguous, at an offset into its storage
        assertLinear(randn(3, 5), rows, b);
    }

    @Test
    void productsThroughAPackedWeightEqualFloat64WithOrWithoutTheGeluTheyApply() {
        assumeTrue(OneDnnLinear.float32(), "oneDNN runs no float32 linear layers on this CPU");
        for (long[] s : new long[][] {{7, 64, 128}, {32, 128, 384}, {128, 768, 2304}}) {
            Tensor x = randn(1, s[0], s[1]);
            Tensor w = randn(s[2], s[1]);
            Tensor b = randn(s[2]);
            Tensor packed = OneDnnLinear.pack(w, s[0]);
            try (Tensor.Held held = packed.hold()) {
                Tensor product = OneDnnLinear.linear(x, w, packed, b, OneDnnLinear.PostOp.NONE);
                assertClose(reference(x, w, b), product, "product " + x.describe());
                for (boolean tanh : new boolean[] {true, false}) {
                    Tensor expected = reference(x, w, b).to(DType.FLOAT64).gelu(tanh).to(DType.FLOAT32);
                    Tensor actual = OneDnnLinear.linear(x, w, packed, b,
                            tanh ? OneDnnLinear.PostOp.GELU_TANH : OneDnnLinear.PostOp.GELU);
                    assertClose(expected, actual, "gelu (tanh " + tanh + ") of the product " + x.describe());
                }
            }
        }
    }

    @Test
    void operandsTheShimDoesNotTakeAreRefusedAndRightThroughLinear() {
        Tensor w = randn(6, 5);
        Tensor b = randn(6);
        // a transposed weight: it cannot be packed
        Tensor transposed = randn(5, 6).transpose(0, 1);
        assertFalse(OneDnnLinear.covers(randn(3, 5), transposed, b));
        assertLinear(randn(2, 3, 5), transposed, b);
        assertLinear(randn(2, 3, 5), transposed, null);
        Tensor columns = randn(6, 10).narrow(1, 2, 5);          // every row strided by 10, not 5
        assertFalse(OneDnnLinear.covers(randn(3, 5), columns, b));
        assertLinear(randn(3, 5), columns, b);
        Tensor transposedColumns = randn(5, 8).narrow(1, 1, 6).transpose(0, 1); // [6, 5], rows 8 apart
        assertFalse(OneDnnLinear.covers(randn(3, 5), transposedColumns, b));
        assertLinear(randn(3, 5), transposedColumns, b);
        Tensor everyOther = randn(12).narrow(0, 0, 12).view(6, 2).select(1, 0); // a strided bias
        assertFalse(OneDnnLinear.covers(randn(3, 5), w, everyOther));
        assertLinear(randn(3, 5), w, everyOther);
        assertFalse(OneDnnLinear.covers(randn(0, 5), w, b));
        assertArrayEquals(new long[] {0, 6}, randn(0, 5).linear(w, b).shape());
        Tensor noInputs = randn(3, 0).linear(Tensor.zeros(new long[] {6, 0}, DType.FLOAT32, Device.CPU), b);
        assertEquals(0, noInputs.sub(b.expand(3, 6)).abs().max().item());  // an empty sum: the bias alone
        Tensor x64 = randn(3, 5).to(DType.FLOAT64);
        assertFalse(OneDnnLinear.covers(x64, w.to(DType.FLOAT64), null));
        assertEquals(0, x64.linear(w.to(DType.FLOAT64), null).sub(x64.matmul(w.to(DType.FLOAT64).transpose(0, 1))).abs().max().item(), 1e-12);
    }

    /**
     * The backstop counts what a tensor left to it holds: asking an opaque tensor (a packed weight) for its storage
     * fails in libtorch, which prints a C++ exception to stderr, so its elements are counted instead.
     */
    @Test
    void theBackstopCountsAPackedWeightsBytes() {
        assumeTrue(OneDnnLinear.float32(), "oneDNN packs no float32 weights here");
        Tensor weight = randn(128, 64);
        Tensor packed = OneDnnLinear.pack(weight, 32);
        try (Tensor.Held held = packed.hold()) {
            assertEquals(128 * 64 * 4, Native.storageBytes(packed.handle()));
        }
        Tensor rows = weight.narrow(0, 8, 4); // a view counts the storage it keeps alive
        try (Tensor.Held held = rows.hold()) {
            assertEquals(128 * 64 * 4, Native.storageBytes(rows.handle()));
        }
    }
}

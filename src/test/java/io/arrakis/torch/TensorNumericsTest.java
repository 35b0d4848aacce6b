package io.arrakis.torch;

import io.arrakis.testing.ChildJvm;
import io.arrakis.testing.Close;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

import static io.arrakis.testing.Erf.erf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Numerical checks of every op of the public {@link Tensor} API against references that do not come from the code
 * under test: hand-computed values, identities, and formulas evaluated in plain Java.
 */
@DisplayName("Tensor numerics against plain-Java references")
class TensorNumericsTest {

    private TensorScope scope;

    /**
     * Loads libtorch before any test runs, so that test order does not matter; see
     * {@link #firstCallInAFreshJvmMayBeZerosOrOnes} for why this is needed.
     */
    @BeforeAll
    static void loadLibTorch() {
        LibTorch.load();
    }

    @BeforeEach
    void openScope() {
        scope = TensorScope.open();
    }

    @AfterEach
    void closeScope() {
        scope.close();
    }

    // ============================================================================================ helpers

    private static final double TIGHT = 1e-12;
    private static final double F32 = 2e-6;

    static Tensor f64(double[] v, long... shape) {
        return Tensor.of(v, shape);
    }

    static Tensor f32(double[] v, long... shape) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return Tensor.of(f, shape);
    }

    static double[] gaussians(long seed, int n) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.nextGaussian();
        }
        return v;
    }

    static double[] linspace(double lo, double hi, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + (hi - lo) * i / (n - 1);
        }
        return v;
    }

    static void assertClose(double[] expected, double[] actual, double rtol, double atol) {
        Close.assertAllClose(expected, actual, rtol, atol, "values");
    }

    static void assertClose(double[] expected, double[] actual, double tol) {
        assertClose(expected, actual, tol, tol);
    }

    static void assertClose(double[] expected, Tensor actual, double tol) {
        assertClose(expected, actual.toDoubleArray(), tol, tol);
    }

    static double[] map(double[] x, DoubleUnaryOperator f) {
        return Arrays.stream(x).map(f).toArray();
    }

    /** Rounds to float32 and back, for references of float32 results. */
    static double[] asF32(double[] x) {
        return map(x, v -> (float) v);
    }

    /** Row-major [n,k] @ [k,m]. */
    static double[] matmulRef(double[] a, double[] b, int n, int k, int m) {
        double[] c = new double[n * m];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += a[i * k + p] * b[p * m + j];
                }
                c[i * m + j] = s;
            }
        }
        return c;
    }

    static double[] transposeRef(double[] a, int rows, int cols) {
        double[] t = new double[a.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        return t;
    }

    static double[] slice(double[] a, int from, int len) {
        return Arrays.copyOfRange(a, from, from + len);
    }

    static double phi(double x) {
        return 0.5 * (1 + erf(x / Math.sqrt(2)));
    }

    /** float → bfloat16 → float with round-to-nearest-even, written from the format's definition. */
    static float roundBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int lsb = (bits >>> 16) & 1;
        bits += 0x7FFF + lsb;
        return Float.intBitsToFloat(bits & 0xFFFF0000);
    }

    static float roundF16(float f) {
        return Float.float16ToFloat(Float.floatToFloat16(f));
    }

    /** Reference SplitMix64 (Steele, Lea, Flood 2014), written from the paper, independent of {@link Generator}. */
    static final class SplitMix {
        long x;

        SplitMix(long seed) {
            x = seed;
        }

        long next() {
            long z = (x += 0x9E3779B97F4A7C15L);
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }

        double uniform() {
            return (next() >>> 11) / 9007199254740992.0;
        }
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    static double std(double[] v) {
        double m = mean(v);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / (v.length - 1));
    }

    // ============================================================================================ creation

    @Nested
    @DisplayName("creation and copy-out")
    class Creation {

        @Test
        void floatArrayRoundTripIsExact() {
            float[] data = {0f, -1.5f, 3.25f, Float.MIN_VALUE, Float.MAX_VALUE, -0f};
            Tensor t = Tensor.of(data, 2, 3);
            assertEquals(DType.FLOAT32, t.dtype());
            assertArrayEquals(new long[] {2, 3}, t.shape());
            assertArrayEquals(data, t.toFloatArray());
            assertArrayEquals(new double[] {0, -1.5, 3.25, Float.MIN_VALUE, Float.MAX_VALUE, -0.0}, t.toDoubleArray());
            assertArrayEquals(new long[] {0, -1, 3, 0}, Arrays.copyOf(t.toLongArray(), 4), "float to int64 truncates toward zero");
        }

        @Test
        void doubleArrayRoundTripIsExact() {
            double[] data = {Math.PI, -Math.E, 1e-300, 1e300, 0.1, Double.NaN};
            Tensor t = Tensor.of(data, 3, 2);
            assertEquals(DType.FLOAT64, t.dtype());
            assertArrayEquals(data, t.toDoubleArray());
            float[] asFloat = t.toFloatArray();
            assertEquals((float) Math.PI, asFloat[0]);
            assertEquals(0.0f, asFloat[2], "1e-300 underflows to 0 in float32");
            assertEquals(Float.POSITIVE_INFINITY, asFloat[3], "1e300 overflows to +inf in float32");
            assertTrue(Float.isNaN(asFloat[5]));
        }

        @Test
        void longArrayRoundTripIsExact() {
            long[] data = {Long.MIN_VALUE, -1, 0, 1, (1L << 53) + 1, Long.MAX_VALUE};
            Tensor t = Tensor.of(data, 6);
            assertEquals(DType.INT64, t.dtype());
            assertArrayEquals(data, t.toLongArray());
            assertArrayEquals(new int[] {0, -1, 0, 1, 1, -1}, t.toIntArray(), "int64→int32 keeps the low 32 bits");
            assertArrayEquals(new boolean[] {true, true, false, true, true, true}, t.toBooleanArray());
        }

        @Test
        void intArrayRoundTripIsExact() {
            int[] data = {Integer.MIN_VALUE, -7, 0, 7, Integer.MAX_VALUE, 42};
            Tensor t = Tensor.of(data, 2, 3);
            assertEquals(DType.INT32, t.dtype());
            assertArrayEquals(data, t.toIntArray());
            assertArrayEquals(new long[] {Integer.MIN_VALUE, -7, 0, 7, Integer.MAX_VALUE, 42}, t.toLongArray());
            assertArrayEquals(new double[] {Integer.MIN_VALUE, -7, 0, 7, Integer.MAX_VALUE, 42}, t.toDoubleArray());
        }

        @Test
        void booleanArrayRoundTripIsExact() {
            boolean[] data = {true, false, false, true, true, false};
            Tensor t = Tensor.of(data, 3, 2);
            assertEquals(DType.BOOL, t.dtype());
            assertArrayEquals(data, t.toBooleanArray());
            assertArrayEquals(new long[] {1, 0, 0, 1, 1, 0}, t.toLongArray());
            assertArrayEquals(new float[] {1, 0, 0, 1, 1, 0}, t.toFloatArray());
        }

        @Test
        void scalarIsZeroDimFloat64() {
            Tensor s = Tensor.scalar(-2.75);
            assertEquals(0, s.dim());
            assertEquals(1, s.numel());
            assertEquals(DType.FLOAT64, s.dtype());
            assertEquals(-2.75, s.item());
        }

        @ParameterizedTest
        @EnumSource(names = {"FLOAT32", "FLOAT16", "BFLOAT16", "FLOAT64", "INT64", "INT32", "BOOL"})
        void zerosOnesFullEyeInEveryDtype(DType dtype) {
            long[] shape = {2, 3};
            Tensor z = Tensor.zeros(shape, dtype, Device.CPU);
            Tensor o = Tensor.ones(shape, dtype, Device.CPU);
            double fillValue = dtype == DType.BOOL ? 1 : dtype.isFloatingPoint() ? -1.5 : 3;
            Tensor full = Tensor.full(shape, fillValue, dtype, Device.CPU);
            Tensor eye = Tensor.eye(3, dtype, Device.CPU);
            for (Tensor t : List.of(z, o, full)) {
                assertEquals(dtype, t.dtype());
                assertArrayEquals(shape, t.shape());
                assertEquals(Device.CPU, t.device());
            }
            assertArrayEquals(new double[6], z.toDoubleArray());
            double[] ones = new double[6];
            Arrays.fill(ones, 1);
            assertArrayEquals(ones, o.toDoubleArray());
            double[] filled = new double[6];
            Arrays.fill(filled, fillValue);
            assertArrayEquals(filled, full.toDoubleArray());
            assertEquals(dtype, eye.dtype());
            assertArrayEquals(new double[] {1, 0, 0, 0, 1, 0, 0, 0, 1}, eye.toDoubleArray());
        }

        @Test
        void convenienceFactoriesAreFloat32OnCpu() {
            Tensor z = Tensor.zeros(4);
            Tensor o = Tensor.ones(2, 2);
            assertEquals(DType.FLOAT32, z.dtype());
            assertEquals(DType.FLOAT32, o.dtype());
            assertArrayEquals(new float[4], z.toFloatArray());
            assertArrayEquals(new float[] {1, 1, 1, 1}, o.toFloatArray());
            assertEquals(0, Tensor.eye(0, DType.FLOAT32, Device.CPU).numel());
        }

        @Test
        void arangeMatchesPythonSemantics() {
            Tensor a = Tensor.arange(5);
            assertEquals(DType.INT64, a.dtype());
            assertArrayEquals(new long[] {0, 1, 2, 3, 4}, a.toLongArray());
            assertArrayEquals(new double[] {0.5, 1.0, 1.5},
                    Tensor.arange(0.5, 2.0, 0.5, DType.FLOAT32, Device.CPU).toDoubleArray());
            assertArrayEquals(new long[] {5, 3, 1}, Tensor.arange(5, 0, -2, DType.INT64, Device.CPU).toLongArray());
            assertArrayEquals(new int[] {0, 3, 6, 9}, Tensor.arange(0, 10, 3, DType.INT32, Device.CPU).toIntArray());
            assertEquals(0, Tensor.arange(3, 3, 1, DType.FLOAT64, Device.CPU).numel());
            Tensor bf = Tensor.arange(0, 4, 1, DType.BFLOAT16, Device.CPU);
            assertEquals(DType.BFLOAT16, bf.dtype());
            assertArrayEquals(new double[] {0, 1, 2, 3}, bf.toDoubleArray());
            // 0.1 steps: ceil((1 - 0) / 0.1) = 10 elements, the last 0.9 (as float64 arithmetic gives it)
            double[] tenths = Tensor.arange(0, 1, 0.1, DType.FLOAT64, Device.CPU).toDoubleArray();
            assertEquals(10, tenths.length);
            assertEquals(0.9, tenths[9], 1e-15);
            assertArrayEquals(new int[] {-3, 1, 5}, Tensor.arange(-3, 9, 4, DType.INT32, Device.CPU).toIntArray());
            // what PyTorch refuses, or computes inconsistently for integer dtypes, is refused (was: silently filled)
            for (double[] bad : new double[][] {{0, 6, 1.5}, {-0.5, 2, 1}, {5, 0, 1}, {0, 5, -1}, {0, Double.POSITIVE_INFINITY, 1}}) {
                assertThrows(IllegalArgumentException.class,
                        () -> Tensor.arange(bad[0], bad[1], bad[2], DType.INT64, Device.CPU), Arrays.toString(bad));
            }
            assertThrows(IllegalArgumentException.class, () -> Tensor.arange(5, 0, 1, DType.FLOAT32, Device.CPU));
        }
    }

    // ============================================================================================ random

    @Nested
    @DisplayName("seeded random numbers")
    class Random_ {

        static final long[] SHAPE = {20000};

        @Test
        void splitMix64MatchesPublishedTestVector() {
            // SplitMix64 seeded with 0: the reference outputs of the published C implementation.
            Generator g = new Generator(0);
            assertEquals(0xE220A8397B1DCDAFL, g.nextLong());
            assertEquals(0x6E789E6AA1B965F4L, g.nextLong());
            assertEquals(0x06C45D188009454FL, g.nextLong());
        }

        @Test
        void randFloat64IsTheTop53BitsOfSplitMix64() {
            SplitMix ref = new SplitMix(1234);
            double[] expected = new double[100];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = ref.uniform();
            }
            assertArrayEquals(expected, Tensor.rand(new Generator(1234), new long[] {10, 10}, DType.FLOAT64, Device.CPU)
                    .toDoubleArray());
        }

        @Test
        void randnFollowsTheStandardNormalCdf() {
            // Kolmogorov-Smirnov against Phi, with erf from Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7): at
            // n = 2^20 the 0.1% critical value is 1.95 / sqrt(n) = 0.0019.
            int n = 1 << 20;
            double[] x = Tensor.randn(new Generator(2024), new long[] {n}, DType.FLOAT64, Device.CPU).toDoubleArray();
            Arrays.sort(x);
            double d = 0;
            for (int i = 0; i < n; i++) {
                double cdf = 0.5 * (1 + erf(x[i] / Math.sqrt(2)));
                d = Math.max(d, Math.max(Math.abs(cdf - i / (double) n), Math.abs((i + 1) / (double) n - cdf)));
            }
            assertTrue(d < 1.95 / Math.sqrt(n), "KS distance " + d);
            // the ziggurat's tail beyond 3.6541528853610088 (its own sampler): P = 2 (1 - Phi(r)) = 2.58e-4
            long tail = Arrays.stream(x).filter(v -> Math.abs(v) > 3.6541528853610088).count();
            double expected = n * 2 * 0.5 * (1 - erf(3.6541528853610088 / Math.sqrt(2)));
            assertEquals(expected, tail, 4.5 * Math.sqrt(expected), "draws in the tail");
        }

        @Test
        void randnOfALargeTensorDoesNotDependOnTheNumberOfThreads() throws Exception {
            long[] shape = {5, 100_000}; // several chunks of parallel draws
            float[] parallel = Tensor.randn(new Generator(5), shape, DType.FLOAT32, Device.CPU).toFloatArray();
            java.util.concurrent.ForkJoinPool one = new java.util.concurrent.ForkJoinPool(1);
            try {
                float[] serial = one.submit(() -> Tensor.randn(new Generator(5), shape, DType.FLOAT32, Device.CPU)
                        .toFloatArray()).get();
                assertArrayEquals(serial, parallel);
            } finally {
                one.shutdown();
            }
        }

        @ParameterizedTest
        @EnumSource(names = {"FLOAT16", "BFLOAT16"})
        void narrowNormalsAreTheFloat32DrawsRoundedAsLibtorchRoundsThem(DType dtype) {
            long[] shape = {3, 70_000};
            Tensor wide = Tensor.normal(new Generator(21), shape, 0.5, 0.02, DType.FLOAT32, Device.CPU);
            Tensor narrow = Tensor.normal(new Generator(21), shape, 0.5, 0.02, dtype, Device.CPU);
            assertEquals(dtype, narrow.dtype());
            assertArrayEquals(wide.to(dtype).toFloatArray(), narrow.toFloatArray());
        }

        @Test
        void normalHasTheAskedMeanAndStd() {
            double[] v = Tensor.normal(new Generator(4), new long[] {100_000}, -3.0, 0.25, DType.FLOAT64, Device.CPU)
                    .toDoubleArray();
            assertEquals(-3.0, mean(v), 0.25 * 4.5 / Math.sqrt(v.length));
            assertEquals(0.25, std(v), 0.0025);
            for (double[] bad : new double[][] {{Double.NaN, 1}, {0, -1}, {0, Double.POSITIVE_INFINITY}, {Double.NEGATIVE_INFINITY, 1}}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> Tensor.normal(new Generator(0), new long[] {2}, bad[0], bad[1], DType.FLOAT32, Device.CPU));
                assertTrue(e.getMessage().contains("Tensor.normal"), e.getMessage());
            }
        }

        @Test
        void generatorNextGaussianHasTheMomentsOfAStandardNormal() {
            Generator g = new Generator(11);
            double[] v = new double[200_000];
            for (int i = 0; i < v.length; i++) {
                v[i] = g.nextGaussian();
            }
            assertEquals(0.0, mean(v), 0.01); // 4.5 sigma
            assertEquals(1.0, std(v), 0.01);
        }

        /** erf by Abramowitz and Stegun 7.1.26. */
        static double erf(double x) {
            double t = 1 / (1 + 0.3275911 * Math.abs(x));
            double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592)
                    * t * Math.exp(-x * x);
            return Math.signum(x) * y;
        }

        @ParameterizedTest
        @EnumSource(names = {"FLOAT32", "FLOAT16", "BFLOAT16", "FLOAT64"})
        void randnSameSeedSameNumbersAndMomentsOfAStandardNormal(DType dtype) {
            Tensor a = Tensor.randn(new Generator(7), SHAPE, dtype, Device.CPU);
            Tensor b = Tensor.randn(new Generator(7), SHAPE, dtype, Device.CPU);
            Tensor c = Tensor.randn(new Generator(8), SHAPE, dtype, Device.CPU);
            assertEquals(dtype, a.dtype());
            assertArrayEquals(SHAPE, a.shape());
            double[] va = a.toDoubleArray();
            assertArrayEquals(va, b.toDoubleArray(), "same seed, same numbers");
            double[] vc = c.toDoubleArray();
            int same = 0;
            for (int i = 0; i < va.length; i++) {
                same += va[i] == vc[i] ? 1 : 0;
            }
            assertTrue(same < va.length / 50, "different seeds share " + same + " of " + va.length + " values");
            // mean ~ N(0, 1/n): 4.5 sigma is 0.032; std of the sample std ~ 1/sqrt(2n) = 0.005
            assertEquals(0.0, mean(va), 0.035, "mean of " + dtype + " randn");
            assertEquals(1.0, std(va), 0.03, "std of " + dtype + " randn");
            double within1 = Arrays.stream(va).filter(x -> Math.abs(x) < 1).count() / (double) va.length;
            assertEquals(0.6827, within1, 0.015, "P(|x| < 1)");
        }

        @ParameterizedTest
        @EnumSource(names = {"FLOAT32", "FLOAT16", "BFLOAT16"})
        void randnInLowerPrecisionIsTheRoundedFloat64Stream(DType dtype) {
            double[] exact = Tensor.randn(new Generator(3), new long[] {500}, DType.FLOAT64, Device.CPU).toDoubleArray();
            double[] low = Tensor.randn(new Generator(3), new long[] {500}, dtype, Device.CPU).toDoubleArray();
            double halfUlp = dtype == DType.FLOAT32 ? 0x1p-24 : dtype == DType.FLOAT16 ? 0x1p-11 : 0x1p-8;
            assertClose(exact, low, halfUlp, 1e-7);
        }

        @ParameterizedTest
        @EnumSource(names = {"FLOAT32", "FLOAT64"})
        void randIsUniformInHalfOpenUnitInterval(DType dtype) {
            checkRand(dtype);
        }

        @ParameterizedTest
        @EnumSource(names = {"FLOAT16", "BFLOAT16"})
        void randIsUniformInHalfOpenUnitIntervalInHalfPrecision(DType dtype) {
            checkRand(dtype);
        }

        private void checkRand(DType dtype) {
            Tensor a = Tensor.rand(new Generator(11), SHAPE, dtype, Device.CPU);
            Tensor b = Tensor.rand(new Generator(11), SHAPE, dtype, Device.CPU);
            Tensor c = Tensor.rand(new Generator(12), SHAPE, dtype, Device.CPU);
            assertEquals(dtype, a.dtype());
            double[] va = a.toDoubleArray();
            assertArrayEquals(va, b.toDoubleArray());
            assertFalse(Arrays.equals(va, c.toDoubleArray()));
            for (double v : va) {
                assertTrue(v >= 0 && v < 1, dtype + " rand gave " + v);
            }
            assertEquals(0.5, mean(va), 0.01);
            assertEquals(Math.sqrt(1.0 / 12), std(va), 0.01);
            long belowQuarter = Arrays.stream(va).filter(x -> x < 0.25).count();
            assertEquals(0.25, belowQuarter / (double) va.length, 0.015);
        }

        @Test
        void randintIsUniformOverHalfOpenRangeAndConverts() {
            Tensor a = Tensor.randint(new Generator(5), -3, 4, SHAPE, Device.CPU);
            Tensor b = Tensor.randint(new Generator(5), -3, 4, SHAPE, Device.CPU);
            Tensor c = Tensor.randint(new Generator(6), -3, 4, SHAPE, Device.CPU);
            assertEquals(DType.INT64, a.dtype());
            long[] va = a.toLongArray();
            assertArrayEquals(va, b.toLongArray());
            assertFalse(Arrays.equals(va, c.toLongArray()));
            int[] counts = new int[7];
            for (long v : va) {
                assertTrue(v >= -3 && v < 4, "randint gave " + v);
                counts[(int) (v + 3)]++;
            }
            for (int k = 0; k < 7; k++) {
                assertEquals(20000 / 7.0, counts[k], 250, "count of " + (k - 3));
            }
            // the same draws converted
            int[] asInt = a.to(DType.INT32).toIntArray();
            boolean[] asBool = a.to(DType.BOOL).toBooleanArray();
            double[] asFloat = a.to(DType.BFLOAT16).toDoubleArray();
            for (int i = 0; i < va.length; i++) {
                assertEquals(va[i], asInt[i]);
                assertEquals(va[i] != 0, asBool[i]);
                assertEquals(va[i], asFloat[i]);
            }
        }

        @ParameterizedTest
        @EnumSource(names = {"INT64", "INT32", "BOOL"})
        void randAndRandnRejectNonFloatingDtypes(DType dtype) {
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.rand(new Generator(1), new long[] {4}, dtype, Device.CPU));
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.randn(new Generator(1), new long[] {4}, dtype, Device.CPU));
        }

        /**
         * The draws are the generator's, in order, written straight into native memory (was: into a Java array first,
         * so that sizes the heap could not hold failed with OutOfMemoryError, where rand and randn took them).
         */
        @Test
        void randintDrawsTheGeneratorsSequenceInOrderWithoutAJavaArray() {
            Generator g = new Generator(9);
            long[] expected = new long[24];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = g.nextLong(10, 1000);
            }
            assertArrayEquals(expected, Tensor.randint(new Generator(9), 10, 1000, new long[] {2, 3, 4}, Device.CPU)
                    .toLongArray());
        }

        @Test
        void randintWithHugeRangeStaysInRange() {
            long[] v = Tensor.randint(new Generator(1), Long.MIN_VALUE / 2, Long.MAX_VALUE / 2 + 1, new long[] {1000},
                    Device.CPU).toLongArray();
            long negatives = Arrays.stream(v).filter(x -> x < 0).count();
            assertEquals(500, negatives, 80);
            for (long x : v) {
                assertTrue(x >= Long.MIN_VALUE / 2 && x <= Long.MAX_VALUE / 2);
            }
        }
    }

    // ============================================================================================ metadata

    @Nested
    @DisplayName("metadata and scalar reads")
    class Metadata {

        @Test
        void shapeStridesNumelDtypeDevice() {
            Tensor t = Tensor.zeros(new long[] {2, 3, 4}, DType.BFLOAT16, Device.CPU);
            assertArrayEquals(new long[] {2, 3, 4}, t.shape());
            assertArrayEquals(new long[] {12, 4, 1}, t.strides());
            assertEquals(24, t.numel());
            assertEquals(3, t.dim());
            assertEquals(4, t.size(-1));
            assertEquals(DType.BFLOAT16, t.dtype());
            assertEquals(Device.CPU, t.device());
            assertTrue(t.isContiguous());
            Tensor tr = t.transpose(0, 2);
            assertArrayEquals(new long[] {4, 3, 2}, tr.shape());
            assertArrayEquals(new long[] {1, 4, 12}, tr.strides());
            assertFalse(tr.isContiguous());
            Tensor empty = Tensor.zeros(new long[] {3, 0}, DType.FLOAT32, Device.CPU);
            assertEquals(0, empty.numel());
            long[] shapeCopy = t.shape();
            shapeCopy[0] = 99;
            assertEquals(2, t.size(0), "shape() returns a copy");
        }

        @Test
        void itemReads() {
            assertEquals(3.5, Tensor.of(new float[] {3.5f}).item());
            assertEquals(-0.125, Tensor.of(new double[] {-0.125}, 1, 1).item());
            assertEquals(Long.MAX_VALUE, Tensor.of(new long[] {Long.MAX_VALUE}).itemLong());
            assertEquals(-5, Tensor.of(new int[] {-5}).itemLong());
            assertTrue(Tensor.of(new boolean[] {true}).itemBoolean());
            assertFalse(Tensor.of(new boolean[] {false}).itemBoolean());
            assertTrue(Tensor.of(new float[] {0.5f}).itemBoolean(), "non-zero is true");
            assertEquals(1.0, Tensor.of(new boolean[] {true}).item());
            assertEquals(7.0, Tensor.of(new long[] {7}).item());
            Tensor bf = Tensor.full(new long[] {}, 1.5, DType.BFLOAT16, Device.CPU);
            assertEquals(1.5, bf.item());
        }

        @Test
        void toStringNamesShapeDtypeAndDevice() {
            String s = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3).toString();
            assertTrue(s.contains("[2, 3]"), s);
            assertTrue(s.contains("float32"), s);
            assertTrue(s.contains("cpu"), s);
            assertTrue(s.contains("1.000") && s.contains("6.000"), s);
            String l = Tensor.arange(10).toString();
            assertTrue(l.contains("int64") && l.contains("[10]") && l.contains("..."), l);
            String b = Tensor.of(new boolean[] {true, false}, 2).toString();
            assertTrue(b.contains("bool") && b.contains("true, false"), b);
            String h = Tensor.zeros(new long[] {1}, DType.BFLOAT16, Device.CPU).toString();
            assertTrue(h.contains("bfloat16"), h);
        }
    }

    // ============================================================================================ views

    @Nested
    @DisplayName("views and movement")
    class Views {

        /** 0..23 as float64 [2, 3, 4]. */
        Tensor base() {
            return Tensor.arange(0, 24, 1, DType.FLOAT64, Device.CPU).reshape(2, 3, 4);
        }

        static double at(int i, int j, int k) {
            return i * 12 + j * 4 + k;
        }

        @Test
        void copyFromWritesIntoTheSameMemoryConvertingTheDtype() {
            Tensor target = Tensor.zeros(new long[] {2, 3}, DType.INT64, Device.CPU);
            Tensor view = target.alias();
            Tensor source = Tensor.of(new int[] {5, -1, 7, 0, 2, 9}, 2, 3);
            assertSame(target, target.copyFrom(source));
            assertArrayEquals(new long[] {5, -1, 7, 0, 2, 9}, view.toLongArray(), "the memory itself is written");
            target.copyFrom(base().select(0, 1).narrow(1, 0, 2).transpose(0, 1)); // a strided float64 view
            assertArrayEquals(new long[] {12, 16, 20, 13, 17, 21}, view.toLongArray(), "converted to int64, in the view's order");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> target.copyFrom(Tensor.zeros(3, 2)));
            assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
        }

        @Test
        void reshapeAndViewKeepRowMajorOrder() {
            Tensor r = base().reshape(4, -1);
            assertArrayEquals(new long[] {4, 6}, r.shape());
            assertArrayEquals(linspace(0, 23, 24), r.toDoubleArray());
            Tensor v = base().view(6, 4);
            assertArrayEquals(new long[] {6, 4}, v.shape());
            assertEquals(13.0, v.select(0, 3).select(0, 1).item());
            // reshape of a non-contiguous tensor gives the transposed order
            Tensor rt = base().transpose(1, 2).reshape(-1);
            double[] expected = new double[24];
            int n = 0;
            for (int i = 0; i < 2; i++) {
                for (int k = 0; k < 4; k++) {
                    for (int j = 0; j < 3; j++) {
                        expected[n++] = at(i, j, k);
                    }
                }
            }
            assertArrayEquals(expected, rt.toDoubleArray());
        }

        @Test
        void permuteAndTransposeMoveElements() {
            Tensor p = base().permute(2, 0, 1); // p[k][i][j] = base[i][j][k]
            assertArrayEquals(new long[] {4, 2, 3}, p.shape());
            double[] pv = p.toDoubleArray();
            for (int k = 0; k < 4; k++) {
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 3; j++) {
                        assertEquals(at(i, j, k), pv[k * 6 + i * 3 + j]);
                    }
                }
            }
            Tensor t = base().transpose(-1, 0); // t[k][j][i]
            double[] tv = t.toDoubleArray();
            for (int k = 0; k < 4; k++) {
                for (int j = 0; j < 3; j++) {
                    for (int i = 0; i < 2; i++) {
                        assertEquals(at(i, j, k), tv[k * 6 + j * 2 + i]);
                    }
                }
            }
        }

        @Test
        void narrowSliceSelect() {
            Tensor n = base().narrow(2, 1, 2); // k in {1, 2}
            assertArrayEquals(new long[] {2, 3, 2}, n.shape());
            assertArrayEquals(new double[] {1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}, n.toDoubleArray());
            Tensor s = base().slice(2, 1, 100, 2); // k in {1, 3}; end clamped
            assertArrayEquals(new double[] {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}, s.toDoubleArray());
            Tensor neg = base().slice(1, -1, Long.MAX_VALUE, 1); // last row
            assertArrayEquals(new long[] {2, 1, 4}, neg.shape());
            assertArrayEquals(new double[] {8, 9, 10, 11, 20, 21, 22, 23}, neg.toDoubleArray());
            Tensor sel = base().select(1, -1);
            assertArrayEquals(new long[] {2, 4}, sel.shape());
            assertArrayEquals(new double[] {8, 9, 10, 11, 20, 21, 22, 23}, sel.toDoubleArray());
            assertEquals(at(1, 2, 3), base().select(0, 1).select(0, 2).select(0, 3).item());
        }

        @Test
        void indexSelectGathersInGivenOrderWithRepeats() {
            Tensor idx = Tensor.of(new long[] {3, 0, 3}, 3);
            Tensor r = base().indexSelect(2, idx);
            assertArrayEquals(new long[] {2, 3, 3}, r.shape());
            double[] v = r.toDoubleArray();
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    assertEquals(at(i, j, 3), v[i * 9 + j * 3]);
                    assertEquals(at(i, j, 0), v[i * 9 + j * 3 + 1]);
                    assertEquals(at(i, j, 3), v[i * 9 + j * 3 + 2]);
                }
            }
            Tensor rows = base().indexSelect(0, Tensor.of(new int[] {1}, 1));
            assertArrayEquals(new long[] {1, 3, 4}, rows.shape());
            assertArrayEquals(linspace(12, 23, 12), rows.toDoubleArray());
        }

        @Test
        void unsqueezeSqueezeExpand() {
            Tensor col = Tensor.of(new double[] {1, 2, 3}, 3).unsqueeze(1);
            assertArrayEquals(new long[] {3, 1}, col.shape());
            assertArrayEquals(new long[] {1, 3}, Tensor.of(new double[] {1, 2, 3}, 3).unsqueeze(-2).shape());
            assertArrayEquals(new long[] {3}, col.squeeze(1).shape());
            assertArrayEquals(new long[] {3, 1}, col.squeeze(0).shape(), "squeezing a dim of size 3 is a no-op");
            Tensor e = col.expand(-1, 4);
            assertArrayEquals(new long[] {3, 4}, e.shape());
            assertArrayEquals(new long[] {1, 0}, e.strides());
            assertArrayEquals(new double[] {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, e.toDoubleArray());
            Tensor e3 = col.expand(2, 3, 2);
            assertArrayEquals(new long[] {2, 3, 2}, e3.shape());
            assertArrayEquals(new double[] {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}, e3.toDoubleArray());
        }

        @Test
        void selectAndNarrowOfZeroDimTensorAreIllegalArguments() {
            Tensor s = Tensor.scalar(1.0);
            assertThrows(IllegalArgumentException.class, () -> s.select(0, 0));
            assertThrows(IllegalArgumentException.class, () -> s.narrow(0, 0, 1));
        }

        @Test
        void contiguousCopiesTransposedLayout() {
            Tensor m = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
            Tensor c = m.transpose(0, 1).contiguous();
            assertTrue(c.isContiguous());
            assertArrayEquals(new long[] {2, 1}, c.strides());
            assertArrayEquals(transposeRef(new double[] {1, 2, 3, 4, 5, 6}, 2, 3), c.toDoubleArray());
        }

        @Test
        void toDtypeConverts() {
            Tensor x = Tensor.of(new double[] {2.7, -2.7, 0.0, 1.0 + 0x1p-8, 1.0 + 3 * 0x1p-9, 65520, 1e-8}, 7);
            assertArrayEquals(new long[] {2, -2, 0, 1, 1, 65520, 0}, x.to(DType.INT64).toLongArray(),
                    "float to int truncates toward zero");
            assertArrayEquals(new int[] {2, -2, 0, 1, 1, 65520, 0}, x.to(DType.INT32).toIntArray());
            assertArrayEquals(new boolean[] {true, true, false, true, true, true, true}, x.to(DType.BOOL).toBooleanArray());
            double[] xs = x.toDoubleArray();
            double[] bf = x.to(DType.BFLOAT16).toDoubleArray();
            double[] h = x.to(DType.FLOAT16).toDoubleArray();
            double[] f = x.to(DType.FLOAT32).toDoubleArray();
            for (int i = 0; i < xs.length; i++) {
                assertEquals(roundBf16((float) xs[i]), bf[i], "bf16 of " + xs[i]);
                assertEquals(roundF16((float) xs[i]), h[i], "f16 of " + xs[i]);
                assertEquals((float) xs[i], f[i], "f32 of " + xs[i]);
            }
            assertEquals(1.0, bf[3], "1 + 2^-8 is a tie in bf16 and rounds to even");
            assertEquals(Double.POSITIVE_INFINITY, h[5], "65520 overflows float16");
            assertEquals(DType.FLOAT16, x.to(DType.FLOAT16).dtype());
        }

        @Test
        void copyHasOwnMemoryAndSameValues() {
            Tensor a = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
            Tensor c = a.copy();
            assertNotEquals(a.dataAddress(), c.dataAddress());
            assertArrayEquals(new float[] {1, 2, 3, 4}, c.toFloatArray());
            a.asSegment().setAtIndex(ValueLayout.JAVA_FLOAT, 0, 100f);
            assertArrayEquals(new float[] {1, 2, 3, 4}, c.toFloatArray());
            Tensor tc = a.transpose(0, 1).copy();
            assertArrayEquals(new float[] {100, 3, 2, 4}, tc.toFloatArray());
        }
    }

    // ============================================================================================ memory sharing

    @Nested
    @DisplayName("view ops share memory, computed ops do not")
    class MemorySharing {

        /** Writes {@code value} at row-major index {@code flatIndex} straight into the base tensor's memory. */
        private void write(Tensor base, int flatIndex, float value) {
            MemorySegment seg = base.asSegment();
            seg.setAtIndex(ValueLayout.JAVA_FLOAT, flatIndex, value);
        }

        @Test
        void viewsSeeWritesToTheBase() {
            Tensor base = Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 2, 3);
            Tensor view = base.view(3, 2);
            Tensor reshaped = base.reshape(6);
            Tensor transposed = base.transpose(0, 1);
            Tensor permuted = base.permute(1, 0);
            Tensor narrowed = base.narrow(1, 1, 2);
            Tensor sliced = base.slice(1, 0, 3, 2);
            Tensor selected = base.select(0, 1);
            Tensor unsq = base.unsqueeze(0);
            Tensor sq = unsq.squeeze(0);
            Tensor expanded = base.select(0, 1).unsqueeze(0).expand(4, 3);
            Tensor contig = base.contiguous();
            List<Tensor> splits = base.split(1, 0);
            List<Tensor> chunks = base.chunk(3, 1);

            write(base, 5, 55f); // element [1][2]
            assertEquals(55f, view.toFloatArray()[5]);
            assertEquals(55f, reshaped.toFloatArray()[5]);
            assertEquals(55f, transposed.toFloatArray()[2 * 2 + 1]);
            assertEquals(55f, permuted.toFloatArray()[2 * 2 + 1]);
            assertEquals(55f, narrowed.toFloatArray()[3]);
            assertEquals(55f, sliced.toFloatArray()[3]);
            assertEquals(55f, selected.toFloatArray()[2]);
            assertEquals(55f, sq.toFloatArray()[5]);
            assertArrayEquals(new float[] {55, 55, 55, 55}, new float[] {expanded.toFloatArray()[2],
                    expanded.toFloatArray()[5], expanded.toFloatArray()[8], expanded.toFloatArray()[11]});
            assertEquals(55f, contig.toFloatArray()[5]);
            assertEquals(55f, splits.get(1).toFloatArray()[2]);
            assertEquals(55f, chunks.get(2).toFloatArray()[1]);
            assertEquals(base.dataAddress() + 4 * 3, selected.dataAddress());
        }

        @Test
        void viewAsRealSharesMemoryWithComplexInput() {
            // eigvals returns a fresh complex tensor; its real view must reflect the same storage
            Tensor ev = Tensor.of(new double[] {2, 0, 0, 3}, 2, 2).eigvals();
            Tensor real = ev.viewAsReal();
            assertEquals(ev.dataAddress(), real.dataAddress());
        }

        @Test
        void computedOpsDoNotSeeWritesToTheBase() {
            Tensor base = Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 2, 3);
            Tensor added = base.add(0.0);
            Tensor multiplied = base.mul(1.0);
            Tensor copied = base.copy();
            Tensor converted = base.to(DType.FLOAT64);
            Tensor sameType = base.to(DType.FLOAT32);
            Tensor gathered = base.indexSelect(1, Tensor.of(new long[] {2}, 1));
            Tensor transposedCopy = base.transpose(0, 1).contiguous();
            Tensor reshapedCopy = base.transpose(0, 1).reshape(6);
            Tensor catted = Tensor.cat(List.of(base, base), 0);
            Tensor relu = base.relu();

            write(base, 5, 55f);
            assertEquals(5f, added.toFloatArray()[5]);
            assertEquals(5f, multiplied.toFloatArray()[5]);
            assertEquals(5f, copied.toFloatArray()[5]);
            assertEquals(5.0, converted.toDoubleArray()[5]);
            assertEquals(5f, sameType.toFloatArray()[5], "to(own dtype) is documented as a copy");
            assertEquals(5f, gathered.toFloatArray()[1]);
            assertEquals(5f, transposedCopy.toFloatArray()[5]);
            assertEquals(5f, reshapedCopy.toFloatArray()[5]);
            assertEquals(5f, catted.toFloatArray()[5]);
            assertEquals(5f, relu.toFloatArray()[5]);
            assertEquals(55f, base.toFloatArray()[5]);
        }
    }

    // ============================================================================================ linear algebra

    @Nested
    @DisplayName("matmul, linear, bmm, einsum")
    class LinearAlgebra {

        @Test
        void matmul2dAgainstTripleLoop() {
            double[] a = gaussians(1, 3 * 4);
            double[] b = gaussians(2, 4 * 5);
            Tensor c = f64(a, 3, 4).matmul(f64(b, 4, 5));
            assertArrayEquals(new long[] {3, 5}, c.shape());
            assertClose(matmulRef(a, b, 3, 4, 5), c.toDoubleArray(), TIGHT);
            Tensor c32 = f32(a, 3, 4).matmul(f32(b, 4, 5));
            assertEquals(DType.FLOAT32, c32.dtype());
            assertClose(matmulRef(asF32(a), asF32(b), 3, 4, 5), c32.toDoubleArray(), 1e-5);
        }

        @Test
        void matmulHandExample() {
            Tensor c = Tensor.of(new double[] {1, 2, 3, 4}, 2, 2).matmul(Tensor.of(new double[] {5, 6, 7, 8}, 2, 2));
            assertArrayEquals(new double[] {19, 22, 43, 50}, c.toDoubleArray());
            Tensor ci = Tensor.of(new long[] {1, 2, 3, 4}, 2, 2).matmul(Tensor.of(new long[] {5, 6, 7, 8}, 2, 2));
            assertEquals(DType.INT64, ci.dtype());
            assertArrayEquals(new long[] {19, 22, 43, 50}, ci.toLongArray());
        }

        @Test
        void matmulBatchedAndBroadcast() {
            double[] a = gaussians(3, 2 * 3 * 4);
            double[] b = gaussians(4, 2 * 4 * 5);
            Tensor c = f64(a, 2, 3, 4).matmul(f64(b, 2, 4, 5));
            assertArrayEquals(new long[] {2, 3, 5}, c.shape());
            double[] cv = c.toDoubleArray();
            for (int batch = 0; batch < 2; batch++) {
                assertClose(matmulRef(slice(a, batch * 12, 12), slice(b, batch * 20, 20), 3, 4, 5), slice(cv, batch * 15, 15),
                        TIGHT);
            }
            double[] w = slice(b, 0, 20);
            Tensor bc = f64(a, 2, 3, 4).matmul(f64(w, 4, 5)); // [2,3,4] @ [4,5]
            double[] bcv = bc.toDoubleArray();
            for (int batch = 0; batch < 2; batch++) {
                assertClose(matmulRef(slice(a, batch * 12, 12), w, 3, 4, 5), slice(bcv, batch * 15, 15), TIGHT);
            }
            Tensor bb = f64(slice(a, 0, 12), 1, 3, 4).matmul(f64(b, 2, 4, 5)); // batch dim 1 broadcasts to 2
            assertArrayEquals(new long[] {2, 3, 5}, bb.shape());
            assertClose(matmulRef(slice(a, 0, 12), slice(b, 20, 20), 3, 4, 5), slice(bb.toDoubleArray(), 15, 15), TIGHT);
        }

        @Test
        void matmulOneDimensional() {
            double[] u = {1, 2, 3, 4};
            double[] v = {-1, 0.5, 2, 1};
            Tensor dot = f64(u, 4).matmul(f64(v, 4));
            assertEquals(0, dot.dim());
            assertEquals(-1 + 1 + 6 + 4, dot.item(), TIGHT);
            double[] m = gaussians(5, 12);
            Tensor mv = f64(m, 3, 4).matmul(f64(v, 4));
            assertArrayEquals(new long[] {3}, mv.shape());
            assertClose(matmulRef(m, v, 3, 4, 1), mv.toDoubleArray(), TIGHT);
            Tensor vm = f64(u, 4).matmul(f64(m, 4, 3));
            assertArrayEquals(new long[] {3}, vm.shape());
            assertClose(matmulRef(u, m, 1, 4, 3), vm.toDoubleArray(), TIGHT);
            Tensor bmv = f64(gaussians(6, 24), 2, 3, 4).matmul(f64(v, 4));
            assertArrayEquals(new long[] {2, 3}, bmv.shape());
            assertClose(matmulRef(gaussians(6, 24), v, 6, 4, 1), bmv.toDoubleArray(), TIGHT);
        }

        @Test
        void linearWithAndWithoutBias() {
            double[] x = gaussians(7, 2 * 3 * 4);
            double[] w = gaussians(8, 5 * 4);
            double[] b = {0.5, -1, 2, 0, 3};
            double[] expected = matmulRef(x, transposeRef(w, 5, 4), 6, 4, 5);
            Tensor noBias = f64(x, 2, 3, 4).linear(f64(w, 5, 4), null);
            assertArrayEquals(new long[] {2, 3, 5}, noBias.shape());
            assertClose(expected, noBias.toDoubleArray(), TIGHT);
            double[] withBias = expected.clone();
            for (int i = 0; i < withBias.length; i++) {
                withBias[i] += b[i % 5];
            }
            assertClose(withBias, f64(x, 2, 3, 4).linear(f64(w, 5, 4), f64(b, 5)).toDoubleArray(), TIGHT);
            assertClose(withBias, f32(x, 2, 3, 4).linear(f32(w, 5, 4), f32(b, 5)).toDoubleArray(), 1e-5, 1e-5);
            Tensor vec = f64(slice(x, 0, 4), 4).linear(f64(w, 5, 4), f64(b, 5));
            assertArrayEquals(new long[] {5}, vec.shape());
            assertClose(slice(withBias, 0, 5), vec.toDoubleArray(), TIGHT);
        }

        @Test
        void bmmAgainstTripleLoop() {
            double[] a = gaussians(9, 3 * 2 * 4);
            double[] b = gaussians(10, 3 * 4 * 2);
            Tensor c = f64(a, 3, 2, 4).bmm(f64(b, 3, 4, 2));
            assertArrayEquals(new long[] {3, 2, 2}, c.shape());
            double[] cv = c.toDoubleArray();
            for (int batch = 0; batch < 3; batch++) {
                assertClose(matmulRef(slice(a, batch * 8, 8), slice(b, batch * 8, 8), 2, 4, 2), slice(cv, batch * 4, 4), TIGHT);
            }
        }

        @Test
        void einsumEquations() {
            double[] a = gaussians(11, 6);
            double[] b = gaussians(12, 12);
            assertClose(matmulRef(a, b, 2, 3, 4), Tensor.einsum("ij,jk->ik", f64(a, 2, 3), f64(b, 3, 4)), TIGHT);
            assertClose(transposeRef(a, 2, 3), Tensor.einsum("ij->ji", f64(a, 2, 3)), TIGHT);
            double[] sq = {1, 2, 3, 4, 5, 6, 7, 8, 9};
            Tensor trace = Tensor.einsum("ii", f64(sq, 3, 3));
            assertEquals(15.0, trace.item(), TIGHT);
            assertArrayEquals(new double[] {1, 5, 9}, Tensor.einsum("ii->i", f64(sq, 3, 3)).toDoubleArray());
            double[] u = {1, 2, 3};
            double[] v = {4, 5};
            assertArrayEquals(new double[] {4, 5, 8, 10, 12, 15}, Tensor.einsum("i,j->ij", f64(u, 3), f64(v, 2)).toDoubleArray());
            double[] x = gaussians(13, 2 * 2 * 3);
            double[] y = gaussians(14, 2 * 3 * 2);
            Tensor batched = Tensor.einsum("bij,bjk->bik", f64(x, 2, 2, 3), f64(y, 2, 3, 2));
            assertClose(matmulRef(slice(x, 6, 6), slice(y, 6, 6), 2, 3, 2), slice(batched.toDoubleArray(), 4, 4), TIGHT);
            Tensor ell = Tensor.einsum("...j,j->...", f64(x, 2, 2, 3), f64(u, 3));
            assertArrayEquals(new long[] {2, 2}, ell.shape());
            assertClose(matmulRef(x, u, 4, 3, 1), ell.toDoubleArray(), TIGHT);
            // a subscript of size 1 broadcasts against the other operand's, as in torch.einsum
            Tensor broadcast = Tensor.einsum("bij,bjk->bik", f64(slice(x, 0, 6), 1, 2, 3), f64(y, 2, 3, 2));
            assertArrayEquals(new long[] {2, 2, 2}, broadcast.shape());
            assertClose(matmulRef(slice(x, 0, 6), slice(y, 6, 6), 2, 3, 2), slice(broadcast.toDoubleArray(), 4, 4), TIGHT);
        }
    }

    // ============================================================================================ arithmetic

    @Nested
    @DisplayName("elementwise arithmetic")
    class Arithmetic {

        final double[] a = {1, -2, 3.5, 4, 0.25, -6};
        final double[] row = {10, 20, 30};
        final double[] col = {2, -4};

        double[] broadcast(double[] m, double[] r, double[] c, DoubleBinaryOperator op, boolean byRow) {
            double[] out = new double[6];
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 3; j++) {
                    out[i * 3 + j] = op.applyAsDouble(m[i * 3 + j], byRow ? r[j] : c[i]);
                }
            }
            return out;
        }

        @Test
        void tensorTensorWithBroadcasting() {
            Tensor m = f64(a, 2, 3);
            Tensor r = f64(row, 3);
            Tensor c = f64(col, 2, 1);
            assertClose(broadcast(a, row, col, Double::sum, true), m.add(r), TIGHT);
            assertClose(broadcast(a, row, col, (x, y) -> x - y, true), m.sub(r), TIGHT);
            assertClose(broadcast(a, row, col, (x, y) -> x * y, false), m.mul(c), TIGHT);
            assertClose(broadcast(a, row, col, (x, y) -> x / y, false), m.div(c), TIGHT);
            // [2,1] op [3] broadcasts to [2,3]
            Tensor outer = c.mul(r);
            assertArrayEquals(new long[] {2, 3}, outer.shape());
            assertArrayEquals(new double[] {20, 40, 60, -40, -80, -120}, outer.toDoubleArray());
            Tensor diff = r.sub(c);
            assertArrayEquals(new double[] {8, 18, 28, 14, 24, 34}, diff.toDoubleArray());
        }

        @Test
        void scaledSumBroadcastsBothWays() {
            Tensor m = f64(a, 2, 3);
            Tensor r = f64(row, 3);
            assertClose(broadcast(a, row, col, (x, y) -> x + 0.125 * y, true), m.add(r, 0.125), TIGHT);
            // the smaller operand first: the result takes the broadcast shape
            assertClose(broadcast(a, row, col, (x, y) -> y - 2.5 * x, true), r.add(m, -2.5), TIGHT);
            Tensor inf = f64(new double[] {0, Double.NEGATIVE_INFINITY, 0}, 3);
            assertArrayEquals(new double[] {0.25, Double.NEGATIVE_INFINITY, 0.875, 1, Double.NEGATIVE_INFINITY, -1.5},
                    inf.add(m, 0.25).toDoubleArray());
            Tensor i = Tensor.of(new long[] {7, -7, 9}, 3);
            assertThrows(IllegalArgumentException.class, () -> i.add(i, 0.5));
            assertArrayEquals(new long[] {14, -14, 18}, i.add(i, 1.0).toLongArray());
        }

        @Test
        void float32AndIntegerArithmetic() {
            Tensor x = f32(a, 2, 3);
            Tensor y = f32(new double[] {3, 3, 3, 3, 3, 3}, 2, 3);
            Tensor q = x.div(y);
            assertEquals(DType.FLOAT32, q.dtype());
            assertClose(map(a, v -> (float) v / 3f), q.toDoubleArray(), 0, 0);
            Tensor i = Tensor.of(new long[] {7, -7, 9}, 3);
            Tensor j = Tensor.of(new long[] {2, 2, -4}, 3);
            Tensor prod = i.mul(j);
            assertEquals(DType.INT64, prod.dtype());
            assertArrayEquals(new long[] {14, -14, -36}, prod.toLongArray());
            Tensor trueDiv = i.div(j);
            assertEquals(DType.FLOAT32, trueDiv.dtype(), "div of integers is true division in the default float dtype");
            assertArrayEquals(new double[] {3.5, -3.5, -2.25}, trueDiv.toDoubleArray());
            Tensor mixed = f32(new double[] {0.5, 0.5, 0.5}, 3).add(i);
            assertEquals(DType.FLOAT32, mixed.dtype());
            assertArrayEquals(new double[] {7.5, -6.5, 9.5}, mixed.toDoubleArray());
            Tensor bools = Tensor.of(new boolean[] {true, false, true}, 3);
            assertArrayEquals(new boolean[] {true, false, false}, bools.mul(Tensor.of(new boolean[] {true, true, false}, 3))
                    .toBooleanArray());
        }

        @Test
        void integerTensorAddAndSub() {
            Tensor i = Tensor.of(new long[] {7, -7, 9}, 3);
            Tensor j = Tensor.of(new long[] {2, 2, -4}, 3);
            Tensor sum = i.add(j);
            assertEquals(DType.INT64, sum.dtype());
            assertArrayEquals(new long[] {9, -5, 5}, sum.toLongArray());
            Tensor diff = i.sub(j);
            assertEquals(DType.INT64, diff.dtype());
            assertArrayEquals(new long[] {5, -9, 13}, diff.toLongArray());
            Tensor big = Tensor.of(new long[] {Long.MAX_VALUE - 1}, 1).add(Tensor.of(new long[] {1}, 1));
            assertEquals(Long.MAX_VALUE, big.itemLong(), "int64 addition is exact, not via float");
            Tensor i32 = Tensor.of(new int[] {1, 2}, 2);
            assertArrayEquals(new int[] {2, 4}, i32.add(i32).toIntArray());
            Tensor b = Tensor.of(new boolean[] {true, false}, 2);
            assertArrayEquals(new boolean[] {true, false}, b.add(b).toBooleanArray());
        }

        /**
         * PyTorch's promotion: a 0-d tensor of the same category does not widen a dimensioned one (int8 stays int8
         * and wraps, as {@code mul} does), one of a higher category decides (bools plus an int64 0-d tensor are
         * int64), and two 0-d tensors promote as usual. Was: the wider of the two dtypes, whatever the dims.
         */
        @Test
        void aZeroDimIntegerOperandDoesNotWidenADimensionedOne() {
            Tensor int8 = Tensor.of(new int[] {100, -3}, 2).to(DType.INT8);
            Tensor hundred = Tensor.of(new long[] {100});
            for (Tensor sum : List.of(int8.add(hundred), hundred.add(int8))) {
                assertEquals(DType.INT8, sum.dtype());
                assertArrayEquals(new long[] {-56, 97}, sum.to(DType.INT64).toLongArray()); // 200 wraps to -56
            }
            assertEquals(DType.INT8, int8.mul(hundred).dtype(), "as libtorch promotes mul");
            Tensor diff = int8.sub(hundred);
            assertEquals(DType.INT8, diff.dtype());
            assertArrayEquals(new long[] {0, -103}, diff.to(DType.INT64).toLongArray());
            Tensor bools = Tensor.of(new boolean[] {true, false}, 2);
            Tensor five = Tensor.of(new long[] {5});
            assertEquals(DType.INT64, bools.add(five).dtype());
            assertArrayEquals(new long[] {6, 5}, bools.add(five).toLongArray());
            Tensor zeroDimInt8 = int8.select(0, 0);
            assertEquals(DType.INT64, zeroDimInt8.add(hundred).dtype(), "two 0-d tensors promote as usual");
            assertEquals(200, zeroDimInt8.add(hundred).itemLong());
        }

        /**
         * On the CPU a division by a number is true division, by the number in float32 (float64 for float64 tensors),
         * as PyTorch's CPU kernels divide by a Python number; Java's float and double division are the reference.
         * Was: a multiplication by 1 / value, one rounding off (5 / 3 in float32), and infinite where 1 / value
         * overflowed float32.
         */
        @Test
        void divisionByANumberIsTrueDivisionOnTheCpu() {
            float[] xs = {5f, 1e-38f, 1e30f, -7f, 0f};
            double[] divisors = {3.0, 1e-40, 1e39, 49.0, 0.1};
            for (float x : xs) {
                for (double v : divisors) {
                    float expected = x / (float) v;
                    float actual = Tensor.of(new float[] {x}, 1).div(v).toFloatArray()[0];
                    assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(actual), x + " / " + v);
                }
            }
            assertEquals(1.0, Tensor.of(new double[] {49}, 1).div(49.0).toDoubleArray()[0]);
            assertEquals(0.1 / 3.0, Tensor.of(new double[] {0.1}, 1).div(3.0).toDoubleArray()[0]);
            // bfloat16: float(a) / 3f, rounded to bfloat16 once: 1/3 is 0x3EAB
            assertEquals(0.333984375, Tensor.of(new float[] {1f}, 1).to(DType.BFLOAT16).div(3.0).toDoubleArray()[0]);
            // the same of a 0-dim tensor, which stays bfloat16 (was: float32 0.33333334, the divisor's dtype)
            for (DType half : new DType[] {DType.BFLOAT16, DType.FLOAT16}) {
                Tensor q = Tensor.scalar(1.0).to(half).div(3.0);
                assertEquals(half, q.dtype());
                assertEquals(Tensor.of(new float[] {1f / 3f}, 1).to(half).toDoubleArray()[0], q.item());
            }
            // powers of two multiply, exactly
            assertEquals(1.25f, Tensor.of(new float[] {5f}, 1).div(4.0).toFloatArray()[0]);
            Tensor ints = Tensor.of(new long[] {7}, 1);
            assertEquals(DType.FLOAT32, ints.div(2.0).dtype());
            assertEquals(3.5f, ints.div(2.0).toFloatArray()[0]);
            assertThrows(IllegalArgumentException.class, () -> Tensor.of(new boolean[] {true}, 1).sub(1.0),
                    "PyTorch refuses to subtract from bools");
        }

        @Test
        void tensorScalar() {
            Tensor m = f64(a, 2, 3);
            assertClose(map(a, v -> v + 1.5), m.add(1.5), TIGHT);
            assertClose(map(a, v -> v - 1.5), m.sub(1.5), TIGHT);
            assertClose(map(a, v -> v * -3), m.mul(-3), TIGHT);
            assertClose(map(a, v -> v / 4), m.div(4), TIGHT);
            Tensor x32 = f32(a, 2, 3);
            for (Tensor r : List.of(x32.add(0.1), x32.sub(0.1), x32.mul(0.1), x32.div(0.1), x32.pow(2))) {
                assertEquals(DType.FLOAT32, r.dtype(), "a Java scalar must not widen float32");
            }
            assertClose(map(a, v -> v + 0.1), x32.add(0.1).toDoubleArray(), 1e-6, 1e-6);
            assertClose(map(a, v -> v / 0.1), x32.div(0.1).toDoubleArray(), 1e-6, 1e-6);
            Tensor bf = f32(a, 2, 3).to(DType.BFLOAT16);
            assertEquals(DType.BFLOAT16, bf.mul(2).dtype());
            assertEquals(DType.BFLOAT16, bf.div(2).dtype());
            assertArrayEquals(map(a, v -> v * 2), bf.mul(2).toDoubleArray());
            Tensor ints = Tensor.of(new long[] {1, 2, 3}, 3);
            assertArrayEquals(new long[] {6, 7, 8}, ints.add(5).toLongArray());
            assertArrayEquals(new long[] {-2, -4, -6}, ints.mul(-2).toLongArray());
            assertArrayEquals(new double[] {0.5, 1, 1.5}, ints.div(2).toDoubleArray());
        }

        @Test
        void integerTensorWithJavaDoubleScalarPromotesToDefaultFloat() {
            // a Java double acts as a Python float: int64 op float -> float32, as torch.tensor([1, 2, 3]) + 0.5
            Tensor ints = Tensor.of(new long[] {1, 2, 3}, 3);
            Tensor plus = ints.add(0.5);
            assertEquals(DType.FLOAT32, plus.dtype());
            assertArrayEquals(new double[] {1.5, 2.5, 3.5}, plus.toDoubleArray());
            Tensor minus = ints.sub(0.5);
            assertEquals(DType.FLOAT32, minus.dtype());
            assertArrayEquals(new double[] {0.5, 1.5, 2.5}, minus.toDoubleArray());
            Tensor times = ints.mul(0.5);
            assertEquals(DType.FLOAT32, times.dtype());
            assertArrayEquals(new double[] {0.5, 1, 1.5}, times.toDoubleArray());
            Tensor root = ints.pow(0.5);
            assertEquals(DType.FLOAT32, root.dtype());
            assertClose(new double[] {1, Math.sqrt(2), Math.sqrt(3)}, root.toDoubleArray(), 1e-7, 1e-7);
        }

        @Test
        void integerTensorDivByJavaDoubleIsFloat32LikeTheOtherScalarOps() {
            Tensor ints = Tensor.of(new long[] {1, 2, 3}, 3);
            Tensor half = ints.div(2);
            assertEquals(DType.FLOAT32, half.dtype());
            assertArrayEquals(new double[] {0.5, 1, 1.5}, half.toDoubleArray());
        }

        @Test
        void unaryAgainstJavaMath() {
            double[] x = {-3, -1.5, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 2.5, 4};
            double[] pos = {1e-3, 0.1, 0.5, 1, 2, 9, 100, 1e5};
            Tensor t = f64(x, x.length);
            Tensor p = f64(pos, pos.length);
            assertClose(map(x, v -> -v), t.neg(), 0);
            assertClose(map(x, Math::exp), t.exp(), TIGHT);
            assertClose(map(pos, Math::log), p.log(), TIGHT);
            assertClose(map(pos, Math::sqrt), p.sqrt(), TIGHT);
            assertClose(map(pos, v -> 1 / Math.sqrt(v)), p.rsqrt(), TIGHT);
            assertClose(map(x, Math::abs), t.abs(), 0);
            assertClose(map(x, Math::tanh), t.tanh(), TIGHT);
            assertClose(map(x, v -> 1 / (1 + Math.exp(-v))), t.sigmoid(), TIGHT);
            assertClose(map(x, v -> Math.max(v, 0)), t.relu(), 0);
            assertClose(map(x, v -> v / (1 + Math.exp(-v))), t.silu(), TIGHT);
            assertClose(map(x, Math::cos), t.cos(), TIGHT);
            assertClose(map(x, Math::sin), t.sin(), TIGHT);
            assertClose(map(x, v -> v * v), t.pow(2), TIGHT);
            assertClose(map(x, v -> v * v * v), t.pow(3), TIGHT);
            assertClose(map(pos, Math::sqrt), p.pow(0.5), TIGHT);
            assertClose(map(pos, v -> 1 / v), p.pow(-1), TIGHT);
            double[] special = Tensor.of(new double[] {-1, 0, Double.POSITIVE_INFINITY}, 3).log().toDoubleArray();
            assertTrue(Double.isNaN(special[0]));
            assertEquals(Double.NEGATIVE_INFINITY, special[1]);
            assertEquals(Double.POSITIVE_INFINITY, special[2]);
            assertEquals(Double.POSITIVE_INFINITY, Tensor.of(new double[] {0}, 1).rsqrt().item());
            assertEquals(2, Tensor.of(new double[] {2.7}, 1).itemLong(), "truncated toward zero, as torch's int()");
            assertEquals(-2, Tensor.of(new float[] {-2.7f}, 1).itemLong());
            assertEquals(Long.MIN_VALUE, Tensor.of(new double[] {-0x1p63}, 1).itemLong());
            assertEquals(Long.MAX_VALUE, Tensor.of(new long[] {Long.MAX_VALUE}, 1).itemLong());
            assertEquals(65504.0, Tensor.full(new long[] {1}, 65504, DType.FLOAT16, Device.CPU).item(), "float16's max");
            assertEquals(Double.POSITIVE_INFINITY,
                    Tensor.full(new long[] {1}, Double.POSITIVE_INFINITY, DType.FLOAT16, Device.CPU).item());
            for (DType dtype : new DType[] {DType.FLOAT64, DType.FLOAT32, DType.BFLOAT16}) {
                Tensor nan = Tensor.of(new double[] {Double.NaN, 0, Double.POSITIVE_INFINITY, -1, Double.NaN}, 5)
                        .to(dtype).isNan();
                assertEquals(DType.BOOL, nan.dtype());
                assertEquals("[true, false, false, false, true]", java.util.Arrays.toString(nan.toBooleanArray()),
                        dtype.toString());
            }
        }

        @Test
        void unaryFloat32AndLowPrecision() {
            double[] x = linspace(-4, 4, 33);
            Tensor t = f32(x, x.length);
            assertClose(map(x, Math::exp), t.exp().toDoubleArray(), F32, 1e-6);
            assertClose(map(x, Math::tanh), t.tanh().toDoubleArray(), F32, 1e-6);
            assertClose(map(x, v -> 1 / (1 + Math.exp(-v))), t.sigmoid().toDoubleArray(), F32, 1e-6);
            assertClose(map(x, Math::sin), t.sin().toDoubleArray(), F32, 1e-6);
            Tensor h = t.to(DType.BFLOAT16);
            Tensor e = h.exp();
            assertEquals(DType.BFLOAT16, e.dtype());
            assertClose(map(x, Math::exp), e.toDoubleArray(), 1e-2, 1e-2);
            assertClose(map(x, Math::cos), t.to(DType.FLOAT16).cos().toDoubleArray(), 2e-3, 2e-3);
        }

        @Test
        void integerUnary() {
            Tensor i = Tensor.of(new long[] {-3, 0, 5}, 3);
            assertArrayEquals(new long[] {3, 0, -5}, i.neg().toLongArray());
            assertArrayEquals(new long[] {3, 0, 5}, i.abs().toLongArray());
            assertArrayEquals(new long[] {0, 0, 5}, i.relu().toLongArray());
            Tensor sq = i.pow(2);
            assertEquals(DType.FLOAT32, sq.dtype(), "a double exponent gives a float result, as in PyTorch");
            assertArrayEquals(new double[] {9, 0, 25}, sq.toDoubleArray());
        }

        @Test
        void clampBoundsEachSideOnlyWhenGiven() {
            double[] x = {Double.NEGATIVE_INFINITY, -9, -7, -6.5, 0, 6.999, 7, 8.5, Double.POSITIVE_INFINITY};
            Tensor t = f64(x, x.length);
            assertClose(map(x, v -> Math.min(Math.max(v, -7), 7)), t.clamp(-7.0, 7.0), 0);
            assertClose(map(x, v -> Math.min(v, 7)), t.clamp(null, 7.0), 0);
            assertClose(map(x, v -> Math.max(v, -7)), t.clamp(-7.0, null), 0);
            assertThrows(IllegalArgumentException.class, () -> t.clamp(null, null));
            Tensor f = f32(x, x.length).clamp(null, 7.0);
            assertEquals(DType.FLOAT32, f.dtype(), "the bounds take the tensor's dtype");
            assertClose(map(x, v -> Math.min((float) v, 7)), f.toDoubleArray(), 0, 0);
            assertTrue(Double.isNaN(f64(new double[] {Double.NaN}, 1).clamp(-1.0, 1.0).item()), "NaN stays NaN");
            assertArrayEquals(new long[] {-2, 0, 2}, Tensor.of(new long[] {-3, 0, 5}, 3).clamp(-2.0, 2.0).toLongArray());
        }

        @Test
        void geluExactIsXTimesPhi() {
            double[] x = linspace(-6, 6, 97);
            assertClose(map(x, v -> v * phi(v)), f64(x, x.length).gelu(), 1e-12);
            assertClose(map(x, v -> v * phi(v)), f64(x, x.length).gelu(false), 1e-12);
            assertClose(map(x, v -> v * phi(v)), f32(x, x.length).gelu().toDoubleArray(), F32, 1e-6);
            // spot values: Φ(1) = 0.841344746068543, Φ(−1) = 0.158655253931457
            assertEquals(0.841344746068543, phi(1), 1e-15, "the test's own erf");
            double[] spot = f64(new double[] {1, -1}, 2).gelu().toDoubleArray();
            assertEquals(0.841344746068543, spot[0], 1e-14);
            assertEquals(-0.158655253931457, spot[1], 1e-14);
        }

        @Test
        void erfIsTheErrorFunction() {
            double[] x = linspace(-6, 6, 97);
            assertClose(map(x, v -> erf(v)), f64(x, x.length).erf(), 1e-14);
            assertClose(map(x, v -> erf(v)), f32(x, x.length).erf().toDoubleArray(), F32, 1e-6);
            // published values: erf(0.5) = 0.520499877813047, erf(1) = 0.842700792949715, erf(2) = 0.995322265018953
            double[] spot = f64(new double[] {0.5, 1, -2}, 3).erf().toDoubleArray();
            assertArrayEquals(new double[] {0.520499877813047, 0.842700792949715, -0.995322265018953}, spot, 1e-14);
        }

        @Test
        void geluTanhApproximation() {
            double[] x = linspace(-6, 6, 97);
            DoubleUnaryOperator ref = v -> 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            assertClose(map(x, ref), f64(x, x.length).gelu(true), 1e-12);
            assertClose(map(x, ref), f32(x, x.length).gelu(true).toDoubleArray(), F32, 1e-6);
            // the two variants differ measurably (max |diff| ~ 5e-4 around |x| ~ 2)
            double[] exact = f64(x, x.length).gelu(false).toDoubleArray();
            double[] approx = f64(x, x.length).gelu(true).toDoubleArray();
            double maxDiff = 0;
            for (int i = 0; i < x.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(exact[i] - approx[i]));
            }
            assertTrue(maxDiff > 1e-4 && maxDiff < 1e-3, "max |exact − tanh approx| = " + maxDiff);
        }
    }

    // ============================================================================================ nn ops

    @Nested
    @DisplayName("softmax, norms, embedding")
    class NeuralNet {

        double[] softmaxRows(double[] x, int rows, int cols) {
            double[] out = new double[x.length];
            for (int i = 0; i < rows; i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < cols; j++) {
                    max = Math.max(max, x[i * cols + j]);
                }
                double s = 0;
                for (int j = 0; j < cols; j++) {
                    s += Math.exp(x[i * cols + j] - max);
                }
                for (int j = 0; j < cols; j++) {
                    out[i * cols + j] = Math.exp(x[i * cols + j] - max) / s;
                }
            }
            return out;
        }

        @Test
        void softmaxMatchesFormulaAndRowsSumToOne() {
            double[] x = gaussians(21, 4 * 5);
            x[3] = 50; // large logits must not overflow
            x[4] = 49;
            double[] expected = softmaxRows(x, 4, 5);
            Tensor s = f64(x, 4, 5).softmax(-1);
            assertClose(expected, s, TIGHT);
            double[] sums = s.sum(1, false).toDoubleArray();
            assertClose(new double[] {1, 1, 1, 1}, sums, 1e-14);
            Tensor s0 = f64(x, 4, 5).softmax(0);
            assertClose(transposeRef(softmaxRows(transposeRef(x, 4, 5), 5, 4), 5, 4), s0, TIGHT);
            assertClose(expected, f32(x, 4, 5).softmax(1).toDoubleArray(), 1e-5, 1e-7);
            assertArrayEquals(new double[] {1.0 / 3, 1.0 / 3, 1.0 / 3}, f64(new double[] {7, 7, 7}, 3).softmax(0).toDoubleArray(),
                    1e-15);
        }

        @Test
        void logSoftmaxMatchesFormula() {
            double[] x = gaussians(22, 3 * 6);
            x[0] = 100;
            double[] expected = map(softmaxRows(x, 3, 6), Math::log);
            // the log of a tiny probability is better computed as x − max − log Σ exp: do so for the reference
            for (int i = 0; i < 3; i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < 6; j++) {
                    max = Math.max(max, x[i * 6 + j]);
                }
                double s = 0;
                for (int j = 0; j < 6; j++) {
                    s += Math.exp(x[i * 6 + j] - max);
                }
                for (int j = 0; j < 6; j++) {
                    expected[i * 6 + j] = x[i * 6 + j] - max - Math.log(s);
                }
            }
            assertClose(expected, f64(x, 3, 6).logSoftmax(1), 1e-12);
            double[] ls0 = f64(x, 3, 6).logSoftmax(0).exp().sum(0, false).toDoubleArray();
            assertClose(new double[] {1, 1, 1, 1, 1, 1}, ls0, 1e-13);
        }

        @Test
        void layerNormWithAndWithoutAffine() {
            int rows = 3;
            int n = 8;
            double[] x = gaussians(23, rows * n);
            for (int i = 0; i < n; i++) {
                x[i] = x[i] * 5 + 10; // a shifted, scaled row
            }
            double[] w = gaussians(24, n);
            double[] b = gaussians(25, n);
            double eps = 1e-5;
            double[] plain = new double[x.length];
            double[] affine = new double[x.length];
            double[] scales = new double[rows];
            for (int r = 0; r < rows; r++) {
                double m = 0;
                for (int i = 0; i < n; i++) {
                    m += x[r * n + i];
                }
                m /= n;
                double v = 0;
                for (int i = 0; i < n; i++) {
                    v += (x[r * n + i] - m) * (x[r * n + i] - m);
                }
                v /= n; // biased variance, as layer norm uses
                scales[r] = Math.sqrt(v + eps);
                for (int i = 0; i < n; i++) {
                    plain[r * n + i] = (x[r * n + i] - m) / Math.sqrt(v + eps);
                    affine[r * n + i] = plain[r * n + i] * w[i] + b[i];
                }
            }
            assertClose(affine, f64(x, rows, n).layerNorm(f64(w, n), f64(b, n), eps), 1e-12);
            assertClose(plain, f64(x, rows, n).layerNorm(null, null, eps), 1e-12);
            double[] weightOnly = plain.clone();
            for (int i = 0; i < weightOnly.length; i++) {
                weightOnly[i] *= w[i % n];
            }
            assertClose(weightOnly, f64(x, rows, n).layerNorm(f64(w, n), null, eps), 1e-12);
            assertClose(affine, f32(x, rows, n).layerNorm(f32(w, n), f32(b, n), eps).toDoubleArray(), 1e-5, 1e-5);
            Tensor batched = f64(x, 1, rows, n).layerNorm(f64(w, n), f64(b, n), eps);
            assertArrayEquals(new long[] {1, rows, n}, batched.shape());
            assertClose(affine, batched, 1e-12);
            List<Tensor> withScale = f64(x, 1, rows, n).layerNormAndScale(f64(w, n), f64(b, n), eps);
            assertClose(affine, withScale.get(0), 1e-12);
            assertArrayEquals(new long[] {1, rows, 1}, withScale.get(1).shape());
            assertClose(scales, withScale.get(1), 1e-12);
            assertClose(scales, f32(x, rows, n).layerNormAndScale(null, null, eps).get(1).toDoubleArray(), 1e-5, 1e-5);
        }

        @Test
        void rmsNormIsWeightTimesXOverRootMeanSquare() {
            int rows = 3;
            int n = 6;
            double[] x = gaussians(26, rows * n);
            double[] w = gaussians(27, n);
            double eps = 1e-6;
            double[] plain = new double[x.length];
            double[] weighted = new double[x.length];
            double[] scales = new double[rows];
            for (int r = 0; r < rows; r++) {
                double ms = 0;
                for (int i = 0; i < n; i++) {
                    ms += x[r * n + i] * x[r * n + i];
                }
                ms /= n;
                scales[r] = Math.sqrt(ms + eps);
                for (int i = 0; i < n; i++) {
                    plain[r * n + i] = x[r * n + i] / Math.sqrt(ms + eps);
                    weighted[r * n + i] = w[i] * plain[r * n + i];
                }
            }
            assertClose(weighted, f64(x, rows, n).rmsNorm(f64(w, n), eps), 1e-12);
            assertClose(plain, f64(x, rows, n).rmsNorm(null, eps), 1e-12);
            assertClose(weighted, f32(x, rows, n).rmsNorm(f32(w, n), eps).toDoubleArray(), 1e-5, 1e-5);
            List<Tensor> withScale = f64(x, rows, n).rmsNormAndScale(f64(w, n), eps);
            assertClose(weighted, withScale.get(0), 1e-12);
            assertArrayEquals(new long[] {rows, 1}, withScale.get(1).shape());
            assertClose(scales, withScale.get(1), 1e-12);
            List<Tensor> bf16 = f32(x, rows, n).to(DType.BFLOAT16).rmsNormAndScale(null, eps);
            assertEquals(DType.FLOAT32, bf16.get(1).dtype()); // the statistics of reduced precision are float32
            // a large eps dominates: x / sqrt(eps) for a tiny x
            assertClose(new double[] {1e-3, -2e-3}, f64(new double[] {1e-3, -2e-3}, 2).rmsNorm(null, 1.0), 1e-8);
        }

        @Test
        void embeddingPicksRows() {
            double[] table = linspace(0, 14, 15); // [5, 3], row r = 3r, 3r+1, 3r+2
            Tensor e = f64(table, 5, 3).embedding(Tensor.of(new long[] {0, 4, 2, 2}, 2, 2));
            assertArrayEquals(new long[] {2, 2, 3}, e.shape());
            assertArrayEquals(new double[] {0, 1, 2, 12, 13, 14, 6, 7, 8, 6, 7, 8}, e.toDoubleArray());
            Tensor e32 = f32(table, 5, 3).embedding(Tensor.of(new int[] {3}, 1));
            assertEquals(DType.FLOAT32, e32.dtype());
            assertArrayEquals(new float[] {9, 10, 11}, e32.toFloatArray());
        }
    }

    // ============================================================================================ combining

    @Nested
    @DisplayName("cat, stack, split, chunk, where, maskedFill, tril, triu, repeatInterleave")
    class Combining {

        @Test
        void catAlongDims() {
            Tensor a = f64(new double[] {1, 2, 3, 4}, 2, 2);
            Tensor b = f64(new double[] {5, 6}, 1, 2);
            Tensor c0 = Tensor.cat(List.of(a, b), 0);
            assertArrayEquals(new long[] {3, 2}, c0.shape());
            assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, c0.toDoubleArray());
            Tensor d = f64(new double[] {7, 8, 9, 10, 11, 12}, 2, 3);
            Tensor c1 = Tensor.cat(List.of(a, d), -1);
            assertArrayEquals(new long[] {2, 5}, c1.shape());
            assertArrayEquals(new double[] {1, 2, 7, 8, 9, 3, 4, 10, 11, 12}, c1.toDoubleArray());
        }

        @Test
        void stackAlongNewDims() {
            Tensor a = f64(new double[] {1, 2, 3}, 3);
            Tensor b = f64(new double[] {4, 5, 6}, 3);
            Tensor s0 = Tensor.stack(List.of(a, b), 0);
            assertArrayEquals(new long[] {2, 3}, s0.shape());
            assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, s0.toDoubleArray());
            Tensor s1 = Tensor.stack(List.of(a, b), 1);
            assertArrayEquals(new long[] {3, 2}, s1.shape());
            assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, s1.toDoubleArray());
            Tensor sLast = Tensor.stack(List.of(a, b, a), -1);
            assertArrayEquals(new long[] {3, 3}, sLast.shape());
            assertArrayEquals(new double[] {1, 4, 1, 2, 5, 2, 3, 6, 3}, sLast.toDoubleArray());
        }

        @Test
        void splitAndChunk() {
            Tensor x = Tensor.arange(0, 10, 1, DType.FLOAT64, Device.CPU).reshape(5, 2);
            List<Tensor> parts = x.split(2, 0);
            assertEquals(3, parts.size());
            assertArrayEquals(new double[] {0, 1, 2, 3}, parts.get(0).toDoubleArray());
            assertArrayEquals(new double[] {4, 5, 6, 7}, parts.get(1).toDoubleArray());
            assertArrayEquals(new long[] {1, 2}, parts.get(2).shape());
            assertArrayEquals(new double[] {8, 9}, parts.get(2).toDoubleArray());
            List<Tensor> cols = x.split(1, 1);
            assertEquals(2, cols.size());
            assertArrayEquals(new double[] {1, 3, 5, 7, 9}, cols.get(1).toDoubleArray());
            List<Tensor> chunks = x.chunk(3, 0); // ceil(5/3) = 2 per chunk: 2, 2, 1
            assertEquals(3, chunks.size());
            assertArrayEquals(new long[] {2, 2}, chunks.get(0).shape());
            assertArrayEquals(new long[] {1, 2}, chunks.get(2).shape());
            assertArrayEquals(new double[] {8, 9}, chunks.get(2).toDoubleArray());
            List<Tensor> six = Tensor.arange(6).chunk(4, 0); // ceil(6/4) = 2 per chunk: only 3 chunks
            assertEquals(3, six.size());
            assertArrayEquals(new long[] {4, 5}, six.get(2).toLongArray());
            assertEquals(2, x.chunk(2, -1).size());
        }

        @Test
        void whereAndMaskedFill() {
            Tensor x = f64(new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
            Tensor y = f64(new double[] {-1, -2, -3}, 3);
            Tensor cond = Tensor.of(new boolean[] {true, false, true, false, true, false}, 2, 3);
            assertArrayEquals(new double[] {1, -2, 3, -1, 5, -3}, x.where(cond, y).toDoubleArray());
            Tensor rowCond = Tensor.of(new boolean[] {false, true}, 2, 1);
            assertArrayEquals(new double[] {-1, -2, -3, 4, 5, 6}, x.where(rowCond, y).toDoubleArray());
            Tensor mask = Tensor.of(new boolean[] {true, false, true}, 1, 3);
            double[] filled = x.maskedFill(mask, Double.NEGATIVE_INFINITY).toDoubleArray();
            assertArrayEquals(new double[] {Double.NEGATIVE_INFINITY, 2, Double.NEGATIVE_INFINITY,
                    Double.NEGATIVE_INFINITY, 5, Double.NEGATIVE_INFINITY}, filled);
            Tensor f32 = f32(new double[] {1, 2, 3}, 3).maskedFill(Tensor.of(new boolean[] {false, true, false}, 3), 0.5);
            assertEquals(DType.FLOAT32, f32.dtype());
            assertArrayEquals(new float[] {1, 0.5f, 3}, f32.toFloatArray());
            Tensor ints = Tensor.of(new long[] {1, 2, 3}, 3).maskedFill(Tensor.of(new boolean[] {true, false, false}, 3), 9);
            assertEquals(DType.INT64, ints.dtype());
            assertArrayEquals(new long[] {9, 2, 3}, ints.toLongArray());
        }

        @Test
        void trilAndTriu() {
            double[] m = linspace(1, 12, 12); // [3, 4]
            Tensor t = f64(m, 3, 4);
            for (int diag = -2; diag <= 2; diag++) {
                double[] lower = new double[12];
                double[] upper = new double[12];
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 4; j++) {
                        lower[i * 4 + j] = j - i <= diag ? m[i * 4 + j] : 0;
                        upper[i * 4 + j] = j - i >= diag ? m[i * 4 + j] : 0;
                    }
                }
                assertArrayEquals(lower, t.tril(diag).toDoubleArray(), "tril " + diag);
                assertArrayEquals(upper, t.triu(diag).toDoubleArray(), "triu " + diag);
            }
            Tensor ones = Tensor.ones(new long[] {2, 3, 3}, DType.BOOL, Device.CPU).tril(0);
            assertArrayEquals(new boolean[] {true, false, false, true, true, false, true, true, true,
                    true, false, false, true, true, false, true, true, true}, ones.toBooleanArray());
        }

        @Test
        void repeatInterleave() {
            assertArrayEquals(new long[] {1, 1, 2, 2, 3, 3}, Tensor.of(new long[] {1, 2, 3}, 3).repeatInterleave(2, 0).toLongArray());
            Tensor m = f64(new double[] {1, 2, 3, 4}, 2, 2);
            Tensor r0 = m.repeatInterleave(3, 0);
            assertArrayEquals(new long[] {6, 2}, r0.shape());
            assertArrayEquals(new double[] {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}, r0.toDoubleArray());
            Tensor r1 = m.repeatInterleave(2, -1);
            assertArrayEquals(new long[] {2, 4}, r1.shape());
            assertArrayEquals(new double[] {1, 1, 2, 2, 3, 3, 4, 4}, r1.toDoubleArray());
            assertEquals(0, m.repeatInterleave(0, 0).numel());
        }
    }

    // ============================================================================================ reductions

    @Nested
    @DisplayName("reductions")
    class Reductions {

        final double[] x = {3, -1, 4, 1, -5, 9, 2, 6, 5, 3, -5, 8}; // [3, 4]

        @Test
        void sumAndMean() {
            Tensor t = f64(x, 3, 4);
            assertEquals(30, t.sum().item(), TIGHT);
            assertEquals(0, t.sum().dim());
            assertEquals(2.5, t.mean().item(), TIGHT);
            Tensor s0 = t.sum(0, false);
            assertArrayEquals(new long[] {4}, s0.shape());
            assertArrayEquals(new double[] {3, 11, 1, 15}, s0.toDoubleArray());
            Tensor s1 = t.sum(-1, true);
            assertArrayEquals(new long[] {3, 1}, s1.shape());
            assertArrayEquals(new double[] {7, 12, 11}, s1.toDoubleArray());
            assertClose(new double[] {1, 11 / 3.0, 1 / 3.0, 5}, t.mean(0, false), TIGHT);
            Tensor m1 = t.mean(1, true);
            assertArrayEquals(new long[] {3, 1}, m1.shape());
            assertClose(new double[] {7 / 4.0, 3, 11 / 4.0}, m1, TIGHT);
            Tensor ints = Tensor.of(new int[] {Integer.MAX_VALUE, Integer.MAX_VALUE}, 2);
            Tensor isum = ints.sum();
            assertEquals(DType.INT64, isum.dtype(), "integer sums accumulate in int64");
            assertEquals(2L * Integer.MAX_VALUE, isum.itemLong());
            assertEquals(3, Tensor.of(new boolean[] {true, true, false, true}, 4).sum().itemLong());
            // float32 sum of many values stays close to the exact sum
            double[] many = gaussians(31, 10000);
            assertEquals(Arrays.stream(asF32(many)).sum(), f32(many, 10000).sum().item(), 1e-3);
            assertEquals(mean(many), f64(many, 100, 100).mean().item(), 1e-14);
        }

        @Test
        void maxMinArgmax() {
            Tensor t = f64(x, 3, 4);
            assertEquals(9, t.max().item());
            assertEquals(-5, t.min().item());
            List<Tensor> mx = t.max(1, false);
            assertArrayEquals(new double[] {4, 9, 8}, mx.get(0).toDoubleArray());
            assertEquals(DType.INT64, mx.get(1).dtype());
            assertArrayEquals(new long[] {2, 1, 3}, mx.get(1).toLongArray());
            List<Tensor> mn = t.min(0, true);
            assertArrayEquals(new long[] {1, 4}, mn.get(0).shape());
            assertArrayEquals(new double[] {-5, -1, -5, 1}, mn.get(0).toDoubleArray());
            assertArrayEquals(new long[] {1, 0, 2, 0}, mn.get(1).toLongArray());
            Tensor am = t.argmax(0, false);
            assertArrayEquals(new long[] {2, 1, 0, 2}, am.toLongArray());
            assertArrayEquals(new long[] {3, 1}, t.argmax(-1, true).shape());
            assertEquals(1, Tensor.of(new double[] {1, 7, 7, 3}, 4).argmax(0, false).itemLong(), "first of ties");
            assertEquals(Long.MAX_VALUE, Tensor.of(new long[] {Long.MAX_VALUE, 0, Long.MIN_VALUE}, 3).max().itemLong());
            assertEquals(Long.MIN_VALUE, Tensor.of(new long[] {Long.MAX_VALUE, 0, Long.MIN_VALUE}, 3).min().itemLong());
            assertTrue(Double.isNaN(Tensor.of(new double[] {1, Double.NaN, 3}, 3).max().item()), "NaN propagates in max");
        }

        @Test
        void topkLargestAndSmallest() {
            Tensor t = f64(x, 3, 4);
            List<Tensor> top = t.topk(2, 1, true);
            assertArrayEquals(new long[] {3, 2}, top.get(0).shape());
            assertArrayEquals(new double[] {4, 3, 9, 6, 8, 5}, top.get(0).toDoubleArray());
            assertArrayEquals(new long[] {2, 0, 1, 3, 3, 0}, top.get(1).toLongArray());
            List<Tensor> bottom = t.topk(3, 0, false);
            assertArrayEquals(new long[] {3, 4}, bottom.get(0).shape());
            assertArrayEquals(new double[] {-5, -1, -5, 1, 3, 3, 2, 6, 5, 9, 4, 8}, bottom.get(0).toDoubleArray());
            assertArrayEquals(new long[] {1, 0, 2, 0, 0, 2, 1, 1, 2, 1, 0, 2}, bottom.get(1).toLongArray());
            // whole-vector topk against a Java sort
            double[] v = gaussians(32, 50);
            double[] sorted = v.clone();
            Arrays.sort(sorted);
            List<Tensor> top5 = f64(v, 50).topk(5, 0, true);
            double[] expected = {sorted[49], sorted[48], sorted[47], sorted[46], sorted[45]};
            assertArrayEquals(expected, top5.get(0).toDoubleArray());
            long[] idx = top5.get(1).toLongArray();
            for (int i = 0; i < 5; i++) {
                assertEquals(expected[i], v[(int) idx[i]]);
            }
        }

        @Test
        void norms() {
            Tensor m = f64(new double[] {3, 4, 0, -12}, 2, 2);
            assertEquals(13, m.norm().item(), TIGHT);
            assertEquals(0, m.norm().dim());
            assertArrayEquals(new double[] {5, 12}, m.norm(1, false).toDoubleArray(), TIGHT);
            Tensor n0 = m.norm(0, true);
            assertArrayEquals(new long[] {1, 2}, n0.shape());
            assertClose(new double[] {3, Math.sqrt(16 + 144)}, n0, TIGHT);
            double[] g = gaussians(33, 30);
            double ss = 0;
            for (double v : g) {
                ss += v * v;
            }
            assertEquals(Math.sqrt(ss), f32(g, 5, 6).norm().item(), 1e-5);
        }
    }

    // ============================================================================================ attention

    @Nested
    @DisplayName("scaled dot-product attention")
    class Attention {

        /** softmax(Q Kᵀ · scale + mask) V for one head; mask[i][j] false means "do not attend". */
        double[] reference(double[] q, double[] k, double[] v, int lq, int lk, int d, int dv, double scale, boolean[] allow) {
            double[] out = new double[lq * dv];
            for (int i = 0; i < lq; i++) {
                double[] s = new double[lk];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < lk; j++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) {
                        dot += q[i * d + c] * k[j * d + c];
                    }
                    s[j] = allow == null || allow[i * lk + j] ? dot * scale : Double.NEGATIVE_INFINITY;
                    max = Math.max(max, s[j]);
                }
                double z = 0;
                for (int j = 0; j < lk; j++) {
                    s[j] = Math.exp(s[j] - max);
                    z += s[j];
                }
                for (int j = 0; j < lk; j++) {
                    for (int c = 0; c < dv; c++) {
                        out[i * dv + c] += s[j] / z * v[j * dv + c];
                    }
                }
            }
            return out;
        }

        final int b = 2;
        final int lq = 4;
        final int lk = 4;
        final int d = 8;
        final int dv = 3;
        final double[] q = gaussians(41, b * lq * d);
        final double[] k = gaussians(42, b * lk * d);
        final double[] v = gaussians(43, b * lk * dv);

        void check(Tensor out, double scale, boolean[] allow, double tol) {
            assertArrayEquals(new long[] {b, lq, dv}, out.shape());
            double[] o = out.toDoubleArray();
            for (int h = 0; h < b; h++) {
                double[] expected = reference(slice(q, h * lq * d, lq * d), slice(k, h * lk * d, lk * d),
                        slice(v, h * lk * dv, lk * dv), lq, lk, d, dv, scale, allow);
                assertClose(expected, slice(o, h * lq * dv, lq * dv), tol, tol);
            }
        }

        @Test
        void defaultScaleIsOneOverRootD() {
            Tensor out = Tensor.scaledDotProductAttention(f64(q, b, lq, d), f64(k, b, lk, d), f64(v, b, lk, dv), null, false, null);
            check(out, 1 / Math.sqrt(d), null, 1e-12);
            Tensor out32 = Tensor.scaledDotProductAttention(f32(q, b, lq, d), f32(k, b, lk, d), f32(v, b, lk, dv), null, false,
                    null);
            assertEquals(DType.FLOAT32, out32.dtype());
            check(out32, 1 / Math.sqrt(d), null, 1e-5);
        }

        @Test
        void causal() {
            boolean[] tril = new boolean[lq * lk];
            for (int i = 0; i < lq; i++) {
                for (int j = 0; j < lk; j++) {
                    tril[i * lk + j] = j <= i;
                }
            }
            Tensor out = Tensor.scaledDotProductAttention(f64(q, b, lq, d), f64(k, b, lk, d), f64(v, b, lk, dv), null, true, null);
            check(out, 1 / Math.sqrt(d), tril, 1e-12);
            // the first query attends only to the first key: its output is exactly v[0]
            double[] o = out.toDoubleArray();
            assertArrayEquals(slice(v, 0, dv), slice(o, 0, dv), 1e-14);
        }

        @Test
        void boolMaskTrueMeansAttend() {
            boolean[] allow = new boolean[lq * lk];
            Random r = new Random(44);
            for (int i = 0; i < lq; i++) {
                for (int j = 0; j < lk; j++) {
                    allow[i * lk + j] = r.nextBoolean();
                }
                allow[i * lk + (i % lk)] = true; // no fully masked row
            }
            Tensor mask = Tensor.of(allow, lq, lk); // broadcasts over the batch
            Tensor out = Tensor.scaledDotProductAttention(f64(q, b, lq, d), f64(k, b, lk, d), f64(v, b, lk, dv), mask, false, null);
            check(out, 1 / Math.sqrt(d), allow, 1e-12);
        }

        @Test
        void additiveFloatMask() {
            double[] add = new double[lq * lk];
            boolean[] allow = new boolean[lq * lk];
            for (int i = 0; i < add.length; i++) {
                allow[i] = i % 3 != 1;
                add[i] = allow[i] ? 0 : Double.NEGATIVE_INFINITY;
            }
            Tensor out = Tensor.scaledDotProductAttention(f64(q, b, lq, d), f64(k, b, lk, d), f64(v, b, lk, dv),
                    f64(add, lq, lk), false, null);
            check(out, 1 / Math.sqrt(d), allow, 1e-12);
        }

        @Test
        void explicitScale() {
            Tensor out = Tensor.scaledDotProductAttention(f64(q, b, lq, d), f64(k, b, lk, d), f64(v, b, lk, dv), null, false, 0.3);
            check(out, 0.3, null, 1e-12);
            Tensor causal = Tensor.scaledDotProductAttention(f64(q, b, lq, d), f64(k, b, lk, d), f64(v, b, lk, dv), null, true,
                    2.0);
            boolean[] tril = new boolean[lq * lk];
            for (int i = 0; i < lq; i++) {
                for (int j = 0; j <= i; j++) {
                    tril[i * lk + j] = true;
                }
            }
            check(causal, 2.0, tril, 1e-12);
        }

        @Test
        void differentQueryAndKeyLengthsWithHeads() {
            int heads = 2;
            int nq = 3;
            int nk = 5;
            double[] qq = gaussians(45, heads * nq * d);
            double[] kk = gaussians(46, heads * nk * d);
            double[] vv = gaussians(47, heads * nk * dv);
            Tensor out = Tensor.scaledDotProductAttention(f64(qq, 1, heads, nq, d), f64(kk, 1, heads, nk, d),
                    f64(vv, 1, heads, nk, dv), null, false, null);
            assertArrayEquals(new long[] {1, heads, nq, dv}, out.shape());
            double[] o = out.toDoubleArray();
            for (int h = 0; h < heads; h++) {
                assertClose(reference(slice(qq, h * nq * d, nq * d), slice(kk, h * nk * d, nk * d), slice(vv, h * nk * dv, nk * dv),
                        nq, nk, d, dv, 1 / Math.sqrt(d), null), slice(o, h * nq * dv, nq * dv), 1e-12);
            }
        }

        /**
         * Scores {@code [b, h, i, j] = scale · Σ_d q[b, i, h, d] k[b, j, h / groups, d]}, -inf where the causal mask
         * forbids (j > i), from the definitions, against einsumMasked on every route: OpenBLAS's batched product (the
         * scale its factor) in float32 and float64, libtorch's einsum (the scale applied in place) in bfloat16, and the
         * grouped equation of grouped-query attention.
         */
        @ParameterizedTest
        @CsvSource({"FLOAT32, 5", "FLOAT64, 5", "BFLOAT16, 5", "FLOAT32, 130", "FLOAT64, 130"})
        void einsumMaskedIsTheScaledProductWithTheMaskFilled(DType dtype, int n) {
            // 130 positions: per head more than OpenBLAS's small-product limit, so its batched product runs
            int batch = n > 100 ? 1 : 2;
            int heads = 4;
            int dh = n > 100 ? 64 : 8;
            double scale = 0.3;
            double[] qv = gaussians(51, batch * n * heads * dh);
            double[] kv = gaussians(52, batch * n * heads * dh);
            Tensor qt = f64(qv, batch, n, heads, dh).to(dtype);
            Tensor kt = f64(kv, batch, n, heads, dh).to(dtype);
            double[] qr = qt.toDoubleArray(); // the operands as rounded to the dtype
            double[] kr = kt.toDoubleArray();
            Tensor forbidden = Tensor.ones(new long[] {n, n}, DType.BOOL, Device.CPU).triu(1);
            for (int groups : new int[] {1, 2}) {
                int kvHeads = heads / groups;
                Tensor keys = kt.narrow(2, 0, kvHeads);
                Tensor minusInfinity = Tensor.scalar(Double.NEGATIVE_INFINITY);
                Tensor scores = groups == 1
                        ? Tensor.einsumMasked("bqhd,bkhd->bhqk", qt, keys, scale, forbidden, minusInfinity)
                        : Tensor.einsumMasked("bqngd,bknd->bngqk", qt.view(batch, n, kvHeads, groups, dh), keys, scale,
                                forbidden, minusInfinity).reshape(batch, heads, n, n);
                assertEquals(dtype, scores.dtype());
                double[] got = scores.toDoubleArray();
                double tol = dtype == DType.BFLOAT16 ? 0.05 : dtype == DType.FLOAT32 ? 1e-5 : 1e-12;
                for (int b = 0; b < batch; b++) {
                    for (int h = 0; h < heads; h++) {
                        for (int i = 0; i < n; i++) {
                            for (int j = 0; j < n; j++) {
                                double expected = Double.NEGATIVE_INFINITY;
                                if (j <= i) {
                                    expected = 0;
                                    for (int c = 0; c < dh; c++) {
                                        expected += qr[((b * n + i) * heads + h) * dh + c]
                                                * kr[((b * n + j) * heads + h / groups) * dh + c];
                                    }
                                    expected *= scale;
                                }
                                double actual = got[((b * heads + h) * n + i) * n + j];
                                String at = dtype + " n " + n + " groups " + groups + " [" + b + "," + h + "," + i + "," + j
                                        + "]";
                                if (j > i) {
                                    assertEquals(Double.NEGATIVE_INFINITY, actual, at);
                                } else {
                                    assertEquals(expected, actual, tol * Math.max(1, Math.abs(expected)), at);
                                }
                            }
                        }
                    }
                }
            }
            assertArrayEquals(qr, qt.toDoubleArray(), "the operands are left as they were");
        }

        /** A factor of 0 times an infinity is NaN, as einsum(...).mul(0) gives; BLAS skips its operands for it. */
        @ParameterizedTest
        @CsvSource({"FLOAT32", "FLOAT64"})
        void einsumMaskedByZeroKeepsTheOperandsNaN(DType dtype) {
            // 2 × 128³ multiply-adds: above OpenBLAS's small-product limit, so its batched product would run
            Tensor a = Tensor.ones(new long[] {2, 128, 128}, dtype, Device.CPU);
            a.select(0, 0).select(0, 0).select(0, 0).copyFrom(Tensor.scalar(Double.POSITIVE_INFINITY).to(dtype));
            Tensor none = Tensor.zeros(new long[] {1}, DType.BOOL, Device.CPU);
            double[] got = Tensor.einsumMasked("bij,bjk->bik", a, a, 0.0, none, Tensor.scalar(-1)).toDoubleArray();
            assertTrue(Double.isNaN(got[0]), "inf · 0 at [0, 0, 0], got " + got[0]);
            assertEquals(0.0, got[got.length - 1]);
        }

        @Test
        void einsumMaskedRefusesAMaskOrFillItCannotUse() {
            Tensor a = Tensor.ones(new long[] {1, 3, 2, 4}, DType.FLOAT32, Device.CPU);
            String eq = "bqhd,bkhd->bhqk"; // [1, 2, 3, 3]
            Tensor ok = Tensor.ones(new long[] {3, 3}, DType.BOOL, Device.CPU);
            Tensor zero = Tensor.scalar(0);
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, a, a, 1, ok.to(DType.FLOAT32), zero));
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, a, a, 1,
                    Tensor.ones(new long[] {2, 1, 3, 3}, DType.BOOL, Device.CPU), zero), "it would widen the product");
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, a, a, 1,
                    Tensor.ones(new long[] {4, 3}, DType.BOOL, Device.CPU), zero));
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, a, a, Double.NaN, ok, zero));
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, a, a, 1, ok, Tensor.ones(1)));
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, a, a, 1, ok, Tensor.scalar(1e39)),
                    "beyond float32's range, as libtorch refuses it");
            assertThrows(IllegalArgumentException.class, () -> a.maskedFill(ok, -1e39));
            assertEquals(-1e39, a.to(DType.FLOAT64).maskedFill(Tensor.ones(new long[] {4}, DType.BOOL, Device.CPU), -1e39)
                    .max().item(), "float64 holds it");
            Tensor ints = Tensor.ones(new long[] {1, 3, 2, 4}, DType.INT64, Device.CPU);
            assertThrows(IllegalArgumentException.class, () -> Tensor.einsumMasked(eq, ints, ints, 1, ok, zero));
            assertArrayEquals(new float[] {0, 0, 0, 0}, Tensor.einsumMasked("ij,jk->ik", Tensor.ones(2, 2),
                    Tensor.ones(2, 2), 2, Tensor.ones(new long[] {2, 2}, DType.BOOL, Device.CPU), zero).toFloatArray());
        }
    }

    // ============================================================================================ decompositions

    @Nested
    @DisplayName("svd, eigvals, allclose")
    class Decompositions {

        @Test
        void choleskyAndEighOfAHandMadeSymmetricMatrix() {
            // A = [[4, 2], [2, 3]]: L = [[2, 0], [1, sqrt(2)]]; eigenvalues (7 -+ sqrt(17)) / 2
            Tensor a = f64(new double[] {4, 2, 2, 3}, 2, 2);
            assertClose(new double[] {2, 0, 1, Math.sqrt(2)}, a.cholesky().toDoubleArray(), 1e-14);
            List<Tensor> eigen = a.eigh();
            assertClose(new double[] {(7 - Math.sqrt(17)) / 2, (7 + Math.sqrt(17)) / 2}, eigen.get(0).toDoubleArray(), 1e-14);
            double[] v = eigen.get(1).toDoubleArray(); // columns are eigenvectors: A v = lambda v
            for (int col = 0; col < 2; col++) {
                double lambda = eigen.get(0).toDoubleArray()[col];
                double x = v[col];
                double y = v[2 + col];
                assertEquals(lambda * x, 4 * x + 2 * y, 1e-12);
                assertEquals(lambda * y, 2 * x + 3 * y, 1e-12);
                assertEquals(1.0, x * x + y * y, 1e-12);
            }
        }

        @Test
        void choleskyNamesTheMatrixOfABatchThatIsNotPositiveDefinite() {
            Tensor batch = f64(new double[] {4, 2, 2, 3, 1, 2, 2, 1}, 2, 2, 2); // the second has eigenvalues 3 and -1
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, batch::cholesky);
            assertTrue(e.getMessage().contains("matrix 1") && e.getMessage().contains("not positive definite"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> f64(new double[] {1, 2, 3, 4, 5, 6}, 2, 3).cholesky());
            assertThrows(IllegalArgumentException.class, () -> f64(new double[] {1, 2, 3, 4, 5, 6}, 2, 3).eigh());
            assertThrows(IllegalArgumentException.class, () -> Tensor.of(new long[] {1, 0, 0, 1}, 2, 2).eigh());
            assertThrows(IllegalArgumentException.class, () -> f64(new double[] {1, 0, 0, 1}, 2, 2).to(DType.BFLOAT16).cholesky());
        }

        @Test
        void svdReconstructsAndIsOrdered() {
            int m = 5;
            int n = 3;
            double[] a = gaussians(51, m * n);
            List<Tensor> usv = f64(a, m, n).svd();
            Tensor u = usv.get(0);
            Tensor s = usv.get(1);
            Tensor vh = usv.get(2);
            assertArrayEquals(new long[] {m, n}, u.shape());
            assertArrayEquals(new long[] {n}, s.shape());
            assertArrayEquals(new long[] {n, n}, vh.shape());
            double[] uv = u.toDoubleArray();
            double[] sv = s.toDoubleArray();
            double[] vhv = vh.toDoubleArray();
            for (int i = 1; i < n; i++) {
                assertTrue(sv[i - 1] >= sv[i], "descending: " + Arrays.toString(sv));
            }
            assertTrue(sv[n - 1] >= 0);
            double[] us = new double[m * n];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    us[i * n + j] = uv[i * n + j] * sv[j];
                }
            }
            assertClose(a, matmulRef(us, vhv, m, n, n), 1e-12);
            // U has orthonormal columns, Vh orthonormal rows
            double[] eye = {1, 0, 0, 0, 1, 0, 0, 0, 1};
            assertClose(eye, matmulRef(transposeRef(uv, m, n), uv, n, m, n), 1e-12);
            assertClose(eye, matmulRef(vhv, transposeRef(vhv, n, n), n, n, n), 1e-12);
            // Σ s² = ‖A‖_F²
            double fro = 0;
            for (double x : a) {
                fro += x * x;
            }
            assertEquals(fro, Arrays.stream(sv).map(x -> x * x).sum(), 1e-12);
        }

        @Test
        void svdOfKnownMatrices() {
            assertClose(new double[] {3, 2}, f64(new double[] {3, 0, 0, -2}, 2, 2).svd().get(1), 1e-14);
            assertClose(new double[] {5, 0}, f64(new double[] {1, 2, 2, 4}, 2, 2).svd().get(1), 1e-14);
            List<Tensor> f = f32(new double[] {2, 0, 0, 0, 1, 0}, 2, 3).svd();
            assertEquals(DType.FLOAT32, f.get(1).dtype());
            assertClose(new double[] {2, 1}, f.get(1).toDoubleArray(), 1e-6, 1e-6);
            assertArrayEquals(new long[] {2, 3}, f.get(2).shape());
        }

        double[][] sortedPairs(Tensor eig) {
            double[] re = eig.viewAsReal().toDoubleArray();
            double[][] pairs = new double[re.length / 2][];
            for (int i = 0; i < pairs.length; i++) {
                pairs[i] = new double[] {re[2 * i], re[2 * i + 1]};
            }
            Arrays.sort(pairs, (x, y) -> x[0] != y[0] ? Double.compare(x[0], y[0]) : Double.compare(x[1], y[1]));
            return pairs;
        }

        @Test
        void eigvalsOfDiagonalAndTriangularMatrices() {
            Tensor e = f64(new double[] {2, 0, 0, 3}, 2, 2).eigvals();
            assertEquals(DType.COMPLEX128, e.dtype());
            assertArrayEquals(new long[] {2}, e.shape());
            Tensor real = e.viewAsReal();
            assertArrayEquals(new long[] {2, 2}, real.shape());
            assertEquals(DType.FLOAT64, real.dtype());
            double[][] p = sortedPairs(e);
            assertArrayEquals(new double[] {2, 0}, p[0], 1e-14);
            assertArrayEquals(new double[] {3, 0}, p[1], 1e-14);
            // [[4, 1], [2, 3]]: trace 7, det 10, eigenvalues 2 and 5
            double[][] q = sortedPairs(f64(new double[] {4, 1, 2, 3}, 2, 2).eigvals());
            assertArrayEquals(new double[] {2, 0}, q[0], 1e-12);
            assertArrayEquals(new double[] {5, 0}, q[1], 1e-12);
        }

        @Test
        void eigvalsOfRotationAreComplexConjugates() {
            double theta = Math.PI / 3;
            double c = Math.cos(theta);
            double s = Math.sin(theta);
            Tensor rot = f64(new double[] {c, -s, s, c}, 2, 2);
            double[][] p = sortedPairs(rot.eigvals());
            assertArrayEquals(new double[] {c, -s}, p[0], 1e-12);
            assertArrayEquals(new double[] {c, s}, p[1], 1e-12);
            Tensor e32 = f32(new double[] {c, -s, s, c}, 2, 2).eigvals();
            assertEquals(DType.COMPLEX64, e32.dtype());
            assertEquals(DType.FLOAT32, e32.viewAsReal().dtype());
            double[][] p32 = sortedPairs(e32);
            assertArrayEquals(new double[] {c, -s}, p32[0], 1e-6);
            assertArrayEquals(new double[] {c, s}, p32[1], 1e-6);
            // batched: a batch of two 3x3 block rotations plus a scaling
            double[] batch = {c, -s, 0, s, c, 0, 0, 0, 7, 1, 0, 0, 0, 2, 0, 0, 0, 3};
            Tensor eb = f64(batch, 2, 3, 3).eigvals();
            assertArrayEquals(new long[] {2, 3}, eb.shape());
            double[][] first = sortedPairs(eb.select(0, 0));
            assertArrayEquals(new double[] {7, 0}, first[2], 1e-12);
            double[][] second = sortedPairs(eb.select(0, 1));
            assertArrayEquals(new double[] {1, 0, 2, 0, 3, 0},
                    new double[] {second[0][0], second[0][1], second[1][0], second[1][1], second[2][0], second[2][1]}, 1e-12);
        }

        @Test
        void allcloseTrueAndFalse() {
            Tensor one = f64(new double[] {1.0, 100.0}, 2);
            Tensor near = f64(new double[] {1.05, 100.0}, 2);
            assertTrue(near.allclose(one, 0.1, 0));
            assertFalse(near.allclose(one, 0.01, 0));
            assertTrue(near.allclose(one, 0, 0.06));
            assertFalse(near.allclose(one, 0, 0.04));
            assertTrue(one.allclose(one.copy(), 0, 0));
            // tolerance is relative to |other|: |1.1 − 1| = 0.1 ≤ 0.0909·1.1 but not ≤ 0.0909·1
            Tensor a = f64(new double[] {1.1}, 1);
            Tensor b = f64(new double[] {1.0}, 1);
            assertTrue(b.allclose(a, 0.0915, 0));
            assertFalse(a.allclose(b, 0.0915, 0));
            // broadcasting, and NaN never equals NaN
            assertTrue(f64(new double[] {2, 2, 2}, 3).allclose(f64(new double[] {2}, 1), 0, 0));
            Tensor nan = f64(new double[] {Double.NaN}, 1);
            assertFalse(nan.allclose(nan, 1, 1));
            Tensor inf = f64(new double[] {Double.POSITIVE_INFINITY}, 1);
            assertTrue(inf.allclose(inf, 0, 0));
            assertFalse(inf.allclose(inf.neg(), 1, 1));
        }
    }

    // ============================================================================================ fresh JVM

    /** Run in a child JVM: the very first arrakis call of the process is Tensor.zeros or Tensor.ones. */
    public static final class FirstCallProbe {
        public static void main(String[] args) {
            Tensor t = args[0].equals("zeros") ? Tensor.zeros(2, 2) : Tensor.ones(2, 2);
            System.out.println("values=" + Arrays.toString(t.toFloatArray()));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"zeros", "ones"})
    void firstCallInAFreshJvmMayBeZerosOrOnes(String factory) {
        String out = ChildJvm.of(FirstCallProbe.class, factory).run();
        assertTrue(out.contains(factory.equals("zeros") ? "values=[0.0, 0.0, 0.0, 0.0]" : "values=[1.0, 1.0, 1.0, 1.0]"), out);
    }

    // ============================================================================================ scope sanity

    @Test
    @DisplayName("tensors made in a test are freed by the scope")
    void scopeFreesTensors() {
        Tensor t;
        TensorScope inner = TensorScope.open();
        try {
            t = Tensor.ones(3).mul(2.0);
            assertArrayEquals(new float[] {2, 2, 2}, t.toFloatArray());
        } finally {
            inner.close();
        }
        assertTrue(t.isClosed());
        assertTrue(t.toString().contains("closed"));
    }

    @Nested
    @DisplayName("ops of the fused forward pass")
    class FusedForwardOps {
        @Test
        void splitBySizesGivesViewsOfTheGivenSizes() {
            Tensor t = Tensor.arange(12).view(2, 6);
            List<Tensor> parts = t.split(new long[] {3, 1, 2}, 1);
            assertArrayEquals(new long[] {0, 1, 2, 6, 7, 8}, parts.get(0).toLongArray());
            assertArrayEquals(new long[] {3, 9}, parts.get(1).toLongArray());
            assertArrayEquals(new long[] {4, 5, 10, 11}, parts.get(2).toLongArray());
            assertArrayEquals(new long[] {2, 2}, parts.get(2).shape());
        }

        @Test
        void rollBringsBackWhatFallsOffTheEnd() {
            Tensor t = Tensor.arange(8).view(2, 4);
            assertArrayEquals(new long[] {2, 3, 0, 1, 6, 7, 4, 5}, t.roll(2, -1).toLongArray());
            assertArrayEquals(new long[] {4, 5, 6, 7, 0, 1, 2, 3}, t.roll(1, 0).toLongArray());
        }

        @Test
        void anAliasSharesMemoryAndClosesOnItsOwn() {
            Tensor t = Tensor.of(new float[] {1, 2, 3}, 3);
            Tensor a = t.alias();
            long before = LibTorch.opCalls();
            Tensor b = t.alias();
            assertEquals(before, LibTorch.opCalls(), "an alias runs no op");
            b.close();
            a.asSegment().setAtIndex(ValueLayout.JAVA_FLOAT, 1, 20f);
            t.close();
            assertArrayEquals(new float[] {1, 20, 3}, a.toFloatArray());
        }

        /** On the CPU: the number as a 0-d tensor and the division (one op where 1 / value is exact); exact. */
        @Test
        void divisionByANumberOnTheCpuIsTwoOpsAndExact() {
            Tensor t = Tensor.of(new float[] {1, 2, 3, 10, -7}, 5);
            long before = LibTorch.opCalls();
            Tensor q = t.div(3.0);
            assertEquals(2, LibTorch.opCalls() - before);
            before = LibTorch.opCalls();
            t.div(0.25).close();
            assertEquals(1, LibTorch.opCalls() - before, "a power of two multiplies");
            float[] values = q.toFloatArray();
            float[] inputs = {1, 2, 3, 10, -7};
            for (int i = 0; i < values.length; i++) {
                assertEquals(inputs[i] / 3f, values[i], 0f);
            }
            assertArrayEquals(new double[] {0.5, 1, 1.5}, Tensor.of(new long[] {1, 2, 3}, 3).div(2.0).toDoubleArray(), TIGHT);
        }

        @Test
        void groupedQueryAttentionEqualsRepeatedKeysAndValues() {
            Generator g = new Generator(4);
            Tensor q = Tensor.randn(g, new long[] {2, 6, 5, 8}, DType.FLOAT32, Device.CPU);
            Tensor k = Tensor.randn(g, new long[] {2, 2, 5, 8}, DType.FLOAT32, Device.CPU);
            Tensor v = Tensor.randn(g, new long[] {2, 2, 5, 8}, DType.FLOAT32, Device.CPU);
            Tensor grouped = Tensor.scaledDotProductAttention(q, k, v, null, true, 0.3);
            Tensor repeated = Tensor.scaledDotProductAttention(q, k.repeatInterleave(3, 1), v.repeatInterleave(3, 1), null,
                    true, 0.3);
            assertTrue(grouped.allclose(repeated, 1e-6, 1e-6));
            // query head 4 reads key/value head 4 / 3 = 1: the same result as attention over that head alone
            Tensor alone = Tensor.scaledDotProductAttention(q.narrow(1, 4, 1), k.narrow(1, 1, 1), v.narrow(1, 1, 1), null,
                    true, 0.3);
            assertTrue(grouped.narrow(1, 4, 1).allclose(alone, 1e-6, 1e-6));
        }

        @Test
        void roundingToADtypeMatchesLibtorchsConversion() {
            double[] values = {Math.sqrt(2048), Math.sqrt(3072), 1 / 3.0, -1e-3, 65519.0, 1e-8};
            for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT16, DType.BFLOAT16, DType.FLOAT64}) {
                for (double v : values) {
                    double viaLibtorch = Tensor.of(new double[] {v}, 1).to(dtype).toDoubleArray()[0];
                    assertEquals(viaLibtorch, dtype.round(v), 0.0, dtype + " " + v);
                }
            }
            assertEquals(45.25, DType.BFLOAT16.round(Math.sqrt(2048)), 0.0); // gemma's embedding scale, as Hugging Face has it
        }

        @Test
        void hostIndicesAreCheckedWithoutAnOpAndServeTheirTable() {
            Tensor table = Tensor.arange(0, 12, 1, DType.FLOAT32, Device.CPU).view(4, 3);
            Tensor ids = Tensor.of(new long[] {3, 0}, 2);
            long before = LibTorch.opCalls();
            Tensor rows = table.embedding(ids);
            assertEquals(1, LibTorch.opCalls() - before, "the range check reads the ids in place");
            assertArrayEquals(new float[] {9, 10, 11, 0, 1, 2}, rows.toFloatArray());
            Tensor strided = Tensor.of(new int[] {1, 9, 2, 9}, 4).slice(0, 0, 4, 2); // int32, not contiguous
            assertArrayEquals(new float[] {3, 4, 5, 6, 7, 8}, table.embedding(strided).toFloatArray());
            assertThrows(IndexOutOfBoundsException.class, () -> table.embedding(Tensor.of(new int[] {9, 1, 2, 3}, 4).slice(0, 0, 4, 2)));
        }
    }
}

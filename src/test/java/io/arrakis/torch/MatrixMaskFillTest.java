package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;
import java.util.function.BiPredicate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java masked fill must be indistinguishable from libtorch's masked_fill: every result is compared, bit for bit,
 * with libtorch's on a copy of the same tensor, over masks of many shapes of runs and fill values that round.
 */
class MatrixMaskFillTest {
    private static final double[] VALUES = {Double.NEGATIVE_INFINITY, Double.NaN, 0.0, -0.0, 2.5, 1e300, -1e300,
        3.4028235e38, 1e-50, Double.MIN_VALUE, 0.1};

    @Test
    void everyMaskShapeAndValueMatchesLibtorchBitForBit() {
        Random random = new Random(20261206);
        long[][][] shapes = {
            {{3, 5}, {3, 5}},
            {{2, 4, 7, 9}, {7, 9}},
            {{2, 4, 7, 9}, {1, 1, 7, 9}},
            {{2, 4, 7, 9}, {1, 7, 9}},
            {{6, 1, 3}, {1, 3}},
            {{1, 12, 33, 33}, {33, 33}},
            {{1, 1}, {1, 1}},
            {{0, 4, 4}, {4, 4}},
            {{2, 0, 5}, {0, 5}},
        };
        BiPredicate<Integer, Integer> causal = (i, j) -> j > i;
        BiPredicate<Integer, Integer> window = (i, j) -> j > i || j <= i - 3;
        BiPredicate<Integer, Integer> all = (i, j) -> true;
        BiPredicate<Integer, Integer> none = (i, j) -> false;
        BiPredicate<Integer, Integer> scattered = (i, j) -> random.nextInt(10) < 3;
        for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
            for (long[][] shape : shapes) {
                for (BiPredicate<Integer, Integer> rule : Arrays.asList(causal, window, all, none, scattered)) {
                    for (double value : VALUES) {
                        if (Double.isFinite(value) && Math.abs(value) > dtype.maxFinite()) {
                            continue; // refused before the fill, as by libtorch (TensorNumericsTest)
                        }
                        try (TensorScope scope = TensorScope.open()) {
                            Tensor target = Tensor.randn(new Generator(random.nextLong()), shape[0], dtype, Device.CPU);
                            Tensor mask = mask(shape[1], rule);
                            String what = dtype + " " + Arrays.toString(shape[0]) + " mask " + Arrays.toString(shape[1])
                                    + " value " + value;
                            assertTrue(MatrixMaskFill.applies(target.meta(), mask.meta()), what);
                            Tensor expected = target.maskedFill(mask, value);
                            MatrixMaskFill.fill(target, mask, value);
                            assertArrayEquals(bits(expected), bits(target), what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void aCausalMaskOverTwoMatricesFillsAboveTheDiagonal() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor target = Tensor.zeros(new long[] {2, 2, 3}, DType.FLOAT32, Device.CPU);
            Tensor mask = Tensor.ones(new long[] {2, 3}, DType.BOOL, Device.CPU).triu(1);
            MatrixMaskFill.fill(target, mask, -1);
            assertArrayEquals(new float[] {0, -1, -1, 0, 0, -1, 0, -1, -1, 0, 0, -1}, target.toFloatArray());
        }
    }

    /** Was: an int64 fill was read as a double and rounded again to float32, where libtorch rounds it once. */
    @Test
    void anIntegerFillIsRoundedOnceAsByLibtorch() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor q = Tensor.ones(new long[] {1, 2, 2, 2}, DType.FLOAT32, Device.CPU);
            Tensor mask = Tensor.ones(new long[] {2, 2}, DType.BOOL, Device.CPU).triu(1);
            long big = (1L << 60) + (1L << 36) + 1;
            Tensor filled = Tensor.einsumMasked("bqhd,bkhd->bhqk", q, q, 1.0, mask, Tensor.of(new long[] {big}, 1).view());
            // libtorch's own conversion of the int64 to float32, chosen where the mask is true
            Tensor reference = Tensor.of(new long[] {big}, 1).view().to(DType.FLOAT32).where(mask,
                    Tensor.einsum("bqhd,bkhd->bhqk", q, q));
            assertArrayEquals(bits(reference), bits(filled));
        }
    }

    @Test
    void otherLayoutsAndDtypesAreLeftToLibtorch() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor square = Tensor.zeros(new long[] {2, 4, 4}, DType.FLOAT32, Device.CPU);
            Tensor mask = Tensor.ones(new long[] {4, 4}, DType.BOOL, Device.CPU).triu(1);
            assertTrue(MatrixMaskFill.applies(square.meta(), mask.meta()));
            assertFalse(MatrixMaskFill.applies(square.to(DType.BFLOAT16).meta(), mask.meta()), "bfloat16");
            assertFalse(MatrixMaskFill.applies(square.transpose(1, 2).meta(), mask.meta()), "a transposed target");
            assertFalse(MatrixMaskFill.applies(square.meta(), mask.transpose(0, 1).meta()), "a transposed mask");
            assertFalse(MatrixMaskFill.applies(square.meta(), mask.to(DType.FLOAT32).meta()), "a float mask");
            assertFalse(MatrixMaskFill.applies(square.meta(), mask.select(0, 3).meta()), "a mask of one dim");
            Tensor perMatrix = Tensor.ones(new long[] {2, 4, 4}, DType.BOOL, Device.CPU);
            assertFalse(MatrixMaskFill.applies(square.meta(), perMatrix.meta()), "a mask that differs per matrix");
            assertFalse(MatrixMaskFill.applies(square.select(0, 0).meta(), perMatrix.meta()),
                    "a mask wider than its target");
            Tensor.Meta huge = new Tensor.Meta(new long[] {4097, 4096}, new long[] {4096, 1}, DType.BOOL, Device.CPU);
            Tensor.Meta scores = new Tensor.Meta(new long[] {1, 4097, 4096}, new long[] {4097L * 4096, 4096, 1},
                    DType.FLOAT32, Device.CPU);
            assertFalse(MatrixMaskFill.applies(scores, huge), "a mask too large to read onto the heap");
        }
    }

    private static Tensor mask(long[] shape, BiPredicate<Integer, Integer> rule) {
        int rows = (int) shape[shape.length - 2];
        int cols = (int) shape[shape.length - 1];
        float[] values = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                values[i * cols + j] = rule.test(i, j) ? 1 : 0;
            }
        }
        try (Tensor flat = Tensor.of(values, shape)) {
            return flat.to(DType.BOOL);
        }
    }

    /** The elements' bits, so that NaN, -0.0 and rounding are compared exactly. */
    private static long[] bits(Tensor t) {
        return Arrays.stream(t.toDoubleArray()).mapToLong(Double::doubleToRawLongBits).toArray();
    }
}

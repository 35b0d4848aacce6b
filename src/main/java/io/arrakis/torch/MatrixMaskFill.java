package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * {@code masked_fill_} of a float32 or float64 CPU tensor by a bool mask of its last two dims that repeats over the
 * leading ones (an explicit attention's scores and their mask), done in Java: the mask is read once into runs of
 * {@code true} per row, and each run of each matrix becomes one copy from a row of the fill value.
 *
 * <p>Why: libtorch's masked_fill reads the broadcast mask element by element for every matrix, in a loop it does not
 * vectorise; here the mask is read once, and the per-element work is a memory copy.
 *
 * <p>The result is exactly masked_fill's: every element where the mask is true becomes the fill value rounded to the
 * tensor's dtype, every other element is left as it was. It applies only where that is simple to be sure of: the
 * tensor and the mask row-major contiguous, the mask's leading dims (if any) all 1, its last two the tensor's.
 */
final class MatrixMaskFill {
    /** The largest mask taken, in elements (4,096 positions squared): it is read onto the heap. */
    static final long MAX_MASK_ELEMENTS = 1L << 24;
    /** All of memory, to read and write at absolute addresses without a segment per tensor. */
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

    private MatrixMaskFill() {
    }

    /** Whether {@code target} filled where {@code mask} is true takes this path. */
    static boolean applies(Tensor.Meta target, Tensor.Meta mask) {
        long[] t = target.shape();
        long[] m = mask.shape();
        if (!target.device().isCpu() || !mask.device().isCpu() || mask.dtype() != DType.BOOL
                || (target.dtype() != DType.FLOAT32 && target.dtype() != DType.FLOAT64)
                || t.length < 2 || m.length < 2 || m.length > t.length
                || m[m.length - 1] != t[t.length - 1] || m[m.length - 2] != t[t.length - 2]
                || !isRowMajor(target) || !isRowMajor(mask)) {
            return false;
        }
        for (int i = 0; i < m.length - 2; i++) {
            if (m[i] != 1) {
                return false;
            }
        }
        long rows = t[t.length - 2];
        long cols = t[t.length - 1];
        return rows * cols <= MAX_MASK_ELEMENTS;
    }

    /**
     * Writes {@code value} (rounded to {@code target}'s dtype) into {@code target} where {@code mask} is true; the two
     * must pass {@link #applies}, and the caller must own {@code target} alone.
     */
    static void fill(Tensor target, Tensor mask, double value) {
        long[] shape = target.meta().shape();
        int rows = (int) shape[shape.length - 2];
        int cols = (int) shape[shape.length - 1];
        long matrices = 1;
        for (int i = 0; i < shape.length - 2; i++) {
            matrices *= shape[i];
        }
        if (matrices == 0 || rows == 0 || cols == 0) {
            return;
        }
        byte[] masked = new byte[rows * cols];
        try (Tensor.Held held = mask.hold()) {
            MemorySegment.copy(ALL, ValueLayout.JAVA_BYTE, mask.heldDataAddress(), masked, 0, masked.length);
        }
        int[] runs = runs(masked, rows, cols);
        boolean single = target.dtype() == DType.FLOAT32;
        long size = single ? Float.BYTES : Double.BYTES;
        try (Arena arena = Arena.ofConfined()) {
            // a native source: copies between native segments are plain memory moves
            MemorySegment values = arena.allocate(cols * size, size);
            for (int i = 0; i < cols; i++) {
                if (single) {
                    values.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) value);
                } else {
                    values.setAtIndex(ValueLayout.JAVA_DOUBLE, i, value);
                }
            }
            long base = target.dataAddress();
            long matrixBytes = (long) rows * cols * size;
            for (long m = 0; m < matrices; m++) {
                long matrix = base + m * matrixBytes;
                for (int i = 0; i < runs.length; i += 2) {
                    MemorySegment.copy(values, 0, ALL, matrix + runs[i] * size, runs[i + 1] * size);
                }
            }
        }
    }

    /** The runs of true in a row-major {@code [rows, cols]} mask, as pairs of (first element, length). */
    private static int[] runs(byte[] masked, int rows, int cols) {
        int[] runs = new int[8];
        int n = 0;
        for (int r = 0; r < rows; r++) {
            int c = 0;
            while (c < cols) {
                int at = r * cols + c;
                if (masked[at] == 0) {
                    c++;
                    continue;
                }
                int start = c;
                while (c < cols && masked[r * cols + c] != 0) {
                    c++;
                }
                if (n + 2 > runs.length) {
                    runs = Arrays.copyOf(runs, runs.length * 2);
                }
                runs[n++] = at;
                runs[n++] = c - start;
            }
        }
        return Arrays.copyOf(runs, n);
    }

    /** Row-major contiguous with libtorch's default strides (a dim of size 1 may have any stride). */
    private static boolean isRowMajor(Tensor.Meta m) {
        long expected = 1;
        for (int i = m.shape().length - 1; i >= 0; i--) {
            if (m.shape()[i] != 1 && m.strides()[i] != expected) {
                return false;
            }
            expected *= Math.max(m.shape()[i], 1);
        }
        return true;
    }
}

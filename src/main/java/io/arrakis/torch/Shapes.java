package io.arrakis.torch;

import java.util.Arrays;

/** Shape arithmetic, in plain Java: element counts, strides, broadcasting, views and dims. */
final class Shapes {
    private Shapes() {
    }

    /** The number of elements of {@code shape}; refuses negative sizes and counts past 2^63. */
    static long numel(long[] shape, String op) {
        long n = 1;
        for (long s : shape) {
            if (s < 0) {
                throw new IllegalArgumentException(op + ": negative size in shape " + Arrays.toString(shape));
            }
            try {
                n = Math.multiplyExact(n, s);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException(op + ": shape " + Arrays.toString(shape) + " has more than 2^63 elements");
            }
        }
        return n;
    }

    /** Row-major strides of a contiguous tensor of {@code shape}. */
    static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = s;
            s *= Math.max(shape[i], 1);
        }
        return strides;
    }

    /** NumPy's broadcast of two shapes, or null where a pair of sizes differs and neither is 1. */
    static long[] broadcast(long[] a, long[] b) {
        int n = Math.max(a.length, b.length);
        long[] result = new long[n];
        for (int i = 0; i < n; i++) {
            long x = i < n - a.length ? 1 : a[i - (n - a.length)];
            long y = i < n - b.length ? 1 : b[i - (n - b.length)];
            if (x != y && x != 1 && y != 1) {
                return null;
            }
            result[i] = x == 1 ? y : x;
        }
        return result;
    }

    /** {@code shape} with its -1 (if any) resolved for a tensor of {@code numel} elements. */
    static long[] inferSize(long[] shape, long numel) {
        long known = 1;
        int inferred = -1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == -1) {
                inferred = i;
            } else {
                known *= shape[i];
            }
        }
        long[] result = shape.clone();
        if (inferred >= 0) {
            result[inferred] = known == 0 ? 0 : numel / known;
        }
        return result;
    }

    /**
     * The strides with which {@code shape} views memory laid out as {@code oldShape}/{@code oldStride} without a copy,
     * or null where it cannot: ATen's stride computation for view (each run of dims that is contiguous in memory must
     * map onto whole dims of the new shape; a tensor without elements takes any shape, contiguously).
     */
    static long[] viewStrides(long[] oldShape, long[] oldStride, long[] shape) {
        long[] strides = new long[shape.length];
        if (oldShape.length == 0) {
            Arrays.fill(strides, 1);
            return strides;
        }
        if (Arrays.stream(oldShape).anyMatch(s -> s == 0)) {
            if (Arrays.equals(oldShape, shape)) {
                return oldStride.clone();
            }
            for (int d = shape.length - 1; d >= 0; d--) {
                strides[d] = d == shape.length - 1 ? 1 : Math.max(shape[d + 1], 1) * strides[d + 1];
            }
            return strides;
        }
        int viewD = shape.length - 1;
        long chunkBaseStride = oldStride[oldStride.length - 1];
        long tensorNumel = 1;
        long viewNumel = 1;
        for (int tensorD = oldShape.length - 1; tensorD >= 0; tensorD--) {
            tensorNumel *= oldShape[tensorD];
            if (tensorD == 0 || (oldShape[tensorD - 1] != 1 && oldStride[tensorD - 1] != tensorNumel * chunkBaseStride)) {
                while (viewD >= 0 && (viewNumel < tensorNumel || shape[viewD] == 1)) {
                    strides[viewD] = viewNumel * chunkBaseStride;
                    viewNumel *= shape[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) {
                    return null;
                }
                if (tensorD > 0) {
                    chunkBaseStride = oldStride[tensorD - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        return viewD == -1 ? strides : null;
    }

    /**
     * The product of the sizes other than -1 (all others non-negative): 0 where one is 0. Refused where the sizes
     * other than 0 multiply past 2^63, whatever their order: libtorch refuses some such shapes and not others,
     * depending on where the 0 stands, and their strides would not fit a long. The element count of a reshape's or an
     * expand's target, checked on every call, so without allocating.
     */
    static long knownProduct(long[] sizes, String op) {
        long product = 1;
        boolean zero = false;
        boolean overflow = false;
        for (long s : sizes) {
            if (s == 0) {
                zero = true;
            } else if (s != -1) {
                overflow |= product > Long.MAX_VALUE / s;
                product *= s;
            }
        }
        if (overflow) {
            throw new IllegalArgumentException(op + ": shape " + Arrays.toString(sizes) + (zero
                    ? "'s sizes other than 0 multiply to more than 2^63" : " has more than 2^63 elements"));
        }
        return zero ? 0 : product;
    }

    /** A new dimension's position among {@code ndim + 1}, for a tensor of {@code ndim} (unsqueeze, stack). */
    static int normNewDim(long dim, int ndim, String op) {
        int n = ndim + 1;
        if (dim < -n || dim >= n) {
            throw new IllegalArgumentException(op + ": dim " + dim + " is out of range for a new dim of a " + ndim
                    + "-d tensor (expected " + -n + " to " + (n - 1) + ")");
        }
        return (int) (dim < 0 ? dim + n : dim);
    }

    /** {@code dim} as an index in {@code [0, ndim)} (negative counts from the end; a 0-d tensor takes 0 and -1). */
    static int normDim(long dim, int ndim, String op) {
        int n = Math.max(ndim, 1);
        if (dim < -n || dim >= n) {
            throw new IllegalArgumentException(op + ": dim " + dim + " is out of range for a " + ndim + "-d tensor (expected "
                    + -n + " to " + (n - 1) + ")");
        }
        return (int) (dim < 0 ? dim + n : dim);
    }
}

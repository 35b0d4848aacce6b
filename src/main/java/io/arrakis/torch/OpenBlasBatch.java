package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * Two-operand einsum contractions (and batched matrix products, which are such contractions) on the CPU as one batched
 * product of the bundled OpenBLAS ({@code cblas_sgemm_batch}, {@code cblas_dgemm_batch}): each operand's matrices are
 * read in place through its strides, and OpenBLAS splits the batch over its threads.
 *
 * <p>libtorch's einsum permutes and copies its operands into one {@code bmm}, which, built without MKL as the bundled
 * libtorch is, multiplies the batch's matrices one after another, each split over the threads: attention's per-head
 * products are too small for that to pay. Here every batch letter may sit anywhere in either operand or the output,
 * a letter an operand lacks is read with stride 0 (grouped-query attention's shared keys, without a copy), and the
 * output is written in the equation's order directly.
 *
 * <p>Covered: float32 and float64 CPU operands, an explicit {@code ->}, no ellipsis or repeated letters, exactly one
 * summed letter, at least one letter of the output from each operand alone, matrices BLAS can read (one of their two
 * strides 1), sizes within BLAS's 32-bit integers. Anything else keeps libtorch's einsum, as does a libtorch whose
 * OpenBLAS is not the version this route was checked with: OpenBLAS 0.3.31's batch routine calls a null kernel for
 * products of at most 100³ multiply-adds (its small-matrix table holds offsets, not functions, in builds for several
 * CPUs like the bundled one), so only larger products are sent to it.
 */
final class OpenBlasBatch {
    /** The OpenBLAS this route was checked with, as {@code openblas_get_config()} begins. */
    static final String CHECKED_VERSION = "OpenBLAS 0.3.31 ";
    /** OpenBLAS's small-matrix path takes products of at most this many multiply-adds: they stay with libtorch. */
    static final double SMALL_MATRIX_LIMIT = 100.0 * 100.0 * 100.0;

    private static final int ROW_MAJOR = 101;
    private static final int NO_TRANS = 111;
    private static final int TRANS = 112;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout A = ValueLayout.ADDRESS;
    private static final FunctionDescriptor BATCH = FunctionDescriptor.ofVoid(INT, A, A, A, A, A, A, A, A, A, A, A, A,
            A, INT, A);
    private static final boolean CHECKED = checkedOpenBlas();
    private static final MethodHandle SGEMM_BATCH = CHECKED ? Native.optionalFunction("cblas_sgemm_batch", BATCH) : null;
    private static final MethodHandle DGEMM_BATCH = CHECKED ? Native.optionalFunction("cblas_dgemm_batch", BATCH) : null;

    private OpenBlasBatch() {
    }

    /** Whether the loaded OpenBLAS is the version this route was checked with. */
    private static boolean checkedOpenBlas() {
        MethodHandle config = Native.optionalFunction("openblas_get_config", FunctionDescriptor.of(A));
        if (config == null) {
            return false;
        }
        try {
            return ((MemorySegment) config.invokeExact()).reinterpret(256).getString(0).startsWith(CHECKED_VERSION);
        } catch (Throwable t) {
            throw new LibTorchException("openblas_get_config failed: " + t, t);
        }
    }

    /** Whether the loaded libtorch's OpenBLAS is one this route takes. */
    static boolean available() {
        return SGEMM_BATCH != null && DGEMM_BATCH != null;
    }

    /**
     * The contraction times {@code scale} (the product's own factor) as one batched product, or null where this route
     * does not cover it (see the class comment).
     */
    static Tensor einsum(String equation, Tensor left, Tensor right, double scale) {
        if (!available() || !left.device().isCpu() || !right.device().isCpu() || left.dtype() != right.dtype()
                || (left.dtype() != DType.FLOAT32 && left.dtype() != DType.FLOAT64)) {
            return null;
        }
        if ((left.dtype() == DType.FLOAT32 ? (float) scale : scale) == 0) {
            return null; // BLAS skips the operands for a factor of 0, where their NaN and infinities make NaN
        }
        Plan plan = Plan.of(equation.replace(" ", ""), left, right);
        return plan == null ? null : plan.run(left, right, scale);
    }

    /** How BLAS reads one matrix: transposed or not, and its leading dimension. */
    private record Layout(boolean transposed, long leading) {
        /** Row-major {@code rows × cols} with these strides, or null where neither orientation has a unit stride. */
        static Layout of(long rows, long cols, long rowStride, long colStride) {
            long asRows = rows == 1 ? Math.max(cols, 1) : rowStride; // a size-1 dim's stride is never read
            if ((cols == 1 || colStride == 1) && asRows >= Math.max(cols, 1)) {
                return new Layout(false, asRows);
            }
            long asCols = cols == 1 ? Math.max(rows, 1) : colStride;
            if ((rows == 1 || rowStride == 1) && asCols >= Math.max(rows, 1)) {
                return new Layout(true, asCols);
            }
            return null;
        }
    }

    /**
     * {@code out[batch, m, n] = Σ_k a[batch, m, k] · b[batch, k, n]} over every index of the batch letters, each
     * operand addressed through its own strides (0 for a batch letter it lacks).
     */
    private record Plan(long[] outShape, long m, long n, long k, Layout a, Layout b, long ldc, boolean swapped,
                        int count, long[] batchSizes, long[] leftStrides, long[] rightStrides, long[] outStrides) {

        static Plan of(String equation, Tensor left, Tensor right) {
            int arrow = equation.indexOf("->");
            if (arrow < 0 || equation.contains(".")) {
                return null;
            }
            String[] terms = equation.substring(0, arrow).split(",", -1);
            String out = equation.substring(arrow + 2);
            if (terms.length != 2 || repeats(terms[0]) || repeats(terms[1]) || repeats(out)) {
                return null;
            }
            String l = terms[0];
            String r = terms[1];
            long[] lShape = left.meta().shape();
            long[] rShape = right.meta().shape();
            if (l.length() != lShape.length || r.length() != rShape.length || !letters(l + r + out)) {
                return null; // libtorch's einsum reports what is wrong
            }
            long[] lStrides = left.meta().strides();
            long[] rStrides = right.meta().strides();
            String summed = "";
            List<Character> fromLeft = new ArrayList<>();
            List<Character> fromRight = new ArrayList<>();
            for (char c : (l + r).toCharArray()) {
                boolean inLeft = l.indexOf(c) >= 0;
                boolean inRight = r.indexOf(c) >= 0;
                boolean inOut = out.indexOf(c) >= 0;
                if (!inOut && !(inLeft && inRight)) {
                    return null; // a letter summed within one operand
                }
                if (inLeft && inRight && lShape[l.indexOf(c)] != rShape[r.indexOf(c)]) {
                    return null; // libtorch's einsum reports the mismatch
                }
                if (!inOut && summed.indexOf(c) < 0) {
                    summed += c;
                } else if (inOut && inLeft && !inRight && !fromLeft.contains(c)) {
                    fromLeft.add(c);
                } else if (inOut && inRight && !inLeft && !fromRight.contains(c)) {
                    fromRight.add(c);
                }
            }
            for (char c : out.toCharArray()) {
                if (l.indexOf(c) < 0 && r.indexOf(c) < 0) {
                    return null;
                }
            }
            if (summed.length() != 1 || fromLeft.isEmpty() || fromRight.isEmpty()) {
                return null;
            }
            long[] outShape = new long[out.length()];
            for (int i = 0; i < out.length(); i++) {
                char c = out.charAt(i);
                outShape[i] = l.indexOf(c) >= 0 ? lShape[l.indexOf(c)] : rShape[r.indexOf(c)];
            }
            long[] outStrides = Shapes.contiguousStrides(outShape);
            char k = summed.charAt(0);
            for (char m : fromLeft) {
                for (char n : fromRight) {
                    Plan plan = of(l, r, out, m, n, k, lShape, rShape, lStrides, rStrides, outShape, outStrides);
                    if (plan != null) {
                        return plan;
                    }
                }
            }
            return null;
        }

        private static Plan of(String l, String r, String out, char mLetter, char nLetter, char kLetter, long[] lShape,
                               long[] rShape, long[] lStrides, long[] rStrides, long[] outShape, long[] outStrides) {
            long m = lShape[l.indexOf(mLetter)];
            long n = rShape[r.indexOf(nLetter)];
            long k = lShape[l.indexOf(kLetter)];
            if ((double) m * n * k <= SMALL_MATRIX_LIMIT) {
                return null;
            }
            long outM = outStrides[out.indexOf(mLetter)];
            long outN = outStrides[out.indexOf(nLetter)];
            // BLAS writes row-major C = A·B; an output whose rows run along n is written as Cᵀ = Bᵀ·Aᵀ
            Layout c = Layout.of(m, n, outM, outN);
            boolean swapped = c == null || c.transposed();
            if (swapped) {
                c = Layout.of(n, m, outN, outM);
                if (c == null || c.transposed()) {
                    return null;
                }
            }
            Layout a = Layout.of(m, k, lStrides[l.indexOf(mLetter)], lStrides[l.indexOf(kLetter)]);
            Layout b = Layout.of(k, n, rStrides[r.indexOf(kLetter)], rStrides[r.indexOf(nLetter)]);
            if (a == null || b == null) {
                return null;
            }
            String batch = out.replace(String.valueOf(mLetter), "").replace(String.valueOf(nLetter), "");
            long[] sizes = new long[batch.length()];
            long[] ls = new long[batch.length()];
            long[] rs = new long[batch.length()];
            long[] os = new long[batch.length()];
            long count = 1;
            for (int i = 0; i < batch.length(); i++) {
                char c2 = batch.charAt(i);
                sizes[i] = outShape[out.indexOf(c2)];
                ls[i] = l.indexOf(c2) >= 0 ? lStrides[l.indexOf(c2)] : 0;
                rs[i] = r.indexOf(c2) >= 0 ? rStrides[r.indexOf(c2)] : 0;
                os[i] = outStrides[out.indexOf(c2)];
                count *= sizes[i];
            }
            if (count == 0 || !fitsInt(m, n, k, a.leading(), b.leading(), c.leading(), count)) {
                return null;
            }
            return new Plan(outShape, m, n, k, a, b, c.leading(), swapped, (int) count, sizes, ls, rs, os);
        }

        Tensor run(Tensor left, Tensor right, double scale) {
            boolean single = left.dtype() == DType.FLOAT32;
            long bytes = single ? 4 : 8;
            // held: OpenBLAS reads the operands' memory through addresses taken here
            try (Tensor.Held l = left.hold(); Tensor.Held r = right.hold()) {
                return product(left, right, scale, single, bytes);
            }
        }

        private Tensor product(Tensor left, Tensor right, double scale, boolean single, long bytes) {
            Tensor out = Tensor.empty(outShape, left.dtype(), Device.CPU, "einsum");
            try (Arena arena = Arena.ofConfined()) {
                // swapped: Cᵀ (n × m) = Bᵀ · Aᵀ, so the right operand goes first with its layout transposed
                Layout first = swapped ? flip(b) : a;
                Layout second = swapped ? flip(a) : b;
                MemorySegment ints = arena.allocateFrom(INT, first.transposed() ? TRANS : NO_TRANS,
                        second.transposed() ? TRANS : NO_TRANS, (int) (swapped ? n : m), (int) (swapped ? m : n),
                        (int) k, (int) first.leading(), (int) second.leading(), (int) ldc, count);
                MemorySegment scalars = single ? arena.allocateFrom(ValueLayout.JAVA_FLOAT, (float) scale, 0f)
                        : arena.allocateFrom(ValueLayout.JAVA_DOUBLE, scale, 0.0);
                MemorySegment firsts = arena.allocate(ValueLayout.JAVA_LONG, count);
                MemorySegment seconds = arena.allocate(ValueLayout.JAVA_LONG, count);
                MemorySegment outs = arena.allocate(ValueLayout.JAVA_LONG, count);
                long leftBase = left.heldDataAddress();
                long rightBase = right.heldDataAddress();
                long outBase = out.dataAddress();
                long[] index = new long[batchSizes.length];
                for (int i = 0; i < count; i++) {
                    long lo = 0;
                    long ro = 0;
                    long oo = 0;
                    for (int d = 0; d < index.length; d++) {
                        lo += index[d] * leftStrides[d];
                        ro += index[d] * rightStrides[d];
                        oo += index[d] * outStrides[d];
                    }
                    firsts.setAtIndex(ValueLayout.JAVA_LONG, i, (swapped ? rightBase + ro * bytes : leftBase + lo * bytes));
                    seconds.setAtIndex(ValueLayout.JAVA_LONG, i, (swapped ? leftBase + lo * bytes : rightBase + ro * bytes));
                    outs.setAtIndex(ValueLayout.JAVA_LONG, i, outBase + oo * bytes);
                    for (int d = index.length - 1; d >= 0 && ++index[d] == batchSizes[d]; d--) {
                        index[d] = 0;
                    }
                }
                MethodHandle routine = single ? SGEMM_BATCH : DGEMM_BATCH;
                routine.invokeExact(ROW_MAJOR, ints.asSlice(0, 4), ints.asSlice(4, 4), ints.asSlice(8, 4),
                        ints.asSlice(12, 4), ints.asSlice(16, 4), scalars.asSlice(0, bytes), firsts, ints.asSlice(20, 4),
                        seconds, ints.asSlice(24, 4), scalars.asSlice(bytes, bytes), outs, ints.asSlice(28, 4), 1,
                        ints.asSlice(32, 4));
            } catch (Throwable t) {
                out.close();
                throw new LibTorchException("cblas_" + (single ? "s" : "d") + "gemm_batch failed: " + t, t);
            }
            Native.countOp();
            return out;
        }

        private static Layout flip(Layout layout) {
            return new Layout(!layout.transposed(), layout.leading());
        }

        private static boolean letters(String subscripts) {
            return subscripts.chars().allMatch(c -> (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
        }

        private static boolean repeats(String term) {
            return term.chars().distinct().count() != term.length();
        }

        private static boolean fitsInt(long... values) {
            for (long v : values) {
                if (v > Integer.MAX_VALUE) {
                    return false;
                }
            }
            return true;
        }
    }
}

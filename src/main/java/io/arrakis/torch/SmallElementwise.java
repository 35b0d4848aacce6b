package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Elementwise {@code + - * /} of tiny CPU tensors, computed in Java into a tensor libtorch allocates.
 *
 * <p>Why: for a handful of elements libtorch's kernel path (structured-op meta, TensorIterator set-up, DispatchStub)
 * costs about 0.6 µs, more than allocating the result and more than half of the whole op; the arithmetic itself takes
 * nanoseconds. Measured in C against libtorch 2.10 on 2 cores: {@code aoti_torch_cpu_mul_Tensor} + delete of a 2x2
 * float32 result ~1.0 µs, {@code aoti_torch_empty_strided} + the four products + delete ~0.45 µs.
 *
 * <p>It applies only where its result is exactly libtorch's: both operands on the CPU, float32 or float64 and the
 * same dtype (no promotion), the same shape (no broadcasting), row-major contiguous, at most {@link #MAX_ELEMENTS}
 * elements. Each element is then one IEEE-754 operation in the operands' precision, which is what libtorch's CPU
 * kernels compute: they neither fuse two roundings into one nor flush subnormals ({@code a + b} and {@code a - b} go
 * through {@code fma(b, ±1, a)}, which rounds once, as an addition does). The result is a fresh, row-major contiguous
 * tensor, as libtorch's is for such operands; only NaN payloads may differ. Everything else takes libtorch's kernels.
 */
final class SmallElementwise {
    /** Above this, libtorch's vectorised loops win back their set-up cost (measured crossover 128-256 float32 elements). */
    static final int MAX_ELEMENTS = 128;
    /** The result's sizes and strides go through the per-thread dispatcher stack, two slots per dim. */
    private static final int MAX_DIMS = Native.STACK_SLOTS / 2;
    /** All of memory, to read and write at absolute addresses without a segment per tensor. */
    private static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    // unaligned access costs nothing on x86-64 and assumes nothing about where a tensor's data starts
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;

    /** The operations with a small path. */
    enum Op {
        ADD, SUB, MUL, DIV
    }

    private SmallElementwise() {
    }

    /** Whether {@code a op b} takes this path; the operands' metadata must already have been checked. */
    static boolean applies(Tensor.Meta a, Tensor.Meta b) {
        return a.dtype() == b.dtype()
                && (a.dtype() == DType.FLOAT32 || a.dtype() == DType.FLOAT64)
                && a.device().isCpu() && b.device().isCpu()
                && a.shape().length <= MAX_DIMS
                && Arrays.equals(a.shape(), b.shape())
                && numelAtMost(a.shape(), MAX_ELEMENTS)
                && isRowMajor(a) && isRowMajor(b);
    }

    /** The handle of a new tensor holding {@code a op b}; {@code a} and {@code b} must pass {@link #applies}. */
    static long compute(Op op, Tensor.Meta meta, MemorySegment a, MemorySegment b) {
        long[] shape = meta.shape();
        int ndim = shape.length;
        MemorySegment dims = Native.stack();
        for (int i = 0; i < ndim; i++) {
            dims.setAtIndex(ValueLayout.JAVA_LONG, i, shape[i]);
            dims.setAtIndex(ValueLayout.JAVA_LONG, ndim + i, meta.strides()[i]);
        }
        MemorySegment out = Native.out();
        long x = dataPtr(a, out);
        long y = dataPtr(b, out);
        Native.op(arrakis_torch_h.aoti_torch_empty_strided(ndim, dims, dims.asSlice(8L * ndim),
                meta.dtype().code(), Device.CPU.typeCode(), 0, out), "aoti_torch_empty_strided", shape, meta.dtype());
        long result = out.get(ValueLayout.JAVA_LONG, 0);
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        long z = dataPtr(MemorySegment.ofAddress(result), out);
        if (meta.dtype() == DType.FLOAT32) {
            computeFloat(op, x, y, z, n);
        } else {
            computeDouble(op, x, y, z, n);
        }
        return result;
    }

    // The operands are copied to Java arrays: loops over arrays vectorise, loops over native addresses that may alias do not.
    private static void computeFloat(Op op, long x, long y, long z, long n) {
        int len = (int) n;
        float[] p = new float[len];
        float[] q = new float[len];
        MemorySegment.copy(ALL, F32, x, p, 0, len);
        MemorySegment.copy(ALL, F32, y, q, 0, len);
        switch (op) {
            case ADD -> {
                for (int i = 0; i < len; i++) {
                    p[i] += q[i];
                }
            }
            case SUB -> {
                for (int i = 0; i < len; i++) {
                    p[i] -= q[i];
                }
            }
            case MUL -> {
                for (int i = 0; i < len; i++) {
                    p[i] *= q[i];
                }
            }
            case DIV -> {
                for (int i = 0; i < len; i++) {
                    p[i] /= q[i];
                }
            }
        }
        MemorySegment.copy(p, 0, ALL, F32, z, len);
    }

    private static void computeDouble(Op op, long x, long y, long z, long n) {
        int len = (int) n;
        double[] p = new double[len];
        double[] q = new double[len];
        MemorySegment.copy(ALL, F64, x, p, 0, len);
        MemorySegment.copy(ALL, F64, y, q, 0, len);
        switch (op) {
            case ADD -> {
                for (int i = 0; i < len; i++) {
                    p[i] += q[i];
                }
            }
            case SUB -> {
                for (int i = 0; i < len; i++) {
                    p[i] -= q[i];
                }
            }
            case MUL -> {
                for (int i = 0; i < len; i++) {
                    p[i] *= q[i];
                }
            }
            case DIV -> {
                for (int i = 0; i < len; i++) {
                    p[i] /= q[i];
                }
            }
        }
        MemorySegment.copy(p, 0, ALL, F64, z, len);
    }

    private static long dataPtr(MemorySegment handle, MemorySegment out) {
        Native.check(arrakis_torch_h.aoti_torch_get_data_ptr(handle, out), "aoti_torch_get_data_ptr");
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    private static boolean numelAtMost(long[] shape, long max) {
        long n = 1;
        for (long s : shape) {
            n *= s;
            if (n > max) {
                return false;
            }
        }
        return true;
    }

    /** Row-major contiguous with exactly libtorch's default strides, which the result is given too. */
    private static boolean isRowMajor(Tensor.Meta m) {
        long expected = 1;
        for (int i = m.shape().length - 1; i >= 0; i--) {
            if (m.strides()[i] != expected) {
                return false;
            }
            expected *= Math.max(m.shape()[i], 1);
        }
        return true;
    }
}

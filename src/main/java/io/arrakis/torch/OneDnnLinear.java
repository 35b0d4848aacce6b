package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Float32 linear layers on the CPU through oneDNN's inner product, the shim {@code aoti_torch_cpu__linear_pointwise}
 * that PyTorch's compiler calls for linear layers on CPUs, instead of libtorch's BLAS route.
 *
 * <p>The bundled libtorch's BLAS is OpenBLAS, which keeps its own pool of threads beside libtorch's OpenMP pool; the
 * two pools take turns on the same cores within a forward pass, and OpenBLAS's threads keep spinning after each
 * product. oneDNN runs on libtorch's OpenMP pool, so a pass's products and its other ops share one pool, and it picks
 * its kernels for the CPU it finds. Products too small to split profitably get fewer threads
 * ({@link SmallOps#LINEAR_OUTPUT_GRAIN}). A libtorch built without oneDNN has no such shim and keeps the BLAS route,
 * as do operands it does not cover: other dtypes and devices, empty operands, weights other than a contiguous
 * {@code [out, in]} (libtorch 2.10's oneDNN linear corrupts the C heap with a transposed weight), strided biases.
 */
final class OneDnnLinear {
    private static final MethodHandle LINEAR_POINTWISE = Native.optionalFunction("aoti_torch_cpu__linear_pointwise",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS));

    /** What oneDNN applies to the product before writing it out. */
    enum PostOp {
        NONE("none", null),
        /** GELU with the exact erf. */
        GELU("gelu", "none"),
        /** GELU's tanh approximation. */
        GELU_TANH("gelu", "tanh");

        private final MemorySegment attr;
        private final MemorySegment algorithm; // a pointer to the C string, as the shim takes an optional string

        PostOp(String attr, String algorithm) {
            this.attr = Arena.global().allocateFrom(attr);
            if (algorithm == null) {
                this.algorithm = MemorySegment.NULL;
            } else {
                this.algorithm = Arena.global().allocate(ValueLayout.ADDRESS);
                this.algorithm.set(ValueLayout.ADDRESS, 0, Arena.global().allocateFrom(algorithm));
            }
        }
    }

    private OneDnnLinear() {
    }

    /** Whether this libtorch has oneDNN's linear shim. */
    static boolean available() {
        return LINEAR_POINTWISE != null;
    }

    /** Whether {@link #linear} computes {@code input · weightᵀ + bias} for these operands, already checked to fit. */
    static boolean covers(Tensor input, Tensor weight, Tensor bias) {
        return available() && input.device().isCpu() && input.dtype() == DType.FLOAT32 && input.numel() > 0
                && weight.numel() > 0 && weight.isContiguous() && (bias == null || bias.isContiguous());
    }

    /** {@code post(input · weightᵀ + bias)} for operands {@link #covers} accepts. */
    static Tensor linear(Tensor input, Tensor weight, Tensor bias, PostOp post) {
        MemorySegment out = Native.out(); // slot 0: the result; 1: the bias handle; 2: libtorch's thread count
        MemorySegment biasSlot = MemorySegment.NULL;
        if (bias != null) {
            biasSlot = out.asSlice(8, 8);
            biasSlot.set(ValueLayout.ADDRESS, 0, bias.handle());
        }
        long outputs = input.numel() / input.size(-1) * weight.size(0);
        int team = SmallOps.fitTeam(outputs, SmallOps.LINEAR_OUTPUT_GRAIN, out.asSlice(16, 8));
        int rc;
        try {
            rc = (int) LINEAR_POINTWISE.invokeExact(input.handle(), weight.handle(), biasSlot, post.attr,
                    MemorySegment.NULL, 0L, post.algorithm, out);
        } catch (Throwable t) {
            throw new LibTorchException("aoti_torch_cpu__linear_pointwise failed: " + t, t);
        } finally {
            SmallOps.restore(team);
        }
        Native.op(rc, "mkldnn::_linear_pointwise", input, weight, bias, post);
        return Tensor.adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }
}

package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Linear layers on the CPU through oneDNN's inner product, the shim {@code aoti_torch_cpu__linear_pointwise} that
 * PyTorch's compiler calls for linear layers on CPUs, reading a model's weight in oneDNN's own blocked layout, packed
 * once ({@code mkldnn::_reorder_linear_weight}, as PyTorch's compiler does for frozen models; see {@link LinearWeight}).
 *
 * <p>oneDNN runs on libtorch's OpenMP pool, so a pass's products and its other ops share one pool, where the bundled
 * libtorch's BLAS, OpenBLAS, keeps a pool of its own whose threads take turns with OpenMP's on the same cores; and on a
 * packed weight it runs its brgemm kernels for that layout, as fast or faster than a general matrix product at every
 * size and row count.
 *
 * <p>Only packed weights, and only where those kernels run: on a plain {@code [out, in]} weight, or on a CPU without
 * AVX2, oneDNN multiplies with its JIT-generated GEMM kernels, which in the oneDNN of libtorch 2.10 (3.7) point the
 * stack pointer into a heap buffer while they run. A signal handled on that thread meanwhile, such as a sampling
 * profiler's (async-profiler's, or any that times threads with signals), then writes its frame into the heap and
 * corrupts it (oneDNN issue 4845). Every other product takes libtorch's route.
 *
 * <p>libtorch 2.10 multiplies wrongly, without a word, by packed float32 weights of many output sizes that are not
 * multiples of 32 (GPT-2's vocabulary among them), so float32 weights are packed with zero rows added up to a multiple
 * of 64 outputs, and only where their inputs are a multiple of 64 and the rows added are few. In bfloat16, on CPUs
 * with AVX-512 (where oneDNN runs bfloat16 kernels; libtorch refuses its bfloat16 linear layers elsewhere), every
 * weight is packed. {@link LinearWeight} checks each packed copy against the weight as it is before using it.
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

    private static final MethodHandle AVX2 = Native.optionalFunction("_ZN2at3cpu17is_avx2_supportedEv",
            FunctionDescriptor.of(ValueLayout.JAVA_BOOLEAN));
    private static final MethodHandle AVX512 = Native.optionalFunction("_ZN2at3cpu19is_avx512_supportedEv",
            FunctionDescriptor.of(ValueLayout.JAVA_BOOLEAN));
    /** Whether oneDNN's float32 linear layers run brgemm on packed weights here: the CPU has AVX2, as libtorch reports. */
    private static final boolean FLOAT32 = available() && supported(AVX2, "is_avx2_supported");
    /** Whether oneDNN's bfloat16 linear layers run here: the CPU has AVX-512 F, BW, VL and DQ, as libtorch reports. */
    private static final boolean BFLOAT16 = available() && supported(AVX512, "is_avx512_supported");

    private static final Op REORDER = Op.of("mkldnn::_reorder_linear_weight", "");

    private OneDnnLinear() {
    }

    /**
     * Whether products with a weight {@code [out, in]} of {@code dtype} should read a packed copy of it, for operands
     * {@link #covers} accepts: every bfloat16 weight; a float32 one where {@code in} is a multiple of 64 and
     * {@code out} is one too or takes at most a sixteenth more to round up to one (see {@link #packedOutputs}).
     */
    static boolean packs(long out, long in, DType dtype) {
        return dtype == DType.BFLOAT16 || (in % 64 == 0 && packedOutputs(out, dtype) * 16 <= out * 17);
    }

    /**
     * The outputs of a packed copy of a weight with {@code out} outputs: a float32 weight is packed with zero rows added
     * up to a multiple of 64 (libtorch multiplies wrongly by packed float32 weights of other sizes), and the products
     * through it are narrowed back to {@code out}.
     */
    static long packedOutputs(long out, DType dtype) {
        return dtype == DType.BFLOAT16 ? out : Math.ceilDiv(out, 64) * 64;
    }

    /**
     * oneDNN's packed copy of a weight {@link #covers} accepts, laid out for products of about {@code rows} rows on
     * the calling thread's team as it is: an opaque tensor only {@link #linear} reads, on the same team.
     */
    static Tensor pack(Tensor weight, long rows) {
        return Call.begin(REORDER, weight).tensor(weight).optI64(rows).tensorResult();
    }

    /** Whether this libtorch has oneDNN's linear shim. */
    static boolean available() {
        return LINEAR_POINTWISE != null;
    }

    /** Whether oneDNN's float32 linear layers run here, on packed weights. */
    static boolean float32() {
        return FLOAT32;
    }

    /** Whether oneDNN's bfloat16 linear layers run here, on packed weights. */
    static boolean bfloat16() {
        return BFLOAT16;
    }

    /**
     * Whether {@link #linear} computes {@code input · weightᵀ + bias} for these operands, already checked to fit, when
     * it reads a {@link #pack packed} copy of the weight: float32 on a CPU with AVX2, bfloat16 on one with AVX-512.
     */
    static boolean covers(Tensor input, Tensor weight, Tensor bias) {
        DType dtype = input.dtype();
        return (dtype == DType.FLOAT32 ? FLOAT32 : dtype == DType.BFLOAT16 && BFLOAT16) && input.device().isCpu()
                && input.numel() > 0 && weight.numel() > 0 && weight.isContiguous()
                && (bias == null || bias.isContiguous());
    }

    /**
     * {@code post(input · weightᵀ + bias)}, multiplying by {@code packed}, the {@link #pack packed} copy of
     * {@code weight}, for operands {@link #covers} accepts. The caller holds {@code packed}
     * ({@link Tensor#holdIfOpen}), which its owner may close meanwhile. A packed copy's layout depends on the number of
     * threads it was packed for, and its products assume their own: they run on the calling thread's team as it is,
     * which the caller sets to the team the copy was packed under.
     */
    static Tensor linear(Tensor input, Tensor weight, Tensor packed, Tensor bias, PostOp post) {
        MemorySegment out = Native.out(); // slot 0: the result; 1: the bias handle
        int rc;
        try (Tensor.Held in = input.hold(); Tensor.Held plus = bias == null ? null : bias.hold()) {
            MemorySegment biasSlot = MemorySegment.NULL;
            if (bias != null) {
                biasSlot = out.asSlice(8, 8);
                biasSlot.set(ValueLayout.ADDRESS, 0, bias.handle());
            }
            try {
                rc = (int) LINEAR_POINTWISE.invokeExact(input.handle(), packed.handle(), biasSlot, post.attr,
                        MemorySegment.NULL, 0L, post.algorithm, out);
            } catch (Throwable t) {
                throw new LibTorchException("aoti_torch_cpu__linear_pointwise failed: " + t, t);
            }
        }
        Native.op(rc, "mkldnn::_linear_pointwise", input, weight, bias, post);
        return Tensor.adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    private static boolean supported(MethodHandle check, String name) {
        if (check == null) {
            return false;
        }
        try {
            return (boolean) check.invokeExact();
        } catch (Throwable t) {
            throw new LibTorchException("at::cpu::" + name + " failed: " + t, t);
        }
    }
}

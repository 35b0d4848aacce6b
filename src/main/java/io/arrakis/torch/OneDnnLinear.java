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
 *
 * <p>A weight multiplied again and again ({@link LinearWeight}) can also be handed over in oneDNN's own blocked
 * layout, packed once ({@code mkldnn::_reorder_linear_weight}, as PyTorch's compiler does for frozen models): on a
 * plain {@code [out, in]} weight oneDNN falls back to a general matrix product, on a packed one it runs its kernels
 * for that layout, as fast or faster at every size and row count. libtorch 2.10 multiplies wrongly, without a word,
 * by packed float32 weights of many output sizes that are not multiples of 32 (GPT-2's vocabulary among them), so
 * float32 weights are packed with zero rows added up to a multiple of 64 outputs, and only where their inputs are a
 * multiple of 64 and the rows added are few. In bfloat16, on CPUs with AVX-512 (where oneDNN
 * runs bfloat16 kernels; libtorch refuses its bfloat16 linear layers elsewhere), every weight is packed; plain
 * bfloat16 weights keep libtorch's route, which is as fast or faster than oneDNN's on them. {@link LinearWeight}
 * checks each packed copy against the weight as it is before using it.
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

    private static final MethodHandle AVX512 = Native.optionalFunction("_ZN2at3cpu19is_avx512_supportedEv",
            FunctionDescriptor.of(ValueLayout.JAVA_BOOLEAN));
    /** Whether oneDNN's bfloat16 linear layers run here: the CPU has AVX-512 F, BW, VL and DQ, as libtorch reports. */
    private static final boolean BFLOAT16 = available() && avx512();

    private static final Op REORDER = Op.of("mkldnn::_reorder_linear_weight", "");

    private OneDnnLinear() {
    }

    /**
     * Whether products with a weight {@code [out, in]} of {@code dtype} should read a packed copy of it, for operands
     * {@link #covers} or {@link #coversPacked} accepts: every bfloat16 weight; a float32 one where {@code in} is a
     * multiple of 64 and {@code out} is one too or takes at most a sixteenth more to round up to one (see
     * {@link #packedOutputs}).
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
     * oneDNN's packed copy of a weight {@link #covers} or {@link #coversPacked} accepts, laid out for products of about
     * {@code rows} rows on the calling thread's team as it is: an opaque tensor only {@link #linear} reads, on the
     * same team.
     */
    static Tensor pack(Tensor weight, long rows) {
        return Call.begin(REORDER, weight).tensor(weight).optI64(rows).tensorResult();
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

    /** Whether oneDNN's bfloat16 linear layers run here. */
    static boolean bfloat16() {
        return BFLOAT16;
    }

    /**
     * Whether {@link #linear} computes {@code input · weightᵀ + bias} for these operands, already checked to fit, when
     * it reads a {@link #pack packed} copy of the weight: bfloat16 on a CPU where oneDNN runs it.
     */
    static boolean coversPacked(Tensor input, Tensor weight, Tensor bias) {
        return BFLOAT16 && input.device().isCpu() && input.dtype() == DType.BFLOAT16 && input.numel() > 0
                && weight.numel() > 0 && weight.isContiguous() && (bias == null || bias.isContiguous());
    }

    /** {@code post(input · weightᵀ + bias)} for operands {@link #covers} accepts. */
    static Tensor linear(Tensor input, Tensor weight, Tensor bias, PostOp post) {
        return linear(input, weight, null, bias, post);
    }

    /**
     * The same, multiplying by {@code packed}, the {@link #pack packed} copy of {@code weight}, unless it is null;
     * for operands {@link #coversPacked} accepts, {@code packed} must not be null. The caller holds {@code packed}
     * ({@link Tensor#holdIfOpen}), which its owner may close meanwhile. A packed copy's layout depends on the
     * number of threads it was packed for, and its products assume their own: they run on the calling thread's team as
     * it is, which the caller sets to the team the copy was packed under; plain products get a team fitted to them.
     */
    static Tensor linear(Tensor input, Tensor weight, Tensor packed, Tensor bias, PostOp post) {
        MemorySegment out = Native.out(); // slot 0: the result; 1: the bias handle; 2: libtorch's thread count
        long outputs = input.numel() / input.size(-1) * weight.size(0);
        Tensor factor = packed != null ? packed : weight;
        int rc;
        try (Tensor.Held in = input.hold(); Tensor.Held by = packed != null ? null : weight.hold();
             Tensor.Held plus = bias == null ? null : bias.hold()) {
            MemorySegment biasSlot = MemorySegment.NULL;
            if (bias != null) {
                biasSlot = out.asSlice(8, 8);
                biasSlot.set(ValueLayout.ADDRESS, 0, bias.handle());
            }
            int team = packed == null ? SmallOps.fitTeam(outputs, SmallOps.LINEAR_OUTPUT_GRAIN, out.asSlice(16, 8)) : 0;
            try {
                rc = (int) LINEAR_POINTWISE.invokeExact(input.handle(), factor.handle(), biasSlot, post.attr,
                        MemorySegment.NULL, 0L, post.algorithm, out);
            } catch (Throwable t) {
                throw new LibTorchException("aoti_torch_cpu__linear_pointwise failed: " + t, t);
            } finally {
                SmallOps.restore(team);
            }
        }
        Native.op(rc, "mkldnn::_linear_pointwise", input, weight, bias, post);
        return Tensor.adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    private static boolean avx512() {
        if (AVX512 == null) {
            return false;
        }
        try {
            return (boolean) AVX512.invokeExact();
        } catch (Throwable t) {
            throw new LibTorchException("at::cpu::is_avx512_supported failed: " + t, t);
        }
    }
}

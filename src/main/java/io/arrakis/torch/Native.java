package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The one place that turns binding calls into Java values: error codes into exceptions, out-parameters into results.
 * Out-parameters go through a per-thread scratch segment, so a call allocates nothing.
 */
final class Native {
    /** Slots of 8 bytes for out-parameters; a dispatcher stack never needs more than {@link #STACK_SLOTS}. */
    static final int OUT_SLOTS = 8;
    static final int STACK_SLOTS = 32;

    private static final ThreadLocal<MemorySegment> SCRATCH = ThreadLocal.withInitial(() -> {
        NativeHeap.noteThread();
        return Arena.ofAuto().allocate(8L * (OUT_SLOTS + STACK_SLOTS), 8);
    });

    static {
        LibTorch.load();
    }

    /** Tensor handles freed on this thread while it holds back frees (it is capturing a CUDA graph), else null. */
    private static final ThreadLocal<List<Long>> HELD_BACK = new ThreadLocal<>();
    /** Threads holding back frees now: while there are none, freeing a tensor never reads {@link #HELD_BACK}. */
    private static final AtomicInteger HOLDING_THREADS = new AtomicInteger();

    private Native() {
    }

    private static final MethodHandle VIEW_DTYPE = requiredFunction("aoti_torch_view_dtype",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));

    /** A new handle to {@code handle}'s memory read as {@code dtype} ({@code Tensor.view(dtype)}). */
    static long viewDtype(MemorySegment handle, DType dtype) {
        MemorySegment out = out();
        int rc;
        try {
            rc = (int) VIEW_DTYPE.invokeExact(handle, dtype.code(), out);
        } catch (Throwable t) {
            throw new LibTorchException("aoti_torch_view_dtype failed: " + t, t);
        }
        check(rc, "aoti_torch_view_dtype", dtype);
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    /** This thread's out-parameter slots (8 × 8 bytes). */
    static MemorySegment out() {
        return SCRATCH.get();
    }

    /** This thread's dispatcher stack, just after the out-parameter slots. */
    static MemorySegment stack() {
        return SCRATCH.get().asSlice(8L * OUT_SLOTS);
    }

    /** Per thread, the operator calls made so far: see {@link LibTorch#opCalls()}. */
    private static final ThreadLocal<long[]> OP_CALLS = ThreadLocal.withInitial(() -> new long[1]);

    /** Counts one call that runs an ATen operator or makes a tensor, then checks its return code. */
    static void op(int rc, String op, Object... args) {
        OP_CALLS.get()[0]++;
        check(rc, op, args);
    }

    /** Counts one dispatcher call (its return code is checked by the caller). */
    static void countOp() {
        OP_CALLS.get()[0]++;
    }

    static long opCalls() {
        return OP_CALLS.get()[0];
    }

    static void check(int rc, String op, Object... args) {
        if (rc != 0) {
            throw failure(op, args);
        }
    }

    /** The exception for a failed native call, naming the op and describing each argument. */
    static TorchException failure(String op, Object... args) {
        StringBuilder sb = new StringBuilder(op).append(" failed in libtorch for (");
        for (int i = 0; i < args.length; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(describe(args[i]));
        }
        return new TorchException(sb.append("); libtorch's message is on standard error").toString());
    }

    /** An argument in words, never its values: a tensor's may be on a GPU whose stream is being captured. */
    private static String describe(Object a) {
        return switch (a) {
            case Tensor t -> t.describe();
            case long[] l -> java.util.Arrays.toString(l);
            case List<?> list -> list.stream().map(Native::describe).collect(java.util.stream.Collectors.joining(", ", "[", "]"));
            case null -> "null";
            default -> a.toString();
        };
    }

    private static final MethodHandle STORAGE_SIZE = requiredFunction("aoti_torch_get_storage_size",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final MethodHandle LAYOUT = requiredFunction("aoti_torch_get_layout",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final int STRIDED = layoutCode("aoti_torch_layout_strided");
    private static final int MKLDNN = layoutCode("aoti_torch_layout__mkldnn");
    /** Per thread, the out-parameter of {@link #storageBytes}, which a caller may call between reading its out slots. */
    private static final ThreadLocal<MemorySegment> SIZE_SCRATCH = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(8L, 8));

    private static int layoutCode(String function) {
        try {
            return (int) requiredFunction(function, FunctionDescriptor.of(ValueLayout.JAVA_INT)).invokeExact();
        } catch (Throwable t) {
            throw new LibTorchException(function + " failed: " + t, t);
        }
    }

    /**
     * The bytes of the memory tensor {@code handle} keeps alive (its storage's, which views share: an expanded
     * element counts once), or 0 where libtorch cannot say. Only strided tensors have a storage to ask about (asking
     * an opaque one, as oneDNN's packed weights are, fails with a C++ exception printed to stderr): a oneDNN tensor
     * counts its elements, which it holds alone.
     */
    static long storageBytes(MemorySegment handle) {
        MemorySegment out = SIZE_SCRATCH.get();
        try {
            if ((int) LAYOUT.invokeExact(handle, out) != 0) {
                return 0;
            }
            int layout = out.get(ValueLayout.JAVA_INT, 0);
            if (layout == STRIDED) {
                return (int) STORAGE_SIZE.invokeExact(handle, out) == 0 ? out.get(ValueLayout.JAVA_LONG, 0) : 0;
            }
            if (layout != MKLDNN || arrakis_torch_h.aoti_torch_get_numel(handle, out) != 0) {
                return 0;
            }
            long numel = out.get(ValueLayout.JAVA_LONG, 0);
            if (arrakis_torch_h.aoti_torch_get_dtype(handle, out) != 0) {
                return 0;
            }
            try {
                return numel * DType.fromCode(out.get(ValueLayout.JAVA_INT, 0)).byteSize();
            } catch (TorchException unknownDtype) {
                return 0;
            }
        } catch (Throwable t) {
            throw new LibTorchException("reading the storage size of a tensor failed: " + t, t);
        }
    }

    /** A new owning handle to the same tensor, for arguments the dispatcher steals. */
    static long newHandle(MemorySegment handle) {
        MemorySegment out = out();
        check(arrakis_torch_h.aoti_torch_new_tensor_handle(handle, out), "aoti_torch_new_tensor_handle");
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    static void deleteTensor(long handle) {
        if (HOLDING_THREADS.get() > 0) {
            List<Long> held = HELD_BACK.get();
            if (held != null) {
                held.add(handle);
                return;
            }
        }
        arrakis_torch_h.aoti_torch_delete_tensor_object(MemorySegment.ofAddress(handle));
    }

    /**
     * From now until {@link #stopHoldingBack}, tensor handles freed on this thread are collected in the returned list
     * instead of deleted (see {@link CudaGraph}); {@link #deleteHeldBack} deletes them later.
     */
    static List<Long> holdBackFrees() {
        if (HELD_BACK.get() != null) {
            throw new IllegalStateException("this thread already holds back the tensors it frees (a capture inside a capture?)");
        }
        List<Long> held = new ArrayList<>();
        HELD_BACK.set(held);
        HOLDING_THREADS.incrementAndGet();
        return held;
    }

    /** Whether this thread holds back the tensors it frees, which it does while capturing a CUDA graph. */
    static boolean holdsBackFrees() {
        return HOLDING_THREADS.get() > 0 && HELD_BACK.get() != null;
    }

    static void stopHoldingBack() {
        if (HELD_BACK.get() != null) {
            HELD_BACK.remove();
            HOLDING_THREADS.decrementAndGet();
        }
    }

    static void deleteHeldBack(List<Long> held) {
        for (long handle : held) {
            arrakis_torch_h.aoti_torch_delete_tensor_object(MemorySegment.ofAddress(handle));
        }
        held.clear();
    }

    /** A heap StableIValue holding {@code value}, allocated with C++ operator new because libtorch deletes it. */
    static long heapValue(long value) {
        MemorySegment p = arrakis_torch_h._Znwm(8).reinterpret(8);
        p.set(ValueLayout.JAVA_LONG, 0, value);
        return p.address();
    }

    /**
     * A downcall to a C function of libtorch or of a library it loaded (found through this class loader's libraries),
     * or null where there is none: for functions only some libtorch builds have.
     */
    static MethodHandle optionalFunction(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        return SymbolLookup.loaderLookup().find(name)
                .map(s -> Linker.nativeLinker().downcallHandle(s, descriptor, options)).orElse(null);
    }

    /** A downcall to a C function every supported libtorch exports. */
    static MethodHandle requiredFunction(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MethodHandle handle = optionalFunction(name, descriptor, options);
        if (handle == null) {
            throw new LibTorchException("this libtorch does not export " + name + "; arrakis-jvm needs libtorch >= 2.10");
        }
        return handle;
    }

    private static final MethodHandle SCALAR_FLOAT32 = requiredFunction("aoti_torch_scalar_to_tensor_float32",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS));

    /** A new 0-d float32 CPU tensor holding {@code value}. */
    static long scalarFloat32(float value) {
        MemorySegment out = out();
        int rc;
        try {
            rc = (int) SCALAR_FLOAT32.invokeExact(value, out);
        } catch (Throwable t) {
            throw new LibTorchException("aoti_torch_scalar_to_tensor_float32 failed: " + t, t);
        }
        op(rc, "aoti_torch_scalar_to_tensor_float32", value);
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    private static final MethodHandle REINTERPRET_TENSOR = requiredFunction("aoti_torch__reinterpret_tensor",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    /**
     * A new handle to a tensor over {@code handle}'s storage with {@code shape} and {@code strides}, starting
     * {@code offset} elements past {@code handle}'s first element: AOTInductor's {@code aoti_torch__reinterpret_tensor},
     * which makes the view directly, not through the dispatcher: like a new handle, no operator call.
     */
    static long reinterpret(MemorySegment handle, long[] shape, long[] strides, long offset) {
        int ndim = shape.length;
        try (Arena large = 2 * ndim > STACK_SLOTS ? Arena.ofConfined() : null) {
            MemorySegment dims = large == null ? stack() : large.allocate(16L * ndim, 8);
            for (int i = 0; i < ndim; i++) {
                dims.setAtIndex(ValueLayout.JAVA_LONG, i, shape[i]);
                dims.setAtIndex(ValueLayout.JAVA_LONG, ndim + i, strides[i]);
            }
            MemorySegment out = out();
            int rc;
            try {
                rc = (int) REINTERPRET_TENSOR.invokeExact(handle, (long) ndim, dims, dims.asSlice(8L * ndim), offset, out);
            } catch (Throwable t) {
                throw new LibTorchException("aoti_torch__reinterpret_tensor failed: " + t, t);
            }
            check(rc, "aoti_torch__reinterpret_tensor", shape, strides, offset);
            return out.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    static long getLong(MemorySegment out, int slot) {
        return out.getAtIndex(ValueLayout.JAVA_LONG, slot);
    }
}

package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One call through {@code torch_call_dispatcher}, built on this thread's reusable stack.
 *
 * <p>The stack holds every argument of the op's schema, defaults included, in schema order, each encoded as the 2.10
 * stable ABI wants it: tensors as fresh handles (the dispatcher steals them), scalars as raw bits, lists and strings
 * as handles the callee frees, optionals with a value as a heap slot from C++ {@code operator new}, None as 0.
 * {@link #begin} checks every input tensor is open before anything native is allocated, so a bad input throws
 * without leaking half a stack; an input another thread closes while the stack is built fails it, and what the stack
 * holds by then is freed.
 */
final class Call {
    private static final ThreadLocal<Call> CURRENT = ThreadLocal.withInitial(Call::new);
    private static final int MAX_SLOTS = 32;
    private static final byte PLAIN = 0;
    private static final byte TENSOR = 1;
    private static final byte LIST = 2;
    private static final byte STRING = 3;
    /** C++ {@code operator delete}, for the heap slots of a stack the op never took. */
    private static final MethodHandle DELETE = Native.optionalFunction("_ZdlPv",
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));

    private final MemorySegment stack = Arena.ofAuto().allocate(8L * MAX_SLOTS, 8);
    private final MemorySegment out = Arena.ofAuto().allocate(8L, 8);
    private final Object[] described = new Object[MAX_SLOTS];
    /** What each slot owns until the op takes it: {@link #PLAIN}, {@link #TENSOR}, {@link #LIST}, {@link #STRING}. */
    private final byte[] kinds = new byte[MAX_SLOTS];
    private final boolean[] boxed = new boolean[MAX_SLOTS]; // the value sits in a heap slot
    private final long[][] listed = new long[MAX_SLOTS][]; // a list's tensor handles, which deleting it leaves
    private MemorySegment text = Arena.ofAuto().allocate(64);
    private int size;
    private boolean ran; // the op took the stack's slots: false while they are still this call's to free
    private Op op;
    private long work; // > 0: a CPU op that gets fewer threads when each pool thread would get too little
    private long grain;
    private boolean blasInsideRegions; // a CPU op that calls BLAS from its OpenMP threads (see OpenBlasThreads)

    private Call() {
        NativeHeap.noteThread();
    }

    /** Starts a call of {@code op} on this thread, after checking that every tensor it will take is open. */
    static Call begin(Op op, Tensor... inputs) {
        for (Tensor t : inputs) {
            if (t != null) {
                t.checkOpen();
            }
        }
        Call call = CURRENT.get();
        if (!call.ran) { // a call built and never run (a check threw midway) still owns what it pushed
            call.abandon();
        }
        call.ran = false;
        call.op = op;
        call.size = 0;
        call.work = 0;
        call.blasInsideRegions = false;
        return call;
    }

    private Call push(long bits, Object description) {
        return push(bits, description, PLAIN, false, null);
    }

    private Call push(long bits, Object description, byte kind, boolean inHeap, long[] handles) {
        described[size] = description;
        kinds[size] = kind;
        boxed[size] = inHeap;
        listed[size] = handles;
        stack.setAtIndex(ValueLayout.JAVA_LONG, size++, bits);
        return this;
    }

    Call tensor(Tensor t) {
        return push(handleOf(t), t, TENSOR, false, null);
    }

    Call optTensor(Tensor t) {
        return t == null ? none() : push(Native.heapValue(handleOf(t)), t, TENSOR, true, null);
    }

    Call tensors(List<Tensor> tensors) {
        MemorySegment list = newList(tensors.size());
        long[] handles = new long[tensors.size()];
        int taken = 0;
        try {
            for (Tensor t : tensors) {
                handles[taken] = t.newHandle();
                taken++;
                Native.check(arrakis_torch_h.torch_list_push_back(list, handles[taken - 1]), "torch_list_push_back");
            }
        } catch (RuntimeException | Error e) {
            deleteTensors(Arrays.copyOf(handles, taken)); // a list's deletion leaves the tensors it holds
            arrakis_torch_h.torch_delete_list(list);
            abandon();
            throw e;
        }
        return push(list.address(), tensors, LIST, false, handles);
    }

    /** A new handle to {@code t}; where another thread closed it meanwhile, the stack is freed first. */
    private long handleOf(Tensor t) {
        try {
            return t.newHandle();
        } catch (RuntimeException | Error e) {
            abandon();
            throw e;
        }
    }

    /** Frees what the slots pushed so far own: the op that would have taken them does not run. */
    private void abandon() {
        for (int i = 0; i < size; i++) {
            long bits = stack.getAtIndex(ValueLayout.JAVA_LONG, i);
            if (bits == 0 || kinds[i] == PLAIN && !boxed[i]) {
                continue;
            }
            long value = boxed[i] ? MemorySegment.ofAddress(bits).reinterpret(8).get(ValueLayout.JAVA_LONG, 0) : bits;
            switch (kinds[i]) {
                case TENSOR -> deleteTensors(new long[] {value});
                case LIST -> {
                    if (listed[i] != null) {
                        deleteTensors(listed[i]);
                    }
                    arrakis_torch_h.torch_delete_list(MemorySegment.ofAddress(value));
                }
                case STRING -> arrakis_torch_h.torch_delete_string(MemorySegment.ofAddress(value));
                default -> {
                }
            }
            if (boxed[i] && DELETE != null) {
                try {
                    DELETE.invokeExact(MemorySegment.ofAddress(bits));
                } catch (Throwable t) {
                    throw new LibTorchException("operator delete failed: " + t, t);
                }
            }
        }
        Arrays.fill(described, 0, size, null);
        Arrays.fill(listed, 0, size, null);
        size = 0;
    }

    private static void deleteTensors(long[] handles) {
        for (long h : handles) {
            arrakis_torch_h.aoti_torch_delete_tensor_object(MemorySegment.ofAddress(h));
        }
    }

    Call i64(long v) {
        return push(v, v);
    }

    Call optI64(Long v) {
        return v == null ? none() : push(Native.heapValue(v), v, PLAIN, true, null);
    }

    Call f64(double v) {
        return push(Double.doubleToRawLongBits(v), v);
    }

    Call optF64(Double v) {
        return v == null ? none() : push(Native.heapValue(Double.doubleToRawLongBits(v)), v, PLAIN, true, null);
    }

    Call bool(boolean v) {
        return push(v ? 1 : 0, v);
    }

    Call optDtype(DType t) {
        return t == null ? none() : push(Native.heapValue(t.code()), t, PLAIN, true, null);
    }

    Call optDevice(Device d) {
        return d == null ? none() : push(Native.heapValue(((long) d.typeCode() << 32) | (d.index() & 0xffffffffL)), d,
                PLAIN, true, null);
    }

    Call ints(long... values) {
        return push(intList(values), values, LIST, false, null);
    }

    Call optInts(long[] values) {
        return values == null ? none() : push(Native.heapValue(intList(values)), values, LIST, true, null);
    }

    Call str(String s) {
        return push(string(s), '"' + s + '"', STRING, false, null);
    }

    Call optStr(String s) {
        return s == null ? none() : push(Native.heapValue(string(s)), '"' + s + '"', STRING, true, null);
    }

    Call none() {
        return push(0, "None");
    }

    private MemorySegment newList(int capacity) {
        building(arrakis_torch_h.torch_new_list_reserve_size(capacity, out), "torch_new_list_reserve_size", null);
        return out.get(ValueLayout.ADDRESS, 0);
    }

    private long intList(long[] values) {
        MemorySegment list = newList(values.length);
        for (long v : values) {
            building(arrakis_torch_h.torch_list_push_back(list, v), "torch_list_push_back", list);
        }
        return list.address();
    }

    private long string(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (text.byteSize() < bytes.length + 1L) { // the thread's text buffer, grown when needed: no Arena per call
            text = Arena.ofAuto().allocate(Math.max(bytes.length + 1L, 2 * text.byteSize()));
        }
        MemorySegment.copy(bytes, 0, text, ValueLayout.JAVA_BYTE, 0, bytes.length);
        text.set(ValueLayout.JAVA_BYTE, bytes.length, (byte) 0);
        // the string handle copies the bytes, so the buffer is free again once this returns
        building(arrakis_torch_h.torch_new_string_handle(text, bytes.length, out), "torch_new_string_handle", null);
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    /** Checks a native step of building the stack; where it failed, frees {@code partial} and the stack first. */
    private void building(int rc, String what, MemorySegment partial) {
        if (rc != 0) {
            if (partial != null) {
                arrakis_torch_h.torch_delete_list(partial);
            }
            abandon();
            Native.check(rc, what);
        }
    }

    /**
     * Gives this op, when {@code input} is on the CPU, only as many OpenMP threads as get at least {@code grain} of
     * {@code work} each (see {@link SmallOps}).
     */
    Call fitTeam(Tensor input, long work, long grain) {
        if (input.device().isCpu()) {
            this.work = Math.max(1, work);
            this.grain = grain;
        }
        return this;
    }

    /** Marks a CPU op that calls BLAS from inside its parallel regions: OpenBLAS keeps to one thread meanwhile. */
    Call blasInsideRegions(Tensor input) {
        blasInsideRegions = input.device().isCpu();
        return this;
    }

    /** Runs the op; its results are then in the first slots. */
    Call run() {
        Native.countOp();
        int team = work > 0 ? SmallOps.fitTeam(work, grain, out) : 0;
        boolean singleBlas = false;
        int rc;
        try {
            if (blasInsideRegions) {
                OpenBlasThreads.enter();
                singleBlas = true;
            }
            ran = true;
            rc = arrakis_torch_h.torch_call_dispatcher(op.nameSegment, op.overloadSegment, stack,
                    LibTorch.EXTENSION_BUILD_VERSION);
        } finally {
            if (singleBlas) {
                OpenBlasThreads.leave();
            }
            SmallOps.restore(team);
        }
        if (rc != 0) {
            Object[] args = Arrays.copyOf(described, size);
            Arrays.fill(described, 0, size, null);
            throw Native.failure(op.toString(), args);
        }
        Arrays.fill(described, 0, size, null);
        return this;
    }

    /** Runs the op and takes its one tensor result. */
    Tensor tensorResult() {
        return run().tensorAt(0);
    }

    /** The tensor result in {@code slot}; the caller owns it. */
    Tensor tensorAt(int slot) {
        return Tensor.adopt(stack.getAtIndex(ValueLayout.JAVA_LONG, slot));
    }

    boolean boolAt(int slot) {
        return (stack.getAtIndex(ValueLayout.JAVA_LONG, slot) & 0xff) != 0;
    }

    /** A {@code Tensor[]} result in {@code slot}: the tensors become ours and the list is freed. */
    List<Tensor> tensorListAt(int slot) {
        MemorySegment list = MemorySegment.ofAddress(stack.getAtIndex(ValueLayout.JAVA_LONG, slot));
        Native.check(arrakis_torch_h.torch_list_size(list, out), "torch_list_size");
        long n = out.get(ValueLayout.JAVA_LONG, 0);
        List<Tensor> result = new ArrayList<>((int) n);
        for (long i = 0; i < n; i++) {
            Native.check(arrakis_torch_h.torch_list_get_item(list, i, out), "torch_list_get_item");
            result.add(Tensor.adopt(out.get(ValueLayout.JAVA_LONG, 0)));
        }
        Native.check(arrakis_torch_h.torch_delete_list(list), "torch_delete_list");
        return result;
    }
}

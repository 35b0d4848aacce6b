package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * An n-dimensional array in libtorch's memory (off the Java heap), on the CPU or a GPU.
 *
 * <p><b>Ownership.</b> A tensor owns one libtorch handle. {@link #close()} frees it at once (closing twice is harmless);
 * a {@link TensorScope} closes every tensor made inside it; tensors nobody closes are freed by a background thread after
 * the garbage collector finds them unreachable. Any use after close throws {@link IllegalStateException} naming the tensor.
 *
 * <p><b>Errors.</b> Common mistakes are caught in Java before libtorch sees them: {@link IllegalArgumentException} for
 * incompatible shapes, dtypes or devices and dims out of range, {@link IndexOutOfBoundsException} for indices out of
 * range, {@link IllegalStateException} for closed tensors. Anything libtorch still rejects becomes a
 * {@link TorchException} naming the op and each argument's shape, dtype and device.
 *
 * <p><b>Threads.</b> Tensors can be read and used as op inputs from many threads at once; the one lock ops share is held
 * for a moment by fused CPU attention, which keeps OpenBLAS to one thread meanwhile (see the README's CPU notes: other
 * threads' OpenBLAS products may then round otherwise).
 * Closing a tensor while another thread's op reads it marks it closed at once (later uses throw) and frees it when that
 * op is done. A tensor over a shared arena's memory ({@link #fromSegment}) is the exception: closing that arena while an
 * op reads the memory is a race the caller must avoid. Memory another tensor's {@link #asSegment()} handed out is not
 * such an arena: a tensor made over it shares that tensor's storage, so closing either waits for ops in flight.
 *
 * <p>Ops return new tensors and never modify their inputs; view ops ({@link #view}, {@link #permute},
 * {@link #narrow}, ...) share memory with their input, like PyTorch's. Their sizes and strides are computed here, as
 * ATen computes them, and the view is made without libtorch's dispatcher, so they cost no operator call; an op that
 * is a view only for some layouts ({@link #reshape}) calls libtorch when it copies.
 *
 * <p><b>Dtypes.</b> Results take PyTorch's dtypes. An op with a number ({@link #add(double)}, {@link #sub(double)},
 * {@link #mul(double)}, {@link #div(double)}, {@link #pow(double)}) treats it as a Python float: a floating-point tensor
 * keeps its dtype, and an integer or bool tensor gives float32 (exact for integers up to 2^24 in magnitude), so
 * {@code ids.add(1)} is a float32 tensor; for integer results, use an integer tensor as the other operand.
 */
public final class Tensor implements AutoCloseable {
    static {
        LibTorch.load();
    }

    private static final Op MATMUL = Op.of("aten::matmul", "");
    private static final Op LINEAR = Op.of("aten::linear", "");
    private static final Op BMM = Op.of("aten::bmm", "");
    private static final Op EINSUM = Op.of("aten::einsum", "");
    private static final Op MUL = Op.of("aten::mul", "Tensor");
    private static final Op DIV = Op.of("aten::div", "Tensor");
    private static final Op POW = Op.of("aten::pow", "Tensor_Tensor");
    private static final Op NEG = Op.of("aten::neg", "");
    private static final Op EXP = Op.of("aten::exp", "");
    private static final Op EXPM1 = Op.of("aten::expm1", "");
    private static final Op GT = Op.of("aten::gt", "Tensor");
    private static final Op LOG = Op.of("aten::log", "");
    private static final Op LOG1P = Op.of("aten::log1p", "");
    private static final Op CUMSUM = Op.of("aten::cumsum", "");
    private static final Op CONV1D = Op.of("aten::conv1d", "");
    private static final Op SOLVE_TRIANGULAR = Op.of("aten::linalg_solve_triangular", "");
    private static final Op SQRT = Op.of("aten::sqrt", "");
    private static final Op RSQRT = Op.of("aten::rsqrt", "");
    private static final Op RECIPROCAL = Op.of("aten::reciprocal", "");
    private static final Op ABS = Op.of("aten::abs", "");
    private static final Op TANH = Op.of("aten::tanh", "");
    private static final Op ERF = Op.of("aten::erf", "");
    private static final Op SIGMOID = Op.of("aten::sigmoid", "");
    private static final Op IS_NAN = Op.of("aten::isnan", "");
    private static final Op RELU = Op.of("aten::relu", "");
    private static final Op GELU = Op.of("aten::gelu", "");
    private static final Op SILU = Op.of("aten::silu", "");
    private static final Op COS = Op.of("aten::cos", "");
    private static final Op SIN = Op.of("aten::sin", "");
    private static final Op SOFTMAX = Op.of("aten::softmax", "int");
    private static final Op LOG_SOFTMAX = Op.of("aten::log_softmax", "int");
    private static final Op LAYER_NORM = Op.of("aten::layer_norm", "");
    private static final Op RMS_NORM = Op.of("aten::rms_norm", "");
    private static final Op NATIVE_LAYER_NORM = Op.of("aten::native_layer_norm", "");
    private static final Op FUSED_RMS_NORM = Op.of("aten::_fused_rms_norm", "");
    private static final Op EMBEDDING = Op.of("aten::embedding", "");
    private static final Op CAT = Op.of("aten::cat", "");
    private static final Op STACK = Op.of("aten::stack", "");
    private static final Op ROLL = Op.of("aten::roll", "");
    private static final Op WHERE = Op.of("aten::where", "self");
    private static final Op MASKED_FILL = Op.of("aten::masked_fill", "Tensor");
    private static final Op MASKED_FILL_ = Op.of("aten::masked_fill_", "Tensor");
    private static final Op TRIL = Op.of("aten::tril", "");
    private static final Op TRIU = Op.of("aten::triu", "");
    private static final Op SUM = Op.of("aten::sum", "");
    private static final Op SUM_DIM = Op.of("aten::sum", "dim_IntList");
    private static final Op NORM_DIMS = Op.of("aten::norm", "ScalarOpt_dim");
    private static final Op MEAN = Op.of("aten::mean", "");
    private static final Op MEAN_DIM = Op.of("aten::mean", "dim");
    private static final Op MAX = Op.of("aten::max", "");
    private static final Op MAX_DIM = Op.of("aten::max", "dim");
    private static final Op MIN = Op.of("aten::min", "");
    private static final Op MIN_DIM = Op.of("aten::min", "dim");
    private static final Op ARGMAX = Op.of("aten::argmax", "");
    private static final Op TOPK = Op.of("aten::topk", "");
    private static final Op CLAMP = Op.of("aten::clamp", "Tensor");
    private static final Op REPEAT_INTERLEAVE = Op.of("aten::repeat_interleave", "self_int");
    private static final Op SDPA = Op.of("aten::scaled_dot_product_attention", "");
    private static final Op SVD = Op.of("aten::linalg_svd", "");
    private static final Op EIGH = Op.of("aten::linalg_eigh", "");
    private static final Op CHOLESKY_EX = Op.of("aten::linalg_cholesky_ex", "");
    private static final Op EIGVALS = Op.of("aten::linalg_eigvals", "");
    private static final Op VIEW_AS_REAL = Op.of("aten::view_as_real", "");
    private static final Op ALLCLOSE = Op.of("aten::allclose", "");
    private static final Op RESHAPE = Op.of("aten::reshape", "");
    private static final Op SLICE = Op.of("aten::slice", "Tensor");
    private static final Op INDEX_SELECT = Op.of("aten::index_select", "");
    private static final Op TO_COPY = Op.of("aten::_to_copy", "");
    private static final Op ZEROS = Op.of("aten::zeros", "");
    private static final Op ONES = Op.of("aten::ones", "");
    private static final Op EYE = Op.of("aten::eye", "");

    private final MemorySegment handle;
    private final NativeHandle owner;
    /** Set when this tensor views memory a Java arena owns: the arena must still be open whenever we touch it. */
    private final MemorySegment borrowed;
    /** The tensors whose memory {@link #asSegment()} handed out, by the scope of their segments' arena. */
    private static final Map<MemorySegment.Scope, Lender> LENDERS = Collections.synchronizedMap(new WeakHashMap<>());

    /** A contiguous tensor whose memory {@link #asSegment()} handed out: its handle, dtype, elements and address. */
    private record Lender(NativeHandle handle, DType dtype, long numel, long address) {
    }
    /**
     * Read lazily; a plain field, like {@code String.hash}: a thread that sees null reads the same values again, and
     * the record's final fields publish its arrays safely.
     */
    private Meta meta;
    /** The scope that will close this tensor, if any; only read and written by that scope's thread. */
    TensorScope scope;
    /** The arena of {@link #asSegment()}'s segments, made on first use; see {@link NativeHandle#segmentArena}. */
    private volatile Arena segmentArena;

    /** Metadata fixed for a tensor's life, read once. */
    record Meta(long[] shape, long[] strides, DType dtype, Device device) {
    }

    private Tensor(long address, MemorySegment borrowed) {
        this.handle = MemorySegment.ofAddress(address);
        TensorScope scope = TensorScope.current();
        this.owner = new NativeHandle(this, address, scope == null);
        this.borrowed = borrowed;
        if (scope != null) {
            scope.adopt(this, owner);
        }
    }

    /** Takes ownership of a handle libtorch returned. */
    static Tensor adopt(long address) {
        return new Tensor(address, null);
    }

    /**
     * The result of an op that may return a view (reshape, a one-operand einsum, an alias): one that reads this
     * tensor's borrowed memory, if any, inherits it; a copy does not.
     */
    private Tensor viewResult(Tensor result) {
        if (borrowed == null) {
            return result;
        }
        long at = result.dataAddress() - borrowed.address();
        if (at < 0 || at >= borrowed.byteSize()) {
            return result;
        }
        Tensor tied = new Tensor(Native.newHandle(result.handle), borrowed);
        result.close();
        return tied;
    }

    /**
     * A view of this tensor's memory with {@code shape} and {@code strides} (arrays the view keeps), starting
     * {@code offset} elements past this tensor's first element: the geometry libtorch's view op would compute, made
     * without its dispatcher. The caller has checked that the view reads only this tensor's elements.
     */
    private Tensor restrided(long[] shape, long[] strides, long offset) {
        Meta m = meta();
        long address;
        try (Held held = hold()) {
            // only a tensor without elements can start a view past 2^63 elements into its memory
            if (offset < 0 || offset != 0 && numel() == 0 && offset > Long.MAX_VALUE - storageOffset()) {
                throw new IllegalArgumentException("a view of " + describe() + " would start past 2^63 elements into"
                        + " its memory, which libtorch refuses");
            }
            address = Native.reinterpret(handle(), shape, strides, offset);
        }
        Tensor view = new Tensor(address, borrowed);
        view.meta = new Meta(shape, strides, m.dtype, m.device);
        return view;
    }

    /** The view along {@code dim} of {@code length} elements from {@code start}, checked by the caller. */
    private Tensor narrowed(int dim, long start, long length) {
        Meta m = meta();
        long[] shape = m.shape.clone();
        shape[dim] = length;
        return restrided(shape, m.strides.clone(), offset(start, m.strides[dim]));
    }

    // ------------------------------------------------------------------------------------------------ lifecycle

    NativeHandle nativeHandle() {
        return owner;
    }

    /** A hold on a tensor's handle for native calls ({@link #hold()}); closing it ends the hold. */
    interface Held extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Holds this tensor's handle for native calls, which read it with {@link #handle()} until the hold is closed: a
     * close on another thread meanwhile marks the tensor closed, and the hold's end frees it, so no call reads a freed
     * handle.
     *
     * @throws IllegalStateException when the tensor is closed, or views memory of a closed arena
     */
    Held hold() {
        checkOpen();
        if (!owner.enter()) {
            throw closedException(); // closed meanwhile
        }
        return owner;
    }

    /** A hold as {@link #hold()} takes, or null where this tensor is closed (meanwhile, by another thread). */
    Held holdIfOpen() {
        return owner.enter() ? owner : null;
    }

    /** A new owning handle to this tensor (a libtorch reference of its own), which the caller frees or adopts. */
    long newHandle() {
        try (Held held = hold()) {
            return Native.newHandle(handle());
        }
    }

    /** The raw handle, for native calls made while the tensor is held ({@link #hold()}). */
    MemorySegment handle() {
        if (!owner.isHeld()) {
            checkOpen();
            throw new IllegalStateException("tensor " + name() + ": a native call without a hold on its handle");
        }
        return handle;
    }

    void checkOpen() {
        if (owner.isReleased()) {
            throw closedException();
        }
        if (borrowed != null && !borrowed.scope().isAlive()) {
            throw new IllegalStateException("tensor " + name()
                    + " views memory of a closed arena; a tensor made with fromSegment must not outlive its segment's arena");
        }
        if (borrowed != null && !borrowed.isAccessibleBy(Thread.currentThread())) {
            // its owner could close the arena while this thread's op reads the memory
            throw new WrongThreadException("tensor " + name() + " views memory of an arena confined to another thread");
        }
    }

    private IllegalStateException closedException() {
        return new IllegalStateException("tensor " + name() + " was closed and can no longer be used");
    }

    /** Whether {@link #close()} has run (or the cleaner freed it). */
    public boolean isClosed() {
        return owner.isReleased();
    }

    /**
     * Frees the native tensor now, or, while an op on another thread reads it, when that op ends; either way it is
     * closed from now on. Harmless when already closed.
     */
    @Override
    public void close() {
        owner.release();
    }

    String name() {
        Meta m = meta;
        String id = "0x" + Long.toHexString(handle.address());
        return m == null ? id : id + " (" + m.dtype + Arrays.toString(m.shape) + " " + m.device + ")";
    }

    /** "float32[2, 3] cpu", for messages. */
    String describe() {
        if (isClosed()) {
            return "closed tensor " + name();
        }
        Meta m = meta();
        return m.dtype + Arrays.toString(m.shape) + " " + m.device;
    }

    // ------------------------------------------------------------------------------------------------ metadata

    Meta meta() {
        Meta m = meta;
        if (m != null) {
            checkOpen();
        } else {
            try (Held held = hold()) {
                m = readMeta(handle());
            }
            meta = m;
        }
        return m;
    }

    private static Meta readMeta(MemorySegment h) {
        MemorySegment out = Native.out();
        Native.check(arrakis_torch_h.aoti_torch_get_dim(h, out), "aoti_torch_get_dim");
        int ndim = (int) out.get(ValueLayout.JAVA_LONG, 0);
        Native.check(arrakis_torch_h.aoti_torch_get_sizes(h, out), "aoti_torch_get_sizes");
        long[] shape = out.get(ValueLayout.ADDRESS, 0).reinterpret(8L * ndim).toArray(ValueLayout.JAVA_LONG);
        Native.check(arrakis_torch_h.aoti_torch_get_strides(h, out), "aoti_torch_get_strides");
        long[] strides = out.get(ValueLayout.ADDRESS, 0).reinterpret(8L * ndim).toArray(ValueLayout.JAVA_LONG);
        Native.check(arrakis_torch_h.aoti_torch_get_dtype(h, out), "aoti_torch_get_dtype");
        DType dtype = DType.fromCode(out.get(ValueLayout.JAVA_INT, 0));
        Native.check(arrakis_torch_h.aoti_torch_get_device_type(h, out), "aoti_torch_get_device_type");
        int deviceType = out.get(ValueLayout.JAVA_INT, 0);
        Native.check(arrakis_torch_h.aoti_torch_get_device_index(h, out), "aoti_torch_get_device_index");
        return new Meta(shape, strides, dtype, Device.fromCodes(deviceType, out.get(ValueLayout.JAVA_INT, 0)));
    }

    /** The sizes of each dimension (a copy). */
    public long[] shape() {
        return meta().shape.clone();
    }

    /** The size of dimension {@code dim} (negative counts from the end). */
    public long size(int dim) {
        return meta().shape[existingDim(dim, "size")];
    }

    /** The element strides of each dimension (a copy). */
    public long[] strides() {
        return meta().strides.clone();
    }

    /** The number of dimensions. */
    public int dim() {
        return meta().shape.length;
    }

    /** The number of elements. */
    public long numel() {
        long n = 1;
        for (long s : meta().shape) {
            n *= s;
        }
        return n;
    }

    /** The element type. */
    public DType dtype() {
        return meta().dtype;
    }

    /** Where the data lives. */
    public Device device() {
        return meta().device;
    }

    /** Whether the elements are laid out densely in row-major order. */
    public boolean isContiguous() {
        MemorySegment out = Native.out();
        try (Held held = hold()) {
            Native.check(arrakis_torch_h.aoti_torch_is_contiguous(handle(), out), "aoti_torch_is_contiguous", this);
        }
        return out.get(ValueLayout.JAVA_BOOLEAN, 0);
    }

    /**
     * The address of the first element, valid while the tensor is open: a caller that reads the memory after this
     * returns holds the tensor ({@link #hold()}) meanwhile, or owns it alone. Outside this package, {@link #asSegment()}
     * gives the memory itself.
     */
    long dataAddress() {
        try (Held held = hold()) {
            return heldDataAddress();
        }
    }

    /** {@link #dataAddress()} of a tensor the caller holds ({@link #hold()}). */
    long heldDataAddress() {
        MemorySegment out = Native.out();
        Native.check(arrakis_torch_h.aoti_torch_get_data_ptr(handle(), out), "aoti_torch_get_data_ptr", this);
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    // ------------------------------------------------------------------------------------------------ creation

    /** A float32 CPU tensor holding a copy of {@code data}, in row-major order. */
    public static Tensor of(float[] data, long... shape) {
        return fromHeap(MemorySegment.ofArray(data), DType.FLOAT32, data.length, shape);
    }

    /** A float64 CPU tensor holding a copy of {@code data}. */
    public static Tensor of(double[] data, long... shape) {
        return fromHeap(MemorySegment.ofArray(data), DType.FLOAT64, data.length, shape);
    }

    /** An int64 CPU tensor holding a copy of {@code data}. */
    public static Tensor of(long[] data, long... shape) {
        return fromHeap(MemorySegment.ofArray(data), DType.INT64, data.length, shape);
    }

    /** An int32 CPU tensor holding a copy of {@code data}. */
    public static Tensor of(int[] data, long... shape) {
        return fromHeap(MemorySegment.ofArray(data), DType.INT32, data.length, shape);
    }

    /** A bool CPU tensor holding a copy of {@code data}. */
    public static Tensor of(boolean[] data, long... shape) {
        byte[] bytes = new byte[data.length];
        for (int i = 0; i < data.length; i++) {
            bytes[i] = (byte) (data[i] ? 1 : 0);
        }
        return fromHeap(MemorySegment.ofArray(bytes), DType.BOOL, data.length, shape);
    }

    /** A 0-dimensional float64 CPU tensor. */
    public static Tensor scalar(double value) {
        MemorySegment out = Native.out();
        LibTorch.load();
        Native.op(arrakis_torch_h.aoti_torch_scalar_to_tensor_float64(value, out), "aoti_torch_scalar_to_tensor_float64", value);
        return adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    private static Tensor fromHeap(MemorySegment data, DType dtype, long length, long[] shape) {
        long n = Shapes.numel(shape, "Tensor.of");
        if (n != length) {
            throw new IllegalArgumentException("Tensor.of: " + length + " values cannot fill shape " + Arrays.toString(shape)
                    + " (" + n + " elements)");
        }
        Tensor t = empty(shape, dtype, Device.CPU, "Tensor.of");
        MemorySegment.copy(data, 0, t.dataSegment(), 0, n * dtype.byteSize());
        return t;
    }

    /**
     * A CPU tensor over {@code segment}'s memory, without copying: writes through either are seen by the other. The
     * tensor (and its views) must not outlive the segment's arena; using it after that arena closes throws
     * {@link IllegalStateException}. Over memory of another tensor ({@link #asSegment()}), it is a view of that
     * tensor's storage, which stays allocated while an op on this one runs, whoever closes the other meanwhile.
     */
    public static Tensor fromSegment(MemorySegment segment, DType dtype, long... shape) {
        long n = Shapes.numel(shape, "Tensor.fromSegment");
        // Checked here rather than left to the downcall: the generated bindings wrap any exception of the call itself
        // in an AssertionError ("should not reach here").
        if (!segment.scope().isAlive()) {
            throw new IllegalStateException("Tensor.fromSegment: the segment's arena is already closed");
        }
        if (!segment.isAccessibleBy(Thread.currentThread())) {
            throw new WrongThreadException("Tensor.fromSegment: the segment's arena is confined to another thread");
        }
        if (segment.isReadOnly()) {
            throw new IllegalArgumentException("Tensor.fromSegment: the segment is read-only, and libtorch tensors are writable");
        }
        if (!segment.isNative()) {
            throw new IllegalArgumentException("Tensor.fromSegment: the segment is on the Java heap, which the garbage"
                    + " collector may move; use Tensor.of to copy it, or allocate the segment from an Arena");
        }
        if (n > Long.MAX_VALUE / dtype.byteSize()) {
            throw new IllegalArgumentException("Tensor.fromSegment: shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs more than " + Long.MAX_VALUE + " bytes");
        }
        if (segment.byteSize() < n * dtype.byteSize()) {
            throw new IllegalArgumentException("Tensor.fromSegment: shape " + Arrays.toString(shape) + " of " + dtype + " needs "
                    + n * dtype.byteSize() + " bytes but the segment has " + segment.byteSize());
        }
        if (segment.address() % dtype.byteSize() != 0) {
            throw new IllegalArgumentException("Tensor.fromSegment: address 0x" + Long.toHexString(segment.address())
                    + " is not aligned to the " + dtype.byteSize() + "-byte elements of " + dtype);
        }
        LibTorch.load();
        Lender lender = LENDERS.get(segment.scope());
        if (lender != null) {
            // closed, its memory freed when the ops still reading it end: a tensor over it would outlive it
            if (!lender.handle.enter()) {
                throw new IllegalStateException("Tensor.fromSegment: the segment is the memory of a tensor that was"
                        + " closed");
            }
            try {
                return new Tensor(viewOf(lender, segment.address() - lender.address, dtype, shape), segment);
            } finally {
                lender.handle.close();
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sizes = arena.allocateFrom(ValueLayout.JAVA_LONG, shape);
            MemorySegment strides = arena.allocateFrom(ValueLayout.JAVA_LONG, Shapes.contiguousStrides(shape));
            MemorySegment out = Native.out();
            int rc;
            try {
                rc = arrakis_torch_h.aoti_torch_create_tensor_from_blob(segment, shape.length, sizes, strides, 0,
                        dtype.code(), Device.CPU.typeCode(), 0, out);
            } catch (AssertionError e) { // the bindings' wrapper of the downcall's own failure
                if (e.getCause() instanceof IllegalStateException closed) {
                    throw new IllegalStateException("Tensor.fromSegment: the segment's arena was closed meanwhile", closed);
                }
                throw e;
            }
            Native.op(rc, "aoti_torch_create_tensor_from_blob", shape, dtype);
            return new Tensor(out.get(ValueLayout.JAVA_LONG, 0), segment);
        }
    }

    /**
     * A handle to {@code shape} of {@code dtype}, contiguous, {@code byteOffset} bytes into the memory of {@code lender}
     * (held): a view of its storage, so that libtorch frees that memory only when neither tensor, nor an op running
     * on either, still needs it. The view passes through the bytes ({@code view(dtype)} to bytes and to {@code dtype}).
     */
    private static long viewOf(Lender lender, long byteOffset, DType dtype, long[] shape) {
        long bytes = Shapes.numel(shape, "Tensor.fromSegment") * dtype.byteSize();
        long flat = Native.reinterpret(MemorySegment.ofAddress(lender.handle.address), new long[] {lender.numel},
                new long[] {1}, 0);
        long asBytes = replaced(flat, h -> Native.viewDtype(h, DType.UINT8));
        long slice = replaced(asBytes, h -> Native.reinterpret(h, new long[] {bytes}, new long[] {1}, byteOffset));
        long typed = replaced(slice, h -> Native.viewDtype(h, dtype));
        return replaced(typed, h -> Native.reinterpret(h, shape, Shapes.contiguousStrides(shape), 0));
    }

    /** {@code next} of the tensor handle {@code handle}, which is freed after it. */
    private static long replaced(long handle, java.util.function.ToLongFunction<MemorySegment> next) {
        try {
            return next.applyAsLong(MemorySegment.ofAddress(handle));
        } finally {
            Native.deleteTensor(handle);
        }
    }

    /** An uninitialised contiguous tensor. */
    public static Tensor empty(long[] shape, DType dtype, Device device) {
        return empty(shape, dtype, device, "Tensor.empty");
    }

    static Tensor empty(long[] shape, DType dtype, Device device, String op) {
        long n = Shapes.numel(shape, op);
        if (device.isCpu()) {
            checkHostMemory(n, dtype, shape, op);
        }
        device.checkAvailable();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sizes = arena.allocateFrom(ValueLayout.JAVA_LONG, shape);
            MemorySegment strides = arena.allocateFrom(ValueLayout.JAVA_LONG, Shapes.contiguousStrides(shape));
            MemorySegment out = Native.out();
            Native.op(arrakis_torch_h.aoti_torch_empty_strided(shape.length, sizes, strides, dtype.code(),
                    device.typeCode(), device.index(), out), "aoti_torch_empty_strided", shape, dtype, device);
            return adopt(out.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    /** A float32 CPU tensor of zeros. */
    public static Tensor zeros(long... shape) {
        return zeros(shape, DType.FLOAT32, Device.CPU);
    }

    /** A tensor of zeros. */
    public static Tensor zeros(long[] shape, DType dtype, Device device) {
        long n = Shapes.numel(shape, "Tensor.zeros");
        device.checkAvailable();
        if (device.isCpu()) {
            checkHostMemory(n, dtype, shape, "Tensor.zeros");
        }
        return Call.begin(ZEROS).ints(shape).optDtype(dtype).none().optDevice(device).none().tensorResult();
    }

    /** A float32 CPU tensor of ones. */
    public static Tensor ones(long... shape) {
        return ones(shape, DType.FLOAT32, Device.CPU);
    }

    /** A tensor of ones. */
    public static Tensor ones(long[] shape, DType dtype, Device device) {
        long n = Shapes.numel(shape, "Tensor.ones");
        device.checkAvailable();
        if (device.isCpu()) {
            checkHostMemory(n, dtype, shape, "Tensor.ones");
        }
        return Call.begin(ONES).ints(shape).optDtype(dtype).none().optDevice(device).none().tensorResult();
    }

    /**
     * A tensor with every element {@code value}. For an integer dtype the value must be a whole number within int64's
     * range (as a double, it is exact only to 2^53); libtorch refuses one outside a smaller type's range.
     */
    public static Tensor full(long[] shape, double value, DType dtype, Device device) {
        if (dtype.isIntegral() && !(value == Math.rint(value) && fitsInt64(value))) {
            throw new IllegalArgumentException("Tensor.full: " + value + " is no " + dtype + " value (a whole number in"
                    + " int64's range)");
        }
        // as torch refuses it; libtorch fills one element without the check
        if (dtype.isFloatingPoint() && Double.isFinite(value) && Math.abs(value) > dtype.maxFinite()) {
            throw new IllegalArgumentException("Tensor.full: " + value + " is beyond " + dtype + "'s range (at most "
                    + dtype.maxFinite() + " in magnitude)");
        }
        Tensor t = empty(shape, dtype, device, "Tensor.full");
        try (Held held = t.hold()) {
            Native.op(arrakis_torch_h.aoti_torch_aten_fill__Scalar(t.handle(), value), "aten::fill_.Scalar", t, value);
        }
        return t;
    }

    /** The int64 CPU tensor {@code [0, 1, ..., end-1]}. */
    public static Tensor arange(long end) {
        return arange(0, end, 1, DType.INT64, Device.CPU);
    }

    /**
     * {@code [start, start+step, ...)} up to but excluding {@code end}, with as many elements as PyTorch's arange. For an
     * integer dtype the bounds and step must be whole numbers (the values are then exact at any size); for a floating
     * dtype each value is {@code start + i·step} in float64, rounded once to the dtype, where PyTorch's kernel may
     * differ in the last place.
     */
    public static Tensor arange(double start, double end, double step, DType dtype, Device device) {
        String args = " (start=" + start + ", end=" + end + ", step=" + step + ")";
        if (step == 0 || !Double.isFinite(step) || !Double.isFinite(start) || !Double.isFinite(end)) {
            throw new IllegalArgumentException("Tensor.arange: step must be non-zero and bounds finite" + args);
        }
        if ((step > 0 && end < start) || (step < 0 && end > start)) {
            throw new IllegalArgumentException("Tensor.arange: the bounds are inconsistent with the step's sign" + args);
        }
        boolean whole = start == Math.rint(start) && end == Math.rint(end) && step == Math.rint(step);
        if (dtype == DType.BOOL) {
            throw new IllegalArgumentException("Tensor.arange: no arange of bool, as in PyTorch" + args);
        }
        if (!dtype.isFloatingPoint() && !whole) {
            throw new IllegalArgumentException("Tensor.arange: " + dtype + " needs whole-number bounds and step" + args);
        }
        if (!dtype.isFloatingPoint() && !(fitsInt64(start) && fitsInt64(end) && fitsInt64(step))) {
            throw new IllegalArgumentException("Tensor.arange: " + dtype + " counts in int64, which cannot hold these"
                    + " bounds or step" + args);
        }
        // as PyTorch counts: int64 ranges in integers (in float64 a span past 2^53 rounds), the other dtypes in float64
        long n = dtype == DType.INT64 ? int64RangeLength((long) start, (long) end, (long) step)
                : (long) Math.max(0, Math.ceil((end - start) / step));
        // the values are written into native memory, which Tensor.empty checks against the machine's
        boolean integer = !dtype.isFloatingPoint();
        try (Tensor t = empty(new long[] {n}, integer ? DType.INT64 : DType.FLOAT64, Device.CPU, "Tensor.arange")) {
            MemorySegment values = t.asSegment();
            if (integer) {
                long value = (long) start;
                for (long i = 0; i < n; i++) { // each value lies between start and end, so stepping never overflows
                    values.setAtIndex(ValueLayout.JAVA_LONG, i, value);
                    value = i + 1 < n ? value + (long) step : value;
                }
            } else {
                for (long i = 0; i < n; i++) {
                    values.setAtIndex(ValueLayout.JAVA_DOUBLE, i, start + i * step);
                }
            }
            return t.to(dtype, device);
        }
    }

    /** {@code ceil((end - start) / step)} exactly, as PyTorch's int64 arange counts; at least 0, at most Long.MAX_VALUE. */
    private static long int64RangeLength(long start, long end, long step) {
        java.math.BigInteger span = java.math.BigInteger.valueOf(end).subtract(java.math.BigInteger.valueOf(start));
        java.math.BigInteger length = span.add(java.math.BigInteger.valueOf(step - Long.signum(step)))
                .divide(java.math.BigInteger.valueOf(step));
        return length.max(java.math.BigInteger.ZERO).min(java.math.BigInteger.valueOf(Long.MAX_VALUE)).longValue();
    }

    /** Whether a whole number lies in int64's range. */
    private static boolean fitsInt64(double v) {
        return v >= -0x1p63 && v < 0x1p63;
    }

    /** The {@code n × n} identity matrix. */
    public static Tensor eye(long n, DType dtype, Device device) {
        if (n < 0) {
            throw new IllegalArgumentException("Tensor.eye: n must be >= 0, got " + n);
        }
        device.checkAvailable();
        return Call.begin(EYE).i64(n).optDtype(dtype).none().optDevice(device).none().tensorResult();
    }

    /** Standard normal samples from {@code generator}: {@link #normal} with mean 0 and standard deviation 1. */
    public static Tensor randn(Generator generator, long[] shape, DType dtype, Device device) {
        return Sampling.normal(generator, shape, 0.0, 1.0, dtype, device, "Tensor.randn");
    }

    /**
     * Normal samples {@code mean + std · z} from {@code generator}: it gives one 64-bit seed, and chunks of 65,536
     * elements draw in parallel from streams derived from that seed and the chunk's index, so the
     * values are the same whatever the number of threads. Each value is rounded to float32 (float64 for a float64
     * tensor) and then, for float16 and bfloat16, to nearest-even as libtorch converts, straight into the tensor's
     * memory: no wider temporary, so a 7-billion-parameter model's weights take seconds, not minutes. As in PyTorch, a
     * value beyond the dtype's range (a mean or std near it) is infinite.
     */
    public static Tensor normal(Generator generator, long[] shape, double mean, double std, DType dtype, Device device) {
        return Sampling.normal(generator, shape, mean, std, dtype, device, "Tensor.normal");
    }

    /** Uniform samples in [0, 1) from {@code generator}. */
    public static Tensor rand(Generator generator, long[] shape, DType dtype, Device device) {
        return Sampling.rand(generator, shape, dtype, device);
    }

    /** Uniform int64 samples in [low, high) from {@code generator}. */
    public static Tensor randint(Generator generator, long low, long high, long[] shape, Device device) {
        return Sampling.randint(generator, low, high, shape, device);
    }

    /**
     * Linux hands out more memory than it has and kills the process when the pages are touched: refuse a CPU tensor
     * larger than the machine's memory up front.
     */
    private static void checkHostMemory(long n, DType dtype, long[] shape, String op) {
        long bytes;
        try {
            bytes = Math.multiplyExact(n, (long) dtype.byteSize());
        } catch (ArithmeticException e) {
            bytes = Long.MAX_VALUE;
        }
        long total = HostMemory.totalBytes();
        if (total > 0 && bytes > total) {
            throw new IllegalArgumentException(String.format(java.util.Locale.ROOT,
                    "%s: shape %s of %s needs %.1f GiB, more than this machine's %.1f GiB of memory", op,
                    Arrays.toString(shape), dtype, bytes / 1073741824.0, total / 1073741824.0));
        }
    }

    // ------------------------------------------------------------------------------------------------ reading

    /** The value of a one-element tensor, as a double. */
    public double item() {
        checkOneElement("item");
        MemorySegment out = Native.out();
        try (Held held = hold()) {
            Native.op(arrakis_torch_h.aoti_torch_item_float64(handle(), out), "aoti_torch_item_float64", this);
        }
        return out.get(ValueLayout.JAVA_DOUBLE, 0);
    }

    /**
     * The value of a one-element tensor, as a long: an integer tensor's exactly, a floating-point one's truncated toward
     * zero. A floating value outside int64's range, or NaN, is refused.
     */
    public long itemLong() {
        checkOneElement("itemLong");
        if (dtype().isFloatingPoint()) {
            double v = item();
            if (!(v >= -0x1p63 && v < 0x1p63)) { // libtorch's check lets 2^63 through, as Long.MIN_VALUE
                throw new IllegalArgumentException("itemLong: " + v + " is not within int64's range");
            }
            return (long) v;
        }
        MemorySegment out = Native.out();
        try (Held held = hold()) {
            Native.op(arrakis_torch_h.aoti_torch_item_int64(handle(), out), "aoti_torch_item_int64", this);
        }
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    /** The value of a one-element tensor, as a boolean. */
    public boolean itemBoolean() {
        checkOneElement("itemBoolean");
        MemorySegment out = Native.out();
        try (Held held = hold()) {
            Native.op(arrakis_torch_h.aoti_torch_item_bool(handle(), out), "aoti_torch_item_bool", this);
        }
        return out.get(ValueLayout.JAVA_BOOLEAN, 0);
    }

    private void checkOneElement(String op) {
        if (numel() != 1) {
            throw new IllegalArgumentException(op + ": needs a one-element tensor, got " + describe());
        }
    }

    /**
     * The memory of a contiguous CPU tensor, without copying. The segment keeps this tensor reachable, and becomes
     * inaccessible (its accesses throw {@link IllegalStateException}) when this tensor is closed.
     */
    public MemorySegment asSegment() {
        Meta m = meta();
        if (!m.device.isCpu()) {
            throw new IllegalArgumentException("asSegment: " + describe() + " is not on the CPU; use to(Device.CPU) first");
        }
        if (!isContiguous()) {
            throw new IllegalArgumentException("asSegment: " + describe() + " is not contiguous; use contiguous() first");
        }
        checkOpen();
        long bytes = numel() * m.dtype.byteSize();
        if (borrowed != null) {
            // memory of a Java arena: hand out a slice of it, which that arena's closing invalidates
            return borrowed.asSlice(dataAddress() - borrowed.address(), bytes);
        }
        Arena arena = segmentArena;
        if (arena == null) {
            synchronized (owner) {
                arena = segmentArena;
                if (arena == null) {
                    arena = Arena.ofShared();
                    // the arena's one cleanup action holds this tensor, so every segment of the arena keeps it
                    // reachable: the garbage collector's backstop must not free memory a segment still shows
                    MemorySegment.NULL.reinterpret(0, arena, ignored -> Reference.reachabilityFence(this));
                    owner.segmentArena = new WeakReference<>(arena);
                    LENDERS.put(arena.scope(), new Lender(owner, m.dtype, numel(), dataAddress()));
                    segmentArena = arena;
                }
            }
        }
        checkOpen();
        return MemorySegment.ofAddress(dataAddress()).reinterpret(bytes, arena, null);
    }

    /** The data of a contiguous CPU tensor, valid only while the tensor is open and never handed out. */
    MemorySegment dataSegment() {
        return MemorySegment.ofAddress(dataAddress()).reinterpret(numel() * dtype().byteSize());
    }

    /** A copy of the elements in row-major order, converted to float. */
    public float[] toFloatArray() {
        try (Tensor t = hostCopy(DType.FLOAT32, "toFloatArray")) {
            return t.dataSegment().toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** A copy of the elements in row-major order, converted to double. */
    public double[] toDoubleArray() {
        try (Tensor t = hostCopy(DType.FLOAT64, "toDoubleArray")) {
            return t.dataSegment().toArray(ValueLayout.JAVA_DOUBLE);
        }
    }

    /**
     * A copy of the elements in row-major order, converted to long as libtorch converts: floating values truncated
     * towards zero; NaN, infinities and values beyond the range are undefined in C++ (on x86-64, {@code Long.MIN_VALUE}).
     */
    public long[] toLongArray() {
        try (Tensor t = hostCopy(DType.INT64, "toLongArray")) {
            return t.dataSegment().toArray(ValueLayout.JAVA_LONG);
        }
    }

    /**
     * A copy of the elements in row-major order, converted to int as libtorch converts: int64 values wrap modulo 2^32;
     * floating values are truncated towards zero, with NaN, infinities and values beyond the range undefined in C++
     * (on x86-64, {@code Integer.MIN_VALUE}).
     */
    public int[] toIntArray() {
        try (Tensor t = hostCopy(DType.INT32, "toIntArray")) {
            return t.dataSegment().toArray(ValueLayout.JAVA_INT);
        }
    }

    /** A copy of the elements in row-major order, as booleans (non-zero is true). */
    public boolean[] toBooleanArray() {
        try (Tensor t = hostCopy(DType.BOOL, "toBooleanArray")) {
            byte[] bytes = t.dataSegment().toArray(ValueLayout.JAVA_BYTE);
            boolean[] values = new boolean[bytes.length];
            for (int i = 0; i < bytes.length; i++) {
                values[i] = bytes[i] != 0;
            }
            return values;
        }
    }

    /** A contiguous CPU tensor in {@code dtype} to read the elements from: this one's memory where it already is one. */
    private Tensor hostCopy(DType dtype, String op) {
        if (dtype() == DType.COMPLEX64 || dtype() == DType.COMPLEX128) {
            throw new IllegalArgumentException(op + ": cannot copy complex " + describe() + " to a real array; use viewAsReal() first");
        }
        if (numel() > Integer.MAX_VALUE - 8) { // the most elements a Java array takes
            throw new IllegalArgumentException(op + ": " + describe() + " has " + numel() + " elements, more than a Java"
                    + " array holds; read it in parts (narrow) or, on the CPU, through asSegment()");
        }
        if (device().isCpu() && dtype() == dtype && isContiguous()) {
            return alias();
        }
        return Call.begin(TO_COPY, this).tensor(this).optDtype(dtype).none().optDevice(Device.CPU).none().bool(false)
                .none().tensorResult().contiguousInPlace();
    }

    /** Makes a fresh op result contiguous, closing it if a copy was needed. */
    private Tensor contiguousInPlace() {
        if (isContiguous()) {
            return this;
        }
        try (this) {
            return contiguous();
        }
    }

    /** Shape, dtype, device and the first few values. */
    @Override
    public String toString() {
        if (isClosed()) {
            return "Tensor[closed " + name() + "]";
        }
        Meta m = meta();
        StringBuilder sb = new StringBuilder("Tensor[").append(m.dtype).append(", shape=").append(Arrays.toString(m.shape))
                .append(", ").append(m.device).append("]");
        if (m.dtype == DType.COMPLEX64 || m.dtype == DType.COMPLEX128) {
            return sb.toString();
        }
        long n = numel();
        int shown = (int) Math.min(n, 6);
        try (TensorScope scope = TensorScope.open()) {
            // the first elements lie in a small corner: narrowed to it first, the flat copy is small at any size or
            // layout (an expanded view's whole copy may not even fit in memory)
            Tensor corner = this;
            long inner = 1; // elements per index of the dim, capped at what is shown
            for (int d = m.shape.length - 1; d >= 0 && shown > 0; d--) {
                corner = corner.narrow(d, 0, Math.min(m.shape[d], (shown - 1) / inner + 1));
                inner = m.shape[d] >= shown ? shown : Math.min(shown, inner * m.shape[d]);
            }
            Tensor first = shown == 0 ? null : corner.reshape(-1).narrow(0, 0, shown);
            double[] values = first == null || !m.dtype.isFloatingPoint() ? null : first.toDoubleArray();
            long[] whole = first == null || m.dtype.isFloatingPoint() ? null : first.toLongArray(); // exact past 2^53
            sb.append(" [");
            for (int i = 0; i < shown; i++) {
                sb.append(i > 0 ? ", " : "").append(values != null ? String.format(Locale.ROOT, "%.4g", values[i])
                        : m.dtype == DType.BOOL ? String.valueOf(whole[i] != 0) : String.valueOf(whole[i]));
            }
            sb.append(n > shown ? ", ...]" : "]");
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------------------------------------ views and movement

    /** The same elements in a new shape (one size may be -1); copies only if the layout demands it. */
    public Tensor reshape(long... shape) {
        checkReshape(shape, "reshape");
        long[] target = Shapes.inferSize(shape, numel());
        long[] strides = Shapes.viewStrides(meta().shape, meta().strides, target);
        if (strides != null) {
            return restrided(target, strides, 0);
        }
        return viewResult(Call.begin(RESHAPE, this).tensor(this).ints(shape).tensorResult());
    }

    /** The same memory in a new shape (one size may be -1); the layout must allow it. */
    public Tensor view(long... shape) {
        checkReshape(shape, "view");
        long[] target = Shapes.inferSize(shape, numel());
        long[] strides = Shapes.viewStrides(meta().shape, meta().strides, target);
        if (strides == null) {
            throw new IllegalArgumentException("view: shape " + Arrays.toString(shape) + " does not fit the memory layout of "
                    + describe() + " (strides " + Arrays.toString(meta().strides) + "); use reshape(), which copies when needed");
        }
        return restrided(target, strides, 0);
    }

    private void checkReshape(long[] shape, String op) {
        int inferred = 0;
        for (long s : shape) {
            if (s == -1) {
                inferred++;
            } else if (s < 0) {
                throw new IllegalArgumentException(op + ": invalid size " + s + " in " + Arrays.toString(shape));
            }
        }
        long known = Shapes.knownProduct(shape, op);
        long n = numel();
        if (inferred > 1 || (inferred == 0 && known != n) || (inferred == 1 && (known == 0 || n % known != 0))) {
            throw new IllegalArgumentException(op + ": shape " + Arrays.toString(shape) + " is invalid for " + describe()
                    + " (" + n + " elements)");
        }
    }

    /** Reorders the dimensions: result dim i is this tensor's dim {@code dims[i]}. */
    public Tensor permute(int... dims) {
        int n = dim();
        if (dims.length != n) {
            throw new IllegalArgumentException("permute: " + dims.length + " dims given for " + describe());
        }
        Meta m = meta();
        long[] shape = new long[n];
        long[] strides = new long[n];
        boolean[] seen = new boolean[n];
        for (int i = 0; i < n; i++) {
            int d = Shapes.normDim(dims[i], n, "permute");
            if (seen[d]) {
                throw new IllegalArgumentException("permute: dim " + d + " repeated in " + Arrays.toString(dims));
            }
            seen[d] = true;
            shape[i] = m.shape[d];
            strides[i] = m.strides[d];
        }
        return restrided(shape, strides, 0);
    }

    /** Swaps two dimensions. */
    public Tensor transpose(int dim0, int dim1) {
        int n = dim();
        int d0 = Shapes.normDim(dim0, n, "transpose");
        int d1 = Shapes.normDim(dim1, n, "transpose");
        Meta m = meta();
        long[] shape = m.shape.clone();
        long[] strides = m.strides.clone();
        if (d0 == d1) { // also a 0-d tensor's only choice
            return restrided(shape, strides, 0);
        }
        shape[d0] = m.shape[d1];
        shape[d1] = m.shape[d0];
        strides[d0] = m.strides[d1];
        strides[d1] = m.strides[d0];
        return restrided(shape, strides, 0);
    }

    /**
     * Elements {@code start .. start+length-1} along {@code dim}; a negative {@code start} counts from the end, as in
     * PyTorch.
     */
    public Tensor narrow(int dim, long start, long length) {
        int d = existingDim(dim, "narrow");
        long size = meta().shape[d];
        long from = start < 0 && start >= -size ? start + size : start;
        if (from < 0 || length < 0 || from > size - length) {
            throw new IndexOutOfBoundsException("narrow: [" + start + ", " + start + " + " + length + ") is outside dim "
                    + d + " of size " + size + " of " + describe());
        }
        return narrowed(d, from, length);
    }

    /** Python's {@code t[..., start:end:step, ...]} on {@code dim}; bounds are clamped as Python clamps them. */
    public Tensor slice(int dim, long start, long end, long step) {
        int d = existingDim(dim, "slice");
        if (step <= 0) {
            throw new IllegalArgumentException("slice: step must be positive, got " + step);
        }
        // a step past the dim's size takes one element at most, as that size does (libtorch's count overflows)
        long taken = Math.min(step, Math.max(meta().shape[d], 1));
        if (taken > 1 && Math.abs(meta().strides[d]) > Long.MAX_VALUE / taken) {
            throw new IllegalArgumentException("slice: a step of " + step + " on dim " + d + " of " + describe()
                    + " takes a stride beyond 2^63");
        }
        return viewResult(Call.begin(SLICE, this).tensor(this).i64(d).optI64(start).optI64(end).i64(taken).tensorResult());
    }

    /** The sub-tensor at {@code index} along {@code dim}, which is removed. */
    public Tensor select(int dim, long index) {
        int d = existingDim(dim, "select");
        long size = meta().shape[d];
        if (index < -size || index >= size) {
            throw new IndexOutOfBoundsException("select: index " + index + " is out of range for dim " + d + " of size "
                    + size + " of " + describe());
        }
        Meta m = meta();
        long at = index < 0 ? index + size : index;
        return restrided(without(m.shape, d), without(m.strides, d), offset(at, m.strides[d]));
    }

    /**
     * The diagonal of dims {@code dim1} and {@code dim2}, as {@code torch.diagonal}: entries {@code [i, i + offset]}
     * (above the main diagonal where {@code offset} is positive, below where negative), those two dims removed and the
     * diagonal appended as the last; a view, empty where the offset passes the matrix.
     */
    public Tensor diagonal(long offset, int dim1, int dim2) {
        int d1 = existingDim(dim1, "diagonal");
        int d2 = existingDim(dim2, "diagonal");
        if (d1 == d2) {
            throw new IllegalArgumentException("diagonal: dim1 and dim2 must differ, both are " + d1 + " of " + describe());
        }
        Meta m = meta();
        long length = Math.max(0, offset >= 0 ? Math.min(m.shape[d1], m.shape[d2] - offset)
                : Math.min(m.shape[d1] + offset, m.shape[d2]));
        long start = length == 0 ? 0 : offset >= 0 ? offset(offset, m.strides[d2]) : offset(-offset, m.strides[d1]);
        long[] shape = without(without(m.shape, Math.max(d1, d2)), Math.min(d1, d2));
        long[] strides = without(without(m.strides, Math.max(d1, d2)), Math.min(d1, d2));
        shape = java.util.Arrays.copyOf(shape, shape.length + 1);
        strides = java.util.Arrays.copyOf(strides, strides.length + 1);
        shape[shape.length - 1] = length;
        long step = m.strides[d1] + m.strides[d2];
        if (step < 0) { // both are non-negative: their sum wrapped
            throw new IllegalArgumentException("diagonal: the stride of the diagonal of " + describe() + " would pass"
                    + " 2^63 elements");
        }
        strides[strides.length - 1] = step;
        return restrided(shape, strides, start);
    }

    /** The entries at {@code index} (a 1-d int64 or int32 tensor) along {@code dim}, copied. */
    public Tensor indexSelect(int dim, Tensor index) {
        int d = existingDim(dim, "indexSelect");
        if (index.dim() > 1 || !(index.dtype() == DType.INT64 || index.dtype() == DType.INT32)) {
            throw new IllegalArgumentException("indexSelect: index must be a 1-d int64 or int32 tensor, got " + index.describe());
        }
        checkSameDevice("indexSelect", index);
        checkIndexRange("indexSelect", index, meta().shape[d]);
        return Call.begin(INDEX_SELECT, this, index).tensor(this).i64(d).tensor(index).tensorResult();
    }

    private static long unsqueezedStride(long size, long stride) {
        try {
            return Math.multiplyExact(size, stride);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("unsqueeze: the new dim's stride, " + size + " × " + stride
                    + ", is beyond 2^63");
        }
    }

    /** A new dimension of size 1 at {@code dim}. */
    public Tensor unsqueeze(int dim) {
        int d = Shapes.normNewDim(dim, dim(), "unsqueeze");
        Meta m = meta();
        int n = m.shape.length;
        long[] shape = new long[n + 1];
        long[] strides = new long[n + 1];
        for (int i = 0, j = 0; i <= n; i++) {
            if (i == d) {
                shape[i] = 1;
                strides[i] = d < n ? unsqueezedStride(m.shape[d], m.strides[d]) : 1;
            } else {
                shape[i] = m.shape[j];
                strides[i] = m.strides[j++];
            }
        }
        return restrided(shape, strides, 0);
    }

    /** Removes dimension {@code dim} if its size is 1. */
    public Tensor squeeze(int dim) {
        int d = Shapes.normDim(dim, dim(), "squeeze");
        Meta m = meta();
        if (m.shape.length == 0 || m.shape[d] != 1) {
            return restrided(m.shape.clone(), m.strides.clone(), 0);
        }
        return restrided(without(m.shape, d), without(m.strides, d), 0);
    }

    /** Broadcasts size-1 dimensions to {@code shape} without copying (-1 keeps a size). */
    public Tensor expand(long... shape) {
        long[] own = meta().shape;
        int lead = shape.length - own.length;
        if (lead < 0) {
            throw new IllegalArgumentException("expand: shape " + Arrays.toString(shape) + " has fewer dims than " + describe());
        }
        for (int i = 0; i < shape.length; i++) {
            long have = i < lead ? -2 : own[i - lead];
            boolean ok = i < lead ? shape[i] >= 0 : shape[i] == -1 || shape[i] == have || (have == 1 && shape[i] >= 0);
            if (!ok) {
                throw new IllegalArgumentException("expand: cannot expand " + describe() + " to " + Arrays.toString(shape)
                        + " (only size-1 dims grow; -1 keeps a size and is not allowed for new leading dims)");
            }
        }
        long[] sizes = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            sizes[i] = shape[i] == -1 ? own[i - lead] : shape[i];
        }
        Shapes.knownProduct(sizes, "expand"); // refuses a count past 2^63
        // ATen's geometry: a grown dim reads its one element with stride 0; a new leading dim of size 1 gets the
        // stride it would have if contiguous over the dims after it
        long[] ownStrides = meta().strides;
        long[] strides = new long[shape.length];
        for (int i = shape.length - 1; i >= 0 && own.length > 0; i--) {
            if (i >= lead) {
                strides[i] = sizes[i] == own[i - lead] ? ownStrides[i - lead] : 0;
            } else {
                strides[i] = sizes[i] == 1 ? sizes[i + 1] * strides[i + 1] : 0;
            }
        }
        return restrided(sizes, strides, 0);
    }

    /** This tensor if it is contiguous, else a contiguous copy. */
    public Tensor contiguous() {
        Meta m = meta();
        if (isContiguous()) {
            return alias();
        }
        Tensor copy = empty(m.shape, m.dtype, m.device);
        try (Held held = hold(); Held target = copy.hold()) {
            Native.op(arrakis_torch_h.aoti_torch_copy_(copy.handle(), handle(), 0), "aten::copy_", copy, this);
        }
        return copy;
    }

    /**
     * A copy converted to {@code dtype}, as libtorch converts: to a floating dtype rounded to nearest even; to an integer
     * dtype truncated towards zero (NaN, infinities and values beyond its range are undefined in C++).
     */
    public Tensor to(DType dtype) {
        return to(dtype, device());
    }

    /** A copy on {@code device}. */
    public Tensor to(Device device) {
        return to(dtype(), device);
    }

    /** A copy converted to {@code dtype} on {@code device}. */
    public Tensor to(DType dtype, Device device) {
        device.checkAvailable();
        return Call.begin(TO_COPY, this).tensor(this).optDtype(dtype).none().optDevice(device).none().bool(false).none()
                .tensorResult();
    }

    /**
     * Another handle to this tensor: the same memory and metadata, no copy and no libtorch op. Each handle is closed
     * on its own; the memory lives while one is open.
     */
    public Tensor alias() {
        Tensor other = viewResult(adopt(newHandle()));
        other.meta = meta;
        return other;
    }

    /**
     * Writes {@code source}'s values into this tensor's memory, converting to this tensor's dtype and copying across
     * devices; the shapes must be equal. Returns this tensor.
     */
    public Tensor copyFrom(Tensor source) {
        return copyFrom(source, false);
    }

    /**
     * {@link #copyFrom(Tensor)}; with {@code nonBlocking}, a copy between the host and a GPU is queued on the current
     * stream and the host does not wait for the GPU's earlier work (as PyTorch's {@code copy_(src, non_blocking=True)}).
     * Host memory this library allocates is pageable, which the driver stages before the call returns, so the source
     * may be closed at once.
     */
    public Tensor copyFrom(Tensor source, boolean nonBlocking) {
        if (!Arrays.equals(shape(), source.shape())) {
            throw new IllegalArgumentException("copyFrom: " + source.describe() + " does not fit into " + describe());
        }
        try (Held held = hold(); Held from = source.hold()) {
            Native.op(arrakis_torch_h.aoti_torch_copy_(handle(), source.handle(), nonBlocking ? 1 : 0), "aten::copy_",
                    this, source);
        }
        return this;
    }

    /** A copy with its own memory. */
    public Tensor copy() {
        MemorySegment out = Native.out();
        try (Held held = hold()) {
            Native.op(arrakis_torch_h.aoti_torch_clone(handle(), out), "aoti_torch_clone", this);
        }
        return adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    // ------------------------------------------------------------------------------------------------ arithmetic

    /** Elementwise {@code this + other}, broadcasting. */
    public Tensor add(Tensor other) {
        TypedShims.Path path = checkBinary("add", other);
        if (SmallElementwise.applies(meta(), other.meta())) {
            return small(SmallElementwise.Op.ADD, other);
        }
        if (integralResult(other)) {
            return integralSum(other, false);
        }
        MemorySegment out = Native.out();
        try (Held held = hold(); Held operand = other.hold()) {
            Native.op(TypedShims.addTensor(path, handle(), other.handle(), 1.0, out), "aten::add.Tensor", this, other);
        }
        return adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    /**
     * Elementwise {@code this + alpha · other}, broadcasting, in one op, as {@code torch.add(this, other, alpha=alpha)}:
     * a scaled sum without the scaled copy. An integer result takes only {@code alpha} 1.
     */
    public Tensor add(Tensor other, double alpha) {
        if (alpha == 1.0) {
            return add(other);
        }
        TypedShims.Path path = checkBinary("add", other);
        if (integralResult(other)) {
            throw new IllegalArgumentException("add: alpha " + alpha + " needs a floating-point operand, got "
                    + describe() + " and " + other.describe());
        }
        MemorySegment out = Native.out();
        try (Held held = hold(); Held operand = other.hold()) {
            Native.op(TypedShims.addTensor(path, handle(), other.handle(), alpha, out), "aten::add.Tensor", this, other,
                    alpha);
        }
        return adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    /** Elementwise {@code this - other}, broadcasting. */
    public Tensor sub(Tensor other) {
        checkBinary("sub", other);
        if (SmallElementwise.applies(meta(), other.meta())) {
            return small(SmallElementwise.Op.SUB, other);
        }
        if (integralResult(other)) {
            return integralSum(other, true);
        }
        MemorySegment out = Native.out();
        try (Held held = hold(); Held operand = other.hold()) {
            Native.op(arrakis_torch_h.aoti_torch_aten_subtract_Tensor(handle(), other.handle(), 1.0, out),
                    "aten::sub.Tensor", this, other);
        }
        return adopt(out.get(ValueLayout.JAVA_LONG, 0));
    }

    /** {@code this op other} for tiny operands, in Java; the result has this tensor's metadata. */
    private Tensor small(SmallElementwise.Op op, Tensor other) {
        Meta m = meta();
        long address;
        try (Held held = hold(); Held operand = other.hold()) { // their memory is read in Java
            address = SmallElementwise.compute(op, m, handle(), other.handle());
        }
        Tensor result = adopt(address);
        result.meta = meta;
        return result;
    }

    private boolean integralResult(Tensor other) {
        DType a = dtype();
        DType b = other.dtype();
        return (a.isIntegral() || a == DType.BOOL) && (b.isIntegral() || b == DType.BOOL);
    }

    /**
     * Integer and bool addition. The shims take alpha as a double, which libtorch refuses for integer results, and the
     * 2.10 dispatcher cannot pass a Scalar; so sum the two operands stacked, in the promoted dtype.
     */
    private Tensor integralSum(Tensor other, boolean subtract) {
        if (subtract && (dtype() == DType.BOOL || other.dtype() == DType.BOOL)) {
            throw new IllegalArgumentException("sub: bool tensors cannot be subtracted (as in PyTorch), got " + describe()
                    + " and " + other.describe() + "; use where(...) or convert with to(DType)");
        }
        DType target = promoteIntegral(this, other);
        long[] shape = broadcastShape(subtract ? "sub" : "add", meta().shape, other.meta().shape, other);
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = to(target);
            Tensor b = other.to(target);
            if (a.device().isCpu() != b.device().isCpu()) { // a 0-d CPU operand beside a GPU one, as checkBinary allows
                if (a.device().isCpu()) {
                    a = a.to(b.device());
                } else {
                    b = b.to(a.device());
                }
            }
            a = a.expand(shape);
            b = b.expand(shape);
            Tensor stacked = stack(List.of(a, subtract ? b.neg() : b), 0);
            return scope.keep(Call.begin(SUM_DIM, stacked).tensor(stacked).optInts(new long[] {0}).bool(false)
                    .optDtype(target).tensorResult());
        }
    }

    /**
     * PyTorch's promotion of two integer or bool tensors: a 0-d tensor beside a dimensioned one decides the dtype only
     * where its category is higher (an integer beside bools); otherwise the dimensioned one's dtype is the result's.
     */
    private static DType promoteIntegral(Tensor x, Tensor y) {
        if ((x.dim() == 0) != (y.dim() == 0)) {
            DType dimensioned = (x.dim() == 0 ? y : x).dtype();
            DType zeroDim = (x.dim() == 0 ? x : y).dtype();
            return dimensioned == DType.BOOL && zeroDim != DType.BOOL ? zeroDim : dimensioned;
        }
        return promoteIntegral(x.dtype(), y.dtype());
    }

    /** PyTorch's promotion of two integer or bool dtypes. */
    private static DType promoteIntegral(DType a, DType b) {
        if (a == b || b == DType.BOOL) {
            return a;
        }
        if (a == DType.BOOL) {
            return b;
        }
        if ((a == DType.UINT8 && b == DType.INT8) || (a == DType.INT8 && b == DType.UINT8)) {
            return DType.INT16;
        }
        return a.byteSize() >= b.byteSize() ? a : b;
    }

    /** Elementwise {@code this * other}, broadcasting. */
    public Tensor mul(Tensor other) {
        TypedShims.Path path = checkBinary("mul", other);
        if (SmallElementwise.applies(meta(), other.meta())) {
            return small(SmallElementwise.Op.MUL, other);
        }
        if (path != TypedShims.Path.GENERIC) {
            MemorySegment out = Native.out();
            try (Held held = hold(); Held operand = other.hold()) {
                Native.op(TypedShims.mulTensor(path, handle(), other.handle(), out), "aten::mul.Tensor", this, other);
            }
            return adopt(out.get(ValueLayout.JAVA_LONG, 0));
        }
        return Call.begin(MUL, this, other).tensor(this).tensor(other).tensorResult();
    }

    /** Elementwise true division {@code this / other}, broadcasting. */
    public Tensor div(Tensor other) {
        checkBinary("div", other);
        if (SmallElementwise.applies(meta(), other.meta())) {
            return small(SmallElementwise.Op.DIV, other);
        }
        return Call.begin(DIV, this, other).tensor(this).tensor(other).tensorResult();
    }

    /** Elementwise {@code this + value}. */
    public Tensor add(double value) {
        TypedShims.Path path = TypedShims.of(device());
        if (path != TypedShims.Path.GENERIC) {
            MemorySegment out = Native.out();
            try (Held held = hold()) {
                Native.op(TypedShims.addScalar(path, handle(), value, 1.0, out), "aten::add.Scalar", this, value);
            }
            return adopt(out.get(ValueLayout.JAVA_LONG, 0));
        }
        try (Tensor s = scalarFor(value)) {
            return add(s);
        }
    }

    /** Elementwise {@code this - value}. */
    public Tensor sub(double value) {
        if (dtype() == DType.BOOL) {
            throw new IllegalArgumentException("sub: bool tensors cannot be subtracted from (as in PyTorch), got "
                    + describe() + "; convert with to(DType) first");
        }
        return add(-value);
    }

    /** Elementwise {@code this * value}. */
    public Tensor mul(double value) {
        TypedShims.Path path = TypedShims.of(device());
        if (path != TypedShims.Path.GENERIC) {
            MemorySegment out = Native.out();
            try (Held held = hold()) {
                Native.op(TypedShims.mulScalar(path, handle(), value, out), "aten::mul.Scalar", this, value);
            }
            return adopt(out.get(ValueLayout.JAVA_LONG, 0));
        }
        try (Tensor s = scalarFor(value)) {
            return mul(s);
        }
    }

    /**
     * Elementwise {@code this / value}, as PyTorch divides by a Python number: on a GPU a floating-point tensor is
     * multiplied by {@code 1 / value} (PyTorch's CUDA kernels do the same: one op, within one rounding of true
     * division); on the CPU it is true division, by {@code value} in float32 (float64 for a float64 tensor), except
     * where {@code 1 / value} is exact (a power of two), which multiplies.
     */
    public Tensor div(double value) {
        if (dtype().isFloatingPoint() && (!device().isCpu() || exactReciprocal(value))) {
            return mul(1.0 / value);
        }
        try (Tensor divisor = dtype() == DType.FLOAT64 ? scalar(value) : adopt(Native.scalarFloat32((float) value))) {
            Tensor quotient = div(divisor);
            if (quotient.dtype() == dtype() || !dtype().isFloatingPoint()) {
                return quotient;
            }
            // a 0-dim float16 or bfloat16 tensor divided by the 0-dim float32 divisor promotes; a Python number would
            // not, and PyTorch rounds its float32 quotient to the tensor's dtype once, as this does
            try (quotient) {
                return quotient.to(dtype());
            }
        }
    }

    /** Whether {@code 1 / value} is exact in float32 and float64: a power of two well inside float32's normal range. */
    private static boolean exactReciprocal(double value) {
        int exponent = Math.getExponent(value);
        return Double.isFinite(value) && value != 0 && Math.abs(exponent) < 120
                && Math.abs(value) == Math.scalb(1.0, exponent);
    }

    /** Elementwise {@code this ^ exponent}. */
    public Tensor pow(double exponent) {
        TypedShims.Path path = TypedShims.of(device());
        if (path != TypedShims.Path.GENERIC) {
            MemorySegment out = Native.out();
            try (Held held = hold()) {
                Native.op(TypedShims.powTensorScalar(path, handle(), exponent, out), "aten::pow.Tensor_Scalar", this,
                        exponent);
            }
            return adopt(out.get(ValueLayout.JAVA_LONG, 0));
        }
        try (Tensor s = scalarFor(exponent)) {
            return Call.begin(POW, this, s).tensor(this).tensor(s).tensorResult();
        }
    }

    /**
     * A 0-dim tensor holding {@code value} for a tensor-scalar op, typed so the result has the dtype a Python float
     * would give: this tensor's dtype when it is floating point (a 0-dim tensor never widens a dimensioned one), else
     * float32, the default dtype.
     */
    private Tensor scalarFor(double value) {
        Tensor s = scalar(value);
        DType target = dtype().isFloatingPoint() ? dtype() : DType.FLOAT32;
        if (target == DType.FLOAT64) {
            return s;
        }
        try (s) {
            return s.to(target);
        }
    }

    /** Elementwise {@code min(max(this, min), max)}; a null bound is not applied (one must be given), NaN stays NaN. */
    public Tensor clamp(Double min, Double max) {
        if (min == null && max == null) {
            throw new IllegalArgumentException("clamp: give a min, a max or both");
        }
        try (Tensor lo = min == null ? null : boundFor(min); Tensor hi = max == null ? null : boundFor(max)) {
            return Call.begin(CLAMP, this).tensor(this).optTensor(lo).optTensor(hi).tensorResult();
        }
    }

    /** Elementwise {@code min(max(this, min), max)}, the bounds 0-dim tensors on this tensor's device. */
    public Tensor clampBetween(Tensor min, Tensor max) {
        return Call.begin(CLAMP, this, min, max).tensor(this).optTensor(min).optTensor(max).tensorResult();
    }

    /** A 0-dim bound for clamp: clamp takes no host number with a GPU tensor, so it is made there, without a copy. */
    private Tensor boundFor(double value) {
        if (device().isCpu()) {
            return scalarFor(value);
        }
        return full(new long[0], value, dtype().isFloatingPoint() ? dtype() : DType.FLOAT32, device());
    }

    /** Elementwise {@code -this}. */
    public Tensor neg() {
        if (dtype() == DType.BOOL) {
            throw new IllegalArgumentException("neg: a bool tensor has no negation, got " + describe());
        }
        return unary(NEG);
    }

    /** Elementwise e^x. */
    public Tensor exp() {
        return unary(EXP);
    }

    /** Elementwise e^x - 1, exact near 0 where {@code exp() - 1} cancels. */
    public Tensor expm1() {
        return unary(EXPM1);
    }

    /** Whether each element is greater than {@code value}, as a bool tensor of this shape ({@code torch.gt}). */
    public Tensor gt(double value) {
        if (Double.isNaN(value)) {
            throw new IllegalArgumentException("gt: the value must not be NaN");
        }
        try (Tensor v = scalar(value)) {
            return Call.begin(GT, this, v).tensor(this).tensor(v).tensorResult();
        }
    }

    /** Elementwise natural logarithm. */
    public Tensor log() {
        return unary(LOG);
    }

    /** Elementwise {@code log(1 + x)}, exact near 0 where {@code add(1).log()} rounds x away. */
    public Tensor log1p() {
        return unary(LOG1P);
    }

    /**
     * Elementwise {@code log(1 + e^x)}, x itself above 20, as {@code torch.nn.functional.softplus} computes it: in
     * float32 for a float16 or bfloat16 tensor, rounded once.
     */
    public Tensor softplus() {
        checkFloatingPoint("softplus");
        try (TensorScope steps = TensorScope.open()) {
            boolean reduced = dtype() == DType.BFLOAT16 || dtype() == DType.FLOAT16;
            Tensor x = reduced ? to(DType.FLOAT32) : this;
            Tensor smooth = x.where(x.gt(20.0), x.exp().log1p());
            return steps.keep(reduced ? smooth.to(dtype()) : smooth);
        }
    }

    private void checkFloatingPoint(String op) {
        if (!dtype().isFloatingPoint()) {
            throw new IllegalArgumentException(op + ": needs a floating-point tensor, got " + describe());
        }
    }

    /** Elementwise square root. */
    public Tensor sqrt() {
        return unary(SQRT);
    }

    /** Elementwise 1/sqrt(x). */
    public Tensor rsqrt() {
        return unary(RSQRT);
    }

    /** Elementwise 1/x. */
    public Tensor reciprocal() {
        return unary(RECIPROCAL);
    }

    /** Elementwise |x|. */
    public Tensor abs() {
        return unary(ABS);
    }

    /** Elementwise hyperbolic tangent. */
    public Tensor tanh() {
        return unary(TANH);
    }

    /** Elementwise error function, {@code erf(x) = 2/sqrt(pi) ∫_0^x exp(-t²) dt}. */
    public Tensor erf() {
        return unary(ERF);
    }

    /** Elementwise logistic sigmoid. */
    public Tensor sigmoid() {
        return unary(SIGMOID);
    }

    /** Whether each element is NaN, as a bool tensor of this shape ({@code torch.isnan}). */
    public Tensor isNan() {
        return unary(IS_NAN);
    }

    /** Elementwise max(x, 0). */
    public Tensor relu() {
        return unary(RELU);
    }

    /** Elementwise x·sigmoid(x). */
    public Tensor silu() {
        return unary(SILU);
    }

    /** Elementwise cosine. */
    public Tensor cos() {
        return unary(COS);
    }

    /** Elementwise sine. */
    public Tensor sin() {
        return unary(SIN);
    }

    /** Exact GELU, x·Φ(x). */
    public Tensor gelu() {
        return gelu(false);
    }

    /** GELU, exact or with the tanh approximation (GPT-2's {@code gelu_new}). */
    public Tensor gelu(boolean tanhApproximation) {
        checkFloating("gelu");
        return Call.begin(GELU, this).tensor(this).str(tanhApproximation ? "tanh" : "none").tensorResult();
    }

    private Tensor unary(Op op) {
        return Call.begin(op, this).tensor(this).tensorResult();
    }

    // ------------------------------------------------------------------------------------------------ linear algebra

    /** Matrix product with NumPy broadcasting (1-d, 2-d and batched operands), as {@code torch.matmul}. */
    public Tensor matmul(Tensor other) {
        long[] a = meta().shape;
        long[] b = other.meta().shape;
        if (a.length == 0 || b.length == 0) {
            throw new IllegalArgumentException("matmul: both operands need at least 1 dim, got " + describe() + " and "
                    + other.describe());
        }
        long inner = b.length == 1 ? b[0] : b[b.length - 2];
        if (a[a.length - 1] != inner) {
            throw new IllegalArgumentException("matmul: inner dimensions differ: " + describe() + " @ " + other.describe()
                    + " (" + a[a.length - 1] + " vs " + inner + ")");
        }
        if (a.length > 2 || b.length > 2) {
            broadcastShape("matmul", Arrays.copyOf(a, Math.max(a.length - 2, 0)), Arrays.copyOf(b, Math.max(b.length - 2, 0)), other);
        }
        checkSameDtype("matmul", other);
        checkSameDevice("matmul", other);
        String batchLetters = "abcdefghijklmnopqrstuvw"; // x, y and z name the matrices' dims
        if (a.length == b.length && a.length >= 3 && a.length - 2 <= batchLetters.length()
                && Arrays.equals(a, 0, a.length - 2, b, 0, b.length - 2)) { // batches of matrices, no broadcasting
            String batch = batchLetters.substring(0, a.length - 2);
            Tensor batched = OpenBlasBatch.einsum(batch + "xy," + batch + "yz->" + batch + "xz", this, other, 1.0);
            if (batched != null) {
                return batched;
            }
        }
        return Call.begin(MATMUL, this, other).tensor(this).tensor(other).tensorResult();
    }

    /** {@code this @ weightᵀ + bias}, as {@code torch.nn.functional.linear}; {@code bias} may be null. */
    public Tensor linear(Tensor weight, Tensor bias) {
        checkLinear(weight, bias);
        return Call.begin(LINEAR, this, weight, bias).tensor(this).tensor(weight).optTensor(bias).tensorResult();
    }

    void checkLinear(Tensor weight, Tensor bias) {
        long[] x = meta().shape;
        long[] w = weight.meta().shape;
        if (x.length == 0 || w.length != 2 || x[x.length - 1] != w[1]) {
            throw new IllegalArgumentException("linear: input " + describe() + " does not fit weight " + weight.describe()
                    + " (weight must be [out, in] with in = input's last size)");
        }
        if (bias != null && (bias.dim() != 1 || bias.size(0) != w[0])) {
            throw new IllegalArgumentException("linear: bias " + bias.describe() + " must be [" + w[0] + "]");
        }
        checkSameDtype("linear", weight);
        checkSameDevice("linear", weight);
        if (bias != null) {
            checkSameDtype("linear", bias);
            checkSameDevice("linear", bias);
        }
    }

    /**
     * The solution {@code X} of {@code this · X = b} for a triangular {@code this [..., n, n]} and
     * {@code b [..., n, k]}, batch dims broadcast, as
     * {@code torch.linalg.solve_triangular(this, b, upper=upper, unitriangular=...)}: only the triangle {@code upper}
     * names is read, and with {@code unitriangular} its diagonal is taken as ones.
     */
    public Tensor solveTriangular(Tensor b, boolean upper, boolean unitriangular) {
        long[] a = meta().shape;
        long[] r = b.meta().shape;
        if (a.length < 2 || r.length < 2 || a[a.length - 1] != a[a.length - 2] || r[r.length - 2] != a[a.length - 1]) {
            throw new IllegalArgumentException("solveTriangular: needs [..., n, n] and [..., n, k], got " + describe()
                    + " and " + b.describe());
        }
        broadcastShape("solveTriangular", Arrays.copyOf(a, a.length - 2), Arrays.copyOf(r, r.length - 2), b);
        checkFloatingPoint("solveTriangular");
        checkSameDtype("solveTriangular", b);
        checkSameDevice("solveTriangular", b);
        return Call.begin(SOLVE_TRIANGULAR, this, b).tensor(this).tensor(b).bool(upper).bool(true).bool(unitriangular)
                .tensorResult();
    }

    /**
     * A one-dimensional convolution of {@code this [batch, channels, length]} by {@code weight
     * [out, channels / groups, kernel]}, stride 1, {@code padding} zeros on both ends, no bias, as
     * {@code torch.nn.functional.conv1d}: {@code [batch, out, length + 2·padding − kernel + 1]}.
     */
    public Tensor conv1d(Tensor weight, long padding, long groups) {
        return conv1d(weight, null, padding, groups);
    }

    /** {@link #conv1d(Tensor, long, long)} with a {@code bias [out]} added to each output channel, or null for none. */
    public Tensor conv1d(Tensor weight, Tensor bias, long padding, long groups) {
        long[] x = meta().shape;
        long[] w = weight.meta().shape;
        if (x.length != 3 || w.length != 3 || groups < 1 || x[1] % groups != 0 || w[0] % groups != 0
                || w[1] * groups != x[1] || padding < 0 || x[2] + 2 * padding < w[2]) {
            throw new IllegalArgumentException("conv1d: input " + describe() + " does not fit weight "
                    + weight.describe() + " with " + groups + " groups and padding " + padding + " (input [batch,"
                    + " channels, length], weight [out, channels / groups, kernel], kernel <= padded length)");
        }
        if (bias != null && !java.util.Arrays.equals(bias.meta().shape, new long[] {w[0]})) {
            throw new IllegalArgumentException("conv1d: the bias " + bias.describe() + " must be [" + w[0]
                    + "], one per output channel of weight " + weight.describe());
        }
        checkFloatingPoint("conv1d");
        checkSameDtype("conv1d", weight);
        checkSameDevice("conv1d", weight);
        if (bias != null) {
            checkSameDtype("conv1d", bias);
            checkSameDevice("conv1d", bias);
        }
        return Call.begin(CONV1D, this, weight, bias).tensor(this).tensor(weight).optTensor(bias).ints(1)
                .ints(padding).ints(1).i64(groups).tensorResult();
    }

    /** Batched matrix product of {@code [b, n, m] @ [b, m, p]}. */
    public Tensor bmm(Tensor other) {
        long[] a = meta().shape;
        long[] b = other.meta().shape;
        if (a.length != 3 || b.length != 3 || a[0] != b[0] || a[2] != b[1]) {
            throw new IllegalArgumentException("bmm: needs [b, n, m] and [b, m, p], got " + describe() + " and " + other.describe());
        }
        checkSameDtype("bmm", other);
        checkSameDevice("bmm", other);
        Tensor batched = OpenBlasBatch.einsum("bij,bjk->bik", this, other, 1.0);
        if (batched != null) {
            return batched;
        }
        return Call.begin(BMM, this, other).tensor(this).tensor(other).tensorResult();
    }

    /** Einstein summation, as {@code torch.einsum(equation, operands...)}. */
    public static Tensor einsum(String equation, Tensor... operands) {
        if (operands.length == 0) {
            throw new IllegalArgumentException("einsum: no operands for '" + equation + "'");
        }
        String inputs = equation.contains("->") ? equation.substring(0, equation.indexOf("->")) : equation;
        String[] terms = inputs.split(",", -1);
        if (terms.length != operands.length) {
            throw new IllegalArgumentException("einsum: '" + equation + "' has " + terms.length + " operand terms but "
                    + operands.length + " tensors were given");
        }
        for (int i = 0; i < operands.length; i++) {
            String term = terms[i].replace(" ", ""); // libtorch skips spaces anywhere in the equation
            if (!term.contains("...") && term.length() != operands[i].dim()) {
                throw new IllegalArgumentException("einsum: term '" + term + "' of '" + equation + "' names "
                        + term.length() + " dims but operand " + i + " is " + operands[i].describe());
            }
            operands[0].checkSameDevice("einsum", operands[i]);
            operands[0].checkSameDtype("einsum", operands[i]);
        }
        checkEinsumSubscripts(equation, terms);
        checkEinsumSizes(equation, terms, operands);
        if (operands.length == 2) {
            Tensor batched = OpenBlasBatch.einsum(equation, operands[0], operands[1], 1.0);
            if (batched != null) {
                return batched;
            }
        }
        Tensor result = Call.begin(EINSUM, operands).str(equation).tensors(List.of(operands)).none().tensorResult();
        // with one operand and nothing summed, libtorch returns a view of it (a permutation or a diagonal)
        return operands.length == 1 ? operands[0].viewResult(result) : result;
    }

    /**
     * Refuses what libtorch's einsum would: subscripts other than letters (and one {@code ...} per term), and an output
     * subscript that no operand has or that appears twice.
     */
    private static void checkEinsumSubscripts(String equation, String[] terms) {
        java.util.Set<Character> inputLabels = new java.util.HashSet<>();
        for (String term : terms) {
            inputLabels.addAll(einsumLabels(equation, term));
        }
        if (!equation.contains("->")) {
            return;
        }
        String output = equation.substring(equation.indexOf("->") + 2);
        List<Character> outputLabels = einsumLabels(equation, output);
        for (int i = 0; i < outputLabels.size(); i++) {
            char label = outputLabels.get(i);
            if (!inputLabels.contains(label)) {
                throw new IllegalArgumentException("einsum: output subscript " + label + " of '" + equation
                        + "' is no operand's");
            }
            if (outputLabels.subList(0, i).contains(label)) {
                throw new IllegalArgumentException("einsum: output subscript " + label + " appears twice in '"
                        + equation + "'");
            }
        }
    }

    /** Refuses, as libtorch would, a subscript whose dims differ in size, other than by a size of 1 broadcasting. */
    private static void checkEinsumSizes(String equation, String[] terms, Tensor[] operands) {
        java.util.Map<Character, long[]> seen = new java.util.HashMap<>(); // subscript -> {size, operand}
        for (int i = 0; i < operands.length; i++) {
            String term = terms[i];
            int ellipsis = term.indexOf("...");
            List<Character> before = einsumLabels(equation, ellipsis < 0 ? term : term.substring(0, ellipsis));
            List<Character> after = ellipsis < 0 ? List.of() : einsumLabels(equation, term.substring(ellipsis + 3));
            long[] shape = operands[i].shape();
            if (shape.length < before.size() + after.size()) {
                throw new IllegalArgumentException("einsum: term '" + term + "' of '" + equation + "' names at least "
                        + (before.size() + after.size()) + " dims but operand " + i + " is " + operands[i].describe());
            }
            for (int k = 0; k < before.size() + after.size(); k++) {
                char label = k < before.size() ? before.get(k) : after.get(k - before.size());
                long size = shape[k < before.size() ? k : shape.length - after.size() + (k - before.size())];
                long[] earlier = seen.get(label);
                if (earlier == null || earlier[0] == 1) {
                    seen.put(label, new long[] {size, i});
                } else if (size != 1 && size != earlier[0]) {
                    throw new IllegalArgumentException("einsum: subscript " + label + " of '" + equation + "' is "
                            + earlier[0] + " long in operand " + earlier[1] + " but " + size + " in operand " + i + " "
                            + operands[i].describe());
                }
            }
        }
    }

    /**
     * The letters of one term of {@code equation}, which must be letters, spaces and at most one {@code ...} (spaces
     * may not split it).
     */
    private static List<Character> einsumLabels(String equation, String term) {
        int ellipsis = term.indexOf("...");
        String letters = ellipsis < 0 ? term : term.substring(0, ellipsis) + term.substring(ellipsis + 3);
        letters = letters.replace(" ", "");
        List<Character> labels = new ArrayList<>();
        for (char ch : letters.toCharArray()) {
            if (!(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z')) {
                throw new IllegalArgumentException("einsum: subscripts are letters (and one '...' per term); '" + term
                        + "' of '" + equation + "' has '" + ch + "'");
            }
            labels.add(ch);
        }
        return labels;
    }

    /**
     * {@code einsum(equation, left, right).mul(scale)} with {@code fill} (a 0-dim CPU tensor, read as a number) where
     * {@code mask} (bool, broadcasting to the product) is true, as {@code where} would choose it: an explicit attention's
     * scores. The product is filled in place, where {@code where} would write a tensor of the scores' size once more,
     * and where OpenBLAS multiplies (CPU, float32 and float64) the scale is the product's own factor.
     */
    public static Tensor einsumMasked(String equation, Tensor left, Tensor right, double scale, Tensor mask,
                                      Tensor fill) {
        java.util.Objects.requireNonNull(mask, "mask");
        java.util.Objects.requireNonNull(fill, "fill");
        if (mask.dtype() != DType.BOOL) {
            throw new IllegalArgumentException("einsumMasked: mask must be bool, got " + mask.describe());
        }
        if (fill.dim() != 0 || !fill.device().isCpu()) {
            throw new IllegalArgumentException("einsumMasked: fill must be a 0-dim CPU tensor, got " + fill.describe());
        }
        left.checkSameDevice("einsumMasked", right);
        left.checkSameDevice("einsumMasked", mask);
        if (!Double.isFinite(scale)) {
            throw new IllegalArgumentException("einsumMasked: the scale must be finite, got " + scale);
        }
        double value = fill.item();
        checkFillFits("einsumMasked", value, left.dtype());
        Tensor product = OpenBlasBatch.einsum(equation, left, right, scale);
        if (product == null) {
            product = einsum(equation, left, right); // two operands: new memory, never a view of theirs
            if (!product.dtype().isFloatingPoint()) {
                product.close();
                throw new IllegalArgumentException("einsumMasked: needs floating-point operands, got " + left.describe());
            }
            if (scale != 1.0) {
                try (Tensor unscaled = product) {
                    product = unscaled.mul(scale);
                }
            }
        }
        long[] target = product.broadcastShape("einsumMasked", product.meta().shape, mask.meta().shape, mask);
        if (!Arrays.equals(target, product.meta().shape)) {
            String message = "einsumMasked: mask " + mask.describe() + " must broadcast to the product " + product.describe();
            product.close();
            throw new IllegalArgumentException(message);
        }
        // an integer fill goes through libtorch, which rounds it to the product's dtype once, not through a double
        if (fill.dtype().isFloatingPoint() && MatrixMaskFill.applies(product.meta(), mask.meta())) {
            MatrixMaskFill.fill(product, mask, value);
            return product;
        }
        // the op returns the product again, under a handle of its own
        Call.begin(MASKED_FILL_, product, mask, fill).tensor(product).tensor(mask).tensor(fill).tensorResult().close();
        return product;
    }

    /** The reduced singular value decomposition {@code this = U diag(S) Vh}; returns [U, S, Vh]. */
    public List<Tensor> svd() {
        if (dim() < 2 || !dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("svd: needs a floating-point matrix (or batch of them), got " + describe());
        }
        if (numel() > 0) {
            try (Tensor magnitude = abs(); Tensor largest = magnitude.max()) {
                if (!Double.isFinite(largest.item())) { // LAPACK's iteration never ends on an infinite entry
                    throw new IllegalArgumentException("svd: the matrix has a NaN or infinite entry: " + describe());
                }
            }
        }
        Call call = Call.begin(SVD, this).tensor(this).bool(false).optStr(null).run();
        return List.of(call.tensorAt(0), call.tensorAt(1), call.tensorAt(2));
    }

    /**
     * Eigen-decomposition of a symmetric matrix (or batch of them), read from the lower triangle: {@code [eigenvalues
     * (ascending), eigenvectors (columns)]}, so that {@code A = V diag(λ) Vᵀ}.
     */
    public List<Tensor> eigh() {
        long[] s = meta().shape;
        if (s.length < 2 || s[s.length - 1] != s[s.length - 2] || !dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("eigh: needs a square floating-point matrix (or batch of them), got " + describe());
        }
        if (dtype() == DType.FLOAT16 || dtype() == DType.BFLOAT16) {
            throw new IllegalArgumentException("eigh: needs float32 or float64 (LAPACK has no " + dtype() + "), got " + describe());
        }
        Call call = Call.begin(EIGH, this).tensor(this).str("L").run();
        return List.of(call.tensorAt(0), call.tensorAt(1));
    }

    /**
     * The lower-triangular Cholesky factor L of a symmetric positive-definite matrix (or batch of them), {@code A = L Lᵀ},
     * read from the lower triangle.
     *
     * @throws IllegalArgumentException when a matrix is not positive definite (naming the first such matrix of the batch)
     */
    public Tensor cholesky() {
        long[] s = meta().shape;
        if (s.length < 2 || s[s.length - 1] != s[s.length - 2] || !dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("cholesky: needs a square floating-point matrix (or batch of them), got " + describe());
        }
        if (dtype() == DType.FLOAT16 || dtype() == DType.BFLOAT16) {
            throw new IllegalArgumentException("cholesky: needs float32 or float64 (LAPACK has no " + dtype() + "), got " + describe());
        }
        Call call = Call.begin(CHOLESKY_EX, this).tensor(this).bool(false).bool(false).run();
        Tensor l = call.tensorAt(0);
        try (Tensor info = call.tensorAt(1)) {
            long[] failed = info.toLongArray();
            for (int i = 0; i < failed.length; i++) {
                if (failed[i] != 0) {
                    l.close();
                    throw new IllegalArgumentException("cholesky: " + (failed.length > 1 ? "matrix " + i + " of " : "")
                            + describe() + " is not positive definite (its leading minor of order " + failed[i]
                            + " is not positive)");
                }
            }
        }
        return l;
    }

    /** The eigenvalues of a square matrix, complex in general ({@link #viewAsReal()} splits them). */
    public Tensor eigvals() {
        long[] s = meta().shape;
        if (s.length < 2 || s[s.length - 1] != s[s.length - 2] || !dtype().isFloatingPoint()) {
            throw new IllegalArgumentException("eigvals: needs a square floating-point matrix, got " + describe());
        }
        return unary(EIGVALS);
    }

    /** A complex tensor as real, with a trailing dimension of size 2 holding (real, imaginary). */
    public Tensor viewAsReal() {
        if (dtype() != DType.COMPLEX64 && dtype() != DType.COMPLEX128) {
            throw new IllegalArgumentException("viewAsReal: needs a complex tensor, got " + describe());
        }
        return viewResult(unary(VIEW_AS_REAL));
    }

    /** Frobenius norm of all elements (the 2-norm of the flattened tensor), as a 0-dim tensor. */
    public Tensor norm() {
        checkFloating("norm");
        if (dim() == 0) {
            return abs();
        }
        int[] all = new int[dim()];
        Arrays.setAll(all, i -> i);
        return norm(all, false);
    }

    /** Vector 2-norm along {@code dim}. */
    public Tensor norm(int dim, boolean keepDim) {
        return norm(new int[] {dim}, keepDim);
    }

    /**
     * 2-norm over the dims {@code dims} together (the Frobenius norm of each sub-tensor they span), in one pass; CPU
     * reductions of float32 and narrower accumulate in float64.
     */
    public Tensor norm(int[] dims, boolean keepDim) {
        checkFloating("norm");
        if (dims.length == 0) {
            throw new IllegalArgumentException("norm: needs at least one dim, got none for " + describe());
        }
        long[] normalized = new long[dims.length];
        for (int i = 0; i < dims.length; i++) {
            normalized[i] = Shapes.normDim(dims[i], dim(), "norm");
            for (int j = 0; j < i; j++) {
                if (normalized[j] == normalized[i]) {
                    throw new IllegalArgumentException("norm: dim " + dims[i] + " appears twice in "
                            + Arrays.toString(dims) + " for " + describe());
                }
            }
        }
        return Call.begin(NORM_DIMS, this).tensor(this).none().ints(normalized).bool(keepDim).tensorResult();
    }

    /** Whether |this − other| ≤ atol + rtol·|other| everywhere, as {@code torch.allclose}. */
    public boolean allclose(Tensor other, double rtol, double atol) {
        broadcastShape("allclose", meta().shape, other.meta().shape, other);
        checkSameDtype("allclose", other);
        checkSameDevice("allclose", other);
        return Call.begin(ALLCLOSE, this, other).tensor(this).tensor(other).f64(rtol).f64(atol).bool(false).run().boolAt(0);
    }

    // ------------------------------------------------------------------------------------------------ neural-network ops

    /** Softmax along {@code dim}. */
    public Tensor softmax(int dim) {
        checkFloating("softmax");
        int d = Shapes.normDim(dim, dim(), "softmax");
        return Call.begin(SOFTMAX, this).tensor(this).i64(d).optDtype(null).fitTeam(this, numel(), SmallOps.ROW_GRAIN)
                .tensorResult();
    }

    /** Log-softmax along {@code dim}. */
    public Tensor logSoftmax(int dim) {
        checkFloating("logSoftmax");
        int d = Shapes.normDim(dim, dim(), "logSoftmax");
        return Call.begin(LOG_SOFTMAX, this).tensor(this).i64(d).optDtype(null).tensorResult();
    }

    /** Layer normalisation over the last dimension; {@code weight} and {@code bias} may be null. */
    public Tensor layerNorm(Tensor weight, Tensor bias, double eps) {
        long[] normalized = checkNormWeights("layerNorm", weight, bias);
        return Call.begin(LAYER_NORM, this, weight, bias).tensor(this).ints(normalized).optTensor(weight).optTensor(bias)
                .f64(eps).bool(true).fitTeam(this, numel(), SmallOps.ROW_GRAIN).tensorResult();
    }

    /**
     * {@link #layerNorm}, and what it divided each row by: [output, scale], the scale {@code sqrt(var + eps)} of shape
     * {@code [..., 1]}, in the dtype libtorch keeps these statistics in: for float16 and bfloat16 input, float32 on a
     * GPU and the input's dtype on the CPU.
     */
    public List<Tensor> layerNormAndScale(Tensor weight, Tensor bias, double eps) {
        long[] normalized = checkNormWeights("layerNormAndScale", weight, bias);
        Call call = Call.begin(NATIVE_LAYER_NORM, this, weight, bias).tensor(this).ints(normalized).optTensor(weight)
                .optTensor(bias).f64(eps).fitTeam(this, numel(), SmallOps.ROW_GRAIN).run();
        Tensor out = call.tensorAt(0);
        call.tensorAt(1).close(); // the mean
        return List.of(out, reciprocalOf(call.tensorAt(2)));
    }

    /**
     * {@link #rmsNorm}, and what it divided each row by: [output, scale], the scale {@code sqrt(mean(x²) + eps)} of
     * shape {@code [..., 1]}, in float32 for float16 and bfloat16 input (whose statistics libtorch computes in float32).
     */
    public List<Tensor> rmsNormAndScale(Tensor weight, double eps) {
        long[] normalized = checkNormWeights("rmsNormAndScale", weight, null);
        Call call = Call.begin(FUSED_RMS_NORM, this, weight).tensor(this).ints(normalized).optTensor(weight).optF64(eps)
                .run();
        return List.of(call.tensorAt(0), reciprocalOf(call.tensorAt(1)));
    }

    /** {@code 1 / rstd}, closing {@code rstd}. */
    private static Tensor reciprocalOf(Tensor rstd) {
        try (rstd) {
            return rstd.reciprocal();
        }
    }

    /** RMS normalisation over the last dimension, {@code w · x / sqrt(mean(x²) + eps)}; {@code weight} may be null. */
    public Tensor rmsNorm(Tensor weight, double eps) {
        long[] normalized = checkNormWeights("rmsNorm", weight, null);
        return Call.begin(RMS_NORM, this, weight).tensor(this).ints(normalized).optTensor(weight).optF64(eps).tensorResult();
    }

    private long[] checkNormWeights(String op, Tensor weight, Tensor bias) {
        long[] s = meta().shape;
        if (s.length == 0) {
            throw new IllegalArgumentException(op + ": needs at least 1 dim, got " + describe());
        }
        long last = s[s.length - 1];
        for (Tensor p : new Tensor[] {weight, bias}) {
            if (p != null) {
                if (p.dim() != 1 || p.size(0) != last) {
                    throw new IllegalArgumentException(op + ": weight/bias " + p.describe() + " must be [" + last
                            + "] to normalise " + describe());
                }
                checkSameDevice(op, p);
                checkSameDtype(op, p);
            }
        }
        return new long[] {last};
    }

    /**
     * Rows of this {@code [vocab, d]} table at the int64 or int32 {@code indices}, as
     * {@code torch.nn.functional.embedding}. Indices on the host serve a table on a GPU too: they are checked there and
     * copied over without waiting for the GPU. Indices already on a GPU are checked by reading them back, which waits
     * for the GPU; pass host indices where that matters.
     */
    public Tensor embedding(Tensor indices) {
        if (dim() != 2) {
            throw new IllegalArgumentException("embedding: the table must be 2-d, got " + describe());
        }
        if (indices.dtype() != DType.INT64 && indices.dtype() != DType.INT32) {
            throw new IllegalArgumentException("embedding: indices must be int64 or int32, got " + indices.describe());
        }
        Device device = device();
        if (!indices.device().isCpu()) {
            checkSameDevice("embedding", indices);
        }
        checkIndexRange("embedding", indices, meta().shape[0]);
        if (!indices.device().equals(device)) {
            try (Tensor moved = Call.begin(TO_COPY, indices).tensor(indices).none().none().optDevice(device).none()
                    .bool(true).none().tensorResult()) {
                return Call.begin(EMBEDDING, this, moved).tensor(this).tensor(moved).i64(-1).bool(false).bool(false).tensorResult();
            }
        }
        return Call.begin(EMBEDDING, this, indices).tensor(this).tensor(indices).i64(-1).bool(false).bool(false).tensorResult();
    }

    /**
     * Scaled dot-product attention over {@code [..., seq, d]} query, key and value: softmax(QKᵀ·scale + mask)·V.
     * With {@code [..., heads, seq, d]} operands, keys and values with fewer heads than the query, a divisor of its
     * heads, are grouped-query attention: query head {@code h} reads key and value head {@code h / (heads / kvHeads)},
     * without copies. libtorch picks the kernel (flash, memory-efficient, cuDNN or math). A query whose every key the
     * mask forbids gets 0 (libtorch 2.10's kernels), where {@link #softmax} of its scores is NaN.
     *
     * @param mask null, a bool mask (true = attend) or an additive float mask, broadcastable to the scores
     * @param causal whether to apply a causal mask (not together with {@code mask})
     * @param scale the score scale, or null for 1/sqrt(d)
     */
    public static Tensor scaledDotProductAttention(Tensor query, Tensor key, Tensor value, Tensor mask, boolean causal, Double scale) {
        long[] q = query.meta().shape;
        long[] k = key.meta().shape;
        long[] v = value.meta().shape;
        if (q.length < 2 || k.length != q.length || v.length != q.length || q[q.length - 1] != k[k.length - 1]
                || k[k.length - 2] != v[v.length - 2]) {
            throw new IllegalArgumentException("scaledDotProductAttention: need [..., Lq, d], [..., Lk, d], [..., Lk, dv];"
                    + " got " + query.describe() + ", " + key.describe() + ", " + value.describe());
        }
        if (causal && mask != null) {
            throw new IllegalArgumentException("scaledDotProductAttention: give a mask or causal=true, not both");
        }
        if (scale != null && !Double.isFinite(scale)) { // libtorch's kernels give zeros for a NaN scale
            throw new IllegalArgumentException("scaledDotProductAttention: the scale must be finite, got " + scale);
        }
        int batchDims = Math.max(0, q.length - 3);
        long[] batch = query.broadcastShape("scaledDotProductAttention", Arrays.copyOf(q, batchDims),
                Arrays.copyOf(k, batchDims), key);
        query.broadcastShape("scaledDotProductAttention", batch, Arrays.copyOf(v, batchDims), value);
        boolean grouped = q.length >= 3 && q[q.length - 3] != k[k.length - 3];
        if (q.length >= 3 && k[k.length - 3] != v[v.length - 3]) {
            throw new IllegalArgumentException("scaledDotProductAttention: " + k[k.length - 3] + " key heads and "
                    + v[v.length - 3] + " value heads differ (attention, grouped-query attention too, needs as many"
                    + " of each); got " + query.describe() + ", " + key.describe() + ", " + value.describe());
        }
        if (grouped && (k[k.length - 3] == 0 || q[q.length - 3] % k[k.length - 3] != 0)) {
            throw new IllegalArgumentException("scaledDotProductAttention: " + k[k.length - 3] + " key and " + v[v.length - 3]
                    + " value heads cannot serve " + q[q.length - 3] + " query heads (grouped-query attention needs equal"
                    + " key and value heads dividing the query heads); got " + query.describe() + ", " + key.describe()
                    + ", " + value.describe());
        }
        query.checkSameDtype("scaledDotProductAttention", key);
        query.checkSameDtype("scaledDotProductAttention", value);
        query.checkSameDevice("scaledDotProductAttention", key);
        query.checkSameDevice("scaledDotProductAttention", value);
        if (mask != null) {
            query.checkSameDevice("scaledDotProductAttention", mask);
            if (mask.dim() < 2) {
                throw new IllegalArgumentException("scaledDotProductAttention: the mask needs at least the 2 dims"
                        + " [..., Lq, Lk], got " + mask.describe());
            }
            if (mask.dtype() != DType.BOOL && mask.dtype() != query.dtype()) {
                throw new IllegalArgumentException("scaledDotProductAttention: the mask must be bool or " + query.dtype()
                        + " like the query, got " + mask.describe());
            }
            long[] scores = Arrays.copyOf(q, q.length);
            scores[q.length - 1] = k[k.length - 2];
            long[] joint = query.broadcastShape("scaledDotProductAttention", scores, mask.meta().shape, mask);
            if (!Arrays.equals(joint, scores)) {
                throw new IllegalArgumentException("scaledDotProductAttention: mask " + mask.describe()
                        + " must broadcast to the scores' shape " + Arrays.toString(scores));
            }
        }
        long keys = Math.max(1, k[k.length - 2]);
        long work = query.numel() > Long.MAX_VALUE / keys ? Long.MAX_VALUE : query.numel() * keys; // multiply-adds of q·kᵀ
        return Call.begin(SDPA, query, key, value, mask).tensor(query).tensor(key).tensor(value).optTensor(mask).f64(0.0)
                .bool(causal).optF64(scale).bool(grouped).fitTeam(query, work, SmallOps.ATTENTION_GRAIN)
                .blasInsideRegions(query).tensorResult();
    }

    // ------------------------------------------------------------------------------------------------ combining and masking

    /** Joins tensors along an existing dimension. */
    public static Tensor cat(List<Tensor> tensors, int dim) {
        checkJoin("cat", tensors, dim, false);
        return Call.begin(CAT, tensors.toArray(Tensor[]::new)).tensors(tensors).i64(dim).tensorResult();
    }

    /** Joins equally shaped tensors along a new dimension. */
    public static Tensor stack(List<Tensor> tensors, int dim) {
        checkJoin("stack", tensors, dim, true);
        return Call.begin(STACK, tensors.toArray(Tensor[]::new)).tensors(tensors).i64(dim).tensorResult();
    }

    private static void checkJoin(String op, List<Tensor> tensors, int dim, boolean newDim) {
        if (tensors.isEmpty()) {
            throw new IllegalArgumentException(op + ": no tensors");
        }
        Tensor first = tensors.get(0);
        long[] s0 = first.meta().shape;
        if (!newDim && s0.length == 0) {
            throw new IllegalArgumentException(op + ": 0-d tensors cannot be concatenated; use stack, or unsqueeze them");
        }
        int d = newDim ? Shapes.normNewDim(dim, s0.length, op) : Shapes.normDim(dim, s0.length, op);
        for (Tensor t : tensors) {
            long[] s = t.meta().shape;
            boolean fits = s.length == s0.length;
            for (int i = 0; fits && i < s.length; i++) {
                fits = s[i] == s0[i] || (!newDim && i == d);
            }
            if (!fits) {
                throw new IllegalArgumentException(op + ": " + t.describe() + " does not fit " + first.describe()
                        + (newDim ? " (all shapes must be equal)" : " (shapes may differ only in dim " + d + ")"));
            }
            first.checkSameDtype(op, t);
            first.checkSameDevice(op, t);
        }
        long[] joined = new long[s0.length + (newDim ? 1 : 0)];
        System.arraycopy(s0, 0, joined, 0, d);
        System.arraycopy(s0, d, joined, newDim ? d + 1 : d, s0.length - d);
        if (newDim) {
            joined[d] = tensors.size();
        } else {
            joined[d] = 0;
            for (Tensor t : tensors) {
                try {
                    joined[d] = Math.addExact(joined[d], t.meta().shape[d]);
                } catch (ArithmeticException e) {
                    throw new IllegalArgumentException(op + ": the sizes of dim " + d + " add up past 2^63");
                }
            }
        }
        Shapes.numel(joined, op);
    }

    /** Splits into pieces of {@code splitSize} along {@code dim} (the last may be smaller); views. */
    public List<Tensor> split(long splitSize, int dim) {
        int d = existingDim(dim, "split");
        long size = meta().shape[d];
        if (splitSize < 0 || splitSize == 0 && size != 0) { // PyTorch's rule: 0 only for a dim of size 0
            throw new IllegalArgumentException("split: size must be positive (or 0 for a dim of size 0), got "
                    + splitSize + " for dim " + d + " of " + describe());
        }
        return pieces(d, splitSize, splitSize == 0 ? 1 : Math.max(Math.ceilDiv(size, splitSize), 1));
    }

    /** Splits into pieces of the given sizes along {@code dim}, which they must add up to; views. */
    public List<Tensor> split(long[] sizes, int dim) {
        int d = existingDim(dim, "split");
        long total = 0;
        boolean overflow = false;
        for (long size : sizes) {
            if (size < 0) {
                throw new IllegalArgumentException("split: sizes must be >= 0, got " + Arrays.toString(sizes));
            }
            try {
                total = Math.addExact(total, size);
            } catch (ArithmeticException tooLarge) {
                overflow = true;
            }
        }
        if (overflow || total != meta().shape[d]) {
            throw new IllegalArgumentException("split: sizes " + Arrays.toString(sizes) + " add up to "
                    + (overflow ? "more than 2^63" : total) + ", not to dim " + d + " of " + describe());
        }
        List<Tensor> pieces = new ArrayList<>(sizes.length);
        long start = 0;
        for (long size : sizes) {
            pieces.add(narrowed(d, start, size));
            start += size;
        }
        return List.copyOf(pieces);
    }

    /** The elements shifted by {@code shift} along {@code dim}, those pushed off the end coming back at the start. */
    public Tensor roll(long shift, int dim) {
        int d = existingDim(dim, "roll");
        long size = meta().shape[d];
        long within = size == 0 ? 0 : Math.floorMod(shift, size); // the same roll, and one libtorch takes at any shift
        return Call.begin(ROLL, this).tensor(this).ints(within).ints(d).tensorResult();
    }

    /** Splits into {@code chunks} nearly equal pieces along {@code dim}; views. */
    public List<Tensor> chunk(int chunks, int dim) {
        int d = existingDim(dim, "chunk");
        if (chunks <= 0) {
            throw new IllegalArgumentException("chunk: chunks must be positive, got " + chunks);
        }
        long size = meta().shape[d];
        if (size == 0) { // as many empty pieces as asked for, as libtorch gives
            return pieces(d, 0, chunks);
        }
        long pieceSize = Math.ceilDiv(size, chunks);
        return pieces(d, pieceSize, Math.ceilDiv(size, pieceSize));
    }

    /** {@code count} views along {@code dim} of {@code pieceSize} elements each, the last taking what is left. */
    private List<Tensor> pieces(int dim, long pieceSize, long count) {
        long size = meta().shape[dim];
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("split: " + count + " pieces of dim " + dim + " of " + describe()
                    + ", more than a list holds");
        }
        List<Tensor> pieces = new ArrayList<>();
        for (long i = 0; i < count; i++) {
            long start = i * pieceSize;
            pieces.add(narrowed(dim, start, i < count - 1 ? pieceSize : size - start));
        }
        return List.copyOf(pieces);
    }

    /** Elements between the start of this tensor's memory and its first element; read while held. */
    long storageOffset() {
        MemorySegment out = Native.out();
        Native.check(arrakis_torch_h.aoti_torch_get_storage_offset(handle(), out), "aoti_torch_get_storage_offset");
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    /** {@code index · stride} elements, where a view starts; -1 where that is past 2^63 ({@link #restrided} refuses). */
    private static long offset(long index, long stride) {
        long elements = index * stride;
        return Math.multiplyHigh(index, stride) == 0 && elements >= 0 ? elements : -1;
    }

    /** {@code values} without the entry at {@code index}. */
    private static long[] without(long[] values, int index) {
        long[] rest = new long[values.length - 1];
        System.arraycopy(values, 0, rest, 0, index);
        System.arraycopy(values, index + 1, rest, index, rest.length - index);
        return rest;
    }

    /** {@code condition ? this : other}, elementwise with broadcasting; condition is a bool tensor. */
    public Tensor where(Tensor condition, Tensor other) {
        if (condition.dtype() != DType.BOOL) {
            throw new IllegalArgumentException("where: condition must be bool, got " + condition.describe());
        }
        checkBinary("where", other);
        broadcastShape("where", condition.meta().shape, broadcastShape("where", meta().shape, other.meta().shape, other), condition);
        checkSameDevice("where", condition);
        return Call.begin(WHERE, condition, this, other).tensor(condition).tensor(this).tensor(other).tensorResult();
    }

    /** Refuses, as libtorch would on standard error, a finite fill beyond a floating-point dtype's range. */
    private static void checkFillFits(String op, double value, DType dtype) {
        if (dtype.isFloatingPoint() && Double.isFinite(value) && Math.abs(value) > dtype.maxFinite()) {
            throw new IllegalArgumentException(op + ": the fill " + value + " is beyond " + dtype + "'s range (at most "
                    + dtype.maxFinite() + " in magnitude)");
        }
    }

    /** A copy with {@code value} where the bool {@code mask} is true (mask broadcasts to this shape). */
    public Tensor maskedFill(Tensor mask, double value) {
        if (mask.dtype() != DType.BOOL) {
            throw new IllegalArgumentException("maskedFill: mask must be bool, got " + mask.describe());
        }
        long[] target = broadcastShape("maskedFill", meta().shape, mask.meta().shape, mask);
        if (!Arrays.equals(target, meta().shape)) {
            throw new IllegalArgumentException("maskedFill: mask " + mask.describe() + " must broadcast to " + describe());
        }
        checkSameDevice("maskedFill", mask);
        checkFillFits("maskedFill", value, dtype());
        try (Tensor v = scalar(value)) {
            return Call.begin(MASKED_FILL, this, mask, v).tensor(this).tensor(mask).tensor(v).tensorResult();
        }
    }

    /** The lower triangle of the last two dims (elements with column − row ≤ diagonal); the rest zero. */
    public Tensor tril(long diagonal) {
        checkMatrix("tril");
        return Call.begin(TRIL, this).tensor(this).i64(diagonal).tensorResult();
    }

    /** The upper triangle of the last two dims (elements with column − row ≥ diagonal); the rest zero. */
    public Tensor triu(long diagonal) {
        checkMatrix("triu");
        return Call.begin(TRIU, this).tensor(this).i64(diagonal).tensorResult();
    }

    private void checkMatrix(String op) {
        if (dim() < 2) {
            throw new IllegalArgumentException(op + ": needs at least 2 dims, got " + describe());
        }
    }

    /** Each element repeated {@code repeats} times along {@code dim}. */
    public Tensor repeatInterleave(long repeats, int dim) {
        if (repeats < 0) {
            throw new IllegalArgumentException("repeatInterleave: repeats must be >= 0, got " + repeats);
        }
        if (dim() == 0) {
            throw new IllegalArgumentException("repeatInterleave: a 0-d tensor has no dim " + dim + " to repeat along;"
                    + " reshape(1) it first");
        }
        int d = Shapes.normDim(dim, dim(), "repeatInterleave");
        long[] shape = shape();
        try {
            shape[d] = Math.multiplyExact(shape[d], repeats);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("repeatInterleave: " + repeats + " repeats of dim " + d + " of "
                    + describe() + " make more than 2^63 elements");
        }
        Shapes.numel(shape, "repeatInterleave");
        return Call.begin(REPEAT_INTERLEAVE, this).tensor(this).i64(repeats).optI64((long) d).none().tensorResult();
    }

    // ------------------------------------------------------------------------------------------------ reductions

    /** The running sums along {@code dim}, as {@code torch.cumsum}. */
    public Tensor cumsum(int dim) {
        if (dim() == 0) {
            throw new IllegalArgumentException("cumsum: a 0-d tensor has no dim " + dim);
        }
        int d = Shapes.normDim(dim, dim(), "cumsum");
        return Call.begin(CUMSUM, this).tensor(this).i64(d).optDtype(null).tensorResult();
    }

    /** The sum of all elements, as a 0-dim tensor. */
    public Tensor sum() {
        return Call.begin(SUM, this).tensor(this).optDtype(null).tensorResult();
    }

    /** The sum along {@code dim}. */
    public Tensor sum(int dim, boolean keepDim) {
        long d = Shapes.normDim(dim, dim(), "sum");
        return Call.begin(SUM_DIM, this).tensor(this).optInts(new long[] {d}).bool(keepDim).optDtype(null).tensorResult();
    }

    /** The mean of all elements (floating point), as a 0-dim tensor. */
    public Tensor mean() {
        checkFloating("mean");
        return Call.begin(MEAN, this).tensor(this).optDtype(null).tensorResult();
    }

    /** The mean along {@code dim} (floating point). */
    public Tensor mean(int dim, boolean keepDim) {
        checkFloating("mean");
        long d = Shapes.normDim(dim, dim(), "mean");
        return Call.begin(MEAN_DIM, this).tensor(this).optInts(new long[] {d}).bool(keepDim).optDtype(null).tensorResult();
    }

    /** The largest element, as a 0-dim tensor. */
    public Tensor max() {
        checkNonEmpty("max");
        return unary(MAX);
    }

    /** The largest values along {@code dim} and their indices: [values, indices]. */
    public List<Tensor> max(int dim, boolean keepDim) {
        int d = checkReducedDim("max", dim);
        Call call = Call.begin(MAX_DIM, this).tensor(this).i64(d).bool(keepDim).run();
        return List.of(call.tensorAt(0), call.tensorAt(1));
    }

    /** The smallest element, as a 0-dim tensor. */
    public Tensor min() {
        checkNonEmpty("min");
        return unary(MIN);
    }

    /** The smallest values along {@code dim} and their indices: [values, indices]. */
    public List<Tensor> min(int dim, boolean keepDim) {
        int d = checkReducedDim("min", dim);
        Call call = Call.begin(MIN_DIM, this).tensor(this).i64(d).bool(keepDim).run();
        return List.of(call.tensorAt(0), call.tensorAt(1));
    }

    /** The index of the largest element along {@code dim} (int64). */
    public Tensor argmax(int dim, boolean keepDim) {
        long d = checkReducedDim("argmax", dim);
        return Call.begin(ARGMAX, this).tensor(this).optI64(d).bool(keepDim).tensorResult();
    }

    /** The {@code k} largest (or smallest) values along {@code dim}, sorted, and their indices: [values, indices]. */
    public List<Tensor> topk(long k, int dim, boolean largest) {
        return topk(k, dim, largest, true);
    }

    /**
     * {@link #topk(long, int, boolean)}, the values in libtorch's order where {@code sorted} is false (among equal
     * values, which ones it keeps may then differ from the sorted call's, as in PyTorch).
     */
    public List<Tensor> topk(long k, int dim, boolean largest, boolean sorted) {
        int d = Shapes.normDim(dim, dim(), "topk");
        long size = dim() == 0 ? 1 : meta().shape[d];
        if (k < 0 || k > size) {
            throw new IllegalArgumentException("topk: k=" + k + " is outside [0, " + size + "] for dim " + d + " of " + describe());
        }
        Call call = Call.begin(TOPK, this).tensor(this).i64(k).i64(d).bool(largest).bool(sorted).run();
        return List.of(call.tensorAt(0), call.tensorAt(1));
    }

    private int checkReducedDim(String op, int dim) {
        int d = Shapes.normDim(dim, dim(), op);
        if (dim() > 0 && meta().shape[d] == 0) {
            throw new IllegalArgumentException(op + ": dim " + d + " of " + describe() + " is empty");
        }
        return d;
    }

    private void checkNonEmpty(String op) {
        if (numel() == 0) {
            throw new IllegalArgumentException(op + ": " + describe() + " has no elements");
        }
    }

    private void checkFloating(String op) {
        if (!dtype().isFloatingPoint()) {
            throw new IllegalArgumentException(op + ": needs a floating-point tensor, got " + describe() + "; convert with to(DType)");
        }
    }

    // ------------------------------------------------------------------------------------------------ validation

    /** Like {@link Shapes#normDim} for ops that index into a dimension, which a 0-d tensor does not have. */
    private int existingDim(long dim, String op) {
        int n = dim();
        if (n == 0) {
            throw new IllegalArgumentException(op + ": needs a tensor with at least 1 dim, got " + describe());
        }
        return Shapes.normDim(dim, n, op);
    }

    /** Checks shapes and devices of a binary op and returns the typed-shim path its operands take. */
    private TypedShims.Path checkBinary(String op, Tensor other) {
        Meta m = meta();
        Meta o = other.meta();
        if (!Arrays.equals(m.shape, o.shape)) {
            broadcastShape(op, m.shape, o.shape, other);
        }
        // a 0-dim CPU tensor may meet a tensor on any device, as in PyTorch
        if (!m.device.equals(o.device) && !(o.device.isCpu() && o.shape.length == 0) && !(m.device.isCpu() && m.shape.length == 0)) {
            throw new IllegalArgumentException(op + ": tensors are on different devices: " + describe() + " and " + other.describe());
        }
        return TypedShims.of(m.device, o.device);
    }

    private long[] broadcastShape(String op, long[] a, long[] b, Tensor other) {
        long[] result = Shapes.broadcast(a, b);
        if (result == null) {
            throw new IllegalArgumentException(op + ": shapes " + Arrays.toString(a) + " and " + Arrays.toString(b)
                    + " do not broadcast (" + describe() + " vs " + other.describe() + ")");
        }
        return result;
    }

    private void checkSameDtype(String op, Tensor other) {
        if (dtype() != other.dtype()) {
            throw new IllegalArgumentException(op + ": dtypes differ: " + describe() + " and " + other.describe()
                    + "; convert one with to(DType)");
        }
    }

    private void checkSameDevice(String op, Tensor other) {
        if (!device().equals(other.device())) {
            throw new IllegalArgumentException(op + ": tensors are on different devices: " + describe() + " and "
                    + other.describe() + "; move one with to(Device)");
        }
    }

    /** Checks integer indices lie in {@code [0, size)}: read in place on the host, reduced on a GPU (which waits for it). */
    private static void checkIndexRange(String op, Tensor index, long size) {
        if (index.numel() == 0) {
            return;
        }
        if (!index.device().isCpu() && Native.holdsBackFrees()) {
            return; // capturing a CUDA graph, where reading back would fail: who writes the captured inputs checks them
        }
        long[] range = index.device().isCpu() ? hostRange(index) : deviceRange(index);
        if (range[0] < 0 || range[1] >= size) {
            throw new IndexOutOfBoundsException(op + ": indices range over [" + range[0] + ", " + range[1]
                    + "] but the indexed dim has size " + size);
        }
    }

    /** {min, max} of a non-empty int64 or int32 tensor on the GPU. */
    private static long[] deviceRange(Tensor index) {
        try (Tensor lo = index.min(); Tensor hi = index.max()) {
            return new long[] {lo.itemLong(), hi.itemLong()};
        }
    }

    /** {min, max} of a non-empty int64 or int32 tensor on the host, read in Java without a libtorch op. */
    static long[] hostRange(Tensor index) {
        try (Tensor dense = index.isContiguous() ? index.alias() : index.contiguous()) {
            MemorySegment data = dense.dataSegment();
            boolean wide = dense.dtype() == DType.INT64;
            long n = dense.numel();
            long min = Long.MAX_VALUE;
            long max = Long.MIN_VALUE;
            for (long i = 0; i < n; i++) {
                long v = wide ? data.getAtIndex(ValueLayout.JAVA_LONG, i) : data.getAtIndex(ValueLayout.JAVA_INT, i);
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
            return new long[] {min, max};
        }
    }
}

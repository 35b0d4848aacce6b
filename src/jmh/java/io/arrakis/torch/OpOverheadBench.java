package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

/**
 * Per-call cost of small ops: the Java API against the raw bindings (the dispatcher stack and the typed CPU shim), each
 * result freed in the same call. The API's 2x2 {@code mul} takes its small-tensor path ({@link SmallElementwise}: the
 * result allocated by libtorch, the products computed in Java); {@code rawShimMul2x2} is libtorch's own kernel, the
 * path every larger or mixed-dtype {@code mul} takes; {@code rawSmallPathMul2x2} is the small path's native calls and
 * arithmetic without the API's checks and bookkeeping. {@code matmul64} goes through the dispatcher, as its raw twin.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Thread)
public class OpOverheadBench {
    private Tensor a2;
    private Tensor b2;
    private Tensor a64;
    private Tensor b64;
    private Arena arena;
    private MemorySegment stack;
    private MemorySegment out;
    private MemorySegment mulName;
    private MemorySegment mulOverload;
    private MemorySegment matmulName;
    private MemorySegment defaultOverload;
    private MemorySegment dims;
    /** The operands held for the whole trial, so that the raw benchmarks may read their handles. */
    private java.util.List<Tensor.Held> held;

    @Setup(Level.Trial)
    public void setUp() {
        Generator g = new Generator(0);
        a2 = Tensor.randn(g, new long[] {2, 2}, DType.FLOAT32, Device.CPU);
        b2 = Tensor.randn(g, new long[] {2, 2}, DType.FLOAT32, Device.CPU);
        a64 = Tensor.randn(g, new long[] {64, 64}, DType.FLOAT32, Device.CPU);
        b64 = Tensor.randn(g, new long[] {64, 64}, DType.FLOAT32, Device.CPU);
        arena = Arena.ofConfined();
        stack = arena.allocate(8 * 8, 8);
        out = arena.allocate(8, 8);
        mulName = arena.allocateFrom("aten::mul");
        mulOverload = arena.allocateFrom("Tensor");
        matmulName = arena.allocateFrom("aten::matmul");
        defaultOverload = arena.allocateFrom("");
        dims = arena.allocateFrom(ValueLayout.JAVA_LONG, 2, 2, 2, 1); // sizes, then strides
        held = java.util.List.of(a2.hold(), b2.hold(), a64.hold(), b64.hold());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        held.forEach(Tensor.Held::close);
        a2.close();
        b2.close();
        a64.close();
        b64.close();
        arena.close();
    }

    @Benchmark
    public long mul2x2() {
        try (Tensor c = a2.mul(b2)) {
            return c.isClosed() ? 0 : 1;
        }
    }

    @Benchmark
    public long matmul64() {
        try (Tensor c = a64.matmul(b64)) {
            return c.isClosed() ? 0 : 1;
        }
    }

    @Benchmark
    public long rawDispatcherMul2x2() {
        return rawDispatcher(mulName, mulOverload, a2, b2);
    }

    @Benchmark
    public long rawDispatcherMatmul64() {
        return rawDispatcher(matmulName, defaultOverload, a64, b64);
    }

    @Benchmark
    public long rawShimMul2x2() {
        arrakis_torch_h.aoti_torch_cpu_mul_Tensor(a2.handle(), b2.handle(), out);
        long result = out.get(ValueLayout.JAVA_LONG, 0);
        arrakis_torch_h.aoti_torch_delete_tensor_object(MemorySegment.ofAddress(result));
        return result;
    }

    @Benchmark
    public long rawSmallPathMul2x2() {
        long x = dataPtr(a2.handle());
        long y = dataPtr(b2.handle());
        arrakis_torch_h.aoti_torch_empty_strided(2, dims, dims.asSlice(16), DType.FLOAT32.code(), Device.CPU.typeCode(), 0, out);
        MemorySegment result = MemorySegment.ofAddress(out.get(ValueLayout.JAVA_LONG, 0));
        MemorySegment z = MemorySegment.ofAddress(dataPtr(result)).reinterpret(16);
        MemorySegment p = MemorySegment.ofAddress(x).reinterpret(16);
        MemorySegment q = MemorySegment.ofAddress(y).reinterpret(16);
        for (int i = 0; i < 4; i++) {
            z.setAtIndex(ValueLayout.JAVA_FLOAT, i, p.getAtIndex(ValueLayout.JAVA_FLOAT, i) * q.getAtIndex(ValueLayout.JAVA_FLOAT, i));
        }
        arrakis_torch_h.aoti_torch_delete_tensor_object(result);
        return result.address();
    }

    private long dataPtr(MemorySegment handle) {
        arrakis_torch_h.aoti_torch_get_data_ptr(handle, out);
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    private long rawDispatcher(MemorySegment name, MemorySegment overload, Tensor x, Tensor y) {
        arrakis_torch_h.aoti_torch_new_tensor_handle(x.handle(), out);
        stack.set(ValueLayout.JAVA_LONG, 0, out.get(ValueLayout.JAVA_LONG, 0));
        arrakis_torch_h.aoti_torch_new_tensor_handle(y.handle(), out);
        stack.set(ValueLayout.JAVA_LONG, 8, out.get(ValueLayout.JAVA_LONG, 0));
        arrakis_torch_h.torch_call_dispatcher(name, overload, stack, LibTorch.EXTENSION_BUILD_VERSION);
        long result = stack.get(ValueLayout.JAVA_LONG, 0);
        arrakis_torch_h.aoti_torch_delete_tensor_object(MemorySegment.ofAddress(result));
        return result;
    }
}

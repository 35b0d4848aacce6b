package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA runtime's graph calls and libtorch's stream calls that {@link CudaGraph} needs. They exist only in a CUDA
 * libtorch (and the {@code libcudart} it links), so they are looked up on first use, here, rather than declared in the
 * generated bindings that every build resolves; a CPU build that reaches them gets a clear exception.
 */
final class CudaRuntime {
    /** {@code cudaStreamCaptureModeThreadLocal}: other threads' unsafe calls do not invalidate the capture. */
    static final int CAPTURE_MODE_THREAD_LOCAL = 1;
    /** {@code cudaStreamNonBlocking}. */
    private static final int STREAM_NON_BLOCKING = 1;
    /** {@code cudaEventDisableTiming}: an event for ordering only, the cheapest kind. */
    private static final int EVENT_DISABLE_TIMING = 2;

    private CudaRuntime() {
    }

    /** A function of a CUDA build, looked up once; null when the loaded libtorch lacks it. */
    private record Fn(String name, MethodHandle handle) {
        static Fn of(String name, MemoryLayout result, MemoryLayout... args) {
            return new Fn(name, SymbolLookup.loaderLookup().find(name)
                    .map(symbol -> Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(result, args)))
                    .orElse(null));
        }

        MethodHandle require() {
            if (handle == null) {
                throw new UnsupportedOperationException(name + " is not in the loaded libtorch (" + LibTorch.load()
                        + "): CUDA graphs need a CUDA build of libtorch ≥ 2.10 and its CUDA runtime (set ARRAKIS_LIBTORCH"
                        + " to a CUDA PyTorch's torch/lib)");
            }
            return handle;
        }
    }

    /** Looked up on first use, so a CPU build never looks for them. */
    private static final class Calls {
        static final Fn STREAM_BEGIN_CAPTURE = Fn.of("cudaStreamBeginCapture", JAVA_INT, ADDRESS, JAVA_INT);
        static final Fn STREAM_END_CAPTURE = Fn.of("cudaStreamEndCapture", JAVA_INT, ADDRESS, ADDRESS);
        static final Fn GRAPH_INSTANTIATE = Fn.of("cudaGraphInstantiateWithFlags", JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG);
        static final Fn GRAPH_LAUNCH = Fn.of("cudaGraphLaunch", JAVA_INT, ADDRESS, ADDRESS);
        static final Fn GRAPH_GET_NODES = Fn.of("cudaGraphGetNodes", JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        static final Fn GRAPH_EXEC_DESTROY = Fn.of("cudaGraphExecDestroy", JAVA_INT, ADDRESS);
        static final Fn GRAPH_DESTROY = Fn.of("cudaGraphDestroy", JAVA_INT, ADDRESS);
        static final Fn STREAM_SYNCHRONIZE = Fn.of("cudaStreamSynchronize", JAVA_INT, ADDRESS);
        static final Fn MEM_GET_INFO = Fn.of("cudaMemGetInfo", JAVA_INT, ADDRESS, ADDRESS);
        static final Fn GET_LAST_ERROR = Fn.of("cudaGetLastError", JAVA_INT);
        static final Fn GET_ERROR_STRING = Fn.of("cudaGetErrorString", ADDRESS, JAVA_INT);
        static final Fn STREAM_CREATE = Fn.of("cudaStreamCreateWithFlags", JAVA_INT, ADDRESS, JAVA_INT);
        static final Fn GET_DEVICE = Fn.of("cudaGetDevice", JAVA_INT, ADDRESS);
        static final Fn SET_DEVICE = Fn.of("cudaSetDevice", JAVA_INT, JAVA_INT);
        static final Fn SET_CURRENT_STREAM = Fn.of("torch_set_current_cuda_stream", JAVA_INT, ADDRESS, JAVA_INT);
        static final Fn GET_CURRENT_STREAM = Fn.of("aoti_torch_get_current_cuda_stream", JAVA_INT, JAVA_INT, ADDRESS);
        static final Fn EVENT_CREATE = Fn.of("cudaEventCreateWithFlags", JAVA_INT, ADDRESS, JAVA_INT);
        static final Fn EVENT_RECORD = Fn.of("cudaEventRecord", JAVA_INT, ADDRESS, ADDRESS);
        static final Fn EVENT_SYNCHRONIZE = Fn.of("cudaEventSynchronize", JAVA_INT, ADDRESS);
        static final Fn EVENT_DESTROY = Fn.of("cudaEventDestroy", JAVA_INT, ADDRESS);
        static final Fn STREAM_WAIT_EVENT = Fn.of("cudaStreamWaitEvent", JAVA_INT, ADDRESS, ADDRESS, JAVA_INT);
    }

    static void beginCapture(MemorySegment stream) {
        cuda(call(Calls.STREAM_BEGIN_CAPTURE, stream, CAPTURE_MODE_THREAD_LOCAL), "cudaStreamBeginCapture");
    }

    /** Ends the capture: the graph (null if none was made), and in {@code error[0]} the runtime's error code. */
    static MemorySegment endCapture(MemorySegment stream, int[] error) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            error[0] = (int) call(Calls.STREAM_END_CAPTURE, stream, out);
            MemorySegment graph = out.get(ADDRESS, 0);
            return graph.equals(MemorySegment.NULL) ? null : graph;
        }
    }

    static MemorySegment instantiate(MemorySegment graph) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            cuda(call(Calls.GRAPH_INSTANTIATE, out, graph, 0L), "cudaGraphInstantiateWithFlags");
            return out.get(ADDRESS, 0);
        }
    }

    static long nodeCount(MemorySegment graph) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(JAVA_LONG);
            cuda(call(Calls.GRAPH_GET_NODES, graph, MemorySegment.NULL, count), "cudaGraphGetNodes");
            return count.get(JAVA_LONG, 0);
        }
    }

    static void launch(MemorySegment exec, MemorySegment stream) {
        MethodHandle graphLaunch = Calls.GRAPH_LAUNCH.require();
        int error;
        try {
            error = (int) graphLaunch.invokeExact(exec, stream);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        cuda(error, "cudaGraphLaunch");
    }

    static void destroy(MemorySegment graph, MemorySegment exec) {
        try {
            if (exec != null) {
                cuda(call(Calls.GRAPH_EXEC_DESTROY, exec), "cudaGraphExecDestroy");
            }
        } finally {
            if (graph != null) {
                cuda(call(Calls.GRAPH_DESTROY, graph), "cudaGraphDestroy");
            }
        }
    }

    static void synchronize(MemorySegment stream) {
        cuda(call(Calls.STREAM_SYNCHRONIZE, stream), "cudaStreamSynchronize");
    }

    /** Free bytes of the current device, as the driver counts them (the caching allocator's reserve is not free). */
    static long freeBytes() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            cuda(call(Calls.MEM_GET_INFO, free, total), "cudaMemGetInfo");
            return free.get(JAVA_LONG, 0);
        }
    }

    /** Clears the runtime's last (non-sticky) error, which a failed capture leaves behind. */
    static void clearLastError() {
        call(Calls.GET_LAST_ERROR);
    }

    /** A new stream on {@code device} that does not wait for the default stream; it lives as long as the process. */
    static MemorySegment createStream(int device) {
        return createOn(device, Calls.STREAM_CREATE, STREAM_NON_BLOCKING, "cudaStreamCreateWithFlags");
    }

    /** A new event on {@code device}, for ordering (no timing); {@link #destroyEvent} frees it. */
    static MemorySegment createEvent(int device) {
        return createOn(device, Calls.EVENT_CREATE, EVENT_DISABLE_TIMING, "cudaEventCreateWithFlags");
    }

    /** {@code create(&out, flags)} with {@code device} current meanwhile, as streams and events belong to one. */
    private static MemorySegment createOn(int device, Fn create, int flags, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment current = arena.allocate(JAVA_INT);
            cuda(call(Calls.GET_DEVICE, current), "cudaGetDevice");
            int previous = current.get(JAVA_INT, 0);
            cuda(call(Calls.SET_DEVICE, device), "cudaSetDevice");
            try {
                MemorySegment out = arena.allocate(ADDRESS);
                cuda(call(create, out, flags), name);
                return out.get(ADDRESS, 0);
            } finally {
                cuda(call(Calls.SET_DEVICE, previous), "cudaSetDevice");
            }
        }
    }

    /** Marks the point {@code stream} has reached: work queued on it so far. */
    static void recordEvent(MemorySegment event, MemorySegment stream) {
        cuda(call(Calls.EVENT_RECORD, event, stream), "cudaEventRecord");
    }

    /** Makes {@code stream}'s later work wait for {@code event}'s point, without the host waiting; none if unrecorded. */
    static void waitEvent(MemorySegment stream, MemorySegment event) {
        cuda(call(Calls.STREAM_WAIT_EVENT, stream, event, 0), "cudaStreamWaitEvent");
    }

    /** The host waits until the work before {@code event}'s point is done; at once if it was never recorded. */
    static void synchronizeEvent(MemorySegment event) {
        cuda(call(Calls.EVENT_SYNCHRONIZE, event), "cudaEventSynchronize");
    }

    static void destroyEvent(MemorySegment event) {
        cuda(call(Calls.EVENT_DESTROY, event), "cudaEventDestroy");
    }

    static MemorySegment currentStream(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            torch(call(Calls.GET_CURRENT_STREAM, device, out), "aoti_torch_get_current_cuda_stream");
            return out.get(ADDRESS, 0);
        }
    }

    static void setCurrentStream(MemorySegment stream, int device) {
        torch(call(Calls.SET_CURRENT_STREAM, stream, device), "torch_set_current_cuda_stream");
    }

    static String errorString(int error) {
        MemorySegment s = (MemorySegment) call(Calls.GET_ERROR_STRING, error);
        return s.equals(MemorySegment.NULL) ? "unknown CUDA error" : s.reinterpret(1024).getString(0);
    }

    private static void cuda(Object rc, String call) {
        int error = (int) rc;
        if (error != 0) {
            throw new TorchException(call + " failed: " + errorString(error) + " (CUDA error " + error + ")");
        }
    }

    private static void torch(Object rc, String call) {
        if ((int) rc != 0) {
            throw new TorchException(call + " failed (libtorch printed why on stderr)");
        }
    }

    private static Object call(Fn f, Object... args) {
        try {
            return f.require().invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}

package io.arrakis.torch;

import java.lang.foreign.MemorySegment;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * GPU work recorded once as a CUDA graph and replayed with one launch: the host no longer issues each kernel, which is
 * what bounds work made of many small kernels, such as a forward pass at batch 1.
 *
 * <p>{@link #capture} runs a warm-up eagerly on a stream of the graph's own (cuBLAS and the caching allocator set
 * themselves up there), then the work under stream capture, in thread-local mode, on the same stream. No live graph
 * shares its stream; a closed graph's stream goes to the next capture on its device, with the memory the caching
 * allocator keeps for that stream. Nothing here waits for the whole device, which would break another thread's
 * capture: a capture and closing wait for the calling thread's current stream, and closing for the last replay.
 *
 * <p>A replay reads and writes the memory the captured run used: keep the captured run's inputs and outputs alive, and
 * write new inputs into them before {@link #replay}. That memory must not go to other work while the graph lives, or a replay would
 * overwrite it: every tensor the captured run freed is held back until the graph is closed, and what libtorch frees
 * inside an op (its temporaries) returns to the caching allocator under the graph's stream, whose blocks it gives only
 * to work on that stream, which nothing else uses. (The allocator still hands unused cached blocks back to the
 * driver when its cache is emptied, and whenever an allocation runs short of memory, silently where its retry then
 * succeeds; a graph's temporaries are then exposed. A pool of the graph's own, as {@code torch.cuda.graph} uses, is
 * not open to libtorch's C interface.) Work that needs the host to wait for the GPU (reading a value back, a copy from pageable memory) cannot be
 * captured: {@link #capture} then throws, naming what failed.
 */
public final class CudaGraph implements AutoCloseable {
    /** Per device, the streams of closed graphs, for the next captures. */
    private static final Map<Integer, Deque<MemorySegment>> IDLE_STREAMS = new ConcurrentHashMap<>();

    private final Device device;
    private final MemorySegment stream;
    private final MemorySegment graph;
    private final MemorySegment exec;
    private final MemorySegment replayed;
    private final List<Long> heldBack;
    private final long nodes;
    private boolean closed;

    private CudaGraph(Device device, MemorySegment stream, MemorySegment graph, MemorySegment exec,
                      MemorySegment replayed, List<Long> heldBack) {
        this.device = device;
        this.stream = stream;
        this.graph = graph;
        this.exec = exec;
        this.replayed = replayed;
        this.heldBack = heldBack;
        this.nodes = CudaRuntime.nodeCount(graph);
    }

    /**
     * Runs {@code warmUp} (may be null) and then captures {@code work}, both on the calling thread, on the graph's own
     * stream, made current for their duration.
     *
     * @throws IllegalArgumentException if {@code device} is not a CUDA device
     * @throws UnsupportedOperationException if the loaded libtorch is not a CUDA build, or the calling thread is
     *     virtual (libtorch's current stream and the capture belong to the operating-system thread, which a virtual
     *     thread may leave at any lock)
     * @throws IllegalStateException if the work could not be captured; the cause says why
     */
    public static CudaGraph capture(Device device, Runnable warmUp, Runnable work) {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(work, "work");
        if (Thread.currentThread().isVirtual()) {
            throw new UnsupportedOperationException("a CUDA graph cannot be captured on a virtual thread: the capture"
                    + " and libtorch's current stream belong to the carrier thread, which a virtual thread may change;"
                    + " capture on a platform thread");
        }
        if (device.isCpu()) {
            throw new IllegalArgumentException("CUDA graphs record GPU work; the device is " + device);
        }
        if (!Cuda.cudaBuild()) {
            throw new UnsupportedOperationException("CUDA graphs need a CUDA build of libtorch; loaded: " + LibTorch.load());
        }
        if (device.index() >= Cuda.deviceCount()) {
            throw new IllegalArgumentException("no " + device + ": this machine has " + Cuda.deviceCount() + " GPU(s)");
        }
        int index = device.index();
        MemorySegment previous = CudaRuntime.currentStream(index);
        // the graph's stream does not wait for the current one: work queued there before (the inputs' and weights'
        // writes) must be done before the warm-up and the capture read them
        CudaRuntime.synchronize(previous);
        MemorySegment idle = IDLE_STREAMS.computeIfAbsent(index, i -> new ConcurrentLinkedDeque<>()).poll();
        MemorySegment stream = idle != null ? idle : CudaRuntime.createStream(index);
        try {
            CudaRuntime.setCurrentStream(stream, index);
            try {
                if (warmUp != null) {
                    warmUp.run();
                }
                CudaRuntime.synchronize(stream);
                return record(device, stream, work);
            } finally {
                CudaRuntime.setCurrentStream(previous, index);
            }
        } catch (Throwable e) { // the warm-up is the caller's code, which may throw a checked exception too
            try {
                CudaRuntime.synchronize(stream);
            } catch (RuntimeException waitFailed) {
                e.addSuppressed(waitFailed);
            }
            IDLE_STREAMS.get(index).push(stream);
            throw e;
        }
    }

    private static CudaGraph record(Device device, MemorySegment stream, Runnable work) {
        List<Long> heldBack = Native.holdBackFrees();
        Throwable failure = null;
        int[] error = new int[1];
        MemorySegment graph;
        try {
            CudaRuntime.beginCapture(stream);
            try {
                work.run();
            } catch (Throwable e) { // an Error too: the capture must end and what it held back be freed
                failure = e;
            } finally {
                graph = CudaRuntime.endCapture(stream, error);
            }
        } catch (RuntimeException e) {
            failure = failure == null ? e : failure;
            graph = null;
        } finally {
            Native.stopHoldingBack();
        }
        if (failure != null || error[0] != 0) {
            CudaRuntime.clearLastError();
            try {
                CudaRuntime.destroy(graph, null);
                CudaRuntime.synchronize(stream);
            } finally {
                Native.deleteHeldBack(heldBack);
            }
            if (failure instanceof Error fatal) {
                throw fatal;
            }
            String why = error[0] != 0 ? CudaRuntime.errorString(error[0]) : failure.getMessage();
            throw new IllegalStateException("the work could not be captured as a CUDA graph: " + why + " (work that"
                    + " makes the host wait for the GPU, such as reading a value back, cannot be captured)", failure);
        }
        MemorySegment exec = null;
        MemorySegment replayed = null;
        try {
            exec = CudaRuntime.instantiate(graph);
            replayed = CudaRuntime.createEvent(device.index());
            return new CudaGraph(device, stream, graph, exec, replayed, heldBack);
        } catch (RuntimeException e) {
            if (replayed != null) {
                CudaRuntime.destroyEvent(replayed);
            }
            CudaRuntime.destroy(graph, exec);
            Native.deleteHeldBack(heldBack);
            throw e;
        }
    }

    /** Whether the calling thread is capturing a CUDA graph now: GPU work it issues is recorded, not run. */
    public static boolean capturing() {
        return Native.holdsBackFrees();
    }

    /** The device the graph runs on. */
    public Device device() {
        return device;
    }

    /** The graph's nodes: its kernels, copies and memsets. */
    public long nodeCount() {
        return nodes;
    }

    /**
     * Launches the graph on the calling thread's current stream for its device; returns without waiting. A replay on
     * another stream than the last one waits on the GPU for the last one, as both use the same memory.
     */
    public synchronized void replay() {
        if (closed) {
            throw new IllegalStateException("this CUDA graph is closed");
        }
        MemorySegment current = CudaRuntime.currentStream(device.index());
        CudaRuntime.waitEvent(current, replayed);
        CudaRuntime.launch(exec, current);
        CudaRuntime.recordEvent(replayed, current);
    }

    /**
     * Waits for the last replay and for the work queued on the calling thread's current stream (what read the
     * replay's outputs there), then frees the graph and the memory it held back; its stream goes to the next capture.
     * Where a wait fails (a device error, or a capture under way on the calling thread) it throws and the graph stays
     * open, unfreed, so that no replay still running writes freed memory.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        // a wait that fails (inside another capture, or after a device error) leaves the graph open, to be closed
        // again: its memory must not be freed while a replay may still write it
        CudaRuntime.synchronize(CudaRuntime.currentStream(device.index()));
        CudaRuntime.synchronizeEvent(replayed);
        closed = true;
        try {
            try {
                CudaRuntime.destroyEvent(replayed);
            } finally {
                CudaRuntime.destroy(graph, exec);
            }
        } finally {
            Native.deleteHeldBack(heldBack);
            IDLE_STREAMS.get(device.index()).push(stream);
        }
    }
}

package io.arrakis.model;

import io.arrakis.torch.CudaGraph;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * A model's tables that depend only on the input's length, device and dtype (rotary cos/sin, attention masks, query
 * temperatures), built once and reused by every forward pass. A lookup hands out new handles ({@link Tensor#alias()}),
 * owned by the caller's scope, so evicting an entry never frees a table a pass on another thread is still using. The
 * least recently used entries go beyond {@link #CAPACITY}. Tables missing while a CUDA graph is captured are built for
 * that pass alone, where that needs no copy from the host (masks; rotary tables and query temperatures do).
 */
final class ForwardTables implements AutoCloseable {
    static final int CAPACITY = 32;

    private final Map<Object, List<Tensor>> entries = new LinkedHashMap<>(16, 0.75f, true);
    private final BooleanSupplier capturing;
    private boolean closed;

    ForwardTables() {
        this(CudaGraph::capturing);
    }

    /** {@code capturing}: whether the calling thread's GPU work is being recorded into a CUDA graph, not run. */
    ForwardTables(BooleanSupplier capturing) {
        this.capturing = capturing;
    }

    /** The tables under {@code key}, built by {@code build} the first time; the caller owns what it gets. */
    synchronized List<Tensor> get(Object key, Supplier<List<Tensor>> build) {
        if (closed) {
            throw new IllegalStateException("the model was closed");
        }
        List<Tensor> tables = entries.get(key);
        if (tables == null && capturing.getAsBoolean()) {
            // the capture records the kernels that would fill them without running them: until the graph replays they
            // hold nothing, so they serve this pass alone, owned by the caller's scope (the capture holds their memory
            // back until the graph is closed)
            return build.get();
        }
        if (tables == null) {
            tables = TensorScope.unscoped(build);
            entries.put(key, tables);
            if (entries.size() > CAPACITY) {
                var eldest = entries.entrySet().iterator();
                eldest.next().getValue().forEach(Tensor::close);
                eldest.remove();
            }
        }
        return tables.stream().map(Tensor::alias).toList();
    }

    /** Whether the calling thread's GPU work is being recorded into a CUDA graph now. */
    boolean capturing() {
        return capturing.getAsBoolean();
    }

    /** How many entries are held. */
    synchronized int size() {
        return entries.size();
    }

    @Override
    public synchronized void close() {
        closed = true;
        entries.values().forEach(tables -> tables.forEach(Tensor::close));
        entries.clear();
    }
}

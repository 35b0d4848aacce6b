package io.arrakis.model;

import io.arrakis.torch.CudaGraph;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A model's forward pass for one input shape, recorded as a CUDA graph by {@link HookedAutoModel#capture}. Each
 * {@link #run} checks the ids, writes them into the graph's input buffer, replays the graph with one launch, and hands
 * back copies of the logits and of the activations the {@link CacheSpec} named, so outputs of earlier runs stay as they
 * were. Closing it, or the model, frees the graph and every buffer it holds.
 */
public final class CapturedForward implements AutoCloseable {
    private final HookedAutoModel model;
    private final long[] shape;
    private final Tensor ids;
    private final Tensor logits;
    private final ActivationCache cache;
    private final CudaGraph graph;
    private boolean closed;

    private CapturedForward(HookedAutoModel model, long[] shape, Tensor ids, ModelOutput captured, CudaGraph graph) {
        this.model = model;
        this.shape = shape;
        this.ids = ids;
        this.logits = captured.logits();
        this.cache = captured.cache();
        this.graph = graph;
    }

    /** Records {@code model}'s pass for ids of {@code shape}; its arguments were checked by the model. */
    static CapturedForward record(HookedAutoModel model, long[] shape, CacheSpec spec) {
        // outside the caller's scopes: the buffers live as long as the graph, not as long as a scope
        CapturedForward[] made = new CapturedForward[1];
        TensorScope.unscoped(() -> {
            Tensor ids = Tensor.zeros(shape, DType.INT64, model.device());
            ModelOutput[] captured = new ModelOutput[1];
            try {
                CudaGraph graph = CudaGraph.capture(model.device(),
                        () -> model.forwardOnDevice(ids, spec).close(),
                        () -> captured[0] = model.forwardOnDevice(ids, spec));
                made[0] = new CapturedForward(model, shape, ids, captured[0], graph);
            } catch (RuntimeException | Error e) {
                if (captured[0] != null) {
                    captured[0].close();
                }
                ids.close();
                throw e;
            }
            List<Tensor> buffers = new ArrayList<>(List.of(ids, captured[0].logits()));
            captured[0].cache().names().forEach(name -> buffers.add(captured[0].cache().get(name)));
            return buffers;
        });
        return made[0];
    }

    /** The ids shape this pass was recorded for, {@code [batch, pos]}. */
    public long[] shape() {
        return shape.clone();
    }

    /** The kernels, copies and memsets one replay launches. */
    public long graphNodes() {
        return graph.nodeCount();
    }

    /**
     * Runs the recorded pass on {@code inputIds}: int64 or int32, of the recorded shape ({@code [pos]} too at batch 1),
     * on the host (fastest) or the model's device. Returns copies of the logits and cache entries, which the caller
     * closes.
     */
    public synchronized ModelOutput run(Tensor inputIds) {
        if (closed) {
            throw new IllegalStateException("this captured forward pass is closed");
        }
        long[] given = inputIds.dim() == 1 ? new long[] {1, inputIds.size(0)} : inputIds.shape();
        if (!Arrays.equals(given, shape)) {
            throw new IllegalArgumentException("this pass was captured for ids of shape " + Arrays.toString(shape)
                    + ", got " + Arrays.toString(inputIds.shape()) + "; capture another for that shape");
        }
        try (Tensor checked = model.checkedIds(inputIds)) {
            ids.copyFrom(checked, true); // queued behind the last replay, which still reads the ids, without waiting
        }
        graph.replay();
        ActivationCache copies = new ActivationCache(model.config().nLayers());
        try {
            for (String name : cache.names()) {
                copies.put(name, cache.get(name).copy());
            }
            return new ModelOutput(logits.copy(), copies);
        } catch (RuntimeException | Error e) {
            copies.close();
            throw e;
        }
    }

    /**
     * Frees the graph and its buffers; the model stays open. Where the graph cannot be closed (it could not wait for
     * the last replay) this throws and frees nothing, since a replay still running writes the buffers.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        graph.close();
        closed = true;
        try {
            cache.close();
            logits.close();
            ids.close();
        } finally {
            model.forget(this);
        }
    }
}

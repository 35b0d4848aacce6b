package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;

/**
 * Activations of one forward pass by hook name, as TransformerLens's {@code ActivationCache}: the libtorch tensors
 * themselves (no copies, nothing on the Java heap), freed when the cache is closed, or when the {@code TensorScope}
 * open around the forward pass closes (as every tensor the pass made): use the cache inside that scope, or
 * {@code keep} what should outlive it.
 *
 * <pre>{@code
 * try (ModelOutput out = model.forward(ids)) {
 *     Tensor pattern = out.cache().get("blocks.0.attn.hook_pattern");   // [batch, head, query, key]
 *     Tensor resid = out.cache().stack("hook_resid_post");              // [layer, batch, pos, d_model]
 * }
 * }</pre>
 */
public final class ActivationCache implements AutoCloseable {
    private final Map<String, Tensor> entries = new LinkedHashMap<>();
    private final int layers;
    private volatile boolean closed;

    ActivationCache(int layers) {
        this.layers = layers;
    }

    /** The blocks of the model whose pass filled the cache. */
    int layers() {
        return layers;
    }

    synchronized void put(String name, Tensor activation) {
        Tensor previous = entries.put(name, activation);
        if (previous != null && previous != activation) {
            previous.close();
        }
    }

    /** The activation at {@code hookName}; it stays owned by the cache. */
    public Tensor get(String hookName) {
        Tensor t;
        synchronized (this) { // entries may be removed on another thread meanwhile
            checkOpen();
            t = entries.get(hookName);
            if (t == null) {
                throw new IllegalArgumentException("no activation '" + hookName + "' in the cache; it holds "
                        + entries.size() + " entries" + (entries.isEmpty() ? ""
                        : ", e.g. " + String.join(", ", entries.keySet().stream().limit(6).toList())));
            }
            if (t.isClosed()) {
                throw new IllegalStateException(entries.values().stream().allMatch(Tensor::isClosed)
                        ? "the activation cache's entries, '" + hookName + "' among them, were freed when the"
                        + " TensorScope open around its forward pass closed: use the cache inside that scope, or keep"
                        + " what should outlive it"
                        : "the activation cache's entry '" + hookName + "' was closed");
            }
        }
        return t;
    }

    /** Whether the cache holds {@code hookName}. */
    public synchronized boolean contains(String hookName) {
        checkOpen();
        return entries.containsKey(hookName);
    }

    /** The hook names held, in the order the forward pass reached them: a copy, so entries may be removed meanwhile. */
    public synchronized Set<String> names() {
        checkOpen();
        return Collections.unmodifiableSet(new LinkedHashSet<>(entries.keySet()));
    }

    /** The number of entries. */
    public synchronized int size() {
        checkOpen();
        return entries.size();
    }

    /**
     * Every layer's {@code blocks.{i}.<suffix>} stacked into one new tensor with a leading layer dimension, e.g.
     * {@code stack("hook_resid_post")} or {@code stack("attn.hook_pattern")}. The caller owns the result.
     */
    public Tensor stack(String suffix) {
        List<Tensor> perLayer = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            perLayer.add(get("blocks." + i + "." + suffix));
        }
        return Tensor.stack(perLayer, 0);
    }

    /** Frees one entry now. */
    public void remove(String hookName) {
        Tensor t;
        synchronized (this) { // not while close() copies the entries
            checkOpen();
            t = entries.remove(hookName);
        }
        if (t != null) {
            t.close();
        }
    }

    /** The entry's values in row-major order. */
    public float[] toFloatArray(String hookName) {
        return get(hookName).toFloatArray();
    }

    /**
     * The chosen entries as one JSON object {@code {NAME: {"shape": [...], "data": [...]}}}, values row-major: float64
     * entries at full precision, integer and bool ones (expert indices) as integers, the rest as float32 (which holds
     * bfloat16 and float16 exactly), with the strings {@code "Infinity"}, {@code "-Infinity"} and {@code "NaN"} for
     * values JSON has no number for (masked attention scores are -inf); only the names asked for are copied out of
     * native memory. {@link #writeJson} writes the same without holding it in memory.
     */
    public String toJson(List<String> hookNames) {
        StringWriter out = new StringWriter();
        try {
            writeJson(hookNames, out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString();
    }

    /**
     * {@link #toJson} onto {@code out} as it goes, the values copied out of native memory a block at a time: for
     * entries too large to hold as one string (the logits of a long batch). {@code out} is flushed, not closed.
     */
    public void writeJson(List<String> hookNames, Writer out) throws IOException {
        checkOpen();
        Map<String, Object> json = new LinkedHashMap<>();
        List<JsonValues> reading = new ArrayList<>();
        for (String name : hookNames) {
            Tensor t = get(name);
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("shape", t.shape());
            entry.put("data", (Iterable<Object>) () -> {
                JsonValues values = new JsonValues(t);
                reading.add(values);
                return values;
            });
            json.put(name, entry);
        }
        try {
            Json.write(json, out);
        } finally { // a writer that failed part-way leaves a copy open
            reading.forEach(v -> v.flat.close());
        }
    }

    /** A tensor's values in row-major order as JSON writes them, read from native memory a block at a time. */
    private static final class JsonValues implements Iterator<Object> {
        private static final int BLOCK = 1 << 16;
        private final Tensor flat;
        private final long count;
        private long next;
        private Object[] block = new Object[0];
        private int inBlock;

        JsonValues(Tensor t) {
            // a flat handle in the dtype the values are written in (a copy only where the dtype or layout needs one),
            // freed once read; the entry stays the cache's
            DType as = !t.dtype().isFloatingPoint() ? DType.INT64 : t.dtype() == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
            if (t.dtype() == as) {
                this.flat = t.reshape(-1);
            } else {
                try (Tensor converted = t.to(as)) {
                    this.flat = converted.reshape(-1);
                }
            }
            this.count = t.numel();
        }

        @Override
        public boolean hasNext() {
            boolean more = next < count;
            if (!more) {
                flat.close();
            }
            return more;
        }

        @Override
        public Object next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            if (inBlock == block.length) {
                read();
            }
            next++;
            return block[inBlock++];
        }

        private void read() {
            int n = (int) Math.min(BLOCK, count - next);
            block = new Object[n];
            inBlock = 0;
            try (Tensor part = flat.narrow(0, next, n)) {
                switch (flat.dtype()) {
                    case INT64 -> {
                        long[] v = part.toLongArray();
                        for (int i = 0; i < n; i++) {
                            block[i] = v[i];
                        }
                    }
                    case FLOAT64 -> {
                        double[] v = part.toDoubleArray();
                        for (int i = 0; i < n; i++) {
                            block[i] = jsonNumber(v[i]);
                        }
                    }
                    default -> {
                        float[] v = part.toFloatArray();
                        for (int i = 0; i < n; i++) {
                            block[i] = jsonNumber(v[i]);
                        }
                    }
                }
            }
        }
    }

    /** The number, or the string JSON readers take for a value JSON has no number for. */
    private static Object jsonNumber(Number value) {
        double v = value.doubleValue();
        return Double.isFinite(v) ? value : v > 0 ? "Infinity" : v < 0 ? "-Infinity" : "NaN";
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this activation cache is closed (its output was closed)");
        }
    }

    /** Frees every entry; closing again, from any thread, does nothing. */
    @Override
    public void close() {
        List<Tensor> held;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            held = List.copyOf(entries.values());
        }
        held.forEach(Tensor::close);
    }
}

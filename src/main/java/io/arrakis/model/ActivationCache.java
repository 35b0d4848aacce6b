package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
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
    private boolean closed;

    ActivationCache(int layers) {
        this.layers = layers;
    }

    /** The blocks of the model whose pass filled the cache. */
    int layers() {
        return layers;
    }

    void put(String name, Tensor activation) {
        Tensor previous = entries.put(name, activation);
        if (previous != null && previous != activation) {
            previous.close();
        }
    }

    /** The activation at {@code hookName}; it stays owned by the cache. */
    public Tensor get(String hookName) {
        checkOpen();
        Tensor t = entries.get(hookName);
        if (t == null) {
            throw new IllegalArgumentException("no activation '" + hookName + "' in the cache; it holds " + entries.size()
                    + " entries" + (entries.isEmpty() ? "" : ", e.g. " + String.join(", ", entries.keySet().stream().limit(6).toList())));
        }
        return t;
    }

    /** Whether the cache holds {@code hookName}. */
    public boolean contains(String hookName) {
        checkOpen();
        return entries.containsKey(hookName);
    }

    /** The hook names held, in the order the forward pass reached them: a copy, so entries may be removed meanwhile. */
    public Set<String> names() {
        checkOpen();
        return Collections.unmodifiableSet(new LinkedHashSet<>(entries.keySet()));
    }

    /** The number of entries. */
    public int size() {
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
        checkOpen();
        Tensor t = entries.remove(hookName);
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
     * native memory.
     */
    public String toJson(List<String> hookNames) {
        checkOpen();
        Map<String, Object> json = new LinkedHashMap<>();
        for (String name : hookNames) {
            Tensor t = get(name);
            List<Object> data = new ArrayList<>((int) t.numel());
            if (!t.dtype().isFloatingPoint()) {
                try (Tensor ints = t.to(DType.INT64)) {
                    for (long v : ints.toLongArray()) {
                        data.add(v);
                    }
                }
            } else if (t.dtype() == DType.FLOAT64) {
                for (double v : t.toDoubleArray()) {
                    data.add(jsonNumber(v));
                }
            } else {
                for (float v : t.toFloatArray()) {
                    data.add(jsonNumber(v));
                }
            }
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("shape", t.shape());
            entry.put("data", data);
            json.put(name, entry);
        }
        return Json.write(json);
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

    /** Frees every entry. */
    @Override
    public void close() {
        closed = true;
        entries.values().forEach(Tensor::close);
        entries.clear();
    }
}

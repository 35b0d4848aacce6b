package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Activations of one forward pass by hook name, as TransformerLens's {@code ActivationCache}: the libtorch tensors
 * themselves (no copies, nothing on the Java heap), freed when the cache is closed.
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

    ActivationCache(int layers) {
        this.layers = layers;
    }

    void put(String name, Tensor activation) {
        Tensor previous = entries.put(name, activation);
        if (previous != null && previous != activation) {
            previous.close();
        }
    }

    /** The activation at {@code hookName}; it stays owned by the cache. */
    public Tensor get(String hookName) {
        Tensor t = entries.get(hookName);
        if (t == null) {
            throw new IllegalArgumentException("no activation '" + hookName + "' in the cache; it holds " + entries.size()
                    + " entries" + (entries.isEmpty() ? "" : ", e.g. " + String.join(", ", entries.keySet().stream().limit(6).toList())));
        }
        return t;
    }

    /** Whether the cache holds {@code hookName}. */
    public boolean contains(String hookName) {
        return entries.containsKey(hookName);
    }

    /** The hook names held, in the order the forward pass reached them. */
    public Set<String> names() {
        return Collections.unmodifiableSet(entries.keySet());
    }

    /** The number of entries. */
    public int size() {
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
     * The chosen entries as one JSON object {@code {NAME: {"shape": [...], "data": [...]}}}, values row-major; only
     * the names asked for are copied out of native memory.
     */
    public String toJson(List<String> hookNames) {
        StringBuilder sb = new StringBuilder("{");
        for (int n = 0; n < hookNames.size(); n++) {
            String name = hookNames.get(n);
            Tensor t = get(name);
            sb.append(n > 0 ? ", " : "").append('"').append(name).append("\": {\"shape\": ")
                    .append(java.util.Arrays.toString(t.shape())).append(", \"data\": [");
            float[] values = t.toFloatArray();
            for (int i = 0; i < values.length; i++) {
                float v = values[i];
                sb.append(i > 0 ? ", " : "").append(Float.isFinite(v) ? Float.toString(v) : v > 0 ? "\"Infinity\""
                        : v < 0 ? "\"-Infinity\"" : "\"NaN\"");
            }
            sb.append("]}");
        }
        return sb.append("}").toString();
    }

    /** Frees every entry. */
    @Override
    public void close() {
        entries.values().forEach(Tensor::close);
        entries.clear();
    }
}

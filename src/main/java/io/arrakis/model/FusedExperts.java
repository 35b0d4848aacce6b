package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint whose experts are stored fused, {@code mlp.experts.gate_up_proj [experts, 2 · d_mlp, d_model]} (each
 * expert's gate rows, then its up rows) and {@code mlp.experts.down_proj [experts, d_model, d_mlp]}, as
 * {@code transformers} 5 lays them out and Qwen3.5's mixtures are published, read by a family whose checkpoint names
 * each expert's {@code gate_proj}, {@code up_proj} and {@code down_proj} (or LFM2-MoE's {@code w1}, {@code w3} and
 * {@code w2}; {@code transformers} converts the fused tensors to and from those): each expert's tensor is its slice of
 * the fused one. A fused tensor is loaded once for all its
 * experts' slices and freed when the last is taken.
 */
final class FusedExperts {
    private FusedExperts() {
    }

    /** A slice of a fused tensor: expert {@code expert}'s rows {@code [from, from + rows)}. */
    private record Slice(String fused, int expert, long from, long rows, long[] shape) {
    }

    /**
     * {@code source} with each fused experts' tensor whose per-expert names the checkpoint {@code expected} holds
     * presented under those names; {@code source} itself where there is none.
     */
    static HfWeights.Source perExpert(HfWeights.Source source, Set<String> expected) {
        Map<String, Slice> slices = new HashMap<>();
        Set<String> hidden = new LinkedHashSet<>();
        for (String name : source.names()) {
            if (!name.endsWith("experts.gate_up_proj")) {
                continue;
            }
            String prefix = name.substring(0, name.length() - "gate_up_proj".length());
            String down = prefix + "down_proj";
            long[] gateUp = source.shape(name);
            // each expert's gate, up and down projection, as Qwen's mixtures name them or as LFM2-MoE's do
            String[] parts = expected.contains(prefix + "0.w1.weight") ? new String[] {"w1", "w3", "w2"}
                    : new String[] {"gate_proj", "up_proj", "down_proj"};
            if (!expected.contains(prefix + "0." + parts[0] + ".weight") || !source.names().contains(down)
                    || gateUp.length != 3 || gateUp[1] % 2 != 0) {
                continue;
            }
            long width = gateUp[1] / 2;
            long[] downShape = source.shape(down);
            if (!java.util.Arrays.equals(downShape, new long[] {gateUp[0], gateUp[2], width})) {
                continue; // not the layout described above: the per-expert names stay missing, and are reported so
            }
            for (int e = 0; e < gateUp[0]; e++) {
                slices.put(prefix + e + "." + parts[0] + ".weight", new Slice(name, e, 0, width,
                        new long[] {width, gateUp[2]}));
                slices.put(prefix + e + "." + parts[1] + ".weight", new Slice(name, e, width, width,
                        new long[] {width, gateUp[2]}));
                slices.put(prefix + e + "." + parts[2] + ".weight", new Slice(down, e, 0, gateUp[2],
                        new long[] {gateUp[2], width}));
            }
            hidden.add(name);
            hidden.add(down);
        }
        if (slices.isEmpty()) {
            return source;
        }
        Set<String> names = new LinkedHashSet<>(source.names());
        names.removeAll(hidden);
        names.addAll(slices.keySet());
        Set<String> all = java.util.Collections.unmodifiableSet(names);
        Map<String, Integer> remaining = new HashMap<>();
        slices.values().forEach(s -> remaining.merge(s.fused(), 1, Integer::sum));
        Map<String, Tensor> loaded = new HashMap<>();
        return new HfWeights.Source() {
            @Override
            public Set<String> names() {
                return all;
            }

            @Override
            public long[] shape(String name) {
                Slice s = slices.get(name);
                return s == null ? source.shape(name) : s.shape().clone();
            }

            @Override
            public Tensor load(String name) {
                Slice s = slices.get(name);
                if (s == null) {
                    return source.load(name);
                }
                Tensor fused = loaded.computeIfAbsent(s.fused(), source::load);
                Tensor slice;
                try (Tensor expert = fused.select(0, s.expert()); Tensor rows = expert.narrow(0, s.from(), s.rows())) {
                    slice = rows.copy(); // memory of its own: the fused tensor is freed after the last slice
                }
                if (remaining.merge(s.fused(), -1, Integer::sum) <= 0) {
                    loaded.remove(s.fused()).close();
                    remaining.remove(s.fused());
                }
                return slice;
            }

            @Override
            public String storedName(String name) {
                Slice s = slices.get(name);
                return s == null ? source.storedName(name) : source.storedName(s.fused()) + "[" + s.expert() + "]";
            }
        };
    }
}

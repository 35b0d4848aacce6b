package io.arrakis.bench;

import io.arrakis.json.Json;
import io.arrakis.torch.DType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * What {@link ModelProfiler} measured of one forward pass: per hook point the time attributed to it and its
 * activation's bytes, aggregated per layer, per component and per (layer, component), as a text table
 * ({@link #toTable()}) or JSON ({@link #toJson()}).
 *
 * <p>Components: {@code embed} ({@code hook_embed}, {@code hook_pos_embed}), {@code resid} ({@code hook_resid_pre},
 * {@code hook_resid_mid}, {@code hook_resid_post}: the residual additions), {@code attn} ({@code attn.*} and
 * {@code hook_attn_out}), {@code mlp} ({@code mlp.*} and {@code hook_mlp_out}), {@code ln}
 * ({@code ln1.*}, {@code ln2.*}, {@code ln_final.*}), {@code unembed} ({@code logits}); any other hook point is
 * {@code other}. Hook points outside the blocks have layer {@code -1}.
 */
public final class ModelProfile {
    /** The components, in the order tables list them. */
    public static final List<String> COMPONENTS = List.of("embed", "resid", "attn", "mlp", "ln", "unembed", "other");

    /**
     * One hook point's measurement.
     *
     * @param hookName  e.g. {@code blocks.0.attn.hook_pattern}
     * @param layer     the block, or -1 outside the blocks
     * @param component one of {@link #COMPONENTS}
     * @param nanos     the time attributed to it (see {@link ModelProfiler})
     * @param bytes     {@code numel × element size} of its activation
     * @param shape     its activation's shape
     * @param dtype     its activation's dtype
     */
    public record HookTiming(String hookName, int layer, String component, long nanos, long bytes, long[] shape,
                             DType dtype) {
        public HookTiming {
            Objects.requireNonNull(hookName, "hookName");
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Equal when every component is, the shape by its values. */
        @Override
        public boolean equals(Object o) {
            return o instanceof HookTiming t && hookName.equals(t.hookName) && layer == t.layer
                    && Objects.equals(component, t.component) && nanos == t.nanos && bytes == t.bytes
                    && java.util.Arrays.equals(shape, t.shape) && dtype == t.dtype;
        }

        @Override
        public int hashCode() {
            return Objects.hash(hookName, layer, component, nanos, bytes, java.util.Arrays.hashCode(shape), dtype);
        }

        @Override
        public String toString() {
            return "HookTiming[" + hookName + ", layer " + layer + ", " + component + ", " + nanos + " ns, " + bytes
                    + " bytes, " + java.util.Arrays.toString(shape) + ", " + dtype + "]";
        }
    }

    /** A sum over hook points: their count, time and activation bytes. */
    public record Totals(int hooks, long nanos, long bytes) {
        Totals plus(HookTiming t) {
            return new Totals(hooks + 1, nanos + t.nanos(), bytes + t.bytes());
        }
    }

    /** A (layer, component) group; {@code layer} is -1 outside the blocks. */
    public record Group(int layer, String component, Totals totals) {
    }

    private final String family;
    private final int layers;
    private final long[] inputShape;
    private final List<HookTiming> hooks;
    private final long totalNanos;
    private final long tailNanos;
    private final long hookOverheadNanos;

    ModelProfile(String family, int layers, long[] inputShape, List<HookTiming> hooks, long totalNanos, long tailNanos,
                 long hookOverheadNanos) {
        this.family = family;
        this.layers = layers;
        this.inputShape = inputShape.clone();
        this.hooks = List.copyOf(hooks);
        this.totalNanos = totalNanos;
        this.tailNanos = tailNanos;
        this.hookOverheadNanos = hookOverheadNanos;
    }

    /** The block of a hook name ({@code blocks.3.…} → 3), or -1 outside the blocks. */
    static int layerOf(String hookName) {
        if (!hookName.startsWith("blocks.")) {
            return -1;
        }
        int dot = hookName.indexOf('.', 7);
        try {
            return Integer.parseInt(hookName.substring(7, dot < 0 ? hookName.length() : dot));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The component of a hook name, one of {@link #COMPONENTS}. */
    static String componentOf(String hookName) {
        String local = hookName;
        if (hookName.startsWith("blocks.")) {
            int dot = hookName.indexOf('.', 7);
            local = dot < 0 ? "" : hookName.substring(dot + 1);
        }
        if (local.equals("hook_embed") || local.equals("hook_pos_embed")) {
            return "embed";
        }
        if (local.startsWith("hook_resid_")) {
            return "resid";
        }
        if (local.startsWith("attn.") || local.startsWith("linear_attn.") || local.startsWith("conv.")
                || local.equals("hook_attn_out")) {
            return "attn";
        }
        if (local.startsWith("mlp.") || local.equals("hook_mlp_out")) {
            return "mlp";
        }
        if (local.startsWith("ln")) {
            return "ln";
        }
        if (local.equals("logits")) {
            return "unembed";
        }
        return "other";
    }

    /** The model family profiled, e.g. {@code gpt2}. */
    public String family() {
        return family;
    }

    /** The shape of the input ids. */
    public long[] inputShape() {
        return inputShape.clone();
    }

    /** Every hook point's measurement, in the order they fired. */
    public List<HookTiming> hooks() {
        return hooks;
    }

    /** The wall time of the whole hooked forward pass, from the call to its return. */
    public long totalNanos() {
        return totalNanos;
    }

    /** The time from the last hook point until the forward pass returned. */
    public long tailNanos() {
        return tailNanos;
    }

    /** The time the profiler's hooks themselves took (reading the clock and shapes), attributed to no component. */
    public long hookOverheadNanos() {
        return hookOverheadNanos;
    }

    /** The time attributed to hook points: {@code total − tail − hook overhead}. */
    public long attributedNanos() {
        return hooks.stream().mapToLong(HookTiming::nanos).sum();
    }

    /** The sum of all activations' bytes. */
    public long activationBytes() {
        return hooks.stream().mapToLong(HookTiming::bytes).sum();
    }

    /** Totals per component, in {@link #COMPONENTS} order, only components that occurred. */
    public Map<String, Totals> byComponent() {
        Map<String, Totals> m = new LinkedHashMap<>();
        for (String c : COMPONENTS) {
            for (HookTiming t : hooks) {
                if (t.component().equals(c)) {
                    m.put(c, m.getOrDefault(c, new Totals(0, 0, 0)).plus(t));
                }
            }
        }
        return m;
    }

    /** Totals per layer (-1: outside the blocks), in ascending order. */
    public Map<Integer, Totals> byLayer() {
        Map<Integer, Totals> m = new LinkedHashMap<>();
        for (int l = -1; l < layers; l++) {
            for (HookTiming t : hooks) {
                if (t.layer() == l) {
                    m.put(l, m.getOrDefault(l, new Totals(0, 0, 0)).plus(t));
                }
            }
        }
        return m;
    }

    /**
     * Totals per (layer, component): first the groups outside the blocks that come before them (embed), then each
     * layer's components in {@link #COMPONENTS} order, then those after the blocks (ln, unembed).
     */
    public List<Group> groups() {
        Map<String, Group> m = new LinkedHashMap<>();
        List<Integer> order = new ArrayList<>();
        order.add(-1);
        for (int l = 0; l < layers; l++) {
            order.add(l);
        }
        for (int l : order) {
            for (String c : COMPONENTS) {
                for (HookTiming t : hooks) {
                    if (t.layer() == l && t.component().equals(c)) {
                        String key = l + "/" + c;
                        Group g = m.get(key);
                        m.put(key, new Group(l, c, (g == null ? new Totals(0, 0, 0) : g.totals()).plus(t)));
                    }
                }
            }
        }
        List<Group> before = new ArrayList<>();
        List<Group> blocks = new ArrayList<>();
        List<Group> after = new ArrayList<>();
        for (Group g : m.values()) {
            if (g.layer() >= 0) {
                blocks.add(g);
            } else if (g.component().equals("embed")) {
                before.add(g);
            } else {
                after.add(g);
            }
        }
        List<Group> out = new ArrayList<>(before);
        out.addAll(blocks);
        out.addAll(after);
        return out;
    }

    // ------------------------------------------------------------------------------------------------ output

    /**
     * A text table: one line per (layer, component) with its hook count, time in milliseconds, share of the total
     * and activation bytes; then per-component and per-layer totals and the total wall time with the unattributed
     * rest. Lines end with {@code \n}.
     */
    public String toTable() {
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"layer", "component", "hooks", "time ms", "time %", "activation bytes"});
        for (Group g : groups()) {
            rows.add(row(g.layer() < 0 ? "-" : Integer.toString(g.layer()), g.component(), g.totals()));
        }
        rows.add(null);
        for (Map.Entry<String, Totals> e : byComponent().entrySet()) {
            rows.add(row("all", e.getKey(), e.getValue()));
        }
        rows.add(null);
        for (Map.Entry<Integer, Totals> e : byLayer().entrySet()) {
            rows.add(row(e.getKey() < 0 ? "-" : Integer.toString(e.getKey()), "all", e.getValue()));
        }
        rows.add(null);
        rows.add(row("all", "all", new Totals(hooks.size(), attributedNanos(), activationBytes())));
        rows.add(new String[] {"", "hook overhead", "", ms(hookOverheadNanos), pct(hookOverheadNanos), ""});
        rows.add(new String[] {"", "after last hook", "", ms(tailNanos), pct(tailNanos), ""});
        rows.add(new String[] {"", "total (wall)", "", ms(totalNanos), pct(totalNanos), ""});
        int[] width = new int[6];
        for (String[] r : rows) {
            if (r != null) {
                for (int c = 0; c < 6; c++) {
                    width[c] = Math.max(width[c], r[c].length());
                }
            }
        }
        StringBuilder sb = new StringBuilder();
        sb.append(family).append(" forward, input ").append(Arrays.toString(inputShape)).append('\n');
        for (String[] r : rows) {
            if (r == null) {
                int all = Arrays.stream(width).sum() + 2 * 5;
                sb.append("-".repeat(all)).append('\n');
                continue;
            }
            StringBuilder line = new StringBuilder();
            for (int c = 0; c < 6; c++) {
                if (c > 0) {
                    line.append("  ");
                }
                String pad = " ".repeat(width[c] - r[c].length());
                line.append(c <= 1 ? r[c] + pad : pad + r[c]);   // labels left, numbers right
            }
            sb.append(line.toString().stripTrailing()).append('\n');
        }
        return sb.toString();
    }

    private String[] row(String layer, String component, Totals t) {
        return new String[] {layer, component, Integer.toString(t.hooks()), ms(t.nanos()), pct(t.nanos()),
                Long.toString(t.bytes())};
    }

    private static String ms(long nanos) {
        return String.format(Locale.ROOT, "%.3f", nanos / 1e6);
    }

    private String pct(long nanos) {
        return totalNanos <= 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100.0 * nanos / totalNanos);
    }

    /**
     * A structure for {@link Json#write}: {@code family}, {@code input_shape}, {@code total_ns}, {@code attributed_ns},
     * {@code hook_overhead_ns}, {@code tail_ns}, {@code activation_bytes}, {@code hooks} (each: {@code name},
     * {@code layer}, {@code component}, {@code ns}, {@code bytes}, {@code shape}, {@code dtype}), {@code components}
     * and {@code layers} (name or layer → {@code {hooks, ns, bytes}}) and {@code groups} (each: {@code layer},
     * {@code component}, {@code hooks}, {@code ns}, {@code bytes}).
     */
    public Map<String, Object> json() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("family", family);
        m.put("input_shape", inputShape.clone());
        m.put("total_ns", totalNanos);
        m.put("attributed_ns", attributedNanos());
        m.put("hook_overhead_ns", hookOverheadNanos);
        m.put("tail_ns", tailNanos);
        m.put("activation_bytes", activationBytes());
        List<Object> hookList = new ArrayList<>();
        for (HookTiming t : hooks) {
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("name", t.hookName());
            h.put("layer", (long) t.layer());
            h.put("component", t.component());
            h.put("ns", t.nanos());
            h.put("bytes", t.bytes());
            h.put("shape", t.shape());
            h.put("dtype", t.dtype().toString());
            hookList.add(h);
        }
        m.put("hooks", hookList);
        Map<String, Object> components = new LinkedHashMap<>();
        byComponent().forEach((c, t) -> components.put(c, totals(t)));
        m.put("components", components);
        Map<String, Object> layerMap = new LinkedHashMap<>();
        byLayer().forEach((l, t) -> layerMap.put(Integer.toString(l), totals(t)));
        m.put("layers", layerMap);
        List<Object> groupList = new ArrayList<>();
        for (Group g : groups()) {
            Map<String, Object> gm = new LinkedHashMap<>();
            gm.put("layer", (long) g.layer());
            gm.put("component", g.component());
            gm.putAll(totals(g.totals()));
            groupList.add(gm);
        }
        m.put("groups", groupList);
        return m;
    }

    private static Map<String, Object> totals(Totals t) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("hooks", (long) t.hooks());
        m.put("ns", t.nanos());
        m.put("bytes", t.bytes());
        return m;
    }

    /** {@link #json()} as indented JSON text. */
    public String toJson() {
        return Json.writeIndented(json());
    }

    @Override
    public String toString() {
        return "ModelProfile[" + family + ", " + hooks.size() + " hook points, "
                + String.format(Locale.ROOT, "%.3f ms, %d activation bytes]", totalNanos / 1e6, activationBytes());
    }
}

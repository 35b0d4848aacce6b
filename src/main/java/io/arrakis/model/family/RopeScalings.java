package io.arrakis.model.family;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;

/**
 * Reads the scaling of a rotary settings object ({@code rope_scaling}, or {@code transformers} 5's
 * {@code rope_parameters}) as {@code transformers} 5 reads it: {@code rope_type} (or its older name {@code type}),
 * default {@code "default"}; for the types with an original context, {@code original_max_position_embeddings}
 * defaulting to {@code max_position_embeddings}. Types that are not implemented, and entries a type does not take,
 * are refused rather than ignored.
 */
final class RopeScalings {

    /** Entries every type takes; {@code rope_theta} and {@code partial_rotary_factor} are read by the builder. */
    private static final Set<String> COMMON = Set.of("rope_type", "type", "rope_theta", "partial_rotary_factor");

    private static final Map<String, Set<String>> ENTRIES = Map.of(
            "default", Set.of(),
            "linear", Set.of("factor"),
            "llama3", Set.of("factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"),
            "yarn", Set.of("factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow",
                    "mscale", "mscale_all_dim", "truncate"),
            "longrope", Set.of("short_factor", "long_factor", "factor", "attention_factor",
                    "original_max_position_embeddings"),
            "dynamic", Set.of("factor"),
            "proportional", Set.of("factor"));

    private final Map<?, ?> entries;
    private final String key;

    /**
     * {@code s} with {@code rope_parameters} set to {@code filledIn} where the configuration class fills it in when
     * absent (CwmConfig, ApertusConfig): neither it nor a non-empty {@code rope_scaling} is given, the latter being
     * what transformers then takes over it.
     */
    static Settings withDefault(Settings s, Map<String, Object> filledIn) {
        boolean scaling = s.get("rope_scaling") instanceof Map<?, ?> m && !m.isEmpty();
        return s.get("rope_parameters") == null && !scaling ? s.with("rope_parameters", filledIn) : s;
    }

    private RopeScalings(Map<?, ?> entries, String key) {
        this.entries = entries;
        this.key = key;
    }

    /**
     * @param entries the object
     * @param key its key in the configuration, for messages
     * @param maxPositions {@code max_position_embeddings}
     * @param originalMaxPositions a top-level {@code original_max_position_embeddings} that takes precedence (Phi-3
     *     keeps the pretraining length there), or null
     */
    static Rope.Scaling read(Map<?, ?> entries, String key, int maxPositions, Integer originalMaxPositions) {
        return read(entries, key, maxPositions, originalMaxPositions, Reading.TRANSFORMERS);
    }

    /** How a family's rotary embedding reads its rotary object. */
    enum Reading {
        /** As {@code ROPE_INIT_FUNCTIONS} of {@code transformers}. */
        TRANSFORMERS,
        /**
         * A {@code "dynamic"} type with an {@code alpha} entry as HunYuan's rotary embedding reads it
         * ({@link Rope.NtkAlpha}), ignoring the type's other entries, as it does below
         * {@code max_position_embeddings}.
         */
        NTK_ALPHA,
        /**
         * PhiMoE's rotary embedding: {@code "default"}, or {@code "longrope"} with its short factors whatever the
         * pass's length and cos and sin scaled by {@code short_mscale} within the pretraining context and by
         * {@code long_mscale} beyond it; no other type.
         */
        PHIMOE
    }

    /** {@link #read(Map, String, int, Integer)} as the family's rotary embedding reads it. */
    static Rope.Scaling read(Map<?, ?> entries, String key, int maxPositions, Integer originalMaxPositions,
                             Reading reading) {
        return new RopeScalings(entries, key).scaling(maxPositions, originalMaxPositions, reading);
    }

    private Rope.Scaling scaling(int maxPositions, Integer originalOverride, Reading reading) {
        String type = type();
        if (reading == Reading.NTK_ALPHA && type.equals("dynamic") && entries.get("alpha") != null) {
            require("factor"); // transformers validates a dynamic rope by it, though the alpha's base ignores it
            return new Rope.NtkAlpha(positive("alpha"));
        }
        if (reading == Reading.PHIMOE && !type.equals("default")) {
            return phimoe(type, maxPositions);
        }
        Set<String> taken = ENTRIES.get(type);
        if (taken == null) {
            throw invalid(key + ".rope_type", type, "is not a rope type of transformers; implemented: "
                    + String.join(", ", ENTRIES.keySet().stream().sorted().toList()));
        }
        Set<String> unknown = new LinkedHashSet<>();
        for (Object name : entries.keySet()) {
            if (!COMMON.contains(name) && !taken.contains(name)) {
                unknown.add(String.valueOf(name));
            }
        }
        if (!unknown.isEmpty()) {
            throw invalid(key, entries, "has " + String.join(", ", unknown) + ", which rope_type \"" + type
                    + "\" does not take" + (taken.isEmpty() ? "" : " (it takes " + String.join(", ", taken.stream()
                    .sorted().toList()) + ")"));
        }
        int original = original(maxPositions, originalOverride);
        return switch (type) {
            case "default" -> new Rope.Unscaled();
            case "linear" -> new Rope.Linear(positive("factor"));
            case "llama3" -> llama3(original);
            case "yarn" -> yarn(original, maxPositions);
            case "longrope" -> longRope(original, maxPositions);
            case "dynamic" -> new Rope.DynamicNtk(positive("factor"), maxPositions);
            case "proportional" -> proportional();
            default -> throw new AssertionError(type);
        };
    }

    /** The pretraining context: the top-level one, the object's own, or {@code max_position_embeddings}. */
    private int original(int maxPositions, Integer originalOverride) {
        return originalOverride != null ? originalOverride
                : entries.containsKey("original_max_position_embeddings")
                        ? positiveInt("original_max_position_embeddings") : maxPositions;
    }

    private String type() {
        Object type = entries.get("rope_type");
        Object older = entries.get("type");
        if (type != null && older != null && !type.equals(older)) {
            throw invalid(key, entries, "gives rope_type " + describe(type) + " and type " + describe(older));
        }
        Object chosen = type != null ? type : older != null ? older : "default";
        if (!(chosen instanceof String s)) {
            throw invalid(key + ".rope_type", chosen, "must be a string");
        }
        return s;
    }

    /** {@code _compute_proportional_rope_parameters}: the fraction of frequencies that turn, 1 and a factor of 1 by default. */
    private Rope.Proportional proportional() {
        double fraction = entries.get("partial_rotary_factor") == null ? 1.0 : positive("partial_rotary_factor");
        if (fraction > 1) {
            throw invalid(key + ".partial_rotary_factor", fraction, "must be at most 1 (the whole head)");
        }
        return new Rope.Proportional(fraction, entries.get("factor") == null ? 1.0 : positive("factor"));
    }

    /**
     * {@code llama3}: any positive factors, as transformers takes them (Llama 4 Scout's are equal, which leaves no
     * frequency between the bands to smooth).
     */
    private Rope.Llama3 llama3(int original) {
        return new Rope.Llama3(positive("factor"), positive("low_freq_factor"), positive("high_freq_factor"),
                original);
    }

    /** {@code _compute_yarn_parameters}: a null factor is the context's growth, the attention factor is YaRN's mscale. */
    private Rope.Yarn yarn(int original, int maxPositions) {
        require("factor");
        double factor = entries.get("factor") == null ? (double) maxPositions / original : positive("factor");
        Double attentionFactor = optionalNumber("attention_factor");
        String attentionFrom = "attention_factor";
        if (attentionFactor == null) {
            Double mscale = optionalNumber("mscale");
            Double mscaleAllDim = optionalNumber("mscale_all_dim");
            attentionFactor = mscale != null && mscale != 0 && mscaleAllDim != null && mscaleAllDim != 0
                    ? mscale(factor, mscale) / mscale(factor, mscaleAllDim) : mscale(factor, 1.0);
            attentionFrom = "mscale";
        }
        if (!(attentionFactor > 0) || attentionFactor.isInfinite()) {
            throw invalid(key + "." + attentionFrom, entries.get(attentionFrom), "gives an attention factor of "
                    + attentionFactor + ", which must be a positive number (cos and sin are scaled by it)");
        }
        Double betaFast = nonNegative("beta_fast");
        Double betaSlow = nonNegative("beta_slow");
        Object truncate = entries.containsKey("truncate") ? entries.get("truncate") : Boolean.TRUE;
        if (!(truncate instanceof Boolean t)) {
            throw invalid(key + ".truncate", truncate, "must be a boolean");
        }
        // Python's `beta or default`: 0 and None both mean the default
        return new Rope.Yarn(factor, attentionFactor, betaFast == null || betaFast == 0 ? 32 : betaFast,
                betaSlow == null || betaSlow == 0 ? 1 : betaSlow, original, t);
    }

    /**
     * PhiMoE's longrope: {@code PhimoeRotaryEmbedding} recomputes its frequencies without the pass's length, so with
     * the short factors for any length, and multiplies cos and sin by {@code long_mscale} beyond the pretraining
     * context and {@code short_mscale} within it, in place of the longrope's attention factor. The long factors are
     * required, as transformers validates them, and not read. The pretraining context is the object's own or
     * {@code max_position_embeddings}: PhimoeConfig copies the object's over a top-level one, which it never reads.
     */
    private Rope.LongRope phimoe(String type, int maxPositions) {
        if (!type.equals("longrope")) {
            throw invalid(key + ".rope_type", type, "is not implemented for PhiMoE, whose rotary embedding scales cos"
                    + " and sin by short_mscale or long_mscale: only \"default\" and \"longrope\" are");
        }
        Set<String> taken = new LinkedHashSet<>(ENTRIES.get("longrope"));
        taken.addAll(List.of("short_mscale", "long_mscale"));
        for (Object name : entries.keySet()) {
            if (!COMMON.contains(name) && !taken.contains(name)) {
                throw invalid(key, entries, "has " + name + ", which PhiMoE's longrope does not take (it takes "
                        + String.join(", ", taken.stream().sorted().toList()) + ")");
            }
        }
        Rope.LongRope read = longRope(original(maxPositions, null), maxPositions);
        double shortMscale = finite("short_mscale");
        double longMscale = finite("long_mscale");
        return new Rope.LongRope(read.shortFactor(), read.shortFactor(), read.originalMaxPositions(), shortMscale,
                longMscale);
    }

    private double finite(String name) {
        require(name);
        Double v = optionalNumber(name);
        if (v == null || v.isNaN() || v.isInfinite()) {
            throw invalid(key + "." + name, entries.get(name), "must be a finite number");
        }
        return v;
    }

    /**
     * {@code _compute_longrope_parameters}: a null factor is the context's growth; without an attention factor,
     * {@code sqrt(1 + ln(factor) / ln(original))}, or 1 where the factor is at most 1.
     */
    private Rope.LongRope longRope(int original, int maxPositions) {
        List<Double> shortFactor = factors("short_factor");
        List<Double> longFactor = factors("long_factor");
        double factor = entries.get("factor") == null ? (double) maxPositions / original : positive("factor");
        Double attentionFactor = optionalNumber("attention_factor");
        if (attentionFactor == null) {
            attentionFactor = factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
        } else if (!(attentionFactor > 0) || attentionFactor.isInfinite()) {
            throw invalid(key + ".attention_factor", attentionFactor, "must be a positive number (cos and sin are"
                    + " scaled by it)");
        }
        return new Rope.LongRope(shortFactor, longFactor, original, attentionFactor, attentionFactor);
    }

    /** A list of positive numbers, one per rotary frequency (its length is checked against the rotary dimension). */
    private List<Double> factors(String name) {
        require(name);
        if (!(entries.get(name) instanceof List<?> list) || list.isEmpty()) {
            throw invalid(key + "." + name, entries.get(name), "must be a list of positive numbers, one per rotary"
                    + " frequency");
        }
        List<Double> factors = new ArrayList<>();
        for (Object v : list) {
            if (!(v instanceof Number n) || !(n.doubleValue() > 0) || Double.isInfinite(n.doubleValue())) {
                throw invalid(key + "." + name, entries.get(name), "must be a list of positive numbers, one per"
                        + " rotary frequency");
            }
            factors.add(n.doubleValue());
        }
        return factors;
    }

    private static double mscale(double scale, double mscale) {
        return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
    }

    private void require(String name) {
        if (!entries.containsKey(name)) {
            throw invalid(key, entries, "lacks \"" + name + "\", which rope_type \"" + type() + "\" requires");
        }
    }

    private double positive(String name) {
        require(name);
        Object v = entries.get(name);
        if (!(v instanceof Number n)) {
            throw invalid(key + "." + name, v, "must be a number");
        }
        if (!(n.doubleValue() > 0)) {
            throw invalid(key + "." + name, v, "must be positive");
        }
        return n.doubleValue();
    }

    private int positiveInt(String name) {
        Object v = entries.get(name);
        if (!(v instanceof Integer i) || i <= 0) {
            throw invalid(key + "." + name, v, "must be a positive integer");
        }
        return i;
    }

    /** An optional number of rotations: a negative one has no correction dimension (its logarithm is NaN). */
    private Double nonNegative(String name) {
        Double v = optionalNumber(name);
        if (v != null && v < 0) {
            throw invalid(key + "." + name, v, "must be positive (a number of rotations; 0 means the default)");
        }
        return v;
    }

    private Double optionalNumber(String name) {
        Object v = entries.get(name);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Number n)) {
            throw invalid(key + "." + name, v, "must be a number");
        }
        return n.doubleValue();
    }
}

package io.arrakis.model;

import java.util.Arrays;
import java.util.Objects;
import java.util.Set;
import java.util.function.Predicate;

/** Which activations a forward pass keeps in its {@link ActivationCache}. */
public final class CacheSpec {
    private static final CacheSpec ALL = new CacheSpec(name -> true, null);
    private static final CacheSpec NONE = new CacheSpec(name -> false, Set.of());

    private final Predicate<String> keep;
    /** The names given to {@link #only}, checked against the model's hook points; null for a predicate. */
    private final Set<String> explicit;

    private CacheSpec(Predicate<String> keep, Set<String> explicit) {
        this.keep = keep;
        this.explicit = explicit;
    }

    /** Every hook point. */
    public static CacheSpec all() {
        return ALL;
    }

    /** Nothing: the forward pass returns only the logits. */
    public static CacheSpec none() {
        return NONE;
    }

    /** Exactly these hook names; a name the model does not have is rejected by the forward pass. */
    public static CacheSpec only(String... names) {
        Objects.requireNonNull(names, "names");
        for (String name : names) {
            Objects.requireNonNull(name, "a hook name given to CacheSpec.only is null");
        }
        Set<String> set = Set.copyOf(Arrays.asList(names)); // a name given twice is cached once
        return new CacheSpec(set::contains, set);
    }

    /**
     * Hook names accepted by {@code filter}, e.g. {@code name -> name.endsWith("hook_pattern")}. The filter is asked
     * any number of times about a name in a pass: its answer must depend on the name alone.
     */
    public static CacheSpec matching(Predicate<String> filter) {
        return new CacheSpec(Objects.requireNonNull(filter, "filter"), null);
    }

    Set<String> explicitNames() {
        return explicit;
    }

    boolean keeps(String hookName) {
        return keep.test(hookName);
    }
}

package io.arrakis.model.family;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.normalise;

/** A family's keys, in the order of its configuration class's {@code __init__}, and its {@code attribute_map} aliases. */
final class Keys {
    private final Map<String, Key> byName;
    private final Map<String, String> aliases;

    private Keys(Map<String, Key> byName, Map<String, String> aliases) {
        this.byName = byName;
        this.aliases = aliases;
    }

    /**
     * @param keys the keys in argument order
     * @param aliases standard name to the family's real key ({@code hidden_size -> n_embd})
     */
    static Keys of(List<Key> keys, Map<String, String> aliases) {
        Map<String, Key> byName = new LinkedHashMap<>();
        for (Key k : keys) {
            if (byName.put(k.name(), k) != null) {
                throw new IllegalStateException("key " + k.name() + " is declared twice");
            }
        }
        return new Keys(Collections.unmodifiableMap(byName), Map.copyOf(aliases));
    }

    /** The keys the defaults hold, with their default values, in argument order. */
    Map<String, Object> defaults() {
        Map<String, Object> raw = new LinkedHashMap<>();
        for (Key k : byName.values()) {
            if (k.inDefaults()) {
                raw.put(k.name(), k.defaultValue());
            }
        }
        return raw;
    }

    /** The real key a standard name maps to ({@code hidden_size} is {@code n_embd} for gpt2). */
    String realKey(String name) {
        return aliases.getOrDefault(name, name);
    }

    /**
     * Applies overrides to a copy of {@code base}: resolves aliases, type-checks family keys, and either keeps
     * ({@code keepUnknown}, for config.json) or rejects keys the family does not know and {@code base} lacks.
     */
    Map<String, Object> merge(String family, Map<String, Object> base, Map<String, ?> overrides, boolean keepUnknown) {
        Map<String, Object> out = new LinkedHashMap<>(base);
        Map<String, String> givenAs = new LinkedHashMap<>();
        Map<String, Object> assigned = new LinkedHashMap<>();
        for (Map.Entry<String, ?> e : overrides.entrySet()) {
            String given = Objects.requireNonNull(e.getKey(), "override key");
            String real = realKey(given);
            Key key = byName.get(real);
            Object value;
            if (key != null) {
                value = key.normaliseValue(given, e.getValue());
            } else if (keepUnknown || base.containsKey(real)) {
                value = normalise(given, e.getValue());
            } else {
                throw unknownKey(family, given);
            }
            if (assigned.containsKey(real) && !Objects.equals(assigned.get(real), value)) {
                throw new IllegalArgumentException(givenAs.get(real) + " = " + describe(assigned.get(real)) + " and "
                        + given + " = " + describe(value) + " set the same key " + real + " of " + family
                        + " to different values");
            }
            assigned.put(real, value);
            givenAs.put(real, given);
            if (value == null && key != null && !key.inDefaults()) {
                out.remove(real); // an optional key set to null is absent, as the configuration class expects
            } else {
                out.put(real, value);
            }
        }
        return out;
    }

    private IllegalArgumentException unknownKey(String family, String given) {
        List<String> names = new ArrayList<>(byName.keySet());
        String some = String.join(", ", names.subList(0, Math.min(10, names.size())));
        String aliasList = aliases.isEmpty() ? ""
                : "; aliases: " + String.join(", ", aliases.keySet().stream().sorted().toList());
        return new IllegalArgumentException("unknown key \"" + given + "\" for " + family
                + "; valid keys include " + some + ", ... (" + names.size() + " in all" + aliasList + ")");
    }
}

package io.arrakis.model.family;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;

/** Typed reads of a configuration's validated, normalised key-value map, for deriving its {@link Architecture}. */
final class Settings {
    private final Map<String, Object> raw;

    Settings(Map<String, Object> raw) {
        this.raw = raw;
    }

    /** These settings with {@code key} set, for a value the configuration class fills in after its arguments. */
    Settings with(String key, Object value) {
        Map<String, Object> copy = new LinkedHashMap<>(raw);
        copy.put(key, value);
        return new Settings(copy);
    }

    boolean has(String key) {
        return raw.containsKey(key);
    }

    Object get(String key) {
        return raw.get(key);
    }

    int integer(String key) {
        Object v = raw.get(key);
        if (!(v instanceof Integer i)) {
            throw invalid(key, v, "must be an integer");
        }
        return i;
    }

    Integer integerOrNull(String key) {
        return (Integer) raw.get(key);
    }

    double number(String key) {
        return (Double) raw.get(key);
    }

    boolean bool(String key) {
        return (Boolean) raw.get(key);
    }

    String string(String key) {
        return (String) raw.get(key);
    }

    String stringOrNull(String key) {
        return (String) raw.get(key);
    }

    List<?> listOrNull(String key) {
        return (List<?>) raw.get(key);
    }

    Map<?, ?> mapOrNull(String key) {
        return (Map<?, ?>) raw.get(key);
    }
}

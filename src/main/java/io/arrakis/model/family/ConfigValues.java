package io.arrakis.model.family;

import io.arrakis.json.Json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The JSON-shaped values a configuration holds ({@code Integer}, {@code Long}, {@code Double}, {@code Boolean},
 * {@code String}, {@code null}, unmodifiable lists and maps of these), and how errors name them.
 */
public final class ConfigValues {
    private ConfigValues() {
    }

    /**
     * A value with its type for an error message, e.g. {@code "4096" (String)} or {@code 768.0 (Double)}.
     *
     * @param value any value
     * @return the description
     */
    public static String describe(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String s) {
            return "\"" + s + "\" (String)";
        }
        String text = String.valueOf(value);
        if (text.length() > 200) {
            text = text.substring(0, 200) + "...";
        }
        String type = value instanceof List<?> ? "list" : value instanceof Map<?, ?> ? "object"
                : value.getClass().getSimpleName();
        return text + " (" + type + ")";
    }

    static IllegalArgumentException invalid(String key, Object value, String problem) {
        return new IllegalArgumentException(key + " = " + describe(value) + " " + problem);
    }

    /** Refuses each of {@code keys} that the settings leave null, saying {@code why} it must be set. */
    static void requireSet(Settings s, String why, String... keys) {
        for (String key : keys) {
            if (s.get(key) == null) {
                throw invalid(key, null, "must be set: " + why);
            }
        }
    }

    /**
     * Refuses {@code key} where the settings give it a value other than {@code accepted}: a key of published files
     * that the configuration class does not define, whose other values ask for what the model does not compute.
     */
    static void refuseUnless(Settings s, String key, Object accepted, String why) {
        if (s.has(key) && !java.util.Objects.equals(s.get(key), accepted)) {
            throw invalid(key, s.get(key), "is not implemented: " + why);
        }
    }

    /** Normalises any JSON-representable value; deep, unmodifiable copies of lists and maps. */
    static Object normalise(String name, Object value) {
        return normalise(name, value, 1);
    }

    /** {@code value} at {@code depth} of the configuration's JSON, where the configuration itself is 0. */
    private static Object normalise(String name, Object value, int depth) {
        if (value instanceof String s) {
            int at = Json.unpairedSurrogate(s);
            if (at >= 0) {
                throw invalid(name, value, "has an unpaired surrogate at index " + at + ", which JSON cannot hold");
            }
            return s;
        }
        if (value == null || value instanceof Boolean) {
            return value;
        }
        if ((value instanceof List<?> || value instanceof Map<?, ?>) && depth >= Json.MAX_DEPTH) {
            throw new IllegalArgumentException("config key '" + name + "' nests lists and objects deeper than "
                    + Json.MAX_DEPTH + " levels (a cycle?), which JSON round trips do not take");
        }
        if (value instanceof Number n) {
            Integer i = asInt(n);
            if (i != null) {
                return i;
            }
            if (n instanceof Long || n instanceof AtomicLong) {
                return n.longValue();
            }
            if (n instanceof BigInteger b) {
                if (b.bitLength() < 64) {
                    return b.longValue();
                }
                throw invalid(name, value, "is too large an integer for JSON round trips");
            }
            Double d = asDouble(n);
            if (d == null || d.isNaN() || d.isInfinite()) {
                throw invalid(name, value, "is not a finite JSON number");
            }
            return d;
        }
        if (value instanceof List<?> list) {
            List<Object> copy = new ArrayList<>(list.size());
            for (Object o : list) {
                copy.add(normalise(name, o, depth + 1));
            }
            return Collections.unmodifiableList(copy);
        }
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> copy = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!(e.getKey() instanceof String k)) {
                    throw invalid(name, value, "has a non-string key " + describe(e.getKey()));
                }
                copy.put((String) normalise(name, k, depth + 1), normalise(name, e.getValue(), depth + 1));
            }
            return Collections.unmodifiableMap(copy);
        }
        throw invalid(name, value, "is not a JSON value (Integer, Long, Double, Boolean, String, List, Map, null)");
    }

    /** An integral number that fits an int, or null. */
    static Integer asInt(Object value) {
        if (value instanceof Integer i) {
            return i;
        }
        if (value instanceof Short || value instanceof Byte || value instanceof AtomicInteger) {
            return ((Number) value).intValue();
        }
        if (value instanceof Long || value instanceof AtomicLong) {
            long l = ((Number) value).longValue();
            return l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE ? (int) l : null;
        }
        if (value instanceof BigInteger b && b.bitLength() < 32) {
            return b.intValue();
        }
        return null;
    }

    /** Any number as a double ({@code Float} through its decimal form), or null. */
    static Double asDouble(Object value) {
        if (value instanceof Double d) {
            return d;
        }
        if (value instanceof Float f) {
            return f.isNaN() || f.isInfinite() ? f.doubleValue() : Double.parseDouble(Float.toString(f));
        }
        if (value instanceof BigDecimal b) {
            return b.doubleValue();
        }
        if (value instanceof Number n) {
            return n.doubleValue();
        }
        return null;
    }
}

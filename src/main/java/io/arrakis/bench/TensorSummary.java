package io.arrakis.bench;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * How a tensor is logged: in the JSON a one-member object {@code {"__tensor__": {...}}} whose inner object holds
 * {@code dtype}, {@code shape}, {@code device}, {@code sha256} (of the elements, row-major, in their dtype,
 * little-endian), {@code values} (row-major, flat; only when the tensor has at most
 * {@link ExperimentLog.Options#tensorValueLimit()} elements and is not complex) and, when the data was saved,
 * {@code file} (a safetensors file beside the record) and {@code key} (the tensor's name in it).
 *
 * @param key    where the tensor sits in the record, e.g. {@code result.scores[2]}; also its name in the safetensors
 *               file
 * @param dtype  the dtype's name, e.g. {@code float32}
 * @param shape  the shape
 * @param device where the tensor was, e.g. {@code cpu} or {@code cuda:0}
 * @param sha256 SHA-256 of its elements, 64 hex digits
 * @param values the elements, flat and row-major ({@code Double} or the strings {@code "NaN"}, {@code "Infinity"},
 *               {@code "-Infinity"} for floating point; {@code Long}; {@code Boolean}), or null when not stored
 * @param file   the safetensors file name (in the record's folder), or null when the data was not saved
 */
public record TensorSummary(String key, String dtype, List<Long> shape, String device, String sha256,
                            List<Object> values, String file) {

    /** How the values of a record spell the numbers JSON has no form for. */
    private static final Set<String> NON_FINITE = Set.of("NaN", "Infinity", "-Infinity");

    /**
     * Checks the parts agree with one another.
     *
     * @throws IllegalArgumentException for a negative dimension, a shape of more elements than a long holds, values that
     *                                  are not numbers, booleans or {@code "NaN"}/{@code "Infinity"}/{@code "-Infinity"},
     *                                  or not as many values as the shape has elements
     */
    public TensorSummary {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(sha256, "sha256");
        String what = "the tensor summary " + key;
        if (shape.stream().anyMatch(Objects::isNull)) {
            throw new IllegalArgumentException(what + " needs a shape of non-negative integers, got " + shape);
        }
        shape = List.copyOf(shape);
        if (shape.stream().anyMatch(d -> d < 0)) {
            throw new IllegalArgumentException(what + " needs a shape of non-negative integers, got " + shape);
        }
        long n = elements(shape, what);
        if (values != null) {
            if (!values.stream().allMatch(v -> v instanceof Number || v instanceof Boolean
                    || v instanceof String text && NON_FINITE.contains(text))) {
                throw new IllegalArgumentException(what + " needs its values as a list of numbers, booleans or"
                        + " \"NaN\"/\"Infinity\"/\"-Infinity\", got " + values);
            }
            if (values.size() != n) {
                throw new IllegalArgumentException(what + " has " + values.size() + " values for its shape " + shape
                        + " of " + n + " elements");
            }
            values = List.copyOf(values);
        }
    }

    /**
     * The summary {@code json} stands for, or null when it is not a tensor summary.
     *
     * @param json a JSON value from a record
     * @param path its path in the record ({@code result.x}), used as the key when the JSON names none
     * @return the summary or null
     * @throws IllegalArgumentException naming {@code path} when it is a tensor summary with fields of the wrong kind
     *     (a record edited by hand, or damaged)
     */
    @SuppressWarnings("unchecked")
    public static TensorSummary from(Object json, String path) {
        if (!(json instanceof Map<?, ?> m) || m.size() != 1
                || !(m.get(ExperimentValues.TENSOR_KEY) instanceof Map<?, ?> s) || !(s.get("sha256") instanceof String)) {
            return null;
        }
        String what = "the tensor summary at " + path;
        if (!(s.get("dtype") instanceof String dtype) || !(s.get("device") instanceof String device)) {
            throw new IllegalArgumentException(what + " needs a string dtype and device, got " + s.get("dtype") + " and "
                    + s.get("device"));
        }
        if (!(s.get("shape") instanceof List<?> shape) || shape.stream().anyMatch(d -> !(d instanceof Long))) {
            throw new IllegalArgumentException(what + " needs a shape of non-negative integers, got " + s.get("shape"));
        }
        Object values = s.get("values");
        if (values != null && !(values instanceof List<?>)) {
            throw new IllegalArgumentException(what + " needs its values as a list, got " + values);
        }
        Object file = s.get("file");
        if (file != null && !(file instanceof String)) {
            throw new IllegalArgumentException(what + " needs a string file, got " + file);
        }
        String key = s.get("key") instanceof String k ? k : path;
        try {
            return new TensorSummary(key, dtype, (List<Long>) shape, device, (String) s.get("sha256"),
                    (List<Object>) values, (String) file);
        } catch (IllegalArgumentException e) {
            throw key.equals(path) ? e : new IllegalArgumentException("at " + path + ", " + e.getMessage(), e);
        }
    }

    /**
     * The number of elements.
     *
     * @return the product of the shape
     */
    public long numel() {
        return elements(shape, key);
    }

    private static long elements(List<Long> shape, String what) {
        if (shape.contains(0L)) {
            return 0;
        }
        long n = 1;
        for (long d : shape) {
            if (d > Long.MAX_VALUE / n) {
                throw new IllegalArgumentException(what + " has a shape " + shape + " of more elements than a long holds");
            }
            n *= d;
        }
        return n;
    }

    /** Whether the dtype is one whose values are never stored in a record. */
    boolean isComplex() {
        return dtype.startsWith("complex");
    }

    /**
     * The stored values as doubles (NaN and the infinities restored, booleans as 0 and 1).
     *
     * @return a new array
     * @throws IllegalStateException when the values were not stored
     */
    public double[] valuesAsDoubles() {
        if (values == null) {
            throw new IllegalStateException("tensor " + key + " (" + numel() + " elements) was logged without its values;"
                    + (file != null ? " read it with ExperimentLog.loadTensor"
                    : isComplex() ? " a complex tensor's values are not stored, so save tensors (complex64 only)"
                    : " raise the value limit or save tensors"));
        }
        double[] out = new double[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (values.get(i)) {
                case Number n -> n.doubleValue();
                case Boolean b -> b ? 1 : 0;
                case String text when NON_FINITE.contains(text) -> Double.parseDouble(text);
                default -> throw new IllegalStateException("tensor " + key + ": value " + i + " is " + values.get(i)
                        + ", not a number");
            };
        }
        return out;
    }
}

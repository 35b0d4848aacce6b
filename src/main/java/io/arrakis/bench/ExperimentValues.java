package io.arrakis.bench;

import io.arrakis.json.Json;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.RecordComponent;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * Turns the Java values of an experiment (arguments, result) into their JSON form, and computes the canonical text
 * that the version hash is taken of. See {@link ExperimentLog} for the rules; this class is its implementation.
 */
final class ExperimentValues {
    /** The deepest nesting of lists, maps, arrays and records accepted in one value (stops cycles, too). */
    static final int MAX_DEPTH = 32;

    /** The key of the one-member object that stands for a tensor. */
    static final String TENSOR_KEY = "__tensor__";

    private static final Pattern IDENTIFIER = Pattern.compile("[A-Za-z_$][A-Za-z0-9_$]*");
    /** Bytes hashed per slice of a tensor's memory (a ByteBuffer holds at most 2 GiB); a multiple of every width. */
    private static final long HASH_SLICE_BYTES = 1L << 30;

    /** A tensor met while encoding: where it was, the tensor, and the (still mutable) summary written for it. */
    record TensorRef(String key, Tensor tensor, Map<String, Object> summary) {
    }

    private final int valueLimit;
    private final List<TensorRef> tensors = new ArrayList<>();

    private ExperimentValues(int valueLimit) {
        this.valueLimit = valueLimit;
    }

    /**
     * The JSON form of {@code value}. Tensors become summaries; each is added to {@code tensors} so that the caller can
     * add file references or write the data.
     *
     * @param value      the value
     * @param path       where the value sits, for error messages and tensor keys ({@code "result"})
     * @param valueLimit tensors with at most this many elements carry their values
     * @param tensors    receives every tensor met, in encounter order
     * @throws IllegalArgumentException naming the type and the path of anything that cannot be encoded
     */
    static Object encode(Object value, String path, int valueLimit, List<TensorRef> tensors) {
        ExperimentValues encoder = new ExperimentValues(valueLimit);
        Object json = encoder.encode(value, path, 0);
        tensors.addAll(encoder.tensors);
        return json;
    }

    private Object encode(Object value, String path, int depth) {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("cannot log " + path + ": nesting deeper than " + MAX_DEPTH
                    + " levels (a cycle?)");
        }
        return switch (value) {
            case null -> null;
            case Boolean b -> b;
            case String s -> checkString(s, path, "the string");
            case Character c -> checkString(String.valueOf(c), path, "the string");
            case Long n -> n;
            case Integer n -> n.longValue();
            case Short n -> n.longValue();
            case Byte n -> n.longValue();
            case Double d -> Json.number(d);
            case Float f -> Json.number(f.doubleValue());
            case Enum<?> e -> e.name();
            case Tensor t -> tensor(t, path);
            case Record r -> record(r, path, depth);
            case Map<?, ?> m -> map(m, path, depth);
            case List<?> l -> {
                List<Object> out = new ArrayList<>(l.size());
                int i = 0;
                for (Object element : l) {
                    out.add(encode(element, path + "[" + i++ + "]", depth + 1));
                }
                yield Collections.unmodifiableList(out);
            }
            case Object[] a -> {
                List<Object> out = new ArrayList<>(a.length);
                for (int i = 0; i < a.length; i++) {
                    out.add(encode(a[i], path + "[" + i + "]", depth + 1));
                }
                yield Collections.unmodifiableList(out);
            }
            case double[] a -> primitives(a.length, i -> Json.number(a[i]));
            case float[] a -> primitives(a.length, i -> Json.number(a[i]));
            case long[] a -> primitives(a.length, i -> a[i]);
            case int[] a -> primitives(a.length, i -> (long) a[i]);
            case short[] a -> primitives(a.length, i -> (long) a[i]);
            case byte[] a -> primitives(a.length, i -> (long) a[i]);
            case boolean[] a -> primitives(a.length, i -> a[i]);
            case char[] a -> checkString(new String(a), path, "the string");
            default -> throw new IllegalArgumentException("cannot log " + path + ": unsupported type "
                    + value.getClass().getName() + " (supported: null, Boolean, String, Character, integer and"
                    + " floating-point boxes, enums, records, Map with String keys, List, arrays, Tensor)");
        };
    }

    /** {@code s}, unless it has an unpaired surrogate; {@code what} it is (the string, a key) names it in the refusal. */
    private static String checkString(String s, String path, String what) {
        int at = Json.unpairedSurrogate(s);
        if (at >= 0) {
            throw new IllegalArgumentException("cannot log " + path + ": " + what + " has an unpaired surrogate U+"
                    + String.format("%04X", (int) s.charAt(at)) + " at index " + at + ", which JSON cannot carry");
        }
        return s;
    }

    private static List<Object> primitives(int length, java.util.function.IntFunction<Object> element) {
        List<Object> out = new ArrayList<>(length);
        for (int i = 0; i < length; i++) {
            out.add(element.apply(i));
        }
        return Collections.unmodifiableList(out);
    }

    private Map<String, Object> map(Map<?, ?> m, String path, int depth) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getKey() instanceof String key)) {
                throw new IllegalArgumentException("cannot log " + path + ": a Map key is "
                        + (e.getKey() == null ? "null" : "a " + e.getKey().getClass().getName())
                        + "; only String keys are supported");
            }
            checkString(key, path, "a key");
            if (key.equals(TENSOR_KEY)) {
                throw new IllegalArgumentException("cannot log " + path + ": the key \"" + TENSOR_KEY + "\" is the"
                        + " log's own, for tensor summaries; name it otherwise");
            }
            out.put(key, encode(e.getValue(), member(path, key), depth + 1));
        }
        return Collections.unmodifiableMap(out);
    }

    private Map<String, Object> record(Record r, String path, int depth) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (RecordComponent component : r.getClass().getRecordComponents()) {
            if (component.getName().equals(TENSOR_KEY)) {
                throw new IllegalArgumentException("cannot log " + path + ": the component " + TENSOR_KEY + " of "
                        + r.getClass().getName() + " is named as the log's own key, for tensor summaries; name it"
                        + " otherwise");
            }
            String member = member(path, component.getName());
            out.put(component.getName(), encode(componentValue(r, component, member), member, depth + 1));
        }
        return Collections.unmodifiableMap(out);
    }

    private static Object componentValue(Record r, RecordComponent component, String path) {
        Method accessor = component.getAccessor();
        try {
            try {
                return accessor.invoke(r);
            } catch (IllegalAccessException notPublic) {
                accessor.setAccessible(true); // a record nested in a non-public class
                return accessor.invoke(r);
            }
        } catch (IllegalAccessException | RuntimeException e) {
            throw new IllegalArgumentException("cannot log " + path + ": cannot read record component "
                    + component.getName() + " of " + r.getClass().getName() + ": " + e, e);
        } catch (InvocationTargetException e) {
            throw new IllegalArgumentException("cannot log " + path + ": the accessor of record component "
                    + component.getName() + " of " + r.getClass().getName() + " threw " + e.getCause(), e.getCause());
        }
    }

    /** {@code path.key}, or {@code path["key"]} when the key is not a plain identifier. */
    static String member(String path, String key) {
        return IDENTIFIER.matcher(key).matches() ? path + "." + key : path + "[" + Json.quote(key) + "]";
    }

    // ------------------------------------------------------------------------------------------------ tensors

    private Map<String, Object> tensor(Tensor t, String path) {
        if (t.isClosed()) {
            throw new IllegalArgumentException("cannot log " + path + ": the tensor is closed");
        }
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("dtype", t.dtype().toString());
        List<Object> shape = new ArrayList<>();
        for (long s : t.shape()) {
            shape.add(s);
        }
        summary.put("shape", Collections.unmodifiableList(shape));
        summary.put("device", t.device().toString());
        summary.put("sha256", sha256Hex(t));
        boolean complex = t.dtype() == DType.COMPLEX64 || t.dtype() == DType.COMPLEX128;
        if (t.numel() <= valueLimit && !complex) {
            summary.put("values", values(t));
        }
        tensors.add(new TensorRef(path, t, summary));
        Map<String, Object> wrapper = new LinkedHashMap<>();
        wrapper.put(TENSOR_KEY, summary);
        return Collections.unmodifiableMap(wrapper);
    }

    private static List<Object> values(Tensor t) {
        if (t.dtype() == DType.BOOL) {
            boolean[] a = t.toBooleanArray();
            return primitives(a.length, i -> a[i]);
        }
        if (t.dtype().isIntegral()) {
            long[] a = t.toLongArray();
            return primitives(a.length, i -> a[i]);
        }
        double[] a = t.toDoubleArray();
        return primitives(a.length, i -> Json.number(a[i]));
    }

    /**
     * SHA-256 of the tensor's elements: row-major, in its own dtype, in the machine's (little-endian) byte order, every
     * NaN as its dtype's canonical quiet NaN. The log keeps NaN as the string {@code "NaN"}, which reads back as that
     * one NaN, while arithmetic makes others (0/0 is {@code 0xffc00000} in float32 on x86).
     */
    private static String sha256Hex(Tensor t) {
        return sha256Hex(t, HASH_SLICE_BYTES);
    }

    /** {@link #sha256Hex(Tensor)}, reading the memory {@code sliceBytes} (a multiple of 8) at a time. */
    static String sha256Hex(Tensor t, long sliceBytes) {
        Tensor moved = t.device().isCpu() ? null : t.to(Device.CPU);
        try (Tensor host = (moved == null ? t : moved).contiguous()) {
            MessageDigest digest = sha256();
            MemorySegment all = host.asSegment();
            int width = switch (host.dtype()) {
                case FLOAT16, BFLOAT16 -> 2;
                case FLOAT32, COMPLEX64 -> 4;
                case FLOAT64, COMPLEX128 -> 8;
                default -> 0;
            };
            for (long from = 0; from < all.byteSize(); from += sliceBytes) {
                ByteBuffer bytes = all.asSlice(from, Math.min(sliceBytes, all.byteSize() - from)).asByteBuffer()
                        .order(ByteOrder.nativeOrder());
                digestElements(digest, bytes, width, host.dtype());
            }
            return HexFormat.of().formatHex(digest.digest());
        } finally {
            if (moved != null) {
                moved.close();
            }
        }
    }

    private static void digestElements(MessageDigest digest, ByteBuffer bytes, int width, DType dtype) {
        if (width == 0) {
            digest.update(bytes);
            return;
        }
        ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.nativeOrder());
        while (bytes.hasRemaining()) {
            chunk.clear();
            while (bytes.hasRemaining() && chunk.hasRemaining()) {
                switch (width) {
                    case 2 -> chunk.putShort(canonicalNaN(bytes.getShort(), dtype == DType.BFLOAT16));
                    case 4 -> {
                        float f = bytes.getFloat();
                        chunk.putInt(Float.isNaN(f) ? 0x7fc00000 : Float.floatToRawIntBits(f));
                    }
                    default -> {
                        double d = bytes.getDouble();
                        chunk.putLong(Double.isNaN(d) ? 0x7ff8000000000000L : Double.doubleToRawLongBits(d));
                    }
                }
            }
            digest.update(chunk.flip());
        }
    }

    /** A float16 or bfloat16 value's bits, a NaN as the canonical quiet NaN. */
    private static short canonicalNaN(short bits, boolean bfloat16) {
        int exponent = bfloat16 ? 0x7f80 : 0x7c00;
        int fraction = bfloat16 ? 0x007f : 0x03ff;
        boolean nan = (bits & exponent) == exponent && (bits & fraction) != 0;
        return nan ? (short) (bfloat16 ? 0x7fc0 : 0x7e00) : bits;
    }

    // ------------------------------------------------------------------------------------------------ hashing

    /**
     * The canonical JSON text of a JSON value, which the version hash is taken of: compact, object keys sorted (by
     * UTF-16 code units, as {@link String#compareTo}), and each tensor summary reduced to its dtype, shape and data
     * hash, so that neither the device, nor the value limit, nor whether the data was saved changes the version.
     */
    static String canonical(Object json) {
        return Json.write(canonicalTree(json));
    }

    private static Object canonicalTree(Object json) {
        if (json instanceof Map<?, ?> m) {
            if (m.size() == 1 && m.get(TENSOR_KEY) instanceof Map<?, ?> summary && summary.containsKey("sha256")) {
                Map<String, Object> reduced = new TreeMap<>();
                reduced.put("dtype", summary.get("dtype"));
                reduced.put("shape", summary.get("shape"));
                reduced.put("sha256", summary.get("sha256"));
                return Map.of(TENSOR_KEY, reduced);
            }
            Map<String, Object> sorted = new TreeMap<>();
            m.forEach((k, v) -> sorted.put((String) k, canonicalTree(v)));
            return sorted;
        }
        if (json instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object o : l) {
                out.add(canonicalTree(o));
            }
            return out;
        }
        return json;
    }

    /** The first {@code hexChars} hex digits of the SHA-256 of {@code text} in UTF-8. */
    static String sha256Hex(String text, int hexChars) {
        byte[] digest = sha256().digest(text.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(digest).substring(0, hexChars);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256, which every Java platform must provide", e);
        }
    }
}

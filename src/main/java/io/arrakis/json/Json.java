package io.arrakis.json;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.StreamWriteFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Strict JSON (RFC 8259) for safetensors headers, shard indexes, model configs and the library's own records, over
 * Jackson's streaming parser and generator.
 *
 * <p>Values map to Java as: object → {@code Map<String, Object>} (unmodifiable, in document order), array →
 * {@code List<Object>} (unmodifiable), string → {@link String}, number → {@link Long} when written without fraction or
 * exponent and within range, else {@link Double}, {@code true}/{@code false} → {@link Boolean}, {@code null} →
 * {@code null}.
 *
 * <p>Strict: no comments, trailing commas, single quotes, leading zeros, {@code NaN}, unescaped control characters,
 * unpaired surrogates, duplicate keys or non-finite numbers; only whitespace may follow the value. Nesting deeper than
 * {@link #MAX_DEPTH} is rejected, so hostile input cannot exhaust the stack. Every error is a {@link ParseException}
 * giving the character offset.
 */
public final class Json {
    /** The deepest nesting of arrays and objects accepted. */
    public static final int MAX_DEPTH = 64;

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .disable(StreamWriteFeature.AUTO_CLOSE_TARGET)                   // a caller's writer stays open
            // a write that fails part-way leaves its document unfinished, not closed into one that parses
            .disable(StreamWriteFeature.AUTO_CLOSE_CONTENT)
            // the text is already in memory: strings and names as long as a writer made them are read back
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH)
                    .maxStringLength(Integer.MAX_VALUE).maxNameLength(Integer.MAX_VALUE).build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** The template of {@link #writeIndented}'s layout. */
    private static final DefaultPrettyPrinter INDENTED = new DefaultPrettyPrinter()
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(DefaultPrettyPrinter.NopIndenter.instance)
            .withSeparators(Separators.createDefaultInstance()
                    .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withArrayValueSpacing(Separators.Spacing.AFTER)
                    .withArrayEmptySeparator("")
                    .withObjectEmptySeparator(""));

    /** Malformed JSON; {@link #offset()} is the character index where the problem was found. */
    public static final class ParseException extends IllegalArgumentException {
        private final int offset;

        ParseException(String problem, long offset) {
            super("invalid JSON: " + problem + " at character " + offset);
            this.offset = (int) offset;
        }

        /** The character index in the parsed text where the problem was found. */
        public int offset() {
            return offset;
        }
    }

    private Json() {
    }

    /** Parses {@code text}, which must hold exactly one JSON value (surrounding whitespace allowed). */
    public static Object parse(String text) {
        try (JsonParser p = FACTORY.createParser(text)) {
            try {
                if (p.nextToken() == null) {
                    throw new ParseException("end of input, expected a value", text.length());
                }
                Object value = value(p);
                if (p.nextToken() != null) {
                    throw error(p, "unexpected " + p.getText() + " after the JSON value");
                }
                return value;
            } catch (StreamConstraintsException e) { // it carries no location: the parser's is where it stopped
                String limit = e.getOriginalMessage().contains("nesting") ? "nesting deeper than " + MAX_DEPTH
                        + " levels" : "beyond a limit of the reader";
                throw new ParseException(limit + " (" + withoutParserAdvice(e.getOriginalMessage()) + ")", offset(
                        e.getLocation() != null ? e.getLocation() : p.currentLocation(), text));
            }
        } catch (JsonProcessingException e) {
            throw new ParseException(withoutParserAdvice(e.getOriginalMessage()), offset(e.getLocation(), text));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Object value(JsonParser p) throws IOException {
        return switch (p.currentToken()) {
            case START_OBJECT -> {
                Map<String, Object> map = new LinkedHashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String key = string(p, p.currentName());
                    p.nextToken();
                    map.put(key, value(p));
                }
                yield Collections.unmodifiableMap(map);
            }
            case START_ARRAY -> {
                List<Object> list = new ArrayList<>();
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    list.add(value(p));
                }
                yield Collections.unmodifiableList(list);
            }
            case VALUE_STRING -> string(p, p.getText());
            case VALUE_NUMBER_INT -> p.getNumberType() == JsonParser.NumberType.BIG_INTEGER
                    ? finiteNumber(p) : (Object) p.getLongValue();
            case VALUE_NUMBER_FLOAT -> finiteNumber(p);
            case VALUE_TRUE -> Boolean.TRUE;
            case VALUE_FALSE -> Boolean.FALSE;
            case VALUE_NULL -> null;
            default -> throw error(p, "unexpected " + p.currentToken());
        };
    }

    /** Jackson decodes {@code \\u} escapes without pairing surrogates: a lone one is refused here. */
    private static String string(JsonParser p, String s) {
        int at = unpairedSurrogate(s);
        if (at >= 0) {
            throw error(p, "unpaired surrogate U+" + String.format("%04X", (int) s.charAt(at)) + " in a string");
        }
        return s;
    }

    private static double finiteNumber(JsonParser p) throws IOException {
        double d = p.getDoubleValue();
        if (!Double.isFinite(d)) {
            throw error(p, "number " + p.getText() + " is out of range");
        }
        return d;
    }

    private static ParseException error(JsonParser p, String problem) {
        return new ParseException(problem, Math.max(0, p.currentTokenLocation().getCharOffset()));
    }

    /** Jackson's message without its advice to enable parser features, which a user of this library cannot do. */
    private static String withoutParserAdvice(String message) {
        return message.replaceAll(": enable `[^`]*` to allow", "")
                .replaceAll(" ?\\(not recognized as one since Feature '\\w+' not enabled for parser\\)", "")
                .replaceAll(" ?\\((start marker at|for (Object|Array) starting at) \\[.*?\\]\\)", "")
                .replaceAll(", from `[^`]*`", "")
                .replaceAll("Non-standard token '(NaN|-?Infinity)'", "$1, a number Python's json writes but JSON"
                        + " does not have: replace or remove it")
                .replaceAll("end-of-input(?=\\w)", "end-of-input: ");
    }

    private static long offset(JsonLocation location, String text) {
        long at = location == null ? -1 : location.getCharOffset();
        return at < 0 ? text.length() : Math.min(at, text.length());
    }

    // ------------------------------------------------------------------------------------------------ writing

    /**
     * Writes {@code value} as compact JSON. Accepts what {@link #parse} returns: maps with string keys, lists, strings,
     * numbers ({@link Long}, {@link Integer}, {@link Short}, {@link Byte}, finite {@link Double} and {@link Float}),
     * {@code long[]} (as an array), booleans and {@code null}; and any other {@link Iterable}, as an array whose
     * elements are asked for as they are written. Strings with unpaired surrogates are rejected.
     */
    public static String write(Object value) {
        return write(value, false);
    }

    /**
     * {@link #write(Object)} onto {@code out} as it goes, for documents too large to hold as one string; {@code out} is
     * flushed, not closed.
     */
    public static void write(Object value, Writer out) throws IOException {
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            write(g, value, 0);
        }
    }

    /** Like {@link #write}, with each object member on its own line, indented by two spaces per level. */
    public static String writeIndented(Object value) {
        return write(value, true);
    }

    /** {@code s} as a JSON string literal, quotes included. */
    public static String quote(String s) {
        return write(s, false);
    }

    private static String write(Object value, boolean indented) {
        StringWriter out = new StringWriter();
        try (JsonGenerator g = FACTORY.createGenerator(out)) {
            if (indented) {
                g.setPrettyPrinter(INDENTED.createInstance());  // a printer counts its nesting: one per document
            }
            write(g, value, 0);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString();
    }

    private static void write(JsonGenerator g, Object value, int depth) throws IOException {
        // a container at depth d is level d + 1: what parse refuses is not written
        if (depth >= MAX_DEPTH && (value instanceof Map<?, ?> || value instanceof Iterable<?> || value instanceof long[])) {
            throw new IllegalArgumentException("Json.write: nesting deeper than " + MAX_DEPTH + " levels (a cycle?)");
        }
        switch (value) {
            case null -> g.writeNull();
            case String s -> g.writeString(writable(s));
            case Boolean b -> g.writeBoolean(b);
            case Double d -> g.writeNumber(finite(d));
            case Float f -> g.writeNumber(finite(f));
            case Long n -> g.writeNumber(n.longValue());
            case Integer n -> g.writeNumber(n.intValue());
            case Short n -> g.writeNumber(n.shortValue());
            case Byte n -> g.writeNumber(n.byteValue());
            case Map<?, ?> m -> {
                g.writeStartObject();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!(e.getKey() instanceof String k)) {
                        throw new IllegalArgumentException("Json.write: object key " + e.getKey() + " is not a string");
                    }
                    g.writeFieldName(writable(k));
                    write(g, e.getValue(), depth + 1);
                }
                g.writeEndObject();
            }
            case Iterable<?> l -> {
                g.writeStartArray();
                for (Object o : l) {
                    write(g, o, depth + 1);
                }
                g.writeEndArray();
            }
            case long[] a -> g.writeArray(a, 0, a.length);
            default -> throw new IllegalArgumentException("Json.write: cannot write a " + value.getClass().getName());
        }
    }

    /**
     * A finite double as itself; NaN and the infinities, which JSON cannot write, as the strings {@code "NaN"},
     * {@code "Infinity"} and {@code "-Infinity"} (the spelling of {@link Double#toString} and of Python's json): how
     * this library's outputs spell them.
     *
     * @param d a number
     * @return a {@link Double} or one of those strings
     */
    public static Object number(double d) {
        if (Double.isFinite(d)) {
            return d;
        }
        return Double.isNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity";
    }

    private static double finite(double d) {
        if (!Double.isFinite(d)) {
            throw new IllegalArgumentException("Json.write: " + d + " has no JSON form");
        }
        return d;
    }

    private static float finite(float f) {
        if (!Float.isFinite(f)) {
            throw new IllegalArgumentException("Json.write: " + f + " has no JSON form");
        }
        return f;
    }

    private static String writable(String s) {
        int at = unpairedSurrogate(s);
        if (at >= 0) {
            throw new IllegalArgumentException("Json.write: unpaired surrogate U+"
                    + String.format("%04X", (int) s.charAt(at)) + " in string at index " + at);
        }
        return s;
    }

    /** The index of the first surrogate in {@code s} that is not half of a pair (which JSON cannot hold), or -1. */
    public static int unpairedSurrogate(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return i;
            }
        }
        return -1;
    }
}

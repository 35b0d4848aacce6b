package io.arrakis.json;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The strict JSON parser and writer. */
class JsonTest {

    @Test
    void parsesEveryKindOfValue() {
        Object v = Json.parse(" {\"a\": [1, -2, 3.5, -0.25e2, 1E3, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"\": 0}\n");
        Map<?, ?> m = (Map<?, ?>) v;
        assertEquals(List.of("a", "b", "c", ""), List.copyOf(m.keySet()), "document order is kept");
        List<?> a = (List<?>) m.get("a");
        assertEquals(1L, a.get(0));
        assertEquals(-2L, a.get(1));
        assertEquals(3.5, a.get(2));
        assertEquals(-25.0, a.get(3));
        assertEquals(1000.0, a.get(4));
        assertEquals(Boolean.TRUE, a.get(5));
        assertEquals(Boolean.FALSE, a.get(6));
        assertNull(a.get(7));
        assertEquals("x", a.get(8));
        assertEquals(Map.of(), m.get("b"));
        assertEquals(List.of(), m.get("c"));
        assertEquals(0L, m.get(""));
    }

    @Test
    void numbersAreLongsWhenTheyFitAndDoublesOtherwise() {
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(Long.MIN_VALUE, Json.parse("-9223372036854775808"));
        assertEquals(9.223372036854775808E18, Json.parse("9223372036854775808"));
        assertEquals(0L, Json.parse("-0"));
        assertEquals(2.0, Json.parse("2.0"));
    }

    @Test
    void decodesEscapes() {
        assertEquals("\"\\/\b\f\n\r\t", Json.parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""));
        assertEquals("é€", Json.parse("\"\\u00e9\\u20AC\""));
        assertEquals("😀", Json.parse("\"\\ud83d\\ude00\""), "a surrogate pair escape is one code point");
        assertEquals("a😀b ü", Json.parse("\"a😀b ü\""), "raw non-ASCII passes through");
    }

    @Test
    void writesOntoAWriterWithoutClosingItAndAsksIterablesForElementsAsItGoes() throws Exception {
        java.util.concurrent.atomic.AtomicInteger asked = new java.util.concurrent.atomic.AtomicInteger();
        Iterable<Object> counted = () -> java.util.stream.IntStream.range(0, 3)
                .mapToObj(i -> (Object) (long) asked.incrementAndGet()).iterator();
        java.io.StringWriter out = new java.io.StringWriter() {
            @Override
            public void close() {
                throw new AssertionError("the caller's writer was closed");
            }
        };
        Json.write(Map.of("n", counted), out);
        out.write("!");
        assertEquals("{\"n\":[1,2,3]}!", out.toString());
        assertEquals(3, asked.get());
        assertEquals("[1,2,3]", Json.write(new java.util.ArrayDeque<>(List.of(1L, 2L, 3L))), "any collection");
    }

    /** Was: a write that failed part-way was closed into a shorter document that parses. */
    @Test
    void aWriteThatFailsPartWayLeavesADocumentThatDoesNotParse() throws Exception {
        Iterable<Object> failing = () -> java.util.stream.IntStream.range(0, 5).mapToObj(i -> {
            if (i == 2) {
                throw new IllegalStateException("no third element");
            }
            return (Object) 1.0;
        }).iterator();
        for (Object value : List.<Object>of(Map.of("x", Map.of("data", failing)), List.of(1.0, 2.0, Double.NaN))) {
            java.io.StringWriter out = new java.io.StringWriter();
            assertThrows(RuntimeException.class, () -> Json.write(value, out));
            assertThrows(Json.ParseException.class, () -> Json.parse(out.toString()), out.toString());
        }
    }

    /** Python's json writes NaN and Infinity into config.json files; the message says so, in this library's words. */
    @Test
    void messagesNamePythonsNonNumbersAndLeaveJacksonsInternalsOut() {
        for (String bad : List.of("NaN", "Infinity", "-Infinity")) {
            String m = assertThrows(Json.ParseException.class, () -> Json.parse("{\"score\": " + bad + "}")).getMessage();
            assertTrue(m.contains(bad + ", a number Python's json writes but JSON does not have"), m);
        }
        for (String bad : List.of("{\"a\":[1,2]]", "[1,2}", "1" + "0".repeat(1500))) {
            String m = assertThrows(Json.ParseException.class, () -> Json.parse(bad)).getMessage();
            assertFalse(m.contains("REDACTED") || m.contains("StreamRead") || m.contains("`"), m);
        }
    }

    /** Was: strings and names past Jackson's default read limits were written but could not be read back. */
    @Test
    void whatTheWriterWritesIsReadBackHoweverLong() {
        String longString = "x".repeat(21_000_000);
        String longName = "k".repeat(60_000);
        Object back = Json.parse(Json.write(java.util.Map.of(longName, longString)));
        assertEquals(java.util.Map.of(longName, longString), back);
    }

    @Test
    void acceptsNestingUpToTheLimit() {
        String ok = "[".repeat(Json.MAX_DEPTH) + "]".repeat(Json.MAX_DEPTH);
        Json.parse(ok);
        String tooDeep = "[".repeat(Json.MAX_DEPTH + 1) + "]".repeat(Json.MAX_DEPTH + 1);
        Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse(tooDeep));
        assertTrue(e.getMessage().contains("nesting deeper than"), e.getMessage());
        // far too deep must not overflow the stack either
        String hostile = "{\"a\":".repeat(100_000);
        assertThrows(Json.ParseException.class, () -> Json.parse(hostile));
        // was: the offset of the text's end, 200,000, where the reader stopped at the 65th level
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        assertTrue(assertThrows(Json.ParseException.class, () -> Json.parse(deep)).getMessage()
                .contains("at character 65"), "where the 65th level opens");
    }

    /** Was: 65 levels of lists were written, which parse refuses. */
    @Test
    void writeNestsAsDeepAsParseReads() {
        Object value = List.of();
        for (int i = 1; i < Json.MAX_DEPTH; i++) {
            value = List.of(value);
        }
        assertEquals(value, Json.parse(Json.write(value)), "64 levels");
        Object deeper = List.of(value);
        assertThrows(IllegalArgumentException.class, () -> Json.write(deeper));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "``                | end of input",
            "`   `             | end of input",
            "{                 | expected close marker for Object",
            "{\"a\" 1}         | was expecting a colon",
            "{\"a\":1,}        | was expecting double-quote to start field name",
            "[1,]              | expected a valid value",
            "[1 2]             | was expecting comma to separate Array entries",
            "{\"a\":1 \"b\":2} | was expecting comma to separate Object entries",
            "{'a':1}           | was expecting double-quote to start field name",
            "{a:1}             | was expecting double-quote to start field name",
            "01                | Leading zeroes not allowed",
            "-                 | end-of-input: No digit following sign",
            "1.                | Decimal point not followed by a digit",
            "1e                | end-of-input: expected a digit for number exponent",
            ".5                | expected a valid value",
            "+1                | JSON spec does not allow numbers to have plus signs",
            "NaN               | NaN, a number Python's json writes but JSON does not have",
            "Infinity          | Infinity, a number Python's json writes but JSON does not have",
            "1e999             | out of range",
            "tru               | Unrecognized token 'tru'",
            "nul               | Unrecognized token 'nul'",
            "\"abc             | was expecting closing quote",
            "\"a\\x\"          | Unrecognized character escape 'x'",
            "\"\\u12\"         | expected a hex-digit",
            "\"\\u12G4\"       | expected a hex-digit",
            "\"\\ud800\"       | unpaired surrogate U+D800",
            "\"\\udc00\"       | unpaired surrogate U+DC00",
            "\"\\ud800\\u0041\" | unpaired surrogate U+D800",
            "{\"a\":1,\"a\":2} | Duplicate field 'a'",
            "{} x              | Unrecognized token 'x'",
            "[] []             | after the JSON value",
            "1 2               | unexpected 2 after the JSON value",
            "{} \"b\"          | unexpected b after the JSON value",
            "/* c */ {}        | maybe a (non-standard) comment?",
    })
    void rejectsMalformedInputWithAPosition(String text, String expected) {
        Json.ParseException e = assertThrows(Json.ParseException.class, () -> Json.parse(text));
        assertTrue(e.getMessage().contains(expected), () -> "'" + text + "' gave: " + e.getMessage());
        assertTrue(e.getMessage().startsWith("invalid JSON: ") && e.getMessage().contains("at character"), e.getMessage());
        assertTrue(!e.getMessage().contains("enable") && !e.getMessage().contains("Source:"),
                () -> "no advice to enable parser features, no source: " + e.getMessage());
        assertTrue(e.offset() >= 0 && e.offset() <= text.length());
    }

    @Test
    void rejectsControlCharactersAndLoneSurrogatesInStrings() {
        assertThrows(Json.ParseException.class, () -> Json.parse("\"a\nb\""));
        assertThrows(Json.ParseException.class, () -> Json.parse("\"a\u0000b\""));
        assertThrows(Json.ParseException.class, () -> Json.parse("\"a\ud800b\""));
        assertThrows(Json.ParseException.class, () -> Json.parse("\"\udc00\""));
    }

    @Test
    void writesWhatItParses() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "q\"b\\s/\n\t\u0001é😀");
        m.put("l", List.of(1L, -2.5, true, false));
        m.put("n", null);
        m.put("a", new long[] {3, 4});
        m.put("i", 7);
        String text = Json.write(m);
        assertEquals("{\"s\":\"q\\\"b\\\\s/\\n\\t\\u0001é😀\",\"l\":[1,-2.5,true,false],\"n\":null,\"a\":[3,4],\"i\":7}", text);
        Map<?, ?> back = (Map<?, ?>) Json.parse(text);
        assertEquals(m.get("s"), back.get("s"));
        assertEquals(List.of(3L, 4L), back.get("a"));
        assertEquals(7L, back.get("i"));
    }

    @Test
    void writesAFloatAsItsShortestFloatSpelling() {
        assertEquals("[0.1,1.4E-45,3.4028235E38]", Json.write(List.of(0.1f, Float.MIN_VALUE, Float.MAX_VALUE)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Float.NaN));
    }

    @Test
    void writesIndentedObjectsOneMemberPerLine() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("a", List.of(1L, 2.5));
        m.put("b", Map.of("c", true));
        m.put("e", List.of());
        m.put("f", Map.of());
        String expected = "{\n  \"a\": [1, 2.5],\n  \"b\": {\n    \"c\": true\n  },\n  \"e\": [],\n  \"f\": {}\n}";
        assertEquals(expected, Json.writeIndented(m));
        assertEquals(expected, Json.writeIndented(m), "each document starts at the left margin again");
    }

    @Test
    void writeRefusesWhatJsonCannotHold() {
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> Json.write("a\ud800"));
        assertThrows(IllegalArgumentException.class, () -> Json.write(Map.of(1, 2)));
        assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
    }
}

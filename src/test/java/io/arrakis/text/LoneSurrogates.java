package io.arrakis.text;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Texts with a lone UTF-16 surrogate, which no tokenizer may turn into ids. */
final class LoneSurrogates {
    private LoneSurrogates() {
    }

    /** Text → the message's "U+XXXX, at index i". */
    static final Map<String, String> CASES = Map.of(
            "ok \uD83D\uDC4D then \uD800 end", "U+D800, at index 11",
            "a\uD83Db", "U+D83D, at index 1",
            "abc\uD83D", "U+D83D, at index 3",
            "\uDC4D", "U+DC4D, at index 0",
            "\uDC4D\uD83D", "U+DC4D, at index 0");

    static void assertRefused(Tokenizer tokenizer) {
        CASES.forEach((text, where) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tokenizer.encode(text));
            assertTrue(e.getMessage().contains("lone UTF-16 surrogate, " + where), e.getMessage());
        });
    }
}

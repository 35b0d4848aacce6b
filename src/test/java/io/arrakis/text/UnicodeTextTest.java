package io.arrakis.text;

import org.junit.jupiter.api.Test;

import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Ill-formed UTF-8 read back as Hugging Face's tokenizers read it (Rust's {@code from_utf8_lossy}): one U+FFFD per
 * maximal subpart, as the Unicode Standard's chapter 3 ("U+FFFD Substitution of Maximal Subparts") recommends; the
 * expected strings are the standard's own example and Python's {@code bytes.decode("utf-8", "replace")}, which follows it.
 */
class UnicodeTextTest {
    private static final String R = "\uFFFD";

    @Test
    void eachMaximalSubpartBecomesOneReplacementCharacter() {
        // the standard's example: a, F1 80 80, E1 80, C2, b, 80, c, 80, BF, d
        assertDecodes("a" + R + R + R + "b" + R + "c" + R + R + "d", "61F18080E180C262806380BF64");
        assertDecodes(R + R, "C0AF"); // an overlong form: C0 begins nothing
        assertDecodes(R + R + R, "E080AF"); // E0 takes A0 to BF next
        assertDecodes(R + R + R, "EDA080"); // a surrogate: ED takes 80 to 9F next
        assertDecodes(R + R, "EDB0"); // the same, cut short (Java's decoder gives one)
        assertDecodes(R + R + R + R, "F4908080"); // above U+10FFFF
        assertDecodes(R + R + R + R, "F0808080");
        assertDecodes(R, "E180"); // a valid start cut short is one subpart
        assertDecodes(R, "F18080");
        assertDecodes(R + R + R, "FFF580");
        assertDecodes("\uD8C0\uDC00", "F1808080"); // U+40000, whole
        assertDecodes("\u00E9\u20AC" + R + "x", "C3A9E282ACE282" + "78");
        assertDecodes("", "");
    }

    /** Was: {@code " slower"} and the bytes ED B0 decoded to one U+FFFD, where Hugging Face's tokenizers give two. */
    @Test
    void gpt2DecodesCutSurrogatesAsHuggingFaceDoes() {
        assertEquals(" slower" + R + R, Gpt2Tokenizer.get().decode(new long[] {13611, 169, 108}));
    }

    private static void assertDecodes(String expected, String hex) {
        assertEquals(expected, UnicodeText.fromUtf8Lossy(HexFormat.of().parseHex(hex)), hex);
    }
}

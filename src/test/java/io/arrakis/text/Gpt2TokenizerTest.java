package io.arrakis.text;

import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPT-2's tokenizer against ids published by independent references:
 * <ul>
 *   <li>Hugging Face {@code transformers}, the {@code GPT2Tokenizer} docstring
 *       ({@code src/transformers/models/gpt2/tokenization_gpt2.py}): {@code "Hello world"} → {@code [15496, 995]},
 *       {@code " Hello world"} → {@code [18435, 995]};
 *   <li>OpenAI tiktoken, {@code tests/test_encoding.py}: {@code test_simple} ({@code "hello world"} →
 *       {@code [31373, 995]}, {@code "hello <|endoftext|>"} with special tokens → {@code [31373, 220, 50256]}),
 *       {@code test_simple_repeated} (runs of zeros), {@code test_encode_empty}, {@code test_basic_roundtrip}.
 * </ul>
 */
class Gpt2TokenizerTest {
    private final Gpt2Tokenizer tok = Gpt2Tokenizer.get();

    @Test
    void knownIdsFromHuggingFaceAndTiktoken() {
        assertArrayEquals(new long[] {15496, 995}, tok.encode("Hello world"));
        assertArrayEquals(new long[] {18435, 995}, tok.encode(" Hello world"));   // a leading space is part of the token
        assertArrayEquals(new long[] {31373, 995}, tok.encode("hello world"));
        assertArrayEquals(new long[] {15}, tok.encode("0"));
        assertArrayEquals(new long[] {405}, tok.encode("00"));
        assertArrayEquals(new long[] {830}, tok.encode("000"));
        assertArrayEquals(new long[] {2388}, tok.encode("0000"));
        assertArrayEquals(new long[] {10535, 830}, tok.encode("000000000"));
        assertArrayEquals(new long[] {25645}, tok.encode("0000000000000000"));
        assertArrayEquals(new long[0], tok.encode(""));
        assertEquals(50257, tok.vocabSize());
    }

    @Test
    void endOfTextDecodesButIsNotMadeFromText() {
        // tiktoken: "hello <|endoftext|>" with special tokens allowed is [31373, 220, 50256]; as ordinary text the
        // marker is split into ordinary tokens, never 50256
        assertEquals("hello <|endoftext|>", tok.decode(new long[] {31373, 220, 50256}));
        long[] ordinary = tok.encode("hello <|endoftext|>");
        assertEquals(31373, ordinary[0]);
        for (long id : ordinary) {
            assertTrue(id != Gpt2Tokenizer.END_OF_TEXT);
        }
        assertEquals("hello <|endoftext|>", tok.decode(ordinary));
    }

    @Test
    void decodeRoundTrips() {
        for (String s : List.of("hello", "hello ", "hello  ", " hello", " hello ", " hello  ", "hello world",
                "请考试我的软件！12345", "Tabs\tand\nnewlines", "emoji 👍 and accents: café")) {
            assertEquals(s, tok.decode(tok.encode(s)), s);
        }
        assertEquals("", tok.decode(new long[0]));
    }

    @Test
    void tokenStringsAreEachTokensText() {
        long[] ids = tok.encode("Hello world, hello!");
        List<String> strings = tok.tokenStrings(ids);
        assertEquals(ids.length, strings.size());
        assertEquals("Hello", strings.get(0));
        assertEquals(" world", strings.get(1));
        assertEquals("Hello world, hello!", String.join("", strings));
        assertEquals(List.of("<|endoftext|>"), tok.tokenStrings(new long[] {50256}));
        // a character split over two tokens: each half alone is not UTF-8, so it shows as U+FFFD
        long[] thumbs = tok.encode("👍");
        assertTrue(thumbs.length > 1, "👍 is more than one GPT-2 token");
        assertTrue(tok.tokenStrings(thumbs).stream().allMatch(s -> s.contains("\uFFFD")));
    }

    @Test
    void encodeAsTensorIsAnInt64Row() {
        try (Tensor t = tok.encodeAsTensor("Hello world")) {
            assertEquals(DType.INT64, t.dtype());
            assertArrayEquals(new long[] {1, 2}, t.shape());
            assertEquals(15496, t.select(0, 0).select(0, 0).itemLong());
            assertEquals(995, t.select(0, 0).select(0, 1).itemLong());
        }
        assertThrows(IllegalArgumentException.class, () -> tok.encodeAsTensor(""));
    }

    @Test
    void idsOutOfRangeAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tok.decode(new long[] {15496, 50257}));
        assertTrue(e.getMessage().contains("50257") && e.getMessage().contains("index 1"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> tok.decode(new long[] {-1}));
        assertThrows(IllegalArgumentException.class, () -> tok.tokenStrings(new long[] {1L << 33}));
        assertThrows(NullPointerException.class, () -> tok.encode(null));
    }

    /** A lone surrogate became "?" and gave the ids of another text; Hugging Face's Python tokenizers refuse it. */
    @Test
    void loneSurrogatesAreRefused() {
        LoneSurrogates.assertRefused(tok);
        String emoji = "ok \uD83D\uDC4D then";
        assertEquals(emoji, tok.decode(tok.encode(emoji)), "a whole pair is a character like any other");
    }
}

package io.arrakis.sweep;

import io.arrakis.json.Json;
import io.arrakis.text.Tokenizer;

import io.arrakis.io.IoErrors;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A sweep's prompts: one JSON object per line, {@code {"clean": [ids], "corrupted": [ids], "answer": id, "wrong": id}},
 * with {@code "clean_text"}/{@code "corrupted_text"} in place of the ids where the model has a tokenizer, in UTF-8 (a
 * byte-order mark is skipped), lines ending in LF, CRLF or CR. Blank lines are skipped. Every mistake is reported with
 * its line number and what is wrong, before any work starts.
 */
public final class PromptFile {
    private static final Set<String> KEYS = Set.of("clean", "corrupted", "clean_text", "corrupted_text", "answer", "wrong");

    private PromptFile() {
    }

    /**
     * The prompts of {@code file} for a model of {@code vocabSize} tokens and {@code maxPositions} positions;
     * {@code tokenizer} (may be null) encodes the text forms.
     *
     * @throws IllegalArgumentException naming the file, the line and the problem
     */
    public static List<PromptPair> read(Path file, Tokenizer tokenizer, long vocabSize, long maxPositions) {
        List<String> lines = lines(file);
        List<PromptPair> prompts = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            String where = file + " line " + (i + 1) + ": ";
            try {
                prompts.add(parse(prompts.size(), lines.get(i), tokenizer, vocabSize, maxPositions));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(where + e.getMessage(), e);
            }
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException(file + " holds no prompts");
        }
        return prompts;
    }

    /** The file's lines, decoded as UTF-8 (a byte-order mark skipped), a line that is not UTF-8 refused by number. */
    private static List<String> lines(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the prompt file " + file + ": " + IoErrors.reason(e), e);
        }
        int start = bytes.length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB
                && (bytes[2] & 0xFF) == 0xBF ? 3 : 0;
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder();
        List<String> lines = new ArrayList<>();
        for (int from = start; from <= bytes.length; ) {
            int end = from;
            while (end < bytes.length && bytes[end] != '\n' && bytes[end] != '\r') {
                end++;
            }
            try {
                lines.add(utf8.decode(ByteBuffer.wrap(bytes, from, end - from)).toString());
            } catch (CharacterCodingException e) {
                throw new IllegalArgumentException(file + " line " + (lines.size() + 1) + ": not UTF-8 text", e);
            }
            // a line ends at LF, CRLF or a lone CR (JSON text holds neither raw)
            from = end + (end + 1 < bytes.length && bytes[end] == '\r' && bytes[end + 1] == '\n' ? 2 : 1);
        }
        return lines;
    }

    private static PromptPair parse(long id, String line, Tokenizer tokenizer, long vocabSize, long maxPositions) {
        if (!(Json.parse(line) instanceof Map<?, ?> object)) {
            throw new IllegalArgumentException("expected a JSON object");
        }
        for (Object key : object.keySet()) {
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("unknown key \"" + key + "\"; a prompt has " + String.join(", ", KEYS.stream().sorted().toList()));
            }
        }
        long[] clean = ids(object, "clean", tokenizer, vocabSize);
        long[] corrupted = ids(object, "corrupted", tokenizer, vocabSize);
        if (clean.length != corrupted.length) {
            throw new IllegalArgumentException("clean and corrupted have " + clean.length + " and " + corrupted.length
                    + " tokens; path patching needs the same length");
        }
        if (clean.length > maxPositions) {
            throw new IllegalArgumentException(clean.length + " tokens, but the model takes at most " + maxPositions);
        }
        long answer = token(object, "answer", vocabSize);
        long wrong = token(object, "wrong", vocabSize);
        if (answer == wrong) {
            throw new IllegalArgumentException("answer and wrong are both " + answer + ": their logit difference is 0");
        }
        if (Arrays.equals(clean, corrupted)) {
            throw new IllegalArgumentException("clean and corrupted are the same tokens: every effect would be 0");
        }
        return new PromptPair(id, clean, corrupted, answer, wrong);
    }

    private static long[] ids(Map<?, ?> object, String key, Tokenizer tokenizer, long vocabSize) {
        Object ids = object.get(key);
        Object text = object.get(key + "_text");
        if ((ids == null) == (text == null)) {
            throw new IllegalArgumentException("give exactly one of \"" + key + "\" and \"" + key + "_text\"");
        }
        long[] out;
        if (text != null) {
            if (!(text instanceof String s) || s.isEmpty()) {
                throw new IllegalArgumentException("\"" + key + "_text\" must be a non-empty string");
            }
            if (tokenizer == null) {
                throw new IllegalArgumentException("\"" + key + "_text\" needs a tokenizer, and the model folder has no tokenizer.json");
            }
            out = tokenizer.encode(s);
        } else {
            if (!(ids instanceof List<?> list) || list.isEmpty()) {
                throw new IllegalArgumentException("\"" + key + "\" must be a non-empty array of token ids");
            }
            out = new long[list.size()];
            for (int i = 0; i < out.length; i++) {
                if (!(list.get(i) instanceof Long v)) {
                    Object got = list.get(i);
                    throw new IllegalArgumentException("\"" + key + "\"[" + i + "] is " + (got instanceof String string
                            ? "the string " + Json.quote(string) : got instanceof Double d && Math.abs(d) >= 0x1p63
                            ? "an integer out of range" : got) + ", not an integer token id");
                }
                out[i] = v;
            }
        }
        for (int i = 0; i < out.length; i++) {
            if (out[i] < 0 || out[i] >= vocabSize) {
                throw new IllegalArgumentException(text != null
                        ? "\"" + key + "_text\" gives token " + i + " the id " + out[i] + ", which is not a token id of"
                        + " this model (0 to " + (vocabSize - 1) + "): is the tokenizer this model's?"
                        : "\"" + key + "\"[" + i + "] = " + out[i] + " is not a token id of this model (0 to "
                        + (vocabSize - 1) + ")");
            }
        }
        return out;
    }

    private static long token(Map<?, ?> object, String key, long vocabSize) {
        if (!(object.get(key) instanceof Long v)) {
            Object got = object.get(key);
            throw new IllegalArgumentException("\"" + key + "\" must be a token id, got "
                    + (got instanceof String text ? "the string " + Json.quote(text) : got));
        }
        if (v < 0 || v >= vocabSize) {
            throw new IllegalArgumentException("\"" + key + "\" = " + v + " is not a token id of this model (0 to "
                    + (vocabSize - 1) + ")");
        }
        return v;
    }
}

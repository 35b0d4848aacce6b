package io.arrakis.text;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.arrakis.json.Json;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * What this library reads of a {@code tokenizer.json} before Hugging Face's tokenizers library gets it, with a streaming
 * parser (a large vocabulary's tree would take a second):
 * <ul>
 *   <li>how many ids it gives, as that library counts them (DJL does not say): the model's vocabulary, then each
 *       added token whose text the vocabulary lacks, on the next id, in file order (the ids the file declares for them
 *       are not what the library assigns when they disagree; an added token without text is ignored, as there);</li>
 *   <li>settings on which that library's Rust code panics, which through DJL ends the whole process rather than
 *       throwing: a {@code Replace} whose pattern matches an empty string, a {@code Strip} decoder that strips from the
 *       end ({@code stop} above 0), a {@code Precompiled} normalizer whose character map does not parse, and
 *       post-processor special tokens whose ids are outside the vocabulary (encoding would give ids nothing can
 *       decode). These are refused with a message.</li>
 * </ul>
 */
final class TokenizerFile {
    /** Texts on which a {@code Replace} regex must not find an empty match (the library's matcher cannot move past one). */
    private static final List<String> PROBES = List.of("", "a", "Hello world", "A b  c\n\td", "12.5, x!?", "é Ωλ 漢字",
            "😀 ▁x", " ", "\u00a0");

    private static final Pattern SCRIPT = Pattern.compile("\\\\([pP])\\{([A-Za-z_]+)\\}");

    private final String what;
    private final Set<String> vocabulary = new HashSet<>();
    private final List<String> added = new ArrayList<>();
    private final List<Object> components = new ArrayList<>(); // normalizer, pre_tokenizer, post_processor, decoder
    private long modelSize = -1;

    private TokenizerFile(String what) {
        this.what = what;
    }

    /**
     * The number of ids of the text of a {@code tokenizer.json}, after checking it as the class comment says;
     * {@code what} names it in messages.
     *
     * @throws IllegalArgumentException where the text is not such a file or holds a setting refused above
     */
    static int checkedVocabSize(String json, String what) {
        TokenizerFile file = new TokenizerFile(what);
        try (JsonParser p = new JsonFactory().createParser(json)) {
            file.readTop(p);
        } catch (IOException e) {
            throw file.unreadable(e.getMessage(), e);
        }
        if (file.modelSize < 0) {
            throw file.unreadable("it has no model.vocab", null);
        }
        long size = file.modelSize + file.added.stream()
                .filter(token -> !token.isEmpty() && !file.vocabulary.contains(token)).distinct().count();
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " has " + size + " token ids, more than an int holds");
        }
        file.components.forEach(c -> file.check(c, size));
        return (int) size;
    }

    private void readTop(JsonParser p) throws IOException {
        if (p.nextToken() != JsonToken.START_OBJECT) {
            throw unreadable("it is not a JSON object", null);
        }
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            switch (field) {
                case "model" -> {
                    if (value == JsonToken.START_OBJECT) {
                        readModel(p);
                    } else {
                        p.skipChildren();
                    }
                }
                case "added_tokens" -> {
                    if (value == JsonToken.START_ARRAY) {
                        while (p.nextToken() == JsonToken.START_OBJECT) {
                            readAdded(p);
                        }
                    } else {
                        p.skipChildren();
                    }
                }
                case "normalizer", "pre_tokenizer", "post_processor", "decoder" -> components.add(tree(p));
                default -> p.skipChildren();
            }
        }
    }

    private void readModel(JsonParser p) throws IOException {
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            if (!field.equals("vocab")) {
                p.skipChildren();
            } else if (value == JsonToken.START_OBJECT) { // BPE, WordPiece, WordLevel: token to id
                long maxId = -1;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    vocabulary.add(p.currentName());
                    p.nextToken();
                    maxId = Math.max(maxId, p.getLongValue());
                }
                modelSize = maxId + 1;
            } else if (value == JsonToken.START_ARRAY) { // Unigram: [piece, score] pairs, the id is the index
                long count = 0;
                while (p.nextToken() == JsonToken.START_ARRAY) {
                    p.nextToken();
                    vocabulary.add(p.getText());
                    while (p.nextToken() != JsonToken.END_ARRAY) { // the score
                        p.skipChildren();
                    }
                    count++;
                }
                modelSize = count;
            } else {
                throw unreadable("its model.vocab is neither a list of pieces nor a map of tokens to ids", null);
            }
        }
    }

    private void readAdded(JsonParser p) throws IOException {
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            p.nextToken();
            if (field.equals("content")) {
                added.add(p.getText());
            } else {
                p.skipChildren();
            }
        }
    }

    /** The value at the parser as maps, lists, strings, numbers, booleans and nulls. */
    private static Object tree(JsonParser p) throws IOException {
        switch (p.currentToken()) {
            case START_OBJECT -> {
                Map<String, Object> map = new LinkedHashMap<>();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String field = p.currentName();
                    p.nextToken();
                    map.put(field, tree(p));
                }
                return map;
            }
            case START_ARRAY -> {
                List<Object> list = new ArrayList<>();
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    list.add(tree(p));
                }
                return list;
            }
            case VALUE_STRING -> {
                return p.getText();
            }
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> {
                return p.getNumberValue();
            }
            case VALUE_TRUE, VALUE_FALSE -> {
                return p.getBooleanValue();
            }
            default -> {
                return null;
            }
        }
    }

    /** Checks every component object in {@code node}, nested sequences included. */
    private void check(Object node, long size) {
        if (node instanceof List<?> list) {
            list.forEach(n -> check(n, size));
        } else if (node instanceof Map<?, ?> map) {
            Object type = map.get("type");
            if ("Replace".equals(type)) {
                checkReplace(map.get("pattern"));
            } else if ("Strip".equals(type) && map.get("stop") instanceof Number stop && stop.longValue() > 0) {
                throw refused("a Strip decoder with stop " + stop + " (stripping from the end), on which Hugging Face's"
                        + " tokenizers library fails on short tokens by ending the process");
            } else if ("Precompiled".equals(type)) {
                checkCharsMap(map.get("precompiled_charsmap"));
            } else if ("TemplateProcessing".equals(type) && map.get("special_tokens") instanceof Map<?, ?> tokens) {
                for (Object token : tokens.values()) {
                    if (token instanceof Map<?, ?> t && t.get("ids") instanceof List<?> ids) {
                        ids.forEach(id -> checkSpecialId(t.get("id"), id, size));
                    }
                }
            } else if (("BertProcessing".equals(type) || "RobertaProcessing".equals(type))) {
                for (String role : new String[] {"sep", "cls"}) {
                    if (map.get(role) instanceof List<?> pair && pair.size() == 2) {
                        checkSpecialId(pair.get(0), pair.get(1), size);
                    }
                }
            }
            map.values().forEach(v -> check(v, size));
        }
    }

    private void checkReplace(Object pattern) {
        if (!(pattern instanceof Map<?, ?> p)) {
            return;
        }
        if ("".equals(p.get("String"))) {
            throw refused("a Replace of the empty string, which Hugging Face's tokenizers library fails on by ending"
                    + " the process");
        }
        if (p.get("Regex") instanceof String regex) {
            Pattern compiled = javaPattern(regex);
            if (compiled == null) {
                throw refused("a Replace whose regex " + Json.quote(regex) + " this library cannot check for empty"
                        + " matches (Java's regular expressions do not read it), on which Hugging Face's tokenizers"
                        + " library would end the process");
            }
            for (String probe : PROBES) {
                Matcher m = compiled.matcher(probe);
                while (m.find()) {
                    if (m.start() == m.end()) {
                        throw refused("a Replace whose regex " + Json.quote(regex) + " matches an empty string (at "
                                + m.start() + " of " + Json.quote(probe) + "), which Hugging Face's tokenizers library"
                                + " fails on by ending the process");
                    }
                }
            }
        }
    }

    /**
     * The regex in Java's syntax, or null: Oniguruma's script names ({@code \p{Latin}}) are Java's with {@code Is}
     * before them.
     */
    private static Pattern javaPattern(String regex) {
        for (String candidate : List.of(regex, SCRIPT.matcher(regex).replaceAll("\\\\$1{Is$2}"))) {
            try {
                return Pattern.compile(candidate);
            } catch (PatternSyntaxException e) {
                // the next candidate
            }
        }
        return null;
    }

    private void checkCharsMap(Object charsMap) {
        byte[] bytes;
        try {
            bytes = charsMap instanceof String s ? Base64.getDecoder().decode(s) : null;
        } catch (IllegalArgumentException e) {
            bytes = null;
        }
        // a little-endian 32-bit size of the trie, then the trie, then the normalized strings
        long trie = bytes == null || bytes.length < 4 ? -1
                : Integer.toUnsignedLong((bytes[0] & 0xff) | (bytes[1] & 0xff) << 8 | (bytes[2] & 0xff) << 16
                        | (bytes[3] & 0xff) << 24);
        if (trie < 0 || 4 + trie / 4 * 4 > bytes.length) {
            throw refused("a Precompiled normalizer whose precompiled_charsmap is not a base64 character map (its"
                    + " trie does not fit), which Hugging Face's tokenizers library fails on by ending the process");
        }
    }

    private void checkSpecialId(Object token, Object id, long size) {
        if (!(id instanceof Number n) || n.doubleValue() < 0 || n.doubleValue() >= size) {
            throw refused("the post-processor's special token " + token + " has id " + id + ", outside the " + size
                    + " ids of the vocabulary: encoding would give ids no model or decoder takes");
        }
    }

    private IllegalArgumentException unreadable(String why, Exception cause) {
        return new IllegalArgumentException(what + " is not a tokenizer Hugging Face tokenizers can read: " + why, cause);
    }

    private IllegalArgumentException refused(String setting) {
        return new IllegalArgumentException(what + " has " + setting);
    }
}

package io.arrakis.text;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.arrakis.json.Json;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
 *       throwing: a {@code Replace} whose pattern can match an empty string (judged in Java's regular expressions,
 *       which read Oniguruma's common syntax; one they do not read is refused too), a {@code Strip} decoder that
 *       strips from the end ({@code stop} above 0), a {@code Precompiled} normalizer whose character map does not
 *       parse or whose trie reads past its end, and post-processor special tokens whose ids are outside the
 *       vocabulary (encoding would give ids nothing can decode). These are refused with a message.</li>
 * </ul>
 */
final class TokenizerFile {
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
            // zero-width assertions only narrow where a regex matches: without them it matches the empty string
            // wherever it may with them
            Pattern bare = javaPattern(withoutAssertions(regex));
            if (bare == null || javaPattern(regex) == null) {
                throw refused("a Replace whose regex " + Json.quote(regex) + " this library cannot check for empty"
                        + " matches (Java's regular expressions do not read it), on which Hugging Face's tokenizers"
                        + " library would end the process");
            }
            if (bare.matcher("").matches()) {
                throw refused("a Replace whose regex " + Json.quote(regex) + " can match an empty string, which"
                        + " Hugging Face's tokenizers library fails on by ending the process");
            }
        }
    }

    /**
     * {@code regex} without its lookarounds, anchors ({@code ^ $ \A \z \Z \G}) and word boundaries
     * ({@code \b \B}), outside character classes.
     */
    static String withoutAssertions(String regex) {
        StringBuilder out = new StringBuilder();
        boolean inClass = false;
        int i = 0;
        while (i < regex.length()) {
            char c = regex.charAt(i);
            if (c == '\\' && i + 1 < regex.length()) {
                char next = regex.charAt(i + 1);
                if (inClass || "bBAzZG".indexOf(next) < 0) {
                    out.append(c).append(next);
                }
                i += 2;
            } else if (inClass) {
                inClass = c != ']';
                out.append(c);
                i++;
            } else if (c == '[') {
                inClass = true;
                out.append(c);
                i++;
                if (regex.startsWith("^", i)) {
                    out.append('^');
                    i++;
                }
                if (regex.startsWith("]", i)) { // a literal ] first in a class
                    out.append(']');
                    i++;
                }
            } else if (c == '^' || c == '$') {
                i++;
            } else if (regex.startsWith("(?=", i) || regex.startsWith("(?!", i) || regex.startsWith("(?<=", i)
                    || regex.startsWith("(?<!", i)) {
                i = groupEnd(regex, i) + 1;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    /** The index of the parenthesis that closes the group opening at {@code start}; the end where none does. */
    private static int groupEnd(String regex, int start) {
        int depth = 0;
        boolean inClass = false;
        for (int i = start; i < regex.length(); i++) {
            char c = regex.charAt(i);
            if (c == '\\') {
                i++;
            } else if (inClass) {
                inClass = c != ']';
            } else if (c == '[') {
                inClass = true;
            } else if (c == '(') {
                depth++;
            } else if (c == ')' && --depth == 0) {
                return i;
            }
        }
        return regex.length();
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
            bytes = charsMap instanceof String text ? Base64.getDecoder().decode(text) : null;
        } catch (IllegalArgumentException e) {
            bytes = null;
        }
        if (bytes == null || !CharsMap.sound(bytes)) {
            throw refused("a Precompiled normalizer whose precompiled_charsmap is not a sound base64 character map"
                    + " (its trie reads past its end), which Hugging Face's tokenizers library fails on by ending the"
                    + " process");
        }
    }

    /**
     * SentencePiece's precompiled character map: a little-endian 32-bit size of a double-array trie (darts-clone's,
     * of 32-bit units), the trie, then the normalized strings, each ended by a zero byte, which the trie's leaves
     * point into.
     */
    static final class CharsMap {
        private CharsMap() {
        }

        /**
         * Whether every lookup the library makes reads inside the map: from every node the trie reaches, the unit for
         * any next byte, and each leaf's string.
         */
        static boolean sound(byte[] bytes) {
            if (bytes.length < 4) {
                return false;
            }
            ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            long trieBytes = Integer.toUnsignedLong(buffer.getInt(0));
            if (trieBytes / 4 == 0 || 4 + trieBytes / 4 * 4 > bytes.length) {
                return false;
            }
            int[] units = new int[(int) (trieBytes / 4)];
            buffer.position(4);
            buffer.asIntBuffer().get(units);
            long strings = bytes.length - 4 - (long) units.length * 4;
            boolean[] seen = new boolean[units.length];
            java.util.ArrayDeque<Long> nodes = new java.util.ArrayDeque<>();
            nodes.add(offset(units[0]));
            while (!nodes.isEmpty()) {
                long node = nodes.poll();
                for (int c = 1; c < 256; c++) {
                    long at = node ^ c;
                    if (at >= units.length) {
                        return false;
                    }
                    int unit = units[(int) at];
                    if (label(unit) != c) {
                        continue;
                    }
                    long next = at ^ offset(unit);
                    if (next >= units.length) {
                        return false;
                    }
                    if (hasLeaf(unit) && (units[(int) next] & 0x7FFFFFFFL) > strings) {
                        return false;
                    }
                    if (!seen[(int) next]) {
                        seen[(int) next] = true;
                        nodes.add(next);
                    }
                }
            }
            return true;
        }

        private static long offset(int unit) {
            long u = Integer.toUnsignedLong(unit);
            return (u >>> 10) << ((u & (1 << 9)) >>> 6);
        }

        private static long label(int unit) {
            return Integer.toUnsignedLong(unit) & ((1L << 31) | 0xFF);
        }

        private static boolean hasLeaf(int unit) {
            return ((unit >>> 8) & 1) == 1;
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

package io.arrakis.text;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.arrakis.json.Json;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.BitSet;
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
 *       are not what the library assigns when they disagree; an added token without text is ignored, as there). As
 *       the library numbers added tokens from the vocabulary's size, a vocabulary whose ids are not 0 to n - 1, each
 *       once, would give two tokens one id, and is refused; so is a key given twice anywhere in the file;</li>
 *   <li>settings on which that library's Rust code panics, which through DJL ends the whole process rather than
 *       throwing, refused with a message: a {@code Replace} whose pattern can match an empty string (judged in Java's
 *       regular expressions, which read Oniguruma's common syntax; one they do not read, or one that refers back to a
 *       group, is refused too), a {@code Replace} or {@code Split} regex that repeats a group holding a quantifier or
 *       an alternation ({@code (a+)+}, {@code (a|aa)+}, {@code (.*a){3}}, whose backtracking reaches Oniguruma's
 *       limit; a regex of several unbounded quantifiers side by side, {@code a.*.*.*b}, can reach it too on a long
 *       enough text, and is not refused: telling it from the common tokenizers' regexes is more than this reads), a
 *       {@code Prepend} of nothing, a {@code FixedLength} of length 0, a {@code Strip} decoder that strips from the
 *       end ({@code stop} above 0), a {@code Precompiled} normalizer whose character map does not parse (base64 with
 *       bits left over included), whose trie reads past its end, whose strings are not UTF-8 or are cut inside a
 *       character, a BPE merge too short for the continuing-subword prefix cut off it, and a
 *       template post-processor that names a special token it does not define, gives one ids and token strings of
 *       different counts, gives ids outside the vocabulary (encoding would give ids nothing can decode), or whose
 *       single-text template names a second text ({@code $B}).</li>
 * </ul>
 */
final class TokenizerFile {
    private static final Pattern SCRIPT = Pattern.compile("\\\\([pP])\\{([A-Za-z_]+)\\}");
    /** The largest upper bound of a count ({@code {n,m}}) that is not judged as unbounded as {@code +}. */
    private static final long MAX_HARMLESS_COUNT = 8;
    /** A counted quantifier: {@code {n}}, {@code {n,}}, {@code {n,m}} or {@code {,m}}. */
    private static final Pattern COUNT = Pattern.compile("\\{([0-9]*)(,\\s*([0-9]*))?}");
    /** A backreference of Oniguruma's syntax: {@code \1} to {@code \9}, {@code \k<name>}, {@code \g<...>} calls. */
    private static final Pattern BACKREFERENCE = Pattern.compile("(?<!\\\\)(\\\\\\\\)*\\\\([1-9]|k<|k'|g<|g')");

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
        try (JsonParser p = new JsonFactory().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).createParser(json)) {
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
        String prefix = null;
        List<String> mergedSeconds = new ArrayList<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            if (field.equals("continuing_subword_prefix") && value == JsonToken.VALUE_STRING) {
                prefix = p.getText();
            } else if (field.equals("merges") && value == JsonToken.START_ARRAY) {
                readMerges(p, mergedSeconds);
            } else if (!field.equals("vocab")) {
                p.skipChildren();
            } else if (value == JsonToken.START_OBJECT) { // BPE, WordPiece, WordLevel: token to id
                BitSet ids = new BitSet();
                long count = 0;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String token = p.currentName();
                    vocabulary.add(token);
                    p.nextToken();
                    long id = p.getLongValue();
                    if (id < 0 || id >= Integer.MAX_VALUE || ids.get((int) id)) {
                        throw refused("the id " + id + " of " + Json.quote(token) + " in model.vocab, "
                                + (id < 0 || id >= Integer.MAX_VALUE ? "out of range" : "given twice")
                                + ": the library numbers added tokens from the vocabulary's size, so ids must be"
                                + " 0 to n - 1, each once");
                    }
                    ids.set((int) id);
                    count++;
                }
                if (ids.length() != count) {
                    throw refused("no token of id " + ids.nextClearBit(0) + " in model.vocab, whose " + count
                            + " ids reach " + (ids.length() - 1) + ": the library numbers added tokens from the"
                            + " vocabulary's size, so ids must be 0 to n - 1, each once");
                }
                modelSize = count;
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
        if (prefix != null) {
            checkMergesTakePrefix(prefix, mergedSeconds);
        }
    }

    /** The second part of each merge, {@code "a b"} or {@code ["a", "b"]}, into {@code seconds}. */
    private static void readMerges(JsonParser p, List<String> seconds) throws IOException {
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t == JsonToken.VALUE_STRING) {
                String merge = p.getText();
                int space = merge.indexOf(' ');
                if (space >= 0) {
                    seconds.add(merge.substring(space + 1));
                }
            } else if (t == JsonToken.START_ARRAY) {
                List<String> parts = new ArrayList<>();
                while (p.nextToken() != JsonToken.END_ARRAY) {
                    parts.add(p.getText());
                    p.skipChildren();
                }
                if (parts.size() == 2 && parts.get(1) != null) {
                    seconds.add(parts.get(1));
                }
            } else {
                p.skipChildren();
            }
        }
    }

    /**
     * A BPE model cuts its continuing-subword prefix off the second part of every merge by its length in bytes:
     * where that part is shorter, or the cut falls inside a character, the library ends the process while loading.
     */
    private void checkMergesTakePrefix(String prefix, List<String> seconds) {
        int cut = prefix.getBytes(StandardCharsets.UTF_8).length;
        for (String second : seconds) {
            byte[] bytes = second.getBytes(StandardCharsets.UTF_8);
            if (bytes.length < cut || (cut < bytes.length && (bytes[cut] & 0xC0) == 0x80)) {
                throw refused("a BPE merge whose second part " + Json.quote(second) + " does not begin with a whole "
                        + cut + "-byte continuing_subword_prefix " + Json.quote(prefix) + ", on which Hugging Face's"
                        + " tokenizers library ends the process while loading");
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
            if (map.get("pattern") instanceof Map<?, ?> pattern && pattern.get("Regex") instanceof String regex
                    && repeatsAnAmbiguousGroup(regex)) {
                throw refused("a " + type + " whose regex " + Json.quote(regex) + " repeats a group holding a"
                        + " quantifier or an alternation (as (a+)+ and (a|aa)+ do), on which Oniguruma's backtracking"
                        + " can reach its limit, where Hugging Face's tokenizers library ends the process");
            }
            if ("Replace".equals(type)) {
                checkReplace(map.get("pattern"));
            } else if ("Strip".equals(type) && map.get("stop") instanceof Number stop && stop.doubleValue() > 0) {
                throw refused("a Strip decoder with stop " + stop + " (stripping from the end), on which Hugging Face's"
                        + " tokenizers library fails on short tokens by ending the process");
            } else if ("Precompiled".equals(type)) {
                checkCharsMap(map.get("precompiled_charsmap"));
            } else if ("FixedLength".equals(type) && map.get("length") instanceof Number length
                    && length.doubleValue() < 1) {
                throw refused("a FixedLength pre-tokenizer of length " + length + ", on which Hugging Face's tokenizers"
                        + " library ends the process when it encodes");
            } else if ("Prepend".equals(type) && "".equals(map.get("prepend"))) {
                throw refused("a Prepend normalizer of the empty string, on which Hugging Face's tokenizers library"
                        + " ends the process");
            } else if ("TemplateProcessing".equals(type)) {
                checkTemplate(map, size);
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

    /**
     * Each special token of a template has its ids (each a vocabulary id) and as many token strings, and each one the
     * templates name is defined: the library ends the process on one that is not, and pairs ids and strings by index.
     */
    private void checkTemplate(Map<?, ?> template, long size) {
        Map<?, ?> tokens = template.get("special_tokens") instanceof Map<?, ?> m ? m : Map.of();
        for (Object token : tokens.values()) {
            if (token instanceof Map<?, ?> t && t.get("ids") instanceof List<?> ids) {
                ids.forEach(id -> checkSpecialId(t.get("id"), id, size));
                if (!(t.get("tokens") instanceof List<?> strings) || strings.size() != ids.size()) {
                    throw refused("the post-processor's special token " + t.get("id") + " with " + ids.size()
                            + " ids and tokens " + t.get("tokens") + ": each id needs its token");
                }
            }
        }
        if (templateSequences(template.get("single")).stream().anyMatch(id -> !"A".equals(id))) {
            throw refused("a post-processor whose single template names a second text ($B): this library encodes one"
                    + " text at a time, and Hugging Face's tokenizers library ends the process on such a template");
        }
        for (String role : new String[] {"single", "pair"}) {
            for (String name : templateSpecialTokens(template.get(role))) {
                if (!tokens.containsKey(name)) {
                    throw refused("a post-processor whose " + role + " template names the special token "
                            + Json.quote(name) + ", which its special_tokens do not define: Hugging Face's tokenizers"
                            + " library ends the process when it encodes");
                }
            }
        }
    }

    /** The texts a template names, its {@code {"Sequence": {"id": "A" or "B"}}} pieces. */
    private static List<String> templateSequences(Object template) {
        List<String> ids = new ArrayList<>();
        if (template instanceof List<?> pieces) {
            for (Object piece : pieces) {
                if (piece instanceof Map<?, ?> m && m.get("Sequence") instanceof Map<?, ?> sequence) {
                    ids.add(String.valueOf(sequence.get("id")));
                }
            }
        }
        return ids;
    }

    /** The special tokens a template names, its {@code {"SpecialToken": {"id": ...}}} pieces. */
    private static List<String> templateSpecialTokens(Object template) {
        List<String> names = new ArrayList<>();
        if (template instanceof List<?> pieces) {
            for (Object piece : pieces) {
                if (piece instanceof Map<?, ?> m && m.get("SpecialToken") instanceof Map<?, ?> special
                        && special.get("id") instanceof String id) {
                    names.add(id);
                }
            }
        }
        return names;
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
            if (BACKREFERENCE.matcher(withoutClasses(regex)).find()) {
                throw refused("a Replace whose regex " + Json.quote(regex) + " refers back to a group, which this"
                        + " library cannot check for empty matches, on which Hugging Face's tokenizers library would"
                        + " end the process");
            }
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
     * Whether {@code regex} puts an unbounded quantifier ({@code * + {n,}}, or a count of more than
     * {@value #MAX_HARMLESS_COUNT}) on something that can match one text in more than one way, as a group holding a
     * quantifier or an alternation can ({@code (a+)+}, {@code (a|aa)+}, {@code (a?a)*}, {@code a{1,2}+}), or any count
     * of two or more on a group holding an unbounded quantifier ({@code (.*a){3}}): the shapes whose backtracking grows
     * exponentially with the text, or as its length to the power of the count. A few such groups backtrack little
     * ({@code (a|b)+}); they are refused too, as telling them apart is more than this check reads.
     */
    static boolean repeatsAnAmbiguousGroup(String regex) {
        String r = withoutClasses(regex);
        // per open group: whether it holds a quantifier or an alternation, and whether an unbounded quantifier
        java.util.ArrayDeque<boolean[]> groups = new java.util.ArrayDeque<>();
        groups.push(new boolean[2]);
        boolean closedAmbiguous = false; // what was just read holds a quantifier or an alternation
        boolean closedUnbounded = false; // what was just read holds an unbounded quantifier
        boolean afterQuantifier = false; // a ? or + after * + ? makes it lazy or possessive (after a count, + repeats)
        for (int i = 0; i < r.length(); i++) {
            char c = r.charAt(i);
            if (afterQuantifier && (c == '?' || c == '+')) {
                afterQuantifier = false;
                continue;
            }
            java.util.regex.Matcher count = c == '{' ? COUNT.matcher(r).region(i, r.length()) : null;
            boolean isCount = count != null && count.lookingAt() && count.group().matches(".*[0-9].*");
            if (c == '*' || c == '+' || c == '?' || isCount) {
                boolean exact = isCount && count.group(2) == null;
                // a count of up to MAX_HARMLESS_COUNT repeats backtracks little; a larger one as much as +
                boolean unbounded = c == '*' || c == '+' || isCount && count.group(2) != null
                        && (count.group(3).isEmpty() || count.group(3).length() > 9
                        || Long.parseLong(count.group(3)) > MAX_HARMLESS_COUNT);
                if (unbounded && closedAmbiguous || isCount && closedUnbounded && repeatsTwice(count)) {
                    return true;
                }
                groups.peek()[0] |= !exact;
                groups.peek()[1] |= unbounded;
                if (isCount) { // Oniguruma's Ruby syntax reads a{1,2}+ as (?:a{1,2})+
                    i = count.end() - 1;
                    closedAmbiguous = !exact;
                    closedUnbounded = unbounded;
                    afterQuantifier = false;
                } else {
                    closedAmbiguous = false;
                    closedUnbounded = false;
                    afterQuantifier = true;
                }
                continue;
            }
            afterQuantifier = false;
            closedAmbiguous = false;
            closedUnbounded = false;
            if (c == '\\') {
                i++;
            } else if (c == '(') {
                groups.push(new boolean[2]);
                if (r.startsWith("?'", i + 1)) { // a named group, (?'name'
                    int close = r.indexOf('\'', i + 3);
                    i = close < 0 ? r.length() : close;
                } else if (r.startsWith("?", i + 1)) { // (?: (?i: (?= (?<= (?<name> (?>: no quantifier
                    int j = i + 2;
                    while (j < r.length() && ":=!>)".indexOf(r.charAt(j)) < 0) {
                        j++;
                    }
                    i = j < r.length() && r.charAt(j) == ')' ? j - 1 : j;
                }
            } else if (c == ')' && groups.size() > 1) {
                boolean[] closed = groups.pop();
                closedAmbiguous = closed[0];
                closedUnbounded = closed[1];
                groups.peek()[0] |= closed[0];
                groups.peek()[1] |= closed[1];
            } else if (c == '|') {
                groups.peek()[0] = true;
            }
        }
        return false;
    }

    /** Whether a count ({@link #COUNT}'s match) allows two or more repeats. */
    private static boolean repeatsTwice(java.util.regex.Matcher count) {
        String most = count.group(2) == null ? count.group(1) : count.group(3);
        return most.isEmpty() || most.length() > 9 || Long.parseLong(most) >= 2;
    }

    /** {@code regex} with its character classes left out, escapes kept in pairs. */
    private static String withoutClasses(String regex) {
        StringBuilder out = new StringBuilder();
        boolean inClass = false;
        for (int i = 0; i < regex.length(); i++) {
            char c = regex.charAt(i);
            if (c == '\\' && i + 1 < regex.length()) {
                if (!inClass) {
                    out.append(c).append(regex.charAt(i + 1));
                }
                i++;
            } else if (inClass) {
                inClass = c != ']';
            } else if (c == '[') {
                inClass = true;
                if (regex.startsWith("^", i + 1)) {
                    i++;
                }
                if (regex.startsWith("]", i + 1)) { // a literal ] first in a class
                    i++;
                }
            } else {
                out.append(c);
            }
        }
        return out.toString();
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
            // Java's decoder ignores bits left over in the last character, which the library's refuses
            if (bytes != null && !Base64.getEncoder().withoutPadding().encodeToString(bytes)
                    .equals(((String) charsMap).replaceFirst("=+$", ""))) {
                bytes = null;
            }
        } catch (IllegalArgumentException e) {
            bytes = null;
        }
        if (bytes == null || !CharsMap.sound(bytes)) {
            throw refused("a Precompiled normalizer whose precompiled_charsmap is not a sound base64 character map"
                    + " (its base64 has bits left over, its trie reads past its end, its strings are not UTF-8, or a"
                    + " leaf points inside a character), which Hugging Face's tokenizers library fails on by ending"
                    + " the process");
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
         * Whether the library reads the map, and every lookup it makes reads inside it: its strings are UTF-8 (it reads
         * them all as one Rust string), and from every node the trie reaches, the unit for any next byte and each
         * leaf's string lie inside the map.
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
            if (!isUtf8(bytes, 4 + units.length * 4, (int) strings)) {
                return false;
            }
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
                    if (hasLeaf(unit) && !isText(bytes, 4 + units.length * 4L, strings, units[(int) next] & 0x7FFFFFFFL)) {
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

        /**
         * Whether the string a leaf points to, {@code offset} bytes into the strings that start at {@code start}, is
         * inside them and is UTF-8 from its first byte to its zero byte (or the map's end): the library reads it as a
         * Rust string slice, which ends the process where it would cut a character.
         */
        private static boolean isText(byte[] bytes, long start, long strings, long offset) {
            if (offset > strings) {
                return false;
            }
            int from = (int) (start + offset);
            int end = from;
            while (end < bytes.length && bytes[end] != 0) {
                end++;
            }
            return isUtf8(bytes, from, end - from);
        }

        private static boolean isUtf8(byte[] bytes, int from, int length) {
            try {
                StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes, from, length));
                return true;
            } catch (java.nio.charset.CharacterCodingException e) {
                return false;
            }
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

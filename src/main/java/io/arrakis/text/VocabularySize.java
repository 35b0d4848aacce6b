package io.arrakis.text;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * How many ids a {@code tokenizer.json} gives, as Hugging Face's tokenizers count them (DJL does not say): the model's
 * vocabulary, then each added token whose text the vocabulary lacks, on the next id, in file order (the ids the file
 * declares for them are not what the library assigns when they disagree). Read with a streaming parser, as a large
 * vocabulary's tree would take a second.
 */
final class VocabularySize {
    private final Set<String> vocabulary = new HashSet<>();
    private final List<String> added = new ArrayList<>();
    private long modelSize = -1;

    private VocabularySize() {
    }

    /** The count for the text of a {@code tokenizer.json}; {@code what} names it in messages. */
    static int of(String json, String what) {
        VocabularySize v = new VocabularySize();
        try (JsonParser p = new JsonFactory().createParser(json)) {
            v.readTop(p, what);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read the vocabulary of " + what + ": " + e.getMessage(), e);
        }
        if (v.modelSize < 0) {
            throw new IllegalArgumentException(what + " has no model.vocab");
        }
        long size = v.modelSize + v.added.stream().filter(token -> !v.vocabulary.contains(token)).distinct().count();
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " has " + size + " token ids, more than an int holds");
        }
        return (int) size;
    }

    private void readTop(JsonParser p, String what) throws IOException {
        expect(p.nextToken(), JsonToken.START_OBJECT, what);
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            if (field.equals("model") && value == JsonToken.START_OBJECT) {
                readModel(p, what);
            } else if (field.equals("added_tokens") && value == JsonToken.START_ARRAY) {
                while (p.nextToken() == JsonToken.START_OBJECT) {
                    readAdded(p);
                }
            } else {
                p.skipChildren();
            }
        }
    }

    private void readModel(JsonParser p, String what) throws IOException {
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
                throw new IllegalArgumentException(what + ": model.vocab is neither a list of pieces nor a map of tokens"
                        + " to ids");
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

    private static void expect(JsonToken token, JsonToken expected, String what) {
        if (token != expected) {
            throw new IllegalArgumentException(what + " is not a JSON object");
        }
    }
}

package io.arrakis.text;

import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.OptionalLong;
import java.util.stream.LongStream;

/**
 * Text to token ids and back, for models whose vocabulary the tokenizer matches. Token ids stay the primary input of
 * the bench and the models; a tokenizer is a convenience for typing prompts and for labelling plots.
 */
public interface Tokenizer {
    /** The number of token ids this tokenizer knows: valid ids are {@code 0} to {@code vocabSize() - 1}. */
    int vocabSize();

    /**
     * The token ids of {@code text}, with the special tokens the tokenizer adds (e.g. a beginning of sequence). Throws
     * {@link IllegalArgumentException} for a text with a lone UTF-16 surrogate, which is not Unicode and has no ids.
     */
    long[] encode(String text);

    /** The token ids of {@code text} as an int64 CPU tensor {@code [1, n]}, a model's input; the caller owns it. */
    default Tensor encodeAsTensor(String text) {
        return asInput(encode(text));
    }

    /**
     * The id this tokenizer puts before every text (a beginning-of-sequence token its post-processor adds, such as
     * Llama's {@code <s>}), or empty where it puts none.
     */
    OptionalLong addedBos();

    /**
     * The token ids of {@code text} beginning with the beginning-of-sequence token {@code bos} where
     * {@code prependBos}, and without it where not, as TransformerLens's {@code to_tokens(prepend_bos=...)}: a
     * {@code bos} the tokenizer adds itself ({@link #addedBos()}) is kept or removed, one it does not add is prepended
     * or left out. A {@code bos} written in the text stays.
     *
     * @throws IllegalArgumentException for a {@code bos} outside {@code [0, vocabSize())}, or other than the id the
     *     tokenizer puts before every text (which this would neither keep nor remove)
     */
    default long[] encode(String text, long bos, boolean prependBos) {
        if (bos < 0 || bos >= vocabSize()) {
            throw new IllegalArgumentException("the beginning-of-sequence id " + bos + " is not one of this tokenizer's"
                    + " ids 0 to " + (vocabSize() - 1));
        }
        OptionalLong added = addedBos();
        if (added.isPresent() && added.getAsLong() != bos) {
            throw new IllegalArgumentException("this tokenizer (" + this + ") begins every text with id "
                    + added.getAsLong() + ", not the beginning-of-sequence id " + bos + " asked for: pass "
                    + added.getAsLong() + ", or encode(text) for the tokenizer's own ids");
        }
        long[] ids = encode(text);
        if (added.isPresent() == prependBos) {
            return ids;
        }
        return prependBos ? LongStream.concat(LongStream.of(bos), LongStream.of(ids)).toArray()
                : java.util.Arrays.copyOfRange(ids, 1, ids.length);
    }

    /** {@link #encode(String, long, boolean)} as an int64 CPU tensor {@code [1, n]}; the caller owns it. */
    default Tensor encodeAsTensor(String text, long bos, boolean prependBos) {
        return asInput(encode(text, bos, prependBos));
    }

    private static Tensor asInput(long[] ids) {
        if (ids.length == 0) {
            throw new IllegalArgumentException("the text is empty: it has no tokens, and a model needs at least one");
        }
        return Tensor.of(ids, 1, ids.length);
    }

    /**
     * The text of {@code ids}. Throws {@link IllegalArgumentException} for an id outside {@code [0, vocabSize())}.
     */
    String decode(long[] ids);

    /**
     * Each token's own text, one string per id (e.g. for plot tick labels); byte sequences that are not whole UTF-8
     * characters on their own become U+FFFD. Throws {@link IllegalArgumentException} for an id out of range.
     */
    List<String> tokenStrings(long[] ids);

    /**
     * Labels for plots and pages: {@link #tokenStrings} of the ids this tokenizer knows, {@code #id} for the others
     * (a model's vocabulary may be padded beyond its tokenizer's, and the model accepts those ids).
     */
    default List<String> labels(long[] ids) {
        int vocabSize = vocabSize();
        long[] known = LongStream.of(ids).filter(id -> id >= 0 && id < vocabSize).toArray();
        Iterator<String> strings = tokenStrings(known).iterator(); // one call for the ids it knows
        List<String> labels = new ArrayList<>(ids.length);
        for (long id : ids) {
            labels.add(id >= 0 && id < vocabSize ? strings.next() : "#" + id);
        }
        return List.copyOf(labels);
    }
}

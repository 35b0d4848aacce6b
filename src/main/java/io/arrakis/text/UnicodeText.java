package io.arrakis.text;

import java.util.Objects;

/** Text checked to be Unicode before a tokenizer sees it. */
final class UnicodeText {
    private UnicodeText() {
    }

    /**
     * {@code text}, if every UTF-16 surrogate in it is half of a pair. A lone surrogate has no UTF-8 form: the
     * tokenizers would quietly replace it (with {@code ?}, or by re-decoding the whole string lossily), giving ids for
     * another text, where Hugging Face's Python tokenizers refuse it.
     *
     * @throws IllegalArgumentException naming the first lone surrogate and its index
     */
    static String checked(String text) {
        Objects.requireNonNull(text, "text");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (!Character.isSurrogate(c)) {
                continue;
            }
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
                continue;
            }
            throw new IllegalArgumentException(String.format("the text has a lone UTF-16 surrogate, U+%04X, at index"
                    + " %d: it is not Unicode text, so it has no token ids (a string cut inside a character?)", (int) c, i));
        }
        return text;
    }
}

package io.arrakis.text;

import java.util.Objects;

/** Text checked to be Unicode before a tokenizer sees it, and UTF-8 bytes read back as Hugging Face's tokenizers do. */
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

    /**
     * The text of UTF-8 {@code bytes}, each maximal subpart of an ill-formed sequence (the longest start of a valid
     * sequence before the byte that breaks it, or else one byte) replaced by one U+FFFD: the Unicode Standard's
     * recommended practice (chapter 3, "U+FFFD Substitution of Maximal Subparts"), which Rust's
     * {@code String::from_utf8_lossy}, and so Hugging Face's tokenizers, follow. Java's own decoder replaces some
     * ill-formed sequences ({@code ED B0}, a surrogate cut short) by fewer characters.
     */
    static String fromUtf8Lossy(byte[] bytes) {
        StringBuilder out = new StringBuilder(bytes.length);
        int i = 0;
        while (i < bytes.length) {
            int lead = bytes[i] & 0xFF;
            if (lead < 0x80) {
                out.append((char) lead);
                i++;
                continue;
            }
            int continuations;
            int codePoint;
            int low = 0x80; // the range of the byte after the lead, narrower after E0, ED, F0 and F4
            int high = 0xBF;
            if (lead >= 0xC2 && lead <= 0xDF) {
                continuations = 1;
                codePoint = lead & 0x1F;
            } else if (lead >= 0xE0 && lead <= 0xEF) {
                continuations = 2;
                codePoint = lead & 0x0F;
                low = lead == 0xE0 ? 0xA0 : low; // no overlong forms
                high = lead == 0xED ? 0x9F : high; // no surrogates
            } else if (lead >= 0xF0 && lead <= 0xF4) {
                continuations = 3;
                codePoint = lead & 0x07;
                low = lead == 0xF0 ? 0x90 : low;
                high = lead == 0xF4 ? 0x8F : high; // nothing above U+10FFFF
            } else { // a continuation byte without a lead, or a byte no UTF-8 has
                out.append('\uFFFD');
                i++;
                continue;
            }
            int next = i + 1;
            boolean whole = true;
            for (int k = 0; k < continuations; k++, next++) {
                int b = next < bytes.length ? bytes[next] & 0xFF : -1;
                if (b < low || b > high) {
                    whole = false;
                    break;
                }
                codePoint = codePoint << 6 | b & 0x3F;
                low = 0x80;
                high = 0xBF;
            }
            if (whole) {
                out.appendCodePoint(codePoint);
            } else {
                out.append('\uFFFD');
            }
            i = next;
        }
        return out.toString();
    }
}

package io.arrakis.text;

import ai.djl.engine.EngineException;
import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.arrakis.io.ModelFolder;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * A model's tokenizer as its folder ships it, {@code tokenizer.json}, run by Hugging Face's own (Rust) tokenizers
 * library through DJL's binding, so that it gives the ids Hugging Face gives: byte-level BPE (GPT-2, Llama 3, Qwen),
 * BPE with byte fallback (Llama 2, Mistral, Gemma), Unigram (T5), WordPiece (BERT).
 *
 * <pre>{@code
 * try (HfTokenizer tokenizer = HfTokenizer.load(Path.of("model-folder"))) {
 *     HfTokenizer.Tokens t = tokenizer.tokenize("Hello world");  // ids and token strings, e.g. "Ġworld"
 *     String text = tokenizer.decode(t.ids());                    // "Hello world"
 * }
 * }</pre>
 *
 * <p>Encoding adds the special tokens the file's post-processor adds (e.g. a beginning-of-sequence token), and never
 * truncates or pads, whatever the file's {@code truncation} and {@code padding} say (as {@code transformers} turns
 * them off unless a call asks for them); a BPE {@code dropout} in the file applies, as in Hugging Face's library, so
 * encoding is then random. Decoding skips special tokens. A file with a setting on which that library would end the
 * process rather than fail (a {@code Replace} of the empty string, for one) is refused when it loads. The library's native code comes inside DJL's jar and is copied on
 * first use to {@code ~/.djl.ai/tokenizers} ({@code DJL_CACHE_DIR} overrides); nothing is downloaded. An instance may
 * be used by many threads at once; it holds native memory until closed.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {
    static {
        // With CUDA in sight DJL would fetch a CUDA build of the library from the internet; its jar's CPU build serves
        // every machine.
        defaultProperty("RUST_FLAVOR", "cpu");
        // Else DJL queries the EC2 metadata service on first use, to report usage from EC2 machines.
        defaultProperty("OPT_OUT_TRACKING", "true");
    }

    /** The longest text encoded in one call, in UTF-16 characters. */
    public static final int MAX_TEXT_CHARS = 1_000_000;

    /** The file name a Hugging Face model folder gives its tokenizer. */
    public static final String FILE_NAME = "tokenizer.json";

    /** The ids of a text, and each id's token as the vocabulary spells it (e.g. {@code "Ġworld"}, {@code "▁the"}). */
    public record Tokens(long[] ids, List<String> tokens) {
        @Override
        public String toString() {
            return "Tokens[ids=" + java.util.Arrays.toString(ids) + ", tokens=" + tokens + "]";
        }
    }

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;
    private final ReadWriteLock lock = new ReentrantReadWriteLock(); // close waits until no call uses the native handle
    private boolean closed;
    private final int vocabSize;
    private volatile OptionalLong addedBos; // null until first asked

    private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file, int vocabSize) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.vocabSize = vocabSize;
    }

    /**
     * Reads {@code path}: a {@code tokenizer.json}, or a folder holding one (a Hugging Face hub cache folder too).
     *
     * @throws IllegalArgumentException when there is no such file, or it is not a tokenizer Hugging Face can read
     */
    public static HfTokenizer load(Path path) {
        Path file = Files.isDirectory(path) ? ModelFolder.resolve(path).resolve(FILE_NAME) : path;
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(Files.isDirectory(path) ? path + " has no " + FILE_NAME : "no tokenizer"
                    + " file " + path + " (expected a Hugging Face tokenizer.json or a folder holding one)");
        }
        String json;
        try {
            json = Files.readString(file);
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + " is not UTF-8 text, so not a tokenizer.json");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        // from this text, not the file, which may change later; before the library reads it (see TokenizerFile)
        int vocabSize = TokenizerFile.checkedVocabSize(json, file.toString());
        HuggingFaceTokenizer tokenizer;
        try {
            // DJL's defaults truncate to 512 tokens and pad; a model's input must be the whole text, as it is
            tokenizer = HuggingFaceTokenizer.newInstance(
                    new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)),
                    Map.of("addSpecialTokens", "true", "truncation", "false", "padding", "false"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (EngineException | LinkageError e) {
            throw new IllegalStateException("cannot load the native library of Hugging Face tokenizers (DJL copies it"
                    + " to ~/.djl.ai/tokenizers, or under DJL_CACHE_DIR): " + causes(e), e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(file + " is not a tokenizer Hugging Face tokenizers can read: "
                    + e.getMessage(), e);
        }
        return new HfTokenizer(tokenizer, file, vocabSize);
    }

    /** The tokenizer.json this tokenizer was read from. */
    public Path file() {
        return file;
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    /**
     * The ids of {@code text}, with the special tokens the tokenizer adds (so not always empty for empty text).
     *
     * @throws IllegalArgumentException as {@link #tokenize} does
     */
    @Override
    public long[] encode(String text) {
        return tokenize(text).ids();
    }

    /**
     * The ids of {@code text} and their token strings.
     *
     * @throws IllegalArgumentException for a text with a lone UTF-16 surrogate (it is not Unicode), or of more than
     *                                  {@value #MAX_TEXT_CHARS} characters
     */
    public Tokens tokenize(String text) {
        UnicodeText.checked(text);
        if (text.length() > MAX_TEXT_CHARS) {
            throw new IllegalArgumentException("the text has " + text.length() + " characters, over the "
                    + MAX_TEXT_CHARS + " encoded at once: the library's regular expressions end the process where a"
                    + " match backtracks past Oniguruma's limit, which a long enough run of spaces reaches; encode the"
                    + " text in pieces");
        }
        Encoding encoding = encoding(text);
        return new Tokens(encoding.getIds(), List.of(encoding.getTokens()));
    }

    private Encoding encoding(String text) {
        return withHandle(() -> {
            try {
                return tokenizer.encode(text);
            } catch (RuntimeException e) { // the native tokenizer's own error, e.g. an unknown token it cannot name
                throw new IllegalArgumentException(file + " could not encode the text: " + e.getMessage(), e);
            }
        });
    }

    /**
     * The special token the file's post-processor puts before every text, if any (read from a letter's encoding on
     * the first call).
     *
     * @throws IllegalArgumentException where the tokenizer cannot encode the letter {@code a}
     */
    @Override
    public OptionalLong addedBos() {
        OptionalLong known = addedBos;
        if (known == null) {
            Encoding letter = encoding("a");
            known = letter.getIds().length > 0 && letter.getSpecialTokenMask()[0] == 1
                    ? OptionalLong.of(letter.getIds()[0]) : OptionalLong.empty();
            addedBos = known;
        }
        return known;
    }

    /** The text of {@code ids}, special tokens skipped. */
    @Override
    public String decode(long[] ids) {
        checkIds(ids);
        return withHandle(() -> tokenizer.decode(ids, true));
    }

    /** Each id decoded on its own, special tokens included (e.g. plot labels). */
    @Override
    public List<String> tokenStrings(long[] ids) {
        checkIds(ids);
        return withHandle(() -> {
            List<String> out = new ArrayList<>(ids.length);
            for (long id : ids) {
                out.add(tokenizer.decode(new long[] {id}, false));
            }
            return out;
        });
    }

    /** Hugging Face's decoder skips ids it does not know; here they are an error. */
    private void checkIds(long[] ids) {
        Objects.requireNonNull(ids, "ids");
        int vocabSize = vocabSize();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocabSize) {
                throw new IllegalArgumentException("token id " + ids[i] + " at index " + i + " is not in the vocabulary"
                        + " of " + file + " (ids 0 to " + (vocabSize - 1) + ")");
            }
        }
    }

    private <T> T withHandle(Supplier<T> call) {
        lock.readLock().lock();
        try {
            if (closed) {
                throw new IllegalStateException("this tokenizer (" + file + ") is closed");
            }
            return call.get();
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Frees the native tokenizer; later calls throw {@link IllegalStateException}. */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                tokenizer.close();
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + file + "]";
    }

    private static void defaultProperty(String name, String value) {
        if (System.getenv(name) == null && System.getProperty(name) == null) {
            System.setProperty(name, value);
        }
    }

    private static String causes(Throwable e) {
        StringBuilder s = new StringBuilder(String.valueOf(e.getMessage()));
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            s.append(": ").append(c.getMessage());
        }
        return s.toString();
    }
}

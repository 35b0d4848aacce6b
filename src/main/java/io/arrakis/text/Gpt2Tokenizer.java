package io.arrakis.text;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.OptionalLong;

/**
 * GPT-2's tokenizer: the byte-level BPE {@code r50k_base} (50,257 tokens, {@code <|endoftext|>} = 50256), through
 * jtokkit, a pure-Java port of OpenAI's tiktoken. The same vocabulary serves GPT-2, GPT-Neo and GPT-J checkpoints.
 *
 * <pre>{@code
 * Gpt2Tokenizer tok = Gpt2Tokenizer.get();
 * long[] ids = tok.encode("Hello world");                    // [15496, 995]
 * Tensor input = tok.encodeAsTensor("Hello world");          // int64 [1, 2]
 * List<String> labels = tok.tokenStrings(ids);               // ["Hello", " world"]
 * }</pre>
 *
 * <p>Text is encoded as ordinary text: {@code "<|endoftext|>"} written in the text is split into ordinary tokens, as
 * tiktoken's {@code encode_ordinary} does (and unlike Hugging Face's tokenizer, which turns it into id 50256); pass
 * id 50256 yourself where you want it. No space is added at the start ({@code "Hello"} and {@code " Hello"} are
 * different tokens, as in GPT-2's training). Instances are immutable and may be shared between threads.
 */
public final class Gpt2Tokenizer implements Tokenizer {
    /** The vocabulary size of GPT-2: ids 0 to 50256. */
    public static final int VOCAB_SIZE = 50257;
    /** {@code <|endoftext|>}, GPT-2's only special token. */
    public static final long END_OF_TEXT = 50256;

    private static final class Holder {
        static final Gpt2Tokenizer INSTANCE = new Gpt2Tokenizer(
                Encodings.newLazyEncodingRegistry().getEncoding(EncodingType.R50K_BASE));
    }

    private final Encoding encoding;

    private Gpt2Tokenizer(Encoding encoding) {
        this.encoding = encoding;
    }

    /** The shared instance (the vocabulary is read from jtokkit's jar on first use, about 1 MB). */
    public static Gpt2Tokenizer get() {
        return Holder.INSTANCE;
    }

    @Override
    public int vocabSize() {
        return VOCAB_SIZE;
    }

    /** Empty: GPT-2's tokenizer puts nothing before a text. */
    @Override
    public OptionalLong addedBos() {
        return OptionalLong.empty();
    }

    @Override
    public long[] encode(String text) {
        int[] ids = encoding.encodeOrdinary(UnicodeText.checked(text)).toArray();
        long[] out = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = ids[i];
        }
        return out;
    }

    /** The text of {@code ids}; id 50256 decodes to {@code <|endoftext|>} (Hugging Face's tokenizers skip it). */
    @Override
    public String decode(long[] ids) {
        return utf8(bytes(ids));
    }

    @Override
    public List<String> tokenStrings(long[] ids) {
        Objects.requireNonNull(ids, "ids");
        List<String> out = new ArrayList<>(ids.length);
        for (int i = 0; i < ids.length; i++) {
            out.add(utf8(bytes(new long[] {ids[i]})));
        }
        return out;
    }

    /** The bytes of {@code ids}, concatenated (GPT-2's tokens are byte sequences, not always whole characters). */
    public byte[] bytes(long[] ids) {
        Objects.requireNonNull(ids, "ids");
        IntArrayList list = new IntArrayList(ids.length);
        for (int i = 0; i < ids.length; i++) {
            long id = ids[i];
            if (id < 0 || id >= VOCAB_SIZE) {
                throw new IllegalArgumentException("token id " + id + " at index " + i + " is not a GPT-2 token: the"
                        + " r50k_base vocabulary has ids 0 to " + (VOCAB_SIZE - 1));
            }
            list.add((int) id);
        }
        return encoding.decodeBytes(list);
    }

    /** UTF-8 text of {@code bytes}; sequences that are not whole characters become U+FFFD, as in Hugging Face's. */
    private static String utf8(byte[] bytes) {
        return UnicodeText.fromUtf8Lossy(bytes);
    }

    @Override
    public String toString() {
        return "Gpt2Tokenizer[r50k_base, " + VOCAB_SIZE + " tokens]";
    }
}

package io.arrakis.model.safetensors;

import io.arrakis.json.Json;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A safetensors file, memory-mapped read-only.
 *
 * <p>The <a href="https://github.com/huggingface/safetensors">format</a>: an unsigned 64-bit little-endian header length
 * {@code N}, {@code N} bytes of UTF-8 JSON mapping each tensor name to its {@code dtype}, {@code shape} and
 * {@code data_offsets} ({@code [begin, end)}, counted from the first byte after the header) plus an optional
 * {@code "__metadata__"} object of strings, then the tensor data, little-endian and row-major.
 *
 * <p>{@link #open} maps the whole file (nothing is read onto the Java heap but the header) and validates the header
 * completely before returning: a truncated, corrupt or hostile file fails there with a {@link SafeTensorsException}
 * saying what is wrong, and never makes the reader allocate for data the file does not hold (the header itself, at
 * most {@link #MAX_HEADER_BYTES}, is parsed on the heap; a shape has at most {@link #MAX_DIMS} dims). Tensors of a dtype arrakis-jvm
 * cannot load (fp8, unsigned wider than 8 bits, ...) do not stop the file from opening; asking for them as a
 * {@link Tensor} fails with a message naming the dtype, while {@link #data} still gives their bytes.
 *
 * <p>Instances can be read from many threads at once. {@link #close()} unmaps the file: segments from {@link #data}
 * become unusable, tensors from {@link #tensor} are copies and stay valid. As with any memory map, a file truncated by
 * another process while mapped makes accesses to the lost pages fail.
 */
public final class SafeTensorsFile implements AutoCloseable {
    /** The largest header accepted, in bytes (the reference implementation's limit). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    /** The most dims a tensor's shape may have: far more than any model's tensors, far fewer than a hostile header's. */
    public static final int MAX_DIMS = 1024;

    /** The header key of the string-to-string metadata. */
    static final String METADATA_KEY = "__metadata__";

    /** How a Git LFS pointer file begins: what a clone without Git LFS leaves in place of the weights. */
    private static final byte[] LFS_POINTER = "version https://git-lfs".getBytes(StandardCharsets.US_ASCII);
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path file;
    private final Arena arena;
    private final MemorySegment mapping;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    /** The mapped file's identity (device and inode), to tell it from a file put in its place since; may be null. */
    private final Object fileKey;
    private volatile boolean closed;

    private SafeTensorsFile(Path file, Arena arena, MemorySegment mapping, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata, Object fileKey) {
        this.file = file;
        this.arena = arena;
        this.mapping = mapping;
        this.tensors = tensors;
        this.metadata = metadata;
        this.fileKey = fileKey;
    }

    /**
     * Maps {@code file} read-only and validates its header.
     *
     * @throws SafeTensorsException if the file cannot be read or is not a valid safetensors file
     */
    public static SafeTensorsFile open(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new SafeTensorsException(file, Files.exists(file) ? "not a regular file" : "no such file");
        }
        for (int attempt = 1; ; attempt++) {
            SafeTensorsFile opened = open(file, attempt == 3);
            if (opened != null) {
                return opened;
            }
        }
    }

    /**
     * Maps {@code file}, or returns null where another file was put at its path meanwhile (the identity read would not
     * be the mapped file's), unless {@code last}: then that is an error.
     */
    private static SafeTensorsFile open(Path file, boolean last) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment mapping;
            Object fileKey = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                long size = channel.size();
                if (size < 8) {
                    throw new SafeTensorsException(file, "the file is " + size
                            + " bytes long, shorter than the 8-byte header length that starts a safetensors file");
                }
                mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            }
            if (!java.util.Objects.equals(fileKey, Files.readAttributes(file, BasicFileAttributes.class).fileKey())) {
                if (last) {
                    throw new SafeTensorsException(file, "another file was put at this path each time it was opened");
                }
                arena.close();
                return null;
            }
            Header header;
            try {
                header = parseHeader(file, mapping);
            } catch (OutOfMemoryError e) { // what reading it made is garbage once this is thrown
                throw tooLargeToParse(file, "its header", mapping.get(U64_LE, 0), e);
            }
            return new SafeTensorsFile(file, arena, mapping.asReadOnly(), header.tensors, header.metadata, fileKey);
        } catch (IOException e) {
            arena.close();
            throw new SafeTensorsException(file, e instanceof ClosedByInterruptException
                    ? "not read: the thread reading it was interrupted" : "cannot read: " + e, e);
        } catch (InternalError fault) { // the JVM's answer to a read past the end of a mapped file that shrank
            arena.close();
            throw new SafeTensorsException(file, "the file became shorter while its header was read", fault);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** The file this was opened from. */
    public Path path() {
        return file;
    }

    /** The tensor names, sorted. */
    public Set<String> names() {
        return tensors.keySet();
    }

    /** Whether the file holds a tensor called {@code name}. */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /**
     * Where and what the tensor {@code name} is.
     *
     * @throws SafeTensorsException if there is no such tensor
     */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new SafeTensorsException(file, "no tensor named " + Json.quote(String.valueOf(name)) + " (the file holds "
                    + tensors.size() + " tensors)");
        }
        return info;
    }

    /** The header's {@code "__metadata__"} strings, in file order; empty if it has none. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * The bytes of tensor {@code name} as a read-only slice of the mapping (little-endian, row-major), without
     * copying. Valid until this file is closed.
     *
     * @throws SafeTensorsException if there is no such tensor
     */
    public MemorySegment data(String name) {
        TensorInfo info = info(name);
        checkOpen();
        return mapping.asSlice(info.offset(), info.byteSize());
    }

    /**
     * Tensor {@code name} as a new contiguous CPU tensor of its stored dtype. The bytes are copied once, natively, from
     * the mapping into the tensor's memory; the tensor is the caller's to close (or its {@code TensorScope}'s) and
     * outlives this file.
     *
     * @throws SafeTensorsException if there is no such tensor, its dtype cannot be loaded, or libtorch cannot allocate it
     */
    public Tensor tensor(String name) {
        TensorInfo info = info(name);
        DType dtype = info.dtype();
        if (dtype == null) {
            throw new SafeTensorsException(file, "tensor " + Json.quote(name) + " has dtype " + info.storedDtype()
                    + ", which arrakis-jvm cannot load as a tensor (loadable: " + Dtypes.LOADABLE_NAMES
                    + "); data(name) gives its raw bytes");
        }
        if (dtype.byteSize() > 1 && ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("SafeTensorsFile.tensor: safetensors data is little-endian and this"
                    + " machine is big-endian, which arrakis-jvm does not support");
        }
        checkOpen();
        Tensor tensor;
        try {
            tensor = Tensor.empty(info.shape(), dtype, Device.CPU);
        } catch (RuntimeException e) {
            throw new SafeTensorsException(file, "cannot allocate tensor " + Json.quote(name) + " (" + dtype + ", shape "
                    + Arrays.toString(info.shape()) + ", " + info.byteSize() + " bytes): " + e.getMessage(), e);
        }
        try {
            // looked at first: the fault of a read past a shrunk file's end may reach the JVM only after this method
            if (info.byteSize() > 0 && currentSize() < info.offset() + info.byteSize()) {
                throw new SafeTensorsException(file, shorter(name));
            }
            if (info.byteSize() > 0) {
                MemorySegment.copy(mapping, info.offset(), tensor.asSegment(), 0, info.byteSize());
                // and again: a file cut short during the copy reads as zeros, not a fault, within its last page
                if (currentSize() < info.offset() + info.byteSize()) {
                    throw new SafeTensorsException(file, shorter(name));
                }
            }
            return tensor;
        } catch (InternalError fault) { // the JVM's answer to a read past the end of a mapped file that shrank
            tensor.close();
            throw new SafeTensorsException(file, shorter(name), fault);
        } catch (RuntimeException | Error e) {
            tensor.close();
            throw e;
        }
    }

    /**
     * The mapped file's size now: the mapped size where the path now names another file or none (a file replaced or
     * deleted stays mapped whole), or where its size cannot be read.
     */
    private long currentSize() {
        try {
            BasicFileAttributes now = Files.readAttributes(file, BasicFileAttributes.class);
            return fileKey != null && fileKey.equals(now.fileKey()) ? now.size() : mapping.byteSize();
        } catch (IOException e) {
            return mapping.byteSize();
        }
    }

    private static String shorter(String name) {
        return "cannot read tensor " + Json.quote(name) + ": the file is shorter than when it was opened (truncated"
                + " or replaced since)";
    }

    /** Unmaps the file. Closing twice is harmless. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        arena.close();
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("safetensors file " + file + " was closed");
        }
    }

    @Override
    public String toString() {
        return "SafeTensorsFile[" + file + ", " + tensors.size() + " tensors" + (closed ? ", closed" : "") + "]";
    }

    // ------------------------------------------------------------------------------------------------ the header

    private record Header(Map<String, TensorInfo> tensors, Map<String, String> metadata) {
    }

    /** A tensor's data range, relative to the data section, for the overlap check. */
    private record Range(String name, long begin, long end) {
    }

    private static Header parseHeader(Path file, MemorySegment mapping) {
        long size = mapping.byteSize();
        if (size >= LFS_POINTER.length
                && Arrays.equals(mapping.asSlice(0, LFS_POINTER.length).toArray(ValueLayout.JAVA_BYTE), LFS_POINTER)) {
            throw new SafeTensorsException(file, "this is a Git LFS pointer, not the weights: the repository was cloned"
                    + " without Git LFS; fetch the file itself (git lfs pull, or hf download)");
        }
        long n = mapping.get(U64_LE, 0);
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new SafeTensorsException(file, "the header length " + Long.toUnsignedString(n) + " exceeds the limit of "
                    + MAX_HEADER_BYTES + " bytes (corrupt file, or not a safetensors file)");
        }
        if (n > size - 8) {
            throw new SafeTensorsException(file, "the header length " + n + " exceeds the " + (size - 8)
                    + " bytes that follow it (truncated file, or not a safetensors file)");
        }
        long dataStart = 8 + n;
        long dataLength = size - dataStart;
        String text = decodeUtf8(file, mapping.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE));
        Object root;
        try {
            root = Json.parse(text);
        } catch (Json.ParseException e) {
            // JSON that breaks off or runs on at the header's last character points at the length before it
            String hint = n > 0 && e.offset() >= text.length() - 1 ? "; that is the header's end: is its length, "
                    + n + " bytes in the file's first 8, right?" : "";
            throw new SafeTensorsException(file, "the header: " + e.getMessage() + hint, e);
        }
        if (!(root instanceof Map<?, ?> entries)) {
            throw new SafeTensorsException(file, "the header must be a JSON object, found " + describe(root));
        }
        Map<String, TensorInfo> tensors = new TreeMap<>();
        Map<String, String> metadata = Map.of();
        List<Range> ranges = new ArrayList<>();
        for (Map.Entry<?, ?> e : entries.entrySet()) {
            String name = (String) e.getKey();
            if (name.equals(METADATA_KEY)) {
                metadata = parseMetadata(file, e.getValue());
                continue;
            }
            TensorInfo info = parseEntry(file, name, e.getValue(), dataStart, dataLength);
            tensors.put(name, info);
            ranges.add(new Range(name, info.offset() - dataStart, info.offset() - dataStart + info.byteSize()));
        }
        checkLayout(file, ranges, dataLength);
        return new Header(Collections.unmodifiableMap(tensors), metadata);
    }

    private static String decodeUtf8(Path file, byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new SafeTensorsException(file, "the header is not valid UTF-8: " + e, e);
        }
    }

    private static Map<String, String> parseMetadata(Path file, Object value) {
        if (value == null) { // the format's metadata is optional, and its reader takes null for none
            return Map.of();
        }
        if (!(value instanceof Map<?, ?> map)) {
            throw new SafeTensorsException(file, METADATA_KEY + " must be an object of strings, found " + describe(value));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw new SafeTensorsException(file, METADATA_KEY + " must be an object of strings, but "
                        + Json.quote((String) e.getKey()) + " is " + describe(e.getValue()));
            }
            metadata.put((String) e.getKey(), s);
        }
        return Collections.unmodifiableMap(metadata);
    }

    private static TensorInfo parseEntry(Path file, String name, Object value, long dataStart, long dataLength) {
        String where = "tensor " + Json.quote(name);
        if (!(value instanceof Map<?, ?> entry)) {
            throw new SafeTensorsException(file, where + ": expected an object with dtype, shape and data_offsets, found "
                    + describe(value));
        }
        Object dtypeValue = field(file, where, entry, "dtype");
        if (!(dtypeValue instanceof String dtypeName) || dtypeName.isEmpty()) {
            throw new SafeTensorsException(file, where + ": dtype must be a non-empty string, found " + describe(dtypeValue));
        }
        Object shapeValue = field(file, where, entry, "shape");
        if (shapeValue instanceof List<?> dims && dims.size() > MAX_DIMS) {
            throw new SafeTensorsException(file, where + ": shape has " + dims.size() + " dims; at most " + MAX_DIMS
                    + " are read");
        }
        long[] shape = longs(file, where + ": shape", shapeValue, -1);
        long[] offsets = longs(file, where + ": data_offsets", field(file, where, entry, "data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin <= end && end > dataLength) {
            throw new SafeTensorsException(file, where + ": its data_offsets [" + begin + ", " + end + "] reach past the"
                    + " data section's " + dataLength + " bytes: the file is shorter than its header says (cut short by"
                    + " an interrupted download or copy?)");
        }
        if (begin > end) {
            throw new SafeTensorsException(file, where + ": data_offsets [" + begin + ", " + end
                    + "] must satisfy 0 <= begin <= end <= " + dataLength + " (the size of the data section)");
        }
        long numel = 1;
        for (long s : shape) {
            try {
                numel = Math.multiplyExact(numel, s);
            } catch (ArithmeticException overflow) {
                throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape)
                        + " has more than 2^63 elements");
            }
        }
        int bits = Dtypes.bits(dtypeName);
        if (bits > 0) {
            long expected;
            try {
                long totalBits = Math.multiplyExact(numel, (long) bits);
                if (totalBits % 8 != 0) {
                    throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape) + " of " + dtypeName
                            + " does not fill whole bytes");
                }
                expected = totalBits / 8;
            } catch (ArithmeticException overflow) {
                throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape) + " of " + dtypeName
                        + " needs more than 2^63 bits");
            }
            if (end - begin != expected) {
                throw new SafeTensorsException(file, where + ": data_offsets [" + begin + ", " + end + "] hold "
                        + (end - begin) + " bytes, but shape " + Arrays.toString(shape) + " of " + dtypeName + " needs "
                        + expected);
            }
        }
        return new TensorInfo(name, Dtypes.toDType(dtypeName), shape, dataStart + begin, end - begin, dtypeName);
    }

    private static Object field(Path file, String where, Map<?, ?> entry, String key) {
        if (!entry.containsKey(key)) {
            throw new SafeTensorsException(file, where + ": missing field \"" + key + "\"");
        }
        return entry.get(key);
    }

    /** A JSON array of non-negative integers, of length {@code length} unless that is -1. */
    private static long[] longs(Path file, String what, Object value, int length) {
        if (!(value instanceof List<?> list)) {
            throw new SafeTensorsException(file, what + " must be an array of integers, found " + describe(value));
        }
        if (length >= 0 && list.size() != length) {
            throw new SafeTensorsException(file, what + " must have " + length + " elements, found " + list.size());
        }
        long[] result = new long[list.size()];
        for (int i = 0; i < result.length; i++) {
            Object v = list.get(i);
            if (!(v instanceof Long l)) {
                throw new SafeTensorsException(file, what + " must hold integers in [0, 2^63), but element " + i + " is "
                        + describe(v));
            }
            if (l < 0) {
                throw new SafeTensorsException(file, what + " must not hold negative numbers, but element " + i + " is " + l);
            }
            result[i] = l;
        }
        return result;
    }

    /**
     * The format's rule, which Hugging Face's reader enforces: in the order of their offsets the tensors fill the data
     * section from its first byte to its last, without gaps or overlaps. Offsets that break it (shifted by a corrupt or
     * hand-edited header) would otherwise read other tensors' bytes as this one's.
     */
    private static void checkLayout(Path file, List<Range> ranges, long dataLength) {
        ranges.sort(Comparator.comparingLong(Range::begin).thenComparingLong(Range::end));
        Range previous = null;
        long end = 0;
        for (Range r : ranges) {
            if (r.begin < end) {
                throw new SafeTensorsException(file, "tensors " + Json.quote(previous.name) + " (bytes [" + previous.begin
                        + ", " + previous.end + ")) and " + Json.quote(r.name) + " (bytes [" + r.begin + ", " + r.end
                        + ")) overlap");
            }
            if (r.begin > end) {
                throw new SafeTensorsException(file, "bytes [" + end + ", " + r.begin + ") of the data section, before"
                        + " tensor " + Json.quote(r.name) + ", belong to no tensor; safetensors data has no gaps");
            }
            end = r.end;
            previous = r;
        }
        if (end != dataLength) {
            throw new SafeTensorsException(file, "the data section has " + (dataLength - end) + " bytes after the last"
                    + " tensor; safetensors data ends with its last tensor");
        }
    }

    /** A header or index of {@code bytes} whose parsed form the JVM's heap cannot hold: a hostile or broken file. */
    static SafeTensorsException tooLargeToParse(Path file, String what, long bytes, OutOfMemoryError cause) {
        return new SafeTensorsException(file, what + " of " + bytes + " bytes does not fit in this JVM's heap ("
                + (Runtime.getRuntime().maxMemory() >> 20) + " MB, -Xmx) once read, or the heap is full; a"
                + " checkpoint's is a few MB at most", cause);
    }

    static String describe(Object value) {
        return switch (value) {
            case null -> "null";
            case String s -> "the string " + (s.codePointCount(0, s.length()) > 40
                    ? Json.quote(s.substring(0, s.offsetByCodePoints(0, 40))) + "..." : Json.quote(s));
            case Long l -> "the number " + l;
            case Double d -> "the number " + d;
            case Boolean b -> b.toString();
            case List<?> l -> "an array of " + l.size() + " elements";
            case Map<?, ?> m -> "an object";
            default -> value.getClass().getSimpleName();
        };
    }
}

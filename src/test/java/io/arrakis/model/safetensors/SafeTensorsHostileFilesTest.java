package io.arrakis.model.safetensors;

import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Corrupt and hostile files: each must fail in {@link SafeTensorsFile#open} with a {@link SafeTensorsException} naming
 * the file and the problem, quickly and without allocating more than the file holds.
 */
class SafeTensorsHostileFilesTest {
    @TempDir
    Path dir;

    /** A file of an 8-byte length prefix (the header's true length unless {@code claimed} is given), header and data. */
    private Path file(String header, int dataBytes) throws IOException {
        return file(header.getBytes(StandardCharsets.UTF_8), -1, dataBytes);
    }

    private Path file(byte[] header, long claimed, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(claimed >= 0 || claimed < -1 ? claimed : header.length).put(header);
        Path p = Files.createTempFile(dir, "hostile", ".safetensors");
        Files.write(p, b.array());
        return p;
    }

    private static String f32(String name, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + "," + end + "]}";
    }

    private static SafeTensorsException assertRejected(Path file, String expected) {
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsFile.open(file).close());
        assertTrue(e.getMessage().contains(expected), () -> "expected '" + expected + "' in: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file.toString()), () -> "the message names the file: " + e.getMessage());
        assertEquals(file, e.file());
        return e;
    }

    /** header JSON, data section size, the phrase the message must hold. */
    static Stream<Arguments> badHeaders() {
        return Stream.of(
                Arguments.of("", 0, "the header: invalid JSON: end of input"),
                Arguments.of("   ", 0, "the header: invalid JSON"),
                Arguments.of("{\"a\":", 16, "the header: invalid JSON"),
                Arguments.of("{" + f32("a", "[1]", 0, 4) + ",}", 16, "the header: invalid JSON"),
                Arguments.of("{} trailing", 16, "Unrecognized token 'trailing'"),
                Arguments.of("[]", 16, "the header must be a JSON object, found an array"),
                Arguments.of("\"str\"", 16, "must be a JSON object, found the string"),
                Arguments.of("{\"a\":3}", 16, "tensor \"a\": expected an object with dtype, shape and data_offsets, found the number 3"),
                Arguments.of("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "tensor \"a\": missing field \"dtype\""),
                Arguments.of("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 16, "missing field \"shape\""),
                Arguments.of("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 16, "missing field \"data_offsets\""),
                Arguments.of("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "dtype must be a non-empty string, found the number 32"),
                Arguments.of("{\"a\":{\"dtype\":\"\",\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "dtype must be a non-empty string"),
                Arguments.of("{\"a\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "found null"),
                Arguments.of("{" + f32("a", "4", 0, 16) + "}", 16, "shape must be an array of integers, found the number 4"),
                Arguments.of("{" + f32("a", "{}", 0, 16) + "}", 16, "shape must be an array of integers, found an object"),
                Arguments.of("{" + f32("a", "[-4]", 0, 16) + "}", 16, "shape must not hold negative numbers, but element 0 is -4"),
                Arguments.of("{" + f32("a", "[2, 2.0]", 0, 16) + "}", 16, "shape must hold integers in [0, 2^63), but element 1 is the number 2.0"),
                Arguments.of("{" + f32("a", "[1.5]", 0, 16) + "}", 16, "element 0 is the number 1.5"),
                Arguments.of("{" + f32("a", "[1e30]", 0, 16) + "}", 16, "element 0 is the number 1.0E30"),
                Arguments.of("{" + f32("a", "[99999999999999999999]", 0, 16) + "}", 16, "shape must hold integers in [0, 2^63)"),
                Arguments.of("{" + f32("a", "[\"4\"]", 0, 16) + "}", 16, "element 0 is the string \"4\""),
                Arguments.of("{" + f32("a", "[true]", 0, 16) + "}", 16, "element 0 is true"),
                Arguments.of("{" + f32("a", "[4294967296, 4294967296]", 0, 16) + "}", 16, "shape [4294967296, 4294967296] has more than 2^63 elements"),
                Arguments.of("{" + f32("a", "[4611686018427387904]", 0, 16) + "}", 16, "of F32 needs more than 2^63 bits"),
                Arguments.of("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 16, "data_offsets must have 2 elements, found 3"),
                Arguments.of("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 16, "data_offsets must have 2 elements, found 1"),
                Arguments.of("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 16, "data_offsets must be an array"),
                Arguments.of("{" + f32("a", "[1]", -4, 0) + "}", 16, "data_offsets must not hold negative numbers"),
                Arguments.of("{" + f32("a", "[1]", 8, 4) + "}", 16, "data_offsets [8, 4] must satisfy 0 <= begin <= end <= 16"),
                Arguments.of("{" + f32("a", "[4]", 4, 20) + "}", 16, "data_offsets [4, 20] reach past the data section's 16 bytes: the file is shorter than its header says"),
                Arguments.of("{" + f32("a", "[1]", 9223372036854775803L, 9223372036854775807L) + "}", 16, "reach past the data section's 16 bytes"),
                Arguments.of("{" + f32("a", "[3]", 0, 8) + "}", 16, "data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12"),
                Arguments.of("{" + f32("a", "[]", 0, 8) + "}", 16, "hold 8 bytes, but shape [] of F32 needs 4"),
                Arguments.of("{" + f32("a", "[0]", 0, 4) + "}", 16, "hold 4 bytes, but shape [0] of F32 needs 0"),
                Arguments.of("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 16, "shape [3] of F4 does not fill whole bytes"),
                Arguments.of("{" + f32("a", "[2]", 0, 8) + "," + f32("b", "[2]", 4, 12) + "}", 16,
                        "tensors \"a\" (bytes [0, 8)) and \"b\" (bytes [4, 12)) overlap"),
                Arguments.of("{" + f32("big", "[4]", 0, 16) + "," + f32("in", "[1]", 8, 12) + "}", 16, "overlap"),
                Arguments.of("{" + f32("a", "[1]", 0, 4) + "," + f32("b", "[1]", 0, 4) + "}", 16, "overlap"),
                Arguments.of("{" + f32("a", "[1]", 0, 4) + "," + f32("a", "[1]", 4, 8) + "}", 16, "Duplicate field 'a'"),
                Arguments.of("{" + f32("a", "[" + "1,".repeat(1024) + "1]", 0, 4) + "}", 16, "shape has 1025 dims; at most 1024"),
                Arguments.of("{\"__metadata__\":[]}", 16, "__metadata__ must be an object of strings, found an array"),
                Arguments.of("{\"__metadata__\":{\"n\":1}}", 16, "__metadata__ must be an object of strings, but \"n\" is the number 1"),
                Arguments.of("[".repeat(5000) + "]".repeat(5000), 0, "nesting deeper than 64 levels"),
                Arguments.of("{\"a\\ud800\":1}", 0, "unpaired surrogate U+D800"),
                // was: a value cut for the message inside a surrogate pair failed with Json.quote's own error
                Arguments.of("{\"w\":\"" + "a".repeat(39) + "\ud83d\ude00tail\"}", 0,
                        "found the string \"" + "a".repeat(39) + "\ud83d\ude00\"..."),
                Arguments.of("{\"__metadata__\":\"" + "b".repeat(39) + "\ud83d\ude00tail\"}", 0,
                        "found the string \"" + "b".repeat(39) + "\ud83d\ude00\"..."));
    }

    @ParameterizedTest(name = "[{index}] {2}")
    @MethodSource("badHeaders")
    void badHeadersAreRejectedWithAClearMessage(String header, int dataBytes, String expected) throws IOException {
        assertRejected(file(header, dataBytes), expected);
    }

    /**
     * Was: a header within the size limit whose parsed form the heap cannot hold (millions of tiny entries) failed with
     * an OutOfMemoryError before its first entry was checked.
     */
    @Test
    void aHeaderTheHeapCannotHoldOnceParsedIsRefused() throws IOException {
        StringBuilder header = new StringBuilder("{");
        for (int i = 0; header.length() < 20_000_000; i++) {
            header.append(i == 0 ? "" : ",").append('"').append(i).append("\":{}");
        }
        Path file = file(header.append('}').toString(), 0);
        String out = io.arrakis.testing.ChildJvm.of(Open.class, file.toString()).jvmOption("-Xmx128m").run();
        assertTrue(out.contains("refused: " + file + ": its header of ") && out.contains("bytes does not fit in this"
                + " JVM's heap"), out);
    }

    /** Opens the file its argument names; prints the refusal. */
    public static final class Open {
        public static void main(String[] args) {
            try {
                SafeTensorsFile.open(Path.of(args[0])).close();
                System.out.println("opened");
            } catch (SafeTensorsException e) {
                System.out.println("refused: " + e.getMessage());
            }
        }
    }

    /** The format's metadata is optional, and its own reader takes null for none (was: refused). */
    @Test
    void nullMetadataIsNone() throws IOException {
        try (SafeTensorsFile f = SafeTensorsFile.open(file("{\"__metadata__\":null," + f32("a", "[1]", 0, 4) + "}", 4))) {
            assertEquals(Map.of(), f.metadata());
            assertEquals(Set.of("a"), f.names());
        }
    }

    @Test
    void filesTooShortForTheLengthPrefix() throws IOException {
        for (int size = 0; size < 8; size++) {
            Path p = dir.resolve("short" + size + ".safetensors");
            Files.write(p, new byte[size]);
            assertRejected(p, "the file is " + size + " bytes long, shorter than the 8-byte header length");
        }
    }

    @Test
    void headerLengthsBeyondTheFileOrTheLimit() throws IOException {
        byte[] header = "{}".getBytes(StandardCharsets.UTF_8);
        assertRejected(file(header, 3, 0), "the header length 3 exceeds the 2 bytes that follow it");
        assertRejected(file(header, 1000, 0), "the header length 1000 exceeds the 2 bytes that follow it");
        assertRejected(file(header, SafeTensorsFile.MAX_HEADER_BYTES + 1, 0), "exceeds the limit of 100000000 bytes");
        assertRejected(file(header, Long.MAX_VALUE, 0), "the header length 9223372036854775807 exceeds the limit");
        // an unsigned length above 2^63 (a negative Java long)
        assertRejected(file(header, -2, 0), "the header length 18446744073709551614 exceeds the limit");
    }

    /** A length one byte too long takes the data's first byte into the header; one too short cuts its last off. */
    @Test
    void aHeaderLengthOffByOneIsNamedAsTheLikelyCause() throws IOException {
        byte[] header = ("{" + f32("a", "[1]", 0, 4) + "}").getBytes(StandardCharsets.UTF_8);
        String hint = "that is the header's end: is its length, ";
        assertRejected(file(header, header.length + 1, 4), hint + (header.length + 1) + " bytes in the file's first 8");
        assertRejected(file(header, header.length - 1, 4), hint + (header.length - 1) + " bytes in the file's first 8");
        SafeTensorsException early = assertRejected(file("{\"a\":x}".getBytes(StandardCharsets.UTF_8), -1, 0),
                "invalid JSON");
        assertTrue(!early.getMessage().contains(hint), "a problem inside the header is not blamed on its length: "
                + early.getMessage());
    }

    /** What a clone without Git LFS leaves in place of the weights (its first 8 bytes read as a 2.3e18-byte header). */
    @Test
    void aGitLfsPointerIsNamed() throws IOException {
        Path p = dir.resolve("lfs.safetensors");
        Files.writeString(p, "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0".repeat(64) + "\nsize 548105171\n");
        assertRejected(p, "this is a Git LFS pointer, not the weights");
    }

    @Test
    void headerNotUtf8() throws IOException {
        assertRejected(file(new byte[] {'{', '"', (byte) 0xC3, '"', ':', '1', '}'}, -1, 0), "the header is not valid UTF-8");
        assertRejected(file(new byte[] {'{', '}', (byte) 0xFF}, -1, 0), "not valid UTF-8");
    }

    /**
     * A file that really is 10 GB (sparse, so it costs no disk) and claims a 10 GB header: refused from the length
     * alone, at once, without reading or allocating it.
     */
    @Test
    void aTenGigabyteHeaderFailsFast() throws IOException {
        long tenGb = 10L << 30;
        Path p = dir.resolve("huge.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
            raf.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(tenGb).array());
            raf.setLength(8 + tenGb + 16);
        }
        long start = System.nanoTime();
        assertRejected(p, "the header length " + tenGb + " exceeds the limit of 100000000 bytes");
        // and the same claim in a file of 24 bytes
        assertRejected(file("{}".getBytes(StandardCharsets.UTF_8), tenGb, 14), "the header length " + tenGb + " exceeds");
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue(millis < 2000, "took " + millis + " ms");
        Files.delete(p);
    }

    @Test
    void notARegularFile() {
        assertRejected(dir.resolve("absent.safetensors"), "no such file");
        assertRejected(dir, "not a regular file");
    }

    /**
     * Was: gaps and trailing bytes were accepted, so a header whose offsets were all shifted loaded every tensor from
     * the wrong bytes. The format (and Hugging Face's reader) wants the tensors to fill the data section exactly.
     */
    @Test
    void gapsAndTrailingBytesAreRefused() throws IOException {
        assertRejected(file("{" + f32("a", "[1]", 4, 8) + "," + f32("b", "[2]", 8, 16) + "}", 16),
                "bytes [0, 4) of the data section, before tensor \"a\", belong to no tensor");
        assertRejected(file("{" + f32("a", "[1]", 0, 4) + "," + f32("b", "[2]", 8, 16) + "}", 16),
                "bytes [4, 8) of the data section, before tensor \"b\", belong to no tensor");
        assertRejected(file("{" + f32("a", "[1]", 0, 4) + "," + f32("b", "[2]", 4, 12) + "}", 16),
                "the data section has 4 bytes after the last tensor");
        // empty tensors sit anywhere along the way
        Path p = file("{" + f32("a", "[1]", 0, 4) + "," + f32("b", "[2]", 4, 12) + "," + f32("z", "[0]", 4, 4) + ","
                + f32("e", "[0]", 12, 12) + "}", 12);
        try (SafeTensorsFile st = SafeTensorsFile.open(p)) {
            assertEquals(List.of("a", "b", "e", "z"), List.copyOf(st.names()));
            assertEquals(8, st.info("b").byteSize());
        }
    }


    @Test
    void unloadableDtypesOpenAndAreReportedByNameWhenAsked() throws IOException {
        Path p = file("{\"fp8\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,2],\"data_offsets\":[0,4]},"
                + "\"u32\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                + "\"odd\":{\"dtype\":\"Q4_K\",\"shape\":[7],\"data_offsets\":[8,13]},"
                + f32("ok", "[1]", 13, 17) + "}", 17);
        try (SafeTensorsFile st = SafeTensorsFile.open(p)) {
            assertEquals(List.of("fp8", "odd", "ok", "u32"), List.copyOf(st.names()));
            TensorInfo fp8 = st.info("fp8");
            assertNull(fp8.dtype());
            assertFalse(fp8.isLoadable());
            assertEquals("F8_E4M3", fp8.storedDtype());
            assertEquals(4, st.data("fp8").byteSize());
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> st.tensor("fp8"));
            assertTrue(e.getMessage().contains("tensor \"fp8\" has dtype F8_E4M3, which arrakis-jvm cannot load"), e.getMessage());
            e = assertThrows(SafeTensorsException.class, () -> st.tensor("odd"));
            assertTrue(e.getMessage().contains("dtype Q4_K"), e.getMessage());
            assertEquals("U32", st.info("u32").storedDtype());
            assertEquals(5, st.info("odd").byteSize(), "a dtype we do not know is not size-checked");
            try (Tensor ok = st.tensor("ok")) {
                assertEquals(1, ok.numel());
            }
        }
        // a dtype the format defines still has its size checked
        assertRejected(file("{\"fp8\":{\"dtype\":\"F8_E5M2\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4),
                "hold 4 bytes, but shape [3] of F8_E5M2 needs 3");
    }

    @Test
    void oddButValidShapesLoad() throws IOException {
        String rank1000 = "[" + "1,".repeat(999) + "1]";
        Path p = file("{" + f32("deep", rank1000, 0, 4) + "," + f32("none", "[0,4611686018427387904,4611686018427387904]", 4, 4)
                + "}", 4);
        try (SafeTensorsFile st = SafeTensorsFile.open(p)) {
            try (Tensor deep = st.tensor("deep")) {
                assertEquals(1000, deep.dim());
                assertEquals(1, deep.numel());
            }
            assertEquals(0, st.info("none").numel());
            try (Tensor none = st.tensor("none")) {
                assertEquals(0, none.numel());
            }
        }
    }

    @Test
    void extraEntryFieldsAreIgnoredAndDataIsExact() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-3f);
        byte[] header = ("{\"x\":{\"data_offsets\":[0,8],\"shape\":[2],\"dtype\":\"F32\",\"extra\":[1,{}]}}")
                .getBytes(StandardCharsets.UTF_8);
        ByteBuffer all = ByteBuffer.allocate(8 + header.length + 8).order(ByteOrder.LITTLE_ENDIAN);
        all.putLong(header.length).put(header).put(data.array());
        Path p = dir.resolve("extra.safetensors");
        Files.write(p, all.array());
        try (SafeTensorsFile st = SafeTensorsFile.open(p)) {
            assertEquals(8 + header.length, st.info("x").offset());
            assertEquals(-3f, st.data("x").get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4));
            try (Tensor t = st.tensor("x")) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {1.5f, -3f}, t.toFloatArray());
            }
        }
    }
}

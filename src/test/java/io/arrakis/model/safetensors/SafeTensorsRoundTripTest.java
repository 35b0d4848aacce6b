package io.arrakis.model.safetensors;

import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link SafeTensorsWriter} then {@link SafeTensorsFile}: every dtype, metadata, layout and the reference's bytes. */
class SafeTensorsRoundTripTest {
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @TempDir
    Path dir;

    private TensorScope scope;

    @BeforeEach
    void openScope() {
        scope = TensorScope.open();
    }

    @AfterEach
    void closeScope() {
        scope.close();
    }

    private static final float[] FLOATS = {0f, -0f, 1f, -2.5f, 3.1415927f, Float.MIN_VALUE, Float.MAX_VALUE,
            Float.NEGATIVE_INFINITY, Float.NaN, 1e-20f, -7f, 65504f};

    @Test
    void everyDtypeRoundTripsWithItsValues() {
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("f32", Tensor.of(FLOATS, 3, 4));
        in.put("f64", Tensor.of(new double[] {Math.PI, -0.0, Double.MIN_VALUE, Double.MAX_VALUE, 1e300, -1}, 2, 3));
        in.put("i64", Tensor.of(new long[] {Long.MIN_VALUE, -1, 0, 1, Long.MAX_VALUE, 1L << 40}, 6));
        in.put("i32", Tensor.of(new int[] {Integer.MIN_VALUE, -1, 0, 7, Integer.MAX_VALUE, 1 << 20}, 3, 2));
        in.put("i16", Tensor.of(new int[] {-32768, -2, 0, 300, 32767, 1}, 2, 3).to(DType.INT16));
        in.put("i8", Tensor.of(new int[] {-128, -1, 0, 5, 127, 64}, 6).to(DType.INT8));
        in.put("u8", Tensor.of(new int[] {0, 1, 127, 128, 200, 255}, 1, 6).to(DType.UINT8));
        in.put("bool", Tensor.of(new boolean[] {true, false, false, true, true, false}, 2, 3));
        // exactly representable in half precision, including its largest value, a subnormal and -0
        float[] halves = {1f, -2f, 0.5f, 65504f, 6.1035156e-05f, 5.9604645e-08f, -0f, -1000.5f};
        in.put("f16", Tensor.of(halves, 2, 4).to(DType.FLOAT16));
        // exactly representable in bfloat16, including numbers far outside float16's range
        float[] brains = {1f, -2f, 0.5f, 0x1p100f, -0x1p-100f, -0.15625f, 0f, 255f};
        in.put("bf16", Tensor.of(brains, 8).to(DType.BFLOAT16));
        in.put("c64", Tensor.of(new float[] {1.5f, -2f, 0f}, 3).to(DType.COMPLEX64));
        Path file = dir.resolve("all.safetensors");
        SafeTensorsWriter.write(file, in, Map.of("format", "pt"));

        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(List.of("bf16", "bool", "c64", "f16", "f32", "f64", "i16", "i32", "i64", "i8", "u8"),
                    List.copyOf(st.names()));
            Map<String, String> stored = Map.ofEntries(Map.entry("f32", "F32"), Map.entry("f64", "F64"),
                    Map.entry("i64", "I64"), Map.entry("i32", "I32"), Map.entry("i16", "I16"), Map.entry("i8", "I8"),
                    Map.entry("u8", "U8"), Map.entry("bool", "BOOL"), Map.entry("f16", "F16"),
                    Map.entry("bf16", "BF16"), Map.entry("c64", "C64"));
            for (String name : st.names()) {
                Tensor original = in.get(name);
                TensorInfo info = st.info(name);
                assertEquals(name, info.name());
                assertEquals(original.dtype(), info.dtype(), name);
                assertEquals(stored.get(name), info.storedDtype(), name);
                assertArrayEquals(original.shape(), info.shape(), name);
                assertEquals(original.numel() * original.dtype().byteSize(), info.byteSize(), name);
                Tensor back = st.tensor(name);
                assertEquals(original.dtype(), back.dtype(), name);
                assertArrayEquals(original.shape(), back.shape(), name);
                assertTrue(back.device().isCpu());
                assertEquals(bytesOf(original.asSegment()), bytesOf(back.asSegment()), name + ": the bytes differ");
            }

            assertFloatBits(FLOATS, st.tensor("f32").toFloatArray());
            assertArrayEquals(new double[] {Math.PI, -0.0, Double.MIN_VALUE, Double.MAX_VALUE, 1e300, -1},
                    st.tensor("f64").toDoubleArray());
            assertArrayEquals(new long[] {Long.MIN_VALUE, -1, 0, 1, Long.MAX_VALUE, 1L << 40}, st.tensor("i64").toLongArray());
            assertArrayEquals(new int[] {Integer.MIN_VALUE, -1, 0, 7, Integer.MAX_VALUE, 1 << 20}, st.tensor("i32").toIntArray());
            assertArrayEquals(new int[] {-32768, -2, 0, 300, 32767, 1}, st.tensor("i16").toIntArray());
            assertArrayEquals(new int[] {-128, -1, 0, 5, 127, 64}, st.tensor("i8").toIntArray());
            assertArrayEquals(new int[] {0, 1, 127, 128, 200, 255}, st.tensor("u8").toIntArray());
            assertArrayEquals(new boolean[] {true, false, false, true, true, false}, st.tensor("bool").toBooleanArray());
            assertFloatBits(halves, st.tensor("f16").to(DType.FLOAT32).toFloatArray());
            assertFloatBits(brains, st.tensor("bf16").to(DType.FLOAT32).toFloatArray());
            assertArrayEquals(new float[] {1.5f, 0f, -2f, 0f, 0f, 0f}, st.tensor("c64").viewAsReal().toFloatArray());

            // the stored bytes themselves, little-endian, read without libtorch
            assertEquals((short) 0x3C00, st.data("f16").get(I16_LE, 0), "1.0 in IEEE half precision");
            assertEquals((short) 0xC000, st.data("f16").get(I16_LE, 2), "-2.0 in IEEE half precision");
            assertEquals((short) 0x3F80, st.data("bf16").get(I16_LE, 0), "1.0 in bfloat16");
            assertEquals((short) 0xC000, st.data("bf16").get(I16_LE, 2), "-2.0 in bfloat16");
            assertEquals((short) -2, st.data("i16").get(I16_LE, 2));
            assertEquals((byte) 200, st.data("u8").get(ValueLayout.JAVA_BYTE, 4));
            assertEquals(Map.of("format", "pt"), st.metadata());
        }
    }

    /** Was: "cannot read: java.nio.channels.ClosedByInterruptException", which made a sound file look damaged. */
    @Test
    void aReadByAnInterruptedThreadSaysSo() {
        Path file = dir.resolve("one.safetensors");
        SafeTensorsWriter.write(file, Map.of("x", Tensor.of(new float[] {1}, 1)), Map.of());
        Thread.currentThread().interrupt();
        try {
            String m = assertThrows(SafeTensorsException.class, () -> SafeTensorsFile.open(file)).getMessage();
            assertTrue(m.contains("not read: the thread reading it was interrupted"), m);
        } finally {
            Thread.interrupted();
        }
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(List.of("x"), List.copyOf(st.names()));
        }
    }

    @Test
    void scalarsEmptyTensorsAndNonContiguousInputs() {
        Map<String, Tensor> in = new LinkedHashMap<>();
        Tensor scalar = Tensor.of(new float[] {2.5f});
        in.put("scalar", scalar.view(new long[0]));
        in.put("empty", Tensor.zeros(0, 3));
        Tensor matrix = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor transposed = matrix.transpose(0, 1);
        assertFalse(transposed.isContiguous());
        in.put("transposed", transposed);
        Path file = dir.resolve("shapes.safetensors");
        SafeTensorsWriter.write(file, in, null);
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(Map.of(), st.metadata());
            assertArrayEquals(new long[0], st.info("scalar").shape());
            assertEquals(1, st.info("scalar").numel());
            assertEquals(4, st.info("scalar").byteSize());
            Tensor s = st.tensor("scalar");
            assertEquals(0, s.dim());
            assertEquals(2.5, s.item());
            assertArrayEquals(new long[] {0, 3}, st.info("empty").shape());
            assertEquals(0, st.info("empty").byteSize());
            assertEquals(0, st.data("empty").byteSize());
            assertArrayEquals(new long[] {0, 3}, st.tensor("empty").shape());
            assertArrayEquals(new long[] {3, 2}, st.info("transposed").shape());
            assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, st.tensor("transposed").toFloatArray());
        }
    }

    @Test
    void headerIsLaidOutLikeTheReferenceImplementation() throws IOException {
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("zeta", Tensor.of(new float[] {1}, 1));
        in.put("alpha", Tensor.of(new float[] {2, 3}, 2));
        Path file = dir.resolve("layout.safetensors");
        SafeTensorsWriter.write(file, in, Map.of("k", "v"));
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, n % 8, "the header is padded to a multiple of 8 bytes");
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertEquals("{\"__metadata__\":{\"k\":\"v\"},\"alpha\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"zeta\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", header.stripTrailing());
        assertTrue(header.substring(header.stripTrailing().length()).chars().allMatch(c -> c == ' '), "padded with spaces");
        assertEquals(8 + n + 12, bytes.length);
    }

    /**
     * Mixed dtypes: the widest first, then by name, as the reference orders them, so every tensor starts aligned to its
     * element size. Was: by name only, which put a float32 tensor at byte 3 after three bools.
     */
    @Test
    void widerDtypesComeFirstSoEveryTensorIsAligned() throws IOException {
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("a", Tensor.of(new boolean[] {true, false, true}, 3));
        in.put("b", Tensor.of(new float[] {1, 2}, 2));
        in.put("c", Tensor.of(new long[] {7}, 1));
        Path file = dir.resolve("mixed.safetensors");
        SafeTensorsWriter.write(file, in, null);
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8).stripTrailing();
        assertEquals("{\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                + "\"a\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[16,19]}}", header);
        try (SafeTensorsFile back = SafeTensorsFile.open(file)) {
            assertArrayEquals(new float[] {1, 2}, back.tensor("b").toFloatArray());
            assertArrayEquals(new long[] {7}, back.tensor("c").toLongArray());
        }
    }

    /** Was: names of one dtype in UTF-16 order, where the reference sorts their UTF-8 bytes. */
    @Test
    void namesOfOneDtypeAreInTheirUtf8Order() throws IOException {
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("\uFF01", Tensor.of(new float[] {1}, 1));       // U+FF01: EF BC 81 in UTF-8, 0xFF01 in UTF-16
        in.put("\uD83D\uDE00", Tensor.of(new float[] {2}, 1)); // U+1F600: F0 9F 98 80 in UTF-8, 0xD83D first in UTF-16
        Path file = dir.resolve("order.safetensors");
        SafeTensorsWriter.write(file, in, null);
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.indexOf("\uFF01") < header.indexOf("\uD83D\uDE00"), header);
    }

    /** The exact bytes of the reference implementation's own serialization tests (safetensors/src/tensor.rs). */
    @Test
    void writesTheReferenceImplementationsBytes() throws IOException {
        Path a = dir.resolve("a.safetensors");
        SafeTensorsWriter.write(a, Map.of("attn.0", Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 1, 2, 3)), null);
        assertArrayEquals(bytes(64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
                116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
                58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
                101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
                0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64), Files.readAllBytes(a));

        Path b = dir.resolve("b.safetensors");
        SafeTensorsWriter.write(b, Map.of("attn0", Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 1, 1, 2, 3)), Map.of());
        assertArrayEquals(bytes(72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
                121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
                91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
                115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
                32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
                160, 64), Files.readAllBytes(b));

        Path empty = dir.resolve("empty.safetensors");
        SafeTensorsWriter.write(empty, Map.of(), null);
        assertArrayEquals(bytes(8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32), Files.readAllBytes(empty));
        try (SafeTensorsFile st = SafeTensorsFile.open(empty)) {
            assertTrue(st.names().isEmpty());
        }
    }

    @Test
    void namesAndMetadataWithEscapesAndUnicodeRoundTrip() {
        String odd = "layer \"0\"\\ü/😀\n.weight";
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("quote\"d", "line\nbreak\ttab ünï 😀");
        meta.put("empty", "");
        Path file = dir.resolve("names.safetensors");
        SafeTensorsWriter.write(file, Map.of(odd, Tensor.of(new float[] {7}, 1)), meta);
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(List.of(odd), List.copyOf(st.names()));
            assertEquals(meta, st.metadata());
            assertArrayEquals(new float[] {7}, st.tensor(odd).toFloatArray());
        }
    }

    @Test
    void writingReplacesAtomicallyAndLeavesNoTemporaryFiles() throws IOException {
        Path file = dir.resolve("w.safetensors");
        SafeTensorsWriter.write(file, Map.of("x", Tensor.of(new float[] {1}, 1)), null);
        SafeTensorsWriter.write(file, Map.of("y", Tensor.of(new float[] {2, 3}, 2)), null);
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(List.of("y"), List.copyOf(st.names()));
        }
        // a failed write leaves the earlier file as it was
        byte[] before = Files.readAllBytes(file);
        Tensor complex128 = Tensor.of(new double[] {1}, 1).to(DType.COMPLEX128);
        SafeTensorsException e = assertThrows(SafeTensorsException.class,
                () -> SafeTensorsWriter.write(file, Map.of("z", complex128), null));
        assertTrue(e.getMessage().contains("complex128"), e.getMessage());
        assertThrows(SafeTensorsException.class,
                () -> SafeTensorsWriter.write(file, Map.of("__metadata__", Tensor.of(new float[] {1}, 1)), null));
        assertThrows(SafeTensorsException.class, () -> SafeTensorsWriter.write(dir.resolve("missing/dir/x.safetensors"),
                Map.of("x", Tensor.of(new float[] {1}, 1)), null));
        assertArrayEquals(before, Files.readAllBytes(file));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList(), "no temporary files are left behind");
        }
    }

    @Test
    void tensorsOutliveTheFileButDataSegmentsDoNot() {
        Path file = dir.resolve("life.safetensors");
        SafeTensorsWriter.write(file, Map.of("x", Tensor.of(new float[] {1, 2}, 2)), null);
        SafeTensorsFile st = SafeTensorsFile.open(file);
        Tensor t = st.tensor("x");
        MemorySegment data = st.data("x");
        assertTrue(data.isReadOnly());
        assertThrows(IllegalArgumentException.class, () -> data.set(ValueLayout.JAVA_BYTE, 0, (byte) 1));
        st.close();
        st.close();
        assertArrayEquals(new float[] {1, 2}, t.toFloatArray());
        assertThrows(IllegalStateException.class, () -> data.get(ValueLayout.JAVA_BYTE, 0));
        assertThrows(IllegalStateException.class, () -> st.data("x"));
        assertThrows(IllegalStateException.class, () -> st.tensor("x"));
        assertEquals(List.of("x"), List.copyOf(st.names()), "the header stays readable");
    }

    @Test
    void unknownNamesAreReported() {
        Path file = dir.resolve("u.safetensors");
        SafeTensorsWriter.write(file, Map.of("x", Tensor.of(new float[] {1}, 1)), null);
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertFalse(st.contains("y"));
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> st.tensor("y"));
            assertTrue(e.getMessage().contains("no tensor named \"y\""), e.getMessage());
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
            assertEquals(file, e.file());
            assertEquals(DType.FLOAT32, st.info("x").dtype());
        }
    }

    private static void assertFloatBits(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToIntBits(expected[i]), Float.floatToIntBits(actual[i]),
                    "element " + i + ": expected " + expected[i] + ", got " + actual[i]);
        }
    }

    private static List<Byte> bytesOf(MemorySegment segment) {
        byte[] b = segment.toArray(ValueLayout.JAVA_BYTE);
        Byte[] boxed = new Byte[b.length];
        for (int i = 0; i < b.length; i++) {
            boxed[i] = b[i];
        }
        return List.of(boxed);
    }

    private static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }
}

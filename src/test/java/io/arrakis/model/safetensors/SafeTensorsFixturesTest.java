package io.arrakis.model.safetensors;

import io.arrakis.model.Fixtures;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real model files of {@code ../shared/fixtures}, read by the code under test and, independently, by a minimal
 * reader here (a regular expression over the header and a {@link ByteBuffer} over the data).
 */
class SafeTensorsFixturesTest {

    static Path fixture(String name) {
        return Fixtures.dir(name);
    }

    /** One tensor as the minimal reader sees it. */
    record Entry(String dtype, long[] shape, long begin, long end) {
    }

    private static final Pattern ENTRY = Pattern.compile("\"([^\"]+)\"\\s*:\\s*\\{\\s*\"dtype\"\\s*:\\s*\"(\\w+)\"\\s*,"
            + "\\s*\"shape\"\\s*:\\s*\\[([0-9,\\s]*)]\\s*,\\s*\"data_offsets\"\\s*:\\s*\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*]\\s*}");

    /** The minimal reader: tensor entries of a header whose entries list dtype, shape, data_offsets in that order. */
    static Map<String, Entry> entries(byte[] file) {
        long n = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(file, 8, (int) n, StandardCharsets.UTF_8);
        Map<String, Entry> entries = new TreeMap<>();
        Matcher m = ENTRY.matcher(header);
        while (m.find()) {
            long[] shape = m.group(3).isBlank() ? new long[0]
                    : Arrays.stream(m.group(3).split(",")).map(String::trim).mapToLong(Long::parseLong).toArray();
            entries.put(m.group(1), new Entry(m.group(2), shape, Long.parseLong(m.group(4)), Long.parseLong(m.group(5))));
        }
        return entries;
    }

    static float[] floats(byte[] file, Entry e) {
        long n = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        ByteBuffer data = ByteBuffer.wrap(file, (int) (8 + n + e.begin), (int) (e.end - e.begin)).slice()
                .order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[(int) ((e.end - e.begin) / 4)];
        data.asFloatBuffer().get(values);
        return values;
    }

    private static void checkAgainstMinimalReader(Path file, int expectedCount) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        Map<String, Entry> expected = entries(bytes);
        assertEquals(expectedCount, expected.size(), "the minimal reader found every entry");
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertEquals(expected.keySet(), st.names());
            assertEquals(Map.of("format", "pt"), st.metadata());
            long dataStart = 8 + ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            for (Map.Entry<String, Entry> e : expected.entrySet()) {
                String name = e.getKey();
                Entry want = e.getValue();
                TensorInfo info = st.info(name);
                assertEquals("F32", want.dtype());
                assertEquals(DType.FLOAT32, info.dtype(), name);
                assertArrayEquals(want.shape(), info.shape(), name);
                assertEquals(dataStart + want.begin(), info.offset(), name);
                assertEquals(want.end() - want.begin(), info.byteSize(), name);
                try (Tensor t = st.tensor(name)) {
                    assertArrayEquals(want.shape(), t.shape(), name);
                    assertArrayEquals(floats(bytes, want), t.toFloatArray(), name);
                }
            }
        }
    }

    @Test
    void gpt2TinyMatchesAnIndependentReader() throws IOException {
        Path file = fixture("gpt2-tiny").resolve("model.safetensors");
        checkAgainstMinimalReader(file, 28);
        try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
            assertArrayEquals(new long[] {96, 32}, st.info("transformer.wte.weight").shape());
            assertArrayEquals(new long[] {32, 32}, st.info("transformer.wpe.weight").shape());
            assertArrayEquals(new long[] {32, 96}, st.info("transformer.h.0.attn.c_attn.weight").shape());
            assertArrayEquals(new long[] {128, 32}, st.info("transformer.h.1.mlp.c_proj.weight").shape());
            assertArrayEquals(new long[] {32}, st.info("transformer.ln_f.bias").shape());
            assertTrue(st.names().stream().allMatch(n -> n.startsWith("transformer.")));
        }
    }

    @Test
    void referenceActivationsOfMixedDtypesMatchAnIndependentReader() throws IOException {
        for (String model : new String[] {"gpt2-tiny", "llama-tiny-gqa"}) {
            Path file = fixture(model).resolve("reference.safetensors");
            byte[] bytes = Files.readAllBytes(file);
            long dataStart = 8 + ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            Map<String, Entry> expected = entries(bytes);
            try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
                assertEquals(expected.keySet(), st.names(), model);
                assertTrue(st.metadata().containsKey("source"), model);
                for (Map.Entry<String, Entry> e : expected.entrySet()) {
                    Entry want = e.getValue();
                    byte[] raw = Arrays.copyOfRange(bytes, (int) (dataStart + want.begin()), (int) (dataStart + want.end()));
                    assertArrayEquals(raw, st.data(e.getKey()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), e.getKey());
                    assertArrayEquals(want.shape(), st.info(e.getKey()).shape(), e.getKey());
                }
                Entry ids = expected.get("input_ids");
                assertEquals("I64", ids.dtype());
                long[] wantIds = new long[22];
                ByteBuffer.wrap(bytes, (int) (dataStart + ids.begin()), 176).slice().order(ByteOrder.LITTLE_ENDIAN)
                        .asLongBuffer().get(wantIds);
                try (Tensor t = st.tensor("input_ids")) {
                    assertEquals(DType.INT64, t.dtype());
                    assertArrayEquals(new long[] {2, 11}, t.shape());
                    assertArrayEquals(wantIds, t.toLongArray());
                }
                Entry q = expected.get("composition.Q");
                assertEquals("F64", q.dtype());
                double[] wantQ = new double[64];
                ByteBuffer.wrap(bytes, (int) (dataStart + q.begin()), 512).slice().order(ByteOrder.LITTLE_ENDIAN)
                        .asDoubleBuffer().get(wantQ);
                try (Tensor t = st.tensor("composition.Q")) {
                    assertEquals(DType.FLOAT64, t.dtype());
                    assertArrayEquals(wantQ, t.toDoubleArray());
                }
            }
        }
    }

    @Test
    void llamaTinyGqaMatchesAnIndependentReader() throws IOException {
        Path file = fixture("llama-tiny-gqa").resolve("model.safetensors");
        checkAgainstMinimalReader(file, 21);
        try (SafeTensorsDirectory weights = SafeTensorsDirectory.open(file.getParent())) {
            assertEquals(21, weights.names().size());
            assertEquals(java.util.List.of(file), weights.files());
            assertArrayEquals(new long[] {16, 32}, weights.info("model.layers.0.self_attn.k_proj.weight").shape(),
                    "grouped-query attention: 2 key/value heads of 8");
            assertArrayEquals(new long[] {32, 32}, weights.info("model.layers.1.self_attn.q_proj.weight").shape());
            assertArrayEquals(new long[] {48, 32}, weights.info("model.layers.0.mlp.gate_proj.weight").shape());
            assertArrayEquals(new long[] {96, 32}, weights.info("lm_head.weight").shape());
            assertEquals(Map.of("format", "pt"), weights.metadata());
            byte[] bytes = Files.readAllBytes(file);
            Entry norm = entries(bytes).get("model.norm.weight");
            try (Tensor t = weights.tensor("model.norm.weight")) {
                assertArrayEquals(floats(bytes, norm), t.toFloatArray());
            }
        }
    }
}

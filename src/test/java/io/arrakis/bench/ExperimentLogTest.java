package io.arrakis.bench;

import io.arrakis.Version;
import io.arrakis.json.Json;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.testing.ChildJvm;
import io.arrakis.torch.DType;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class ExperimentLogTest {
    private static final Instant T0 = Instant.parse("2026-11-26T12:00:00Z");
    private static final Duration ONE_SECOND = Duration.ofSeconds(1);

    record Point(int x, String label) {
    }

    enum Mode { FAST, SLOW }

    @Test
    void recordRoundTripsInTheSameJvm(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir.resolve("runs/nested")); // created if missing
        Map<String, Object> args = new LinkedHashMap<>();
        args.put("layers", 3);
        args.put("lr", 0.1f);
        args.put("mode", Mode.FAST);
        args.put("flag", true);
        args.put("nothing", null);
        args.put("ids", new int[] {4, 5});
        args.put("point", new Point(7, "p"));
        args.put("chars", 'c');
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("scores", List.of(1.5, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY));
        result.put("nested", Map.of("deep", List.of(Map.of("k", (short) 2))));
        result.put("weights", new double[] {0.25, -1});
        result.put("flags", new boolean[] {true, false});
        result.put("names", new String[] {"a", "b"});
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with("n_layer", 2);

        ExperimentRecord written = log.record("induction", args, result, T0, Duration.ofMillis(1500), config);

        assertEquals(written, log.getVersion("induction", written.version()));
        assertEquals(List.of(written), log.listVersions("induction"));
        assertEquals(List.of("induction"), log.names());
        assertEquals(log.saveDir().resolve("induction").resolve(written.version() + ".json"), written.file());
        assertEquals(written.toJson(), Files.readString(written.file()));
        assertTrue(written.version().matches("[0-9a-f]{16}"), written.version());

        // the JSON forms: integers as Long, floats as Double, enums by name, records as objects, NaN as strings
        assertEquals(3L, written.arguments().get("layers"));
        assertEquals((double) 0.1f, written.arguments().get("lr"));
        assertEquals("FAST", written.arguments().get("mode"));
        assertEquals(true, written.arguments().get("flag"));
        assertTrue(written.arguments().containsKey("nothing"));
        assertNull(written.arguments().get("nothing"));
        assertEquals(List.of(4L, 5L), written.arguments().get("ids"));
        assertEquals(Map.of("x", 7L, "label", "p"), written.arguments().get("point"));
        assertEquals("c", written.arguments().get("chars"));
        assertEquals(List.of("layers", "lr", "mode", "flag", "nothing", "ids", "point", "chars"),
                List.copyOf(written.arguments().keySet()), "argument order is kept");
        Map<?, ?> res = (Map<?, ?>) written.result();
        assertEquals(List.of(1.5, "NaN", "Infinity", "-Infinity"), res.get("scores"));
        assertEquals(Map.of("deep", List.of(Map.of("k", 2L))), res.get("nested"));
        assertEquals(List.of(0.25, -1.0), res.get("weights"));
        assertEquals(List.of(true, false), res.get("flags"));
        assertEquals(List.of("a", "b"), res.get("names"));

        assertEquals(T0, written.startTime());
        assertEquals(Duration.ofMillis(1500), written.duration());
        assertEquals(Version.get(), written.libraryVersion());
        assertNotEquals(Version.UNKNOWN, written.libraryVersion(), "the Maven build filters version.properties");
        assertEquals(LibTorch.load().version(), written.libtorchVersion());
        assertEquals(Json.parse(config.toJson()), written.modelConfig());
        assertEquals("gpt2", written.modelConfig().get("model_type"));
        assertEquals(2L, written.modelConfig().get("n_layer"));
        // no model: null config
        ExperimentRecord noModel = log.record("plain", Map.of(), null, T0, Duration.ZERO, null);
        assertNull(noModel.modelConfig());
        assertNull(noModel.result());
        assertEquals(noModel, log.getVersion("plain", noModel.version()));
    }

    @Test
    void recordsAWelchResultAsAnObject(@TempDir Path dir) {
        WelchResult w = HypothesisTest.welch(new double[] {1, 2, 3}, new double[] {2, 4, 7}, 0.05);
        ExperimentRecord r = new ExperimentLog(dir).record("welch", Map.of("alpha", 0.05), w, T0, ONE_SECOND, null);
        Map<?, ?> m = (Map<?, ?>) r.result();
        assertEquals(w.t(), m.get("t"));
        assertEquals(Map.of("label", "a", "n", 3L, "mean", 2.0, "variance", 1.0), m.get("a"));
    }

    @Test
    void versionIsTheHashOfTheCanonicalContent(@TempDir Path dir) throws Exception {
        ExperimentLog log = new ExperimentLog(dir);
        // independent reference: SHA-256 of the canonical text written out by hand (keys sorted, compact)
        String canonical = "{\"arguments\":{\"a\":1,\"b\":[true,null,\"x\"]},\"name\":\"exp\",\"result\":2.5}";
        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(canonical.getBytes(StandardCharsets.UTF_8))).substring(0, 16);
        Map<String, Object> ab = new LinkedHashMap<>();
        ab.put("a", 1);
        ab.put("b", java.util.Arrays.asList(true, null, "x"));
        Map<String, Object> ba = new LinkedHashMap<>();
        ba.put("b", java.util.Arrays.asList(true, null, "x"));
        ba.put("a", 1L);
        ExperimentRecord r1 = log.record("exp", ab, 2.5, T0, ONE_SECOND, null);
        assertEquals(expected, r1.version());
        assertEquals(expected, ExperimentLog.version("exp", ab, 2.5));
        // equal content, other order, other time, other duration, other model: the same version
        ExperimentRecord r2 = log.record("exp", ba, 2.5f, T0.plusSeconds(5), Duration.ZERO, HookedAutoConfig.of("llama"));
        assertEquals(expected, r2.version());
        // any change of content: another version
        assertNotEquals(expected, ExperimentLog.version("exp", ab, 2.50001));
        assertNotEquals(expected, ExperimentLog.version("exp2", ab, 2.5));
        assertNotEquals(expected, ExperimentLog.version("exp", Map.of("a", 2), 2.5));
        assertNotEquals(expected, ExperimentLog.version("exp", ab, "2.5"));
        assertNotEquals(ExperimentLog.version("exp", Map.of(), List.of(1, 2)), ExperimentLog.version("exp", Map.of(), List.of(2, 1)));
        // tensors: the elements count, the limit and the save option do not
        try (Tensor t1 = Tensor.of(new float[] {1, 2, 3}, 3); Tensor t2 = Tensor.of(new float[] {1, 2, 4}, 3);
             Tensor t3 = Tensor.of(new float[] {1, 2, 3}, 3, 1); Tensor t1d = Tensor.of(new double[] {1, 2, 3}, 3)) {
            String v1 = ExperimentLog.version("t", Map.of(), t1);
            assertNotEquals(v1, ExperimentLog.version("t", Map.of(), t2));
            assertNotEquals(v1, ExperimentLog.version("t", Map.of(), t3));
            assertNotEquals(v1, ExperimentLog.version("t", Map.of(), t1d));
            ExperimentLog saving = new ExperimentLog(dir.resolve("saving"), new ExperimentLog.Options(0, true));
            assertEquals(v1, saving.record("t", Map.of(), t1, T0, ONE_SECOND, null).version());
            assertEquals(v1, log.record("t", Map.of(), t1, T0, ONE_SECOND, null).version());
        }
    }

    @Test
    void theSameVersionLoggedAgainReplacesTheRecord(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord first = log.record("e", Map.of("x", 1), 10, T0, ONE_SECOND, null);
        ExperimentRecord second = log.record("e", Map.of("x", 1), 10, T0.plusSeconds(60), Duration.ofSeconds(2), null);
        assertEquals(first.version(), second.version());
        assertEquals(List.of(second), log.listVersions("e"));
        assertEquals(second, log.getVersion("e", first.version()));
        assertEquals(List.of(second.file()), filesIn(dir.resolve("e")));
    }

    @Test
    void listVersionsIsOrderedByStartTime(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord late = log.record("e", Map.of("i", 1), 1, T0.plusSeconds(100), ONE_SECOND, null);
        ExperimentRecord early = log.record("e", Map.of("i", 2), 2, T0, ONE_SECOND, null);
        ExperimentRecord middle = log.record("e", Map.of("i", 3), 3, T0.plusNanos(1), ONE_SECOND, null);
        assertEquals(List.of(early, middle, late), log.listVersions("e"));
        ExperimentRecord run = log.run("e", Map.of("i", 4), null, () -> 4);
        assertEquals(run, log.listVersions("e").getLast());
        assertEquals(4L, run.result());
    }

    @Test
    void namesThatLeaveTheFolderAreRefused(@TempDir Path root) throws IOException {
        Path dir = root.resolve("log");
        ExperimentLog log = new ExperimentLog(dir);
        log.record("ok", Map.of(), 1, T0, ONE_SECOND, null);
        List<String> bad = List.of("", ".", "..", "../x", "..\\x", "a/b", "a\\b", "/tmp/x", root.resolve("x").toString(),
                ".hidden", "C:x", "x\u0000", "x\ny", "tab\t", "del\u007f", " x", "x ", "\ud800", "é".repeat(101),
                "nbsp\u00a0", "\u200bzero-width");
        for (String name : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> log.record(name, Map.of(), 1, T0, ONE_SECOND, null), name);
            assertTrue(e.getMessage().startsWith("experiment name "), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> log.listVersions(name), name);
            assertThrows(IllegalArgumentException.class, () -> log.getVersion(name, "0123456789abcdef"), name);
            assertThrows(IllegalArgumentException.class, () -> ExperimentLog.version(name, Map.of(), 1), name);
            assertThrows(IllegalArgumentException.class, () -> log.run(name, Map.of(), null, () -> {
                throw new AssertionError("ran despite the bad name");
            }), name);
        }
        try (Stream<Path> inRoot = Files.list(root); Stream<Path> inDir = Files.list(dir)) {
            assertEquals(List.of(dir), inRoot.toList());
            assertEquals(List.of(dir.resolve("ok")), inDir.toList());
        }
        // what is allowed: any other single folder name
        for (String name : List.of("a b", "x.y", "x..y", "ünïcödé", "emoji\ud83d\ude00", "é".repeat(100))) {
            ExperimentRecord r = log.record(name, Map.of(), 1, T0, ONE_SECOND, null);
            assertEquals(r, log.getVersion(name, r.version()));
        }
    }

    @Test
    void unknownNamesAndVersionsSaySo(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord r = log.record("known", Map.of(), 1, T0, ONE_SECOND, null);
        NoSuchElementException e = assertThrows(NoSuchElementException.class, () -> log.listVersions("unknown"));
        assertTrue(e.getMessage().contains("no experiment named \"unknown\"") && e.getMessage().contains("[known]"),
                e.getMessage());
        assertThrows(NoSuchElementException.class, () -> log.getVersion("unknown", r.version()));
        e = assertThrows(NoSuchElementException.class, () -> log.getVersion("known", "0123456789abcdef"));
        assertTrue(e.getMessage().contains("has no version 0123456789abcdef") && e.getMessage().contains(r.version()),
                e.getMessage());
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> log.getVersion("known", "../../x"));
        assertTrue(bad.getMessage().startsWith("not a version"), bad.getMessage());
        assertThrows(IllegalArgumentException.class, () -> log.getVersion("known", r.version().toUpperCase()));
    }

    @Test
    void unsupportedValuesNameTheirTypeAndPath(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir);
        assertUnsupported("result.scores[2]", "java.lang.Object",
                () -> log.record("e", Map.of(), Map.of("scores", List.of(1, 2, new Object())), T0, ONE_SECOND, null));
        assertUnsupported("arguments.ids", "java.util.HashSet",
                () -> log.record("e", Map.of("ids", new HashSet<>(Set.of(1))), 1, T0, ONE_SECOND, null));
        assertUnsupported("result[\"a b\"][0].x", "java.math.BigDecimal",
                () -> log.record("e", Map.of(), Map.of("a b", List.of(Map.of("x", java.math.BigDecimal.ONE))), T0,
                        ONE_SECOND, null));
        assertUnsupported("result.p", "sun.nio.fs.UnixPath",
                () -> log.record("e", Map.of(), new Holder(Path.of("/x")), T0, ONE_SECOND, null));
        Map<Object, Object> intKeys = new TreeMap<>(Map.of(1, 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> log.record("e", Map.of(), Map.of("m", intKeys), T0, ONE_SECOND, null));
        assertTrue(e.getMessage().contains("result.m") && e.getMessage().contains("java.lang.Integer"), e.getMessage());
        List<Object> cycle = new ArrayList<>();
        cycle.add(cycle);
        e = assertThrows(IllegalArgumentException.class, () -> log.record("e", Map.of(), cycle, T0, ONE_SECOND, null));
        assertTrue(e.getMessage().contains("nesting deeper"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> log.record("e", Map.of(), "\ud800", T0, ONE_SECOND, null));
        assertThrows(IllegalArgumentException.class, () -> log.record("e", Map.of(), 1, T0, Duration.ofSeconds(-1), null));
        Tensor closed = Tensor.of(new float[] {1}, 1);
        closed.close();
        e = assertThrows(IllegalArgumentException.class, () -> log.record("e", Map.of("t", closed), 1, T0, ONE_SECOND, null));
        assertTrue(e.getMessage().contains("arguments.t: the tensor is closed"), e.getMessage());
        assertThrows(NoSuchElementException.class, () -> log.listVersions("e"), "nothing was written");
    }

    /** Was: the result of a run that could not be recorded was lost with the record. */
    @Test
    void aRunThatCannotBeRecordedKeepsItsResultInTheException(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir);
        Holder result = new Holder(Path.of("/x"));
        ExperimentNotLoggedException e = assertThrows(ExperimentNotLoggedException.class,
                () -> log.run("e", Map.of("i", 1), null, () -> result));
        assertSame(result, e.result());
        assertTrue(e.getMessage().contains("experiment 'e' ran") && e.getMessage().contains("unsupported type"),
                e.getMessage());
        assertTrue(e.getCause() instanceof IllegalArgumentException, e.getCause().toString());
        assertThrows(NoSuchElementException.class, () -> log.listVersions("e"), "nothing was written");
        IllegalStateException thrown = new IllegalStateException("the experiment failed");
        assertSame(thrown, assertThrows(IllegalStateException.class, () -> log.run("e", Map.of(), null, () -> {
            throw thrown;
        })), "what the experiment throws passes unchanged");
    }

    record Holder(Path p) {
    }

    private static void assertUnsupported(String path, String type, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith("cannot log " + path + ": unsupported type " + type), e.getMessage());
    }

    @Test
    void tensorsAreSummarisedAndSavedInFull(@TempDir Path dir) throws Exception {
        ExperimentLog log = new ExperimentLog(dir, new ExperimentLog.Options(4, true));
        float[] small = {1.5f, -2, Float.NaN, 1e-30f};
        float[] big = new float[60];
        for (int i = 0; i < big.length; i++) {
            big[i] = (float) Math.sin(i) * 1000;
        }
        try (Tensor s = Tensor.of(small, 2, 2); Tensor b = Tensor.of(big, 3, 4, 5); Tensor l = Tensor.of(new long[] {7, -8}, 2);
             Tensor bools = Tensor.of(new boolean[] {true, false, true}, 3)) {
            ExperimentRecord r = log.record("tensors", Map.of("mask", bools), Map.of("small", s, "scores", List.of(l, b)),
                    T0, ONE_SECOND, null);
            assertEquals(r, log.getVersion("tensors", r.version()));
            Map<String, TensorSummary> byKey = new TreeMap<>();
            r.tensors().forEach(t -> byKey.put(t.key(), t));
            assertEquals(Set.of("arguments.mask", "result.small", "result.scores[0]", "result.scores[1]"), byKey.keySet());

            TensorSummary ss = byKey.get("result.small");
            assertEquals("float32", ss.dtype());
            assertEquals(List.of(2L, 2L), ss.shape());
            assertEquals("cpu", ss.device());
            assertEquals(sha256(small), ss.sha256());
            assertEquals(List.of(1.5, -2.0, "NaN", (double) 1e-30f), ss.values());
            assertArrayEquals(new double[] {1.5, -2, Double.NaN, 1e-30f}, ss.valuesAsDoubles());
            assertEquals(r.version() + ".safetensors", ss.file());

            TensorSummary bs = byKey.get("result.scores[1]");
            assertNull(bs.values(), "60 elements > the limit of 4");
            assertEquals(List.of(3L, 4L, 5L), bs.shape());
            assertEquals(sha256(big), bs.sha256());
            assertEquals(List.of(7L, -8L), byKey.get("result.scores[0]").values());
            assertEquals(List.of(true, false, true), byKey.get("arguments.mask").values());

            // the safetensors file beside the record, named by path, values equal
            try (SafeTensorsFile st = SafeTensorsFile.open(dir.resolve("tensors").resolve(r.version() + ".safetensors"))) {
                assertEquals(Set.of("arguments.mask", "result.small", "result.scores[0]", "result.scores[1]"), st.names());
                assertEquals(Map.of("experiment", "tensors", "version", r.version()), st.metadata());
            }
            try (Tensor back = log.loadTensor(r, "result.scores[1]")) {
                assertEquals(DType.FLOAT32, back.dtype());
                assertArrayEquals(new long[] {3, 4, 5}, back.shape());
                assertArrayEquals(big, back.toFloatArray());
            }
            try (Tensor back = log.loadTensor(r, "result.small")) {
                assertArrayEquals(small, back.toFloatArray());
            }
            try (Tensor back = log.loadTensor(r, "arguments.mask")) {
                assertArrayEquals(new boolean[] {true, false, true}, back.toBooleanArray());
            }
            assertThrows(NoSuchElementException.class, () -> log.loadTensor(r, "result.nope"));

            // without saving: small tensors come back from the JSON values, big ones cannot
            ExperimentLog jsonOnly = new ExperimentLog(dir.resolve("json-only"));
            ExperimentRecord j = jsonOnly.record("tensors", Map.of(), Map.of("small", s, "big", b), T0, ONE_SECOND, null);
            try (Tensor back = jsonOnly.loadTensor(j, "result.small")) {
                assertEquals(DType.FLOAT32, back.dtype());
                assertArrayEquals(small, back.toFloatArray());
            }
            assertEquals(60, j.tensors().stream().filter(t -> t.key().equals("result.big")).findFirst().orElseThrow()
                    .values().size(), "60 <= the default limit of 1024");
            ExperimentLog noValues = new ExperimentLog(dir.resolve("no-values"), new ExperimentLog.Options(0, false));
            ExperimentRecord n = noValues.record("tensors", Map.of(), b, T0, ONE_SECOND, null);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> noValues.loadTensor(n, "result"));
            assertTrue(e.getMessage().contains("without its data"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> n.tensors().getFirst().valuesAsDoubles());
        }
    }

    /**
     * Was: a NaN that arithmetic made (0/0 is 0xffc00000 in float32 on x86) was logged as "NaN", which reads back as
     * another NaN, so its hash did not match and loading said the record was damaged.
     */
    @Test
    void aNanFromArithmeticLoadsBack(@TempDir Path dir) {
        for (boolean save : new boolean[] {false, true}) {
            ExperimentLog log = new ExperimentLog(dir.resolve("save-" + save), new ExperimentLog.Options(1024, save));
            for (DType dtype : List.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16)) {
                try (Tensor zero = Tensor.of(new float[] {0, 2}, 2).to(dtype); Tensor nan = zero.div(zero)) {
                    ExperimentRecord r = log.record("nan", Map.of(), nan, T0, ONE_SECOND, null);
                    try (Tensor back = log.loadTensor(r, "result")) {
                        double[] values = back.toDoubleArray();
                        assertTrue(Double.isNaN(values[0]) && values[1] == 1.0, dtype + ": " + Arrays.toString(values));
                    }
                }
            }
        }
    }

    /** Was: the arguments were encoded after the run, so an experiment that changed them logged what it left. */
    @Test
    void argumentsAreLoggedAsTheyWereBeforeTheRun(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir, new ExperimentLog.Options(1024, true));
        List<Long> xs = new ArrayList<>(List.of(1L, 2L, 3L));
        Tensor t = Tensor.of(new float[] {1, 2}, 2);
        ExperimentRecord r = log.run("mutating", Map.of("xs", xs, "t", t), null, () -> {
            long sum = xs.stream().mapToLong(Long::longValue).sum();
            xs.clear();
            try (Tensor zeros = Tensor.zeros(2)) {
                t.copyFrom(zeros);
            }
            t.close();
            return sum;
        });
        assertEquals(List.of(1L, 2L, 3L), r.arguments().get("xs"));
        assertEquals(6L, r.result());
        try (Tensor back = log.loadTensor(r, "arguments.t")) {
            assertArrayEquals(new float[] {1, 2}, back.toFloatArray());
        }
    }

    /**
     * Was: logging a version again with options that keep less (a log without saving, a lower value limit) replaced
     * its record by one without the data, so the saved tensor could no longer be loaded.
     */
    @Test
    void loggingAVersionAgainKeepsTheDataItsRecordKept(@TempDir Path dir) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor big = Tensor.arange(0, 2000, 1, DType.FLOAT32, io.arrakis.torch.Device.CPU);
            Tensor small = Tensor.of(new float[] {1.5f, -2}, 2);
            Map<String, Tensor> result = Map.of("big", big, "small", small);
            ExperimentRecord saved = new ExperimentLog(dir, new ExperimentLog.Options(1024, true))
                    .record("e", Map.of(), result, T0, ONE_SECOND, null);
            ExperimentLog keepingLess = new ExperimentLog(dir, new ExperimentLog.Options(0, false));
            ExperimentRecord again = keepingLess.record("e", Map.of(), result, T0.plusSeconds(60), ONE_SECOND, null);
            assertEquals(saved.version(), again.version());
            assertEquals(T0.plusSeconds(60), keepingLess.getVersion("e", saved.version()).startTime(), "replaced");
            for (String key : List.of("result.big", "result.small")) {
                try (Tensor back = keepingLess.loadTensor(keepingLess.getVersion("e", saved.version()), key)) {
                    assertArrayEquals((key.endsWith("big") ? big : small).toFloatArray(), back.toFloatArray(), key);
                }
            }

            // values kept under a larger limit stay when the tensors were never saved
            Path other = dir.resolve("other");
            new ExperimentLog(other).record("v", Map.of(), small, T0, ONE_SECOND, null);
            ExperimentRecord r = new ExperimentLog(other, new ExperimentLog.Options(0, false))
                    .record("v", Map.of(), small, T0, ONE_SECOND, null);
            assertEquals(List.of(1.5, -2.0), r.tensors().getFirst().values());
        }
    }

    /** Were: an IllegalArgumentException naming no file, an UncheckedIOException, and a SafeTensorsException. */
    @Test
    void damagedRecordsAndTensorFilesAreRefusedNamingTheFile(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir, ExperimentLog.Options.defaults().withSaveTensors(true));
        try (TensorScope scope = TensorScope.open()) {
            ExperimentRecord r = log.record("e", Map.of(), Tensor.of(new float[] {1, 2}, 2), T0, ONE_SECOND, null);
            Path json = dir.resolve("e").resolve(r.version() + ".json");
            String text = Files.readString(json);

            Files.writeString(json, text.replaceFirst("\"values\" ?: ?\\[[^]]*]", "\"values\": [1.0]"));
            assertNotEquals(text, Files.readString(json));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> log.listVersions("e"));
            assertTrue(e.getMessage().contains(json.toString()) && e.getMessage().contains("1 values"), e.getMessage());

            byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
            bytes[bytes.length / 2] = (byte) 0xff;
            Files.write(json, bytes);
            e = assertThrows(IllegalStateException.class, () -> log.getVersion("e", r.version()));
            assertTrue(e.getMessage().contains(json.toString()) && e.getMessage().contains("not UTF-8"), e.getMessage());

            Files.writeString(json, text);
            Files.delete(dir.resolve("e").resolve(r.version() + ".safetensors"));
            e = assertThrows(IllegalStateException.class, () -> log.loadTensor(r, "result"));
            assertTrue(e.getMessage().contains("cannot be read from its file") && e.getMessage().contains("no such file"),
                    e.getMessage());
        }
    }

    @Test
    void aDamagedTensorFileIsDetected(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir, ExperimentLog.Options.defaults().withSaveTensors(true));
        try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3)) {
            ExperimentRecord r = log.record("e", Map.of(), t, T0, ONE_SECOND, null);
            Path file = dir.resolve("e").resolve(r.version() + ".safetensors");
            byte[] bytes = Files.readAllBytes(file);
            bytes[bytes.length - 1] ^= 1; // flip a bit of the last element
            Files.write(file, bytes);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> log.loadTensor(r, "result"));
            assertTrue(e.getMessage().contains("does not match its logged SHA-256"), e.getMessage());
        }
    }

    /** The hash covers the elements' bytes only: the same bytes under another shape or dtype are refused too. */
    @Test
    void aTensorFileOfAnotherShapeOrDtypeIsDetected(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir, ExperimentLog.Options.defaults().withSaveTensors(true));
        try (TensorScope scope = TensorScope.open()) {
            ExperimentRecord r = log.record("e", Map.of(), Tensor.of(new float[] {1, 2, 3, 4}, 2, 2), T0, ONE_SECOND,
                    null);
            Path file = dir.resolve("e").resolve(r.version() + ".safetensors");
            SafeTensorsWriter.write(file, Map.of("result", Tensor.of(new float[] {1, 2, 3, 4}, 4)), Map.of());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> log.loadTensor(r, "result"));
            assertTrue(e.getMessage().contains("is logged as float32 [2, 2] but its file") && e.getMessage()
                    .contains("holds float32 [4]"), e.getMessage());
            int[] sameBytes = {Float.floatToIntBits(1), Float.floatToIntBits(2), Float.floatToIntBits(3),
                    Float.floatToIntBits(4)};
            SafeTensorsWriter.write(file, Map.of("result", Tensor.of(sameBytes, 2, 2)), Map.of());
            e = assertThrows(IllegalStateException.class, () -> log.loadTensor(r, "result"));
            assertTrue(e.getMessage().contains("holds int32 [2, 2]"), e.getMessage());
        }
    }

    /** A record's values edited to another kind (they are not part of its version) are named when it is read. */
    @Test
    void editedValuesOfAnotherKindAreNamed(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir);
        try (TensorScope scope = TensorScope.open()) {
            ExperimentRecord ints = log.record("i", Map.of(), Tensor.of(new long[] {1, 2}, 2), T0, ONE_SECOND, null);
            ExperimentRecord bools = log.record("b", Map.of(), Tensor.of(new boolean[] {true, false}, 2), T0,
                    ONE_SECOND, null);
            Files.writeString(ints.file(), Files.readString(ints.file()).replace("[1, 2]", "[true, 2]"));
            Files.writeString(bools.file(), Files.readString(bools.file()).replace("[true, false]", "[1, 0]"));
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> log.getVersion("i", ints.version()));
            assertTrue(e.getMessage().contains("its value 0 is true, not an integer"), e.getMessage());
            e = assertThrows(IllegalStateException.class, () -> log.getVersion("b", bools.version()));
            assertTrue(e.getMessage().contains("its value 0 is 1, not true or false"), e.getMessage());
        }
    }

    /** SHA-256 of float32 elements, little-endian: the reference for the summaries' hashes. */
    private static String sha256(float[] values) throws Exception {
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buf.putFloat(v);
        }
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(buf.array()));
    }

    @Test
    void aFailedWriteLeavesNoRecordAndNoTemporaryFile(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord kept = log.record("e", Map.of("i", 0), 0, T0, ONE_SECOND, null);
        log.onMidWrite(temp -> {
            throw new UncheckedIOException(new IOException("disk full (injected)"));
        });
        assertThrows(UncheckedIOException.class, () -> log.record("e", Map.of("i", 1), 1, T0, ONE_SECOND, null));
        // a failed rewrite of an existing version keeps the old record intact
        assertThrows(UncheckedIOException.class, () -> log.record("e", Map.of("i", 0), 0, T0.plusSeconds(9), ONE_SECOND, null));
        assertEquals(List.of(kept), log.listVersions("e"));
        assertEquals(List.of(kept.file()), filesIn(dir.resolve("e")));
    }

    @Test
    void aCrashMidWriteLeavesNoPartialRecord(@TempDir Path dir) throws Exception {
        String out = ChildJvm.of(ExperimentLogChild.class, "crash", dir.toString()).start()
                .finish(ExperimentLogChild.CRASH_EXIT);
        assertFalse(out.contains("NOT REACHED"), out);

        ExperimentLog log = new ExperimentLog(dir);
        List<ExperimentRecord> records = log.listVersions(ExperimentLogChild.NAME);
        assertEquals(2, records.size(), records::toString);
        String crashed;
        try (Tensor t = ExperimentLogChild.tensor(2)) {
            crashed = ExperimentLog.version(ExperimentLogChild.NAME, ExperimentLogChild.arguments(2),
                    ExperimentLogChild.result(2, t));
        }
        assertThrows(NoSuchElementException.class, () -> log.getVersion(ExperimentLogChild.NAME, crashed));
        Path folder = dir.resolve(ExperimentLogChild.NAME);
        List<Path> temps;
        try (Stream<Path> files = Files.list(folder)) {
            temps = files.filter(f -> f.getFileName().toString().endsWith(".tmp")).toList();
        }
        assertEquals(1, temps.size(), temps::toString);
        String partial = Files.readString(temps.getFirst());
        assertTrue(partial.startsWith("{") && !partial.endsWith("}\n"), "half a record: " + partial);
        assertTrue(temps.getFirst().getFileName().toString().startsWith("." + crashed + ".json."), temps::toString);

        assertEquals(0, log.removeTempFiles(Duration.ofHours(1)), "the temporary file is younger than an hour");
        assertThrows(IllegalArgumentException.class, () -> log.removeTempFiles(Duration.ofMinutes(-5)));
        assertEquals(0, log.removeTempFiles(Duration.ofSeconds(Long.MAX_VALUE)), "older than the clock: none");
        Path notAnExperiment = Files.createDirectories(dir.resolve(".cache")).resolve(".notes.tmp");
        Files.writeString(notAnExperiment, "someone else's");
        assertEquals(1, log.removeTempFiles(Duration.ZERO));
        assertTrue(Files.exists(notAnExperiment), "a folder no experiment can have is left alone");
        try (Stream<Path> files = Files.list(folder)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().endsWith(".tmp")));
        }
        assertEquals(records, log.listVersions(ExperimentLogChild.NAME));
        // the log goes on: the crashed run can be logged now
        try (Tensor t = ExperimentLogChild.tensor(2)) {
            ExperimentRecord again = log.record(ExperimentLogChild.NAME, ExperimentLogChild.arguments(2),
                    ExperimentLogChild.result(2, t), T0, ONE_SECOND, null);
            assertEquals(crashed, again.version());
        }
        assertEquals(3, log.listVersions(ExperimentLogChild.NAME).size());
    }

    @Test
    void recordsWrittenByAnotherJvmReadBack(@TempDir Path dir) throws Exception {
        String out = ChildJvm.of(ExperimentLogChild.class, "write", dir.toString()).run();
        List<String> versions = out.lines().filter(l -> l.startsWith("VERSION ")).map(l -> l.substring(8)).toList();
        assertEquals(3, versions.size(), out);

        ExperimentLog log = new ExperimentLog(dir, ExperimentLog.Options.defaults().withSaveTensors(true));
        List<ExperimentRecord> records = log.listVersions(ExperimentLogChild.NAME);
        assertEquals(versions, records.stream().map(ExperimentRecord::version).toList(), "ordered by start time");
        // the same content logged here gives the same records (other folder, so other file paths)
        ExperimentLog here = new ExperimentLog(dir.resolve("here"), ExperimentLog.Options.defaults().withSaveTensors(true));
        for (int i = 0; i < 3; i++) {
            ExperimentRecord theirs = records.get(i);
            ExperimentRecord ours = ExperimentLogChild.log(here, i);
            assertEquals(ours.version(), theirs.version());
            assertEquals(ours.arguments(), theirs.arguments());
            assertEquals(ours.result(), theirs.result());
            assertEquals(ExperimentLogChild.start(i), theirs.startTime());
            assertEquals(Duration.ofNanos(1_000_000_007L * (i + 1)), theirs.duration());
            assertEquals(ours.modelConfig(), theirs.modelConfig());
            assertEquals(ours.toJson(), theirs.toJson());
            assertEquals(theirs, log.getVersion(ExperimentLogChild.NAME, theirs.version()));
            try (Tensor back = log.loadTensor(theirs, "result.tensor"); Tensor expected = ExperimentLogChild.tensor(i)) {
                assertArrayEquals(expected.toFloatArray(), back.toFloatArray());
            }
        }
    }

    @Test
    void recordsWrittenHereReadBackInAnotherJvm(@TempDir Path dir) throws Exception {
        ExperimentLog log = new ExperimentLog(dir, ExperimentLog.Options.defaults().withSaveTensors(true));
        StringBuilder expected = new StringBuilder();
        for (int i = 2; i >= 0; i--) {
            ExperimentLogChild.log(log, i);
        }
        for (ExperimentRecord r : log.listVersions(ExperimentLogChild.NAME)) {
            expected.append(r.toJson()).append("END ").append(r.version()).append('\n');
        }
        String out = ChildJvm.of(ExperimentLogChild.class, "read", dir.toString(), ExperimentLogChild.NAME).run();
        assertTrue(out.strip().endsWith(expected.toString().strip()), "child read:\n" + out + "\nexpected:\n" + expected);
    }

    /**
     * Was: two logs reaching one folder by two paths (a link) took two locks of this JVM, and the second file lock
     * failed with OverlappingFileLockException; a lock file that cannot be opened for writing (another user's; here a
     * folder) stopped all logging into the folder.
     */
    @Test
    void logsReachingAFolderByALinkShareItsLockAndALockFileThatCannotBeOpenedStopsNothing(@TempDir Path dir)
            throws Exception {
        Path real = Files.createDirectories(dir.resolve("real"));
        Path link = Files.createSymbolicLink(dir.resolve("link"), real);
        ExperimentLog direct = new ExperimentLog(real);
        ExperimentLog linked = new ExperimentLog(link);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 50; round++) {
                int r = round;
                List<Future<ExperimentRecord>> both = new ArrayList<>();
                for (ExperimentLog log : List.of(direct, linked)) {
                    both.add(pool.submit(() -> log.record("e", Map.of("round", r), r, T0, ONE_SECOND, null)));
                }
                for (Future<ExperimentRecord> f : both) {
                    f.get(1, TimeUnit.MINUTES);
                }
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(50, direct.listVersions("e").size());
        Files.createDirectories(real.resolve("f").resolve(".lock"));
        ExperimentRecord written = direct.record("f", Map.of(), 1, T0, ONE_SECOND, null);
        assertEquals(List.of(written), direct.listVersions("f"));
    }

    /** The files of an experiment's folder but the lock its writers take. */
    private static List<Path> filesIn(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.filter(f -> !f.getFileName().toString().equals(".lock")).sorted().toList();
        }
    }

    @Test
    void eightThreadsLogEightHundredRecords(@TempDir Path dir) throws Exception {
        ExperimentLog log = new ExperimentLog(dir);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<List<String>>> futures = new ArrayList<>();
            for (int thread = 0; thread < 8; thread++) {
                int th = thread;
                futures.add(pool.submit(() -> {
                    List<String> versions = new ArrayList<>();
                    for (int i = 0; i < 100; i++) {
                        versions.add(log.record("threads", Map.of("thread", th, "i", i), th * 1000 + i,
                                T0.plusMillis(i), ONE_SECOND, null).version());
                    }
                    return versions;
                }));
            }
            Set<String> written = new HashSet<>();
            for (Future<List<String>> f : futures) {
                written.addAll(f.get(5, TimeUnit.MINUTES));
            }
            assertEquals(800, written.size());
            List<ExperimentRecord> read = log.listVersions("threads");
            assertEquals(800, read.size());
            assertEquals(written, new HashSet<>(read.stream().map(ExperimentRecord::version).toList()));
            Set<Long> results = new HashSet<>();
            read.forEach(r -> results.add((Long) r.result()));
            assertEquals(800, results.size());
            assertEquals(800, filesIn(dir.resolve("threads")).size(), "no temporary files left");
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Was: a log that saves tensors and one that does not, logging the same content at once, could leave the record
     * of the one that did not, without the file the other had saved (the second read the version's record before the
     * first had written it, then wrote over it): 5 of 200 rounds.
     */
    @Test
    void aRecordLoggedAtOnceWithAndWithoutItsTensorsKeepsTheSavedFile(@TempDir Path dir) throws Exception {
        ExperimentLog saving = new ExperimentLog(dir, new ExperimentLog.Options(0, true));
        ExperimentLog notSaving = new ExperimentLog(dir, new ExperimentLog.Options(0, false));
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 300; round++) {
                String name = "race" + round;
                java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(2);
                List<Future<ExperimentRecord>> both = new ArrayList<>();
                for (ExperimentLog log : List.of(saving, notSaving)) {
                    both.add(pool.submit(() -> {
                        try (Tensor t = Tensor.of(new double[] {1, 2, 3}, 3)) {
                            start.await();
                            return log.record(name, Map.of(), t, T0, ONE_SECOND, null);
                        }
                    }));
                }
                for (Future<ExperimentRecord> f : both) {
                    f.get(1, TimeUnit.MINUTES);
                }
                ExperimentRecord r = saving.listVersions(name).getFirst();
                assertEquals(r.version() + ".safetensors", r.tensors().getFirst().file(), "round " + round);
                try (Tensor loaded = saving.loadTensor(r, r.tensors().getFirst().key())) {
                    assertArrayEquals(new double[] {1, 2, 3}, loaded.toDoubleArray());
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /** Was: a map keyed "__tensor__" was taken for a tensor summary: two different results shared one version. */
    @Test
    void theTensorSummaryKeyIsRefusedInLoggedMaps(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> log.record("v", Map.of(),
                Map.of("__tensor__", Map.of("sha256", "s", "note", "first run")), T0, ONE_SECOND, null));
        assertTrue(e.getMessage().contains("__tensor__") && e.getMessage().contains("result"), e.getMessage());
        // a record's component of that name too
        IllegalArgumentException component = assertThrows(IllegalArgumentException.class, () -> log.record("v",
                Map.of(), Map.of("w", new NamedLikeTheLogsKey("first run")), T0, ONE_SECOND, null));
        assertTrue(component.getMessage().contains("__tensor__") && component.getMessage().contains("result.w"),
                component.getMessage());
    }

    record NamedLikeTheLogsKey(Object __tensor__) {
    }

    /** Was: a tensor over 2 GiB could not be hashed (a ByteBuffer holds at most 2 GiB); now read a slice at a time. */
    @Test
    void aTensorIsHashedTheSameWhateverTheSlicesItIsReadIn() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor t = Tensor.of(new float[] {1, Float.NaN, -0f, 3.5f, 7, 8, 9, 10, 11}, 9);
            String whole = ExperimentValues.sha256Hex(t, 1L << 30);
            assertEquals(whole, ExperimentValues.sha256Hex(t, 8));
            assertEquals(whole, ExperimentValues.sha256Hex(t, 16));
            assertNotEquals(whole, ExperimentValues.sha256Hex(t.narrow(0, 0, 8), 8));
        }
    }

    /**
     * A summary in a record edited by hand, or damaged, is refused naming where it lies. Was: a NullPointerException
     * or ClassCastException without a word, a shape whose size overflowed to 0, fewer values than the shape taken.
     */
    @Test
    void aMalformedTensorSummaryIsRefusedNamingItsPath() {
        Map<String, Object> good = new java.util.LinkedHashMap<>(Map.of("sha256", "s", "dtype", "float32",
                "device", "cpu", "shape", List.of(2L), "values", List.of(1.0, "NaN")));
        assertEquals(2, TensorSummary.from(Map.of("__tensor__", good), "result.x").valuesAsDoubles().length);
        List<Map<String, Object>> bad = List.of(Map.of("shape", "2"), Map.of("shape", List.of(2.0)),
                Map.of("dtype", 3L), Map.of("values", List.of(1.0)), Map.of("values", List.of(1.0, "one")),
                Map.of("shape", List.of(1L << 32, 1L << 32)), Map.of("file", 7L));
        for (Map<String, Object> change : bad) {
            Map<String, Object> summary = new java.util.LinkedHashMap<>(good);
            summary.putAll(change);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> TensorSummary.from(Map.of("__tensor__", summary), "result.x"), change.toString());
            assertTrue(e.getMessage().contains("result.x"), e.getMessage());
        }
        Map<String, Object> noShape = new java.util.LinkedHashMap<>(good);
        noShape.remove("shape");
        assertThrows(IllegalArgumentException.class, () -> TensorSummary.from(Map.of("__tensor__", noShape), "r"));
    }

    @Test
    void aTensorSummaryIsCheckedWhereverItIsMade() {
        assertThrows(IllegalArgumentException.class, () -> new TensorSummary("k", "float32", List.of(-2L, 3L), "cpu",
                "s", null, null));
        assertThrows(IllegalArgumentException.class, () -> new TensorSummary("k", "float32", List.of(2L), "cpu", "s",
                List.of(1.0), null));
        assertThrows(IllegalArgumentException.class, () -> new TensorSummary("k", "float32", List.of(1L), "cpu", "s",
                List.of("abc"), null));
        assertThrows(NullPointerException.class, () -> new TensorSummary("k", "float32", null, "cpu", "s", null, null));
        List<Long> holed = new java.util.ArrayList<>(List.of(2L));
        holed.add(null);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new TensorSummary("k", "float32", holed, "cpu",
                "s", null, null)).getMessage().contains("needs a shape of non-negative integers, got [2, null]"));
        // no elements, whatever the other dimensions
        assertEquals(0, new TensorSummary("k", "float32", List.of(1L << 62, 1L << 62, 0L), "cpu", "s", List.of(), null)
                .numel());
        List<Object> values = new java.util.ArrayList<>(List.of(1.0, 2.0));
        TensorSummary copy = new TensorSummary("k", "float32", List.of(2L), "cpu", "s", values, null);
        values.set(0, 5.0);
        assertEquals(1.0, copy.valuesAsDoubles()[0]);
    }

    /** Was: told to raise the value limit, which a complex tensor's values never obey. */
    @Test
    void aComplexTensorLoggedWithoutItsDataSaysWhy() {
        TensorSummary complex = new TensorSummary("k", "complex128", List.of(2L), "cpu", "s", null, null);
        IllegalStateException e = assertThrows(IllegalStateException.class, complex::valuesAsDoubles);
        assertTrue(e.getMessage().contains("a complex tensor's values are not stored"), e.getMessage());
    }

    /** Was: a record whose values were edited, or that was copied into another experiment's folder, read as valid. */
    @Test
    void anEditedOrMovedRecordIsRefused(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord r = log.record("a", Map.of("alpha", 0.5), Map.of("score", 0.25), T0, ONE_SECOND, null);
        assertEquals(r, log.getVersion("a", r.version()), "an untouched record reads back");
        Path copy = Files.createDirectories(dir.resolve("b")).resolve(r.file().getFileName());
        Files.copy(r.file(), copy);
        IllegalStateException moved = assertThrows(IllegalStateException.class, () -> log.getVersion("b", r.version()));
        assertTrue(moved.getMessage().contains("lies in the folder of \"b\""), moved.getMessage());
        assertThrows(IllegalStateException.class, () -> log.listVersions("b"));
        Files.writeString(r.file(), Files.readString(r.file()).replace("0.25", "0.75"));
        IllegalStateException edited = assertThrows(IllegalStateException.class, () -> log.getVersion("a", r.version()));
        assertTrue(edited.getMessage().contains("edited or damaged")
                && edited.getMessage().contains(ExperimentLog.version("a", Map.of("alpha", 0.5), Map.of("score", 0.75))),
                edited.getMessage());
        assertThrows(IllegalStateException.class, () -> log.listVersions("a"));
    }

    /** JSON carries no unpaired surrogate: a run whose arguments hold one is refused before it runs, saying where. */
    @Test
    void anUnpairedSurrogateInAStringOrKeyIsRefusedByPath(@TempDir Path dir) {
        ExperimentLog log = new ExperimentLog(dir);
        IllegalArgumentException value = assertThrows(IllegalArgumentException.class,
                () -> log.run("e", Map.of("x", Map.of("k", "bad\uD800")), null, () -> fail("ran")));
        assertTrue(value.getMessage().contains("cannot log arguments.x.k: the string has an unpaired surrogate U+D800"
                + " at index 3"), value.getMessage());
        // was: "Json.write: unpaired surrogate U+D800 in string at index 3", with no path
        IllegalArgumentException key = assertThrows(IllegalArgumentException.class,
                () -> log.run("e", Map.of("x", Map.of("bad\uD800", 1)), null, () -> fail("ran")));
        assertTrue(key.getMessage().contains("cannot log arguments.x: a key has an unpaired surrogate U+D800 at index 3"),
                key.getMessage());
    }

    /** Was: the version hashes a tensor's summary but not the values beside it, so edited values read back. */
    @Test
    void aRecordWhoseTensorValuesWereEditedIsRefused(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord r = log.record("e", Map.of(), Map.of("scores", Tensor.of(new float[] {1.5f, 2.5f}, 2)), T0,
                ONE_SECOND, null);
        assertArrayEquals(new double[] {1.5, 2.5}, log.getVersion("e", r.version()).tensors().getFirst().valuesAsDoubles());
        Files.writeString(r.file(), Files.readString(r.file()).replace("1.5", "9.5"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> log.getVersion("e", r.version()));
        assertTrue(e.getMessage().contains("does not match its logged SHA-256"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> log.listVersions("e"));
    }

    @Test
    void aDamagedRecordFileIsReportedByName(@TempDir Path dir) throws IOException {
        ExperimentLog log = new ExperimentLog(dir);
        ExperimentRecord r = log.record("e", Map.of(), 1, T0, ONE_SECOND, null);
        Files.writeString(r.file(), "{\"format\": \"something else\"}");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> log.listVersions("e"));
        assertTrue(e.getMessage().contains(r.file().toString()), e.getMessage());
        Files.writeString(r.file(), "{truncated");
        assertThrows(IllegalStateException.class, () -> log.getVersion("e", r.version()));
        Files.writeString(dir.resolve("e").resolve("notes.txt"), "ignored");
        Files.writeString(dir.resolve("e").resolve(".0123456789abcdef.json.1234.tmp"), "{\"half\": ");
        ExperimentRecord other = log.record("e", Map.of(), 2, T0, ONE_SECOND, null);
        Files.delete(r.file());
        assertEquals(List.of(other), log.listVersions("e"), "other files are ignored");
        Files.delete(other.file());
        // a folder without records is no experiment
        assertThrows(NoSuchElementException.class, () -> log.listVersions("e"));
        assertEquals(List.of(), log.names());
    }
}

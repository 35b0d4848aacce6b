package io.arrakis.cli;

import io.arrakis.json.Json;
import io.arrakis.model.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code scripts/arrakis sweep}: its JSON summary, and a bad prompt file refused by line before Spark starts. */
class SweepCommandTest {
    private static final String MODEL = Fixtures.huggingFace("gpt2").toString();

    @TempDir
    Path dir;

    private static String[] run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new String[] {String.valueOf(status), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void patchingPrintsRowsSecondsAndTheTopPairs() throws IOException {
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5, 9, 3], \"corrupted\": [2, 5, 9, 8], \"answer\": 72, \"wrong\": 71}",
                "{\"clean\": [4, 4, 4, 4], \"corrupted\": [4, 4, 7, 4], \"answer\": 10, \"wrong\": 11}"));
        String out = dir.resolve("new/r.csv").toString(); // in a folder the sweep makes
        String[] r = run("sweep", "patching", "--model", MODEL, "--prompts", prompts.toString(), "--route", "Q",
                "--receivers", "1.1,1.2", "--out", out, "--master", "local[2]", "--json");
        assertEquals("0", r[0], r[2]);
        Map<?, ?> summary = (Map<?, ?>) Json.parse(r[1]);
        assertEquals(2L * 2 * 4, summary.get("rows"));
        assertTrue(((Number) summary.get("seconds")).doubleValue() > 0);
        List<?> top = (List<?>) summary.get("top");
        assertEquals(8, top.size());
        assertTrue(((List<?>) top.get(0)).get(0).toString().matches("L0H\\d") && ((List<?>) top.get(0)).get(1).toString().matches("L1H[12]"));
        assertTrue(Files.isDirectory(Path.of(out)));
    }

    /** Was: a NaN mean effect ended the text summary with "g != java.lang.String" and exit 2, the rows written. */
    @Test
    void aNaNMeanEffectIsPrinted() throws IOException {
        Path nan = dir.resolve("nan-model");
        Fixtures.writeWithNaN(Path.of(MODEL), "h.1.attn.c_attn.weight", nan);
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        String[] r = run("sweep", "patching", "--model", nan.toString(), "--prompts", prompts.toString(), "--route",
                "V", "--receivers", "1.0", "--out", dir.resolve("nan.csv").toString(), "--master", "local[1]");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("-> L1H0  mean effect NaN"), r[1]);
    }

    /** Were: an empty entry swept every model in the working folder; an unreachable master failed after a minute. */
    @Test
    void anEmptyCheckpointAndASilentMasterAreRefusedBeforeSparkStarts() {
        String[] r = run("sweep", "composition", "--checkpoints", "," + MODEL, "--mode", "K", "--out",
                dir.resolve("c.csv").toString());
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("--checkpoints: an empty folder name"), r[2]);
        r = run("sweep", "composition", "--checkpoints", MODEL, "--mode", "K", "--out", dir.resolve("c.csv").toString(),
                "--master", "spark://127.0.0.1:1");
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("--master spark://127.0.0.1:1: no master answers at 127.0.0.1:1 ("), r[2]);
        // were: a port beyond 65535 reported as a master that does not answer; "+1" and other scripts' digits taken
        for (String port : List.of("70000", "0", "+7077", "\u0667\u0660\u0667\u0667")) {
            r = run("sweep", "composition", "--checkpoints", MODEL, "--mode", "K", "--out",
                    dir.resolve("c.csv").toString(), "--master", "spark://127.0.0.1:" + port);
            assertEquals("2", r[0], r[2]);
            assertTrue(r[2].contains("'127.0.0.1:" + port + "' has no port number from 1 to 65535"), r[2]);
        }
    }

    @Test
    void aBadPromptFileIsOneLineNamingTheLine() throws IOException {
        Path prompts = Files.write(dir.resolve("bad.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}",
                "{\"clean\": [1, 5], \"corrupted\": [2], \"answer\": 72, \"wrong\": 71}"));
        String out = dir.resolve("never.parquet").toString();
        String[] r = run("sweep", "patching", "--model", MODEL, "--prompts", prompts.toString(), "--route", "V", "--out", out);
        assertEquals("2", r[0]);
        assertTrue(r[2].startsWith("arrakis sweep patching: " + prompts + " line 2: "), r[2]);
        assertFalse(Files.exists(Path.of(out)));
    }

    /** Was: a configuration the library refuses failed inside a Spark task, with a stack trace. */
    @Test
    void aCheckpointWhoseConfigIsRefusedIsOneLineBeforeSparkStarts() throws IOException {
        Path bad = Files.createDirectories(dir.resolve("bad-model"));
        Files.writeString(bad.resolve("config.json"), "{\"model_type\": \"no-such-family\"}");
        String out = dir.resolve("never.parquet").toString();
        String[] r = run("sweep", "composition", "--checkpoints", bad.toString(), "--mode", "Q", "--out", out);
        assertEquals("2", r[0]);
        assertTrue(r[2].startsWith("arrakis sweep composition: ") && r[2].contains("no-such-family"), r[2]);
        assertFalse(Files.exists(Path.of(out)));
    }

    /** Was: a model folder without weights failed inside a Spark task, with the job's stack trace. */
    @Test
    void aModelFolderWithoutWeightsIsOneLine() throws IOException {
        Path weightless = Files.createDirectories(dir.resolve("weightless"));
        Files.copy(Path.of(MODEL).resolve("config.json"), weightless.resolve("config.json"));
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        String out = dir.resolve("new/folders/never.csv").toString(); // was: the failed sweep left new/folders/
        // Spark logs to the process's standard error, not to the stream the command is given: was 355 lines there
        PrintStream processErr = System.err;
        ByteArrayOutputStream logged = new ByteArrayOutputStream();
        String[] r;
        System.setErr(new PrintStream(logged, true, StandardCharsets.UTF_8));
        try {
            r = run("sweep", "patching", "--model", weightless.toString(), "--prompts", prompts.toString(),
                    "--route", "V", "--receivers", "1.0", "--out", out, "--master", "local[1]");
        } finally {
            System.setErr(processErr);
        }
        assertEquals("2", r[0], r[2]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertTrue(r[2].startsWith("arrakis sweep patching: "), r[2]);
        String log = logged.toString(StandardCharsets.UTF_8);
        assertFalse(log.contains("\tat "), "Spark logged the task's failure with its stack trace:\n" + log);
        assertFalse(Files.exists(dir.resolve("new")), "the folders --out named are left");
    }

    /** Was: a libtorch that could not load in a Spark task gave the job's stack trace (178 lines). */
    @Test
    void aLibtorchThatCannotLoadInASweepIsOneLine() throws IOException {
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        Path missing = dir.resolve("no-libtorch-here");
        io.arrakis.testing.ChildJvm child = io.arrakis.testing.ChildJvm.of(Main.class, "sweep", "patching", "--model",
                        MODEL, "--prompts", prompts.toString(), "--route", "V", "--receivers", "1.0", "--out",
                        dir.resolve("never.csv").toString(), "--master", "local[1]")
                .property(io.arrakis.torch.LibTorch.PROPERTY_FOLDER, missing.toString());
        if (Runtime.version().feature() >= 23) { // as scripts/arrakis runs sweeps: Spark's Unsafe, without a warning
            child.jvmOption("--sun-misc-unsafe-memory-access=allow");
        }
        String output = child.start().finish(2);
        assertFalse(output.contains("\tat "), output);
        assertTrue(output.strip().startsWith("arrakis sweep patching: ") && output.contains(missing.toString()), output);
    }

    @Test
    void aMasterSparkCannotStartOnIsOneLine() throws IOException {
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        PrintStream processErr = System.err;
        ByteArrayOutputStream logged = new ByteArrayOutputStream();
        String[] r;
        System.setErr(new PrintStream(logged, true, StandardCharsets.UTF_8));
        try {
            r = run("sweep", "patching", "--model", MODEL, "--prompts", prompts.toString(), "--route", "V",
                    "--receivers", "1.0", "--out", dir.resolve("never.csv").toString(), "--master", "bogus");
        } finally {
            System.setErr(processErr);
        }
        assertFalse(logged.toString(StandardCharsets.UTF_8).contains("\tat "), logged.toString(StandardCharsets.UTF_8));
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].startsWith("arrakis sweep patching: cannot start Spark on bogus: "), r[2]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
    }

    @Test
    void noCheckpointsAndAOneLayerModelsDefaultReceiversAreRefusedBeforeSparkStarts() throws IOException {
        String[] r = run("sweep", "composition", "--checkpoints", ",", "--mode", "K", "--out",
                dir.resolve("c.csv").toString());
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("--checkpoints: no folders given"), r[2]);

        Path oneLayer = Files.createDirectories(dir.resolve("one-layer"));
        Files.writeString(oneLayer.resolve("config.json"), Files.readString(Path.of(MODEL).resolve("config.json"))
                .replaceFirst("\"n_layer\":\\s*\\d+", "\"n_layer\": 1"));
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        r = run("sweep", "patching", "--model", oneLayer.toString(), "--prompts", prompts.toString(), "--route", "V",
                "--out", dir.resolve("never.csv").toString());
        assertEquals("2", r[0], r[2]);
        assertTrue(r[2].contains("this model has one layer"), r[2]);
    }

    @Test
    void aReceiverNamedTwiceIsRefused() throws IOException {
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        String[] r = run("sweep", "patching", "--model", MODEL, "--prompts", prompts.toString(), "--route", "V",
                "--receivers", "1.1,1.1", "--out", dir.resolve("never.csv").toString());
        assertEquals("2", r[0]);
        assertTrue(r[2].contains("'1.1' is named twice"), r[2]);
    }

    @Test
    void aReceiverThatReceivesNothingIsRefused() throws IOException {
        Path prompts = Files.write(dir.resolve("p.jsonl"), List.of(
                "{\"clean\": [1, 5], \"corrupted\": [2, 5], \"answer\": 72, \"wrong\": 71}"));
        for (String receivers : List.of("0.1", "1.9", "one", "1.1,")) { // the last was taken as "1.1"
            String[] r = run("sweep", "patching", "--model", MODEL, "--prompts", prompts.toString(), "--route", "V",
                    "--receivers", receivers, "--out", dir.resolve("x.csv").toString());
            assertEquals("2", r[0]);
            String bad = receivers.endsWith(",") ? "" : receivers;
            assertTrue(r[2].startsWith("arrakis sweep patching: --receivers: '" + bad + "'"), r[2]);
        }
        // lfm2's layer 2 is a convolution, and below its attention layer 1 there are no heads
        String lfm2 = Fixtures.huggingFace("lfm2").toString();
        for (String receivers : List.of("2.0", "1.0")) {
            String[] r = run("sweep", "patching", "--model", lfm2, "--prompts", prompts.toString(), "--route", "V",
                    "--receivers", receivers, "--out", dir.resolve("x.csv").toString());
            assertEquals("2", r[0]);
            assertTrue(r[2].startsWith("arrakis sweep patching: --receivers: ") && (receivers.equals("2.0")
                    ? r[2].contains("L2H0") && r[2].contains("short convolution") : r[2].contains("no head sends")),
                    r[2]);
        }
    }
}

package io.arrakis.cli;

import io.arrakis.composer.CompositionScores;
import io.arrakis.io.HubCacheLayout;
import io.arrakis.json.Json;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.testing.Close;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class MainTest {
    private static final Path GPT2 = Fixtures.SHARED.resolve("gpt2-tiny");

    private record Result(int status, String out, String err) {
    }

    private static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /**
     * Was: a command that failed because the JVM was shutting down (Ctrl-C during a sweep, whose Spark context its own
     * hook stops) printed that failure's stack trace, Spark's "internal error".
     */
    @Test
    void aCommandThatFailsWhileTheJvmShutsDownSaysItWasInterrupted() {
        Main.shuttingDown = true;
        try {
            Result r = run("forward", "--model", "/no/such/model", "--input-ids", "1");
            assertEquals(Main.INTERRUPTED, r.status());
            assertEquals("arrakis forward: interrupted\n", r.err());
        } finally {
            Main.shuttingDown = false;
        }
    }

    /** The JSON of {@code forward} carries the fixture's reference activation for the same input. */
    @Test
    void forwardPrintsTheRequestedActivationsAsJson() {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result r = run("forward", "--model", GPT2.toString(), "--input-ids", "1,2,3;4,5,6",
                "--hooks", "blocks.0.attn.hook_pattern", "--json");
        assertEquals(0, r.status(), r.err());
        Map<?, ?> json = (Map<?, ?>) Json.parse(r.out().trim());
        assertEquals(List.of("blocks.0.attn.hook_pattern", "logits"), List.copyOf(json.keySet()));
        Map<?, ?> pattern = (Map<?, ?>) json.get("blocks.0.attn.hook_pattern");
        assertEquals(List.of(2L, 4L, 3L, 3L), pattern.get("shape"));
        List<?> data = (List<?>) pattern.get("data");
        assertEquals(72, data.size());
        // causal: the first query attends only to itself
        assertEquals(1.0, ((Number) data.get(0)).doubleValue(), 1e-6);
        assertEquals(0.0, ((Number) data.get(1)).doubleValue(), 0);
        assertEquals(List.of(2L, 3L, 96L), ((Map<?, ?>) json.get("logits")).get("shape"));
        Result twice = run("forward", "--model", GPT2.toString(), "--input-ids", "1,2", "--hooks", "logits,logits");
        assertEquals(1, twice.out().lines().filter(l -> l.startsWith("logits")).count(), "named twice, printed once");
    }

    @Test
    void theDemoShowsTheMainJob() {
        Result r = run("demo");
        assertEquals(0, r.status(), r.err());
        for (String expected : new String[] {"zero copy", "activations cached", "head_composition(L0H0, L1H1, 0.5)",
                "attention_path_patching", "K-composition", "L0H", "previous-token"}) {
            assertTrue(r.out().contains(expected), "the demo does not show '" + expected + "':\n" + r.out());
        }
    }

    @Test
    void seedExampleJsonHasBothResults() {
        Result r = run("seed-example", "--json", "--config",
                "num_hidden_layers=2,hidden_size=64,intermediate_size=128,num_attention_heads=4,num_key_value_heads=2");
        assertEquals(0, r.status(), r.err());
        Map<?, ?> json = (Map<?, ?>) Json.parse(r.out().trim());
        assertEquals(List.of("head_composition", "attention_path_patching"), List.copyOf(json.keySet()));
        assertEquals(List.of(1L, 50L, 32000L), ((Map<?, ?>) json.get("attention_path_patching")).get("shape"));
        assertTrue(r.err().contains("llama defaults with") && r.err().contains("float32"), r.err());

        Result bad = run("seed-example", "--config", "num_hidden_layer=2");
        assertEquals(2, bad.status());
        assertTrue(bad.err().startsWith("arrakis seed-example: ") && bad.err().contains("num_hidden_layer"), bad.err());
    }

    /** Was: an object value was passed on as a string and refused, and its commas split the pairs. */
    @Test
    void seedExampleConfigValuesMayBeJson() {
        assertEquals(List.of("a=1", "rope_scaling={\"rope_type\":\"linear\",\"factor\":2.0}", "b=[1,2]", "c=\"x,}\""),
                Main.topLevelPairs("a=1,rope_scaling={\"rope_type\":\"linear\",\"factor\":2.0},b=[1,2],c=\"x,}\""));
        String small = "num_hidden_layers=1,hidden_size=64,intermediate_size=128,num_attention_heads=4,num_key_value_heads=2";
        Result r = run("seed-example", "--json", "--config",
                small + ",rope_scaling={\"rope_type\":\"linear\",\"factor\":2.0}");
        assertEquals(0, r.status(), r.err());
        for (String[] tooSmall : List.of(new String[] {"num_attention_heads=1,num_key_value_heads=1", "at least 2"},
                new String[] {"max_position_embeddings=16", "at least 50"}, new String[] {"vocab_size=1", "at least 5"})) {
            Result refused = run("seed-example", "--config", small.replace(",num_attention_heads=4,num_key_value_heads=2",
                    "") + "," + (tooSmall[0].startsWith("num_attention") ? tooSmall[0]
                    : "num_attention_heads=4,num_key_value_heads=2," + tooSmall[0]));
            assertEquals(2, refused.status(), refused.err());
            assertTrue(refused.err().contains(tooSmall[1]) && !refused.err().contains("built with random weights"),
                    refused.err());
        }
        // was: "Json.write: Infinity has no JSON form", status 2, after the whole example ran
        Result huge = run("seed-example", "--json", "--config", small + ",initializer_range=1e30");
        assertEquals(0, huge.status(), huge.err());
        assertTrue(huge.out().contains("Infinity") || huge.out().contains("NaN"), huge.out());
        io.arrakis.json.Json.parse(huge.out().strip());
        Result bad = run("seed-example", "--json", "--config", small + ",rope_scaling={\"rope_type\":\"bogus\"}");
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("rope_scaling.rope_type") && bad.err().contains("bogus"), bad.err());
    }

    @Test
    void everyCommandHasHelpAndTheToolHasAVersion() {
        Result top = run("--help");
        assertEquals(0, top.status(), top.err());
        for (String command : List.of("info", "demo", "seed-example", "forward", "tokenize", "composition", "heads")) {
            assertTrue(top.out().contains("  " + command + " "), "the usage lists " + command + ":\n" + top.out());
            Result help = run(command, "--help");
            assertEquals(0, help.status(), help.err());
            assertTrue(help.out().startsWith("Usage: arrakis " + command), help.out());
        }
        assertTrue(run("composition", "--help").out().contains("--mode=Q|K|V"));
        Result version = run("--version");
        assertEquals(0, version.status());
        assertTrue(version.out().startsWith("arrakis-jvm "), version.out());
        assertEquals(0, run().status(), "no command: the usage");
    }

    /** Was: a trailing dot ("1.3.") was dropped. */
    @Test
    void headsAreLayerDotHead() {
        assertEquals(io.arrakis.composer.Head.of(1, 3), Main.parseHead(" 1.3 "));
        for (String bad : new String[] {"1.3.", "1", "1.x", ".3", "1..3"}) {
            assertThrows(IllegalArgumentException.class, () -> Main.parseHead(bad), bad);
        }
    }

    @Test
    void badInputIsOneLineOnStderrWithStatus2() {
        for (String[] args : List.of(
                new String[] {"forward", "--model", "/nonexistent", "--input-ids", "1"},
                new String[] {"forward", "--input-ids", "1"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2;3"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,x"},
                // empty rows and ids were dropped ("1,2;", "1,2,") or crashed with a stack trace (";")
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", ";"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2;"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2,"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2", "--hooks", "nope"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2", "--frobnicate"},
                new String[] {"nonsense"})) {
            Result r = run(args);
            assertEquals(2, r.status(), String.join(" ", args));
            if (!args[0].equals("nonsense")) {
                assertEquals(1, r.err().lines().count(), r.err());
                assertTrue(r.err().startsWith("arrakis forward: "), r.err());
            }
        }
    }

    /** Were: refused only after the model's work, naming the hidden temporary file. */
    @Test
    void anOutputThatCannotBeWrittenIsRefusedBeforeTheWork(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Path file = java.nio.file.Files.writeString(dir.resolve("afile"), "x");
        for (String[] args : List.of(
                new String[] {"view", "--model", "/nonexistent", "--input-ids", "1,2", "--out", dir.toString()},
                new String[] {"view", "--model", "/nonexistent", "--input-ids", "1,2", "--out", file.resolve("x.html").toString()},
                new String[] {"composition", "--model", "/nonexistent", "--mode", "K", "--png", file.resolve("x.png").toString()})) {
            Result r = run(args);
            assertEquals(2, r.status(), String.join(" ", args));
            assertTrue(r.err().contains("is a folder") || r.err().contains("is a file, not a folder"), r.err());
        }
    }

    /** Was: status 0 with the output lost, writing to a full disk or a closed pipe. */
    @Test
    void anOutputThatCannotBeWrittenGivesStatus1() {
        PrintStream full = new PrintStream(new java.io.OutputStream() {
            @Override
            public void write(int b) throws java.io.IOException {
                throw new java.io.IOException("No space left on device");
            }
        }, true, StandardCharsets.UTF_8);
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2", "--json"}, full,
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(1, status);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("cannot write standard output"), err.toString());
    }

    @Test
    void forwardMatchesTheReferenceLogits() throws Exception {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        try (SafeTensorsFile ref = SafeTensorsFile.open(GPT2.resolve("reference.safetensors"))) {
            long[] ids = ref.tensor("input_ids").toLongArray();
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < ids.length; i++) {
                text.append(i == 0 ? "" : i % 11 == 0 ? ";" : ",").append(ids[i]);
            }
            Result r = run("forward", "--model", GPT2.toString(), "--input-ids", text.toString(), "--json");
            assertEquals(0, r.status(), r.err());
            List<?> data = (List<?>) ((Map<?, ?>) ((Map<?, ?>) Json.parse(r.out().trim())).get("logits")).get("data");
            float[] expected = ref.tensor("logits").toFloatArray();
            float[] actual = new float[data.size()];
            for (int i = 0; i < actual.length; i++) {
                actual[i] = ((Number) data.get(i)).floatValue();
            }
            assertArrayEquals(expected, actual, 1e-4f);
        }
    }

    /** {@code composition --json}: the raw scores are the fixture's reference {@code composition.K}, [L][H][L][H]. */
    @Test
    void compositionJsonMatchesTheReferenceScores() throws Exception {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        for (String mode : List.of("Q", "K", "V")) {
            Result r = run("composition", "--model", GPT2.toString(), "--mode", mode, "--json");
            assertEquals(0, r.status(), r.err());
            assertEquals(1, r.out().lines().count(), "exactly one JSON object");
            Map<?, ?> json = (Map<?, ?>) Json.parse(r.out().trim());
            assertEquals(List.of("mode", "n_layers", "n_heads", "scores"), List.copyOf(json.keySet()));
            assertEquals(mode, json.get("mode"));
            double[] actual = flatten(json.get("scores"), 4, new long[] {2, 4, 2, 4});
            try (SafeTensorsFile ref = SafeTensorsFile.open(GPT2.resolve("reference.safetensors"))) {
                double[] expected = ref.tensor("composition." + mode).toDoubleArray();
                assertArrayEquals(expected, actual, 1e-5, mode);
            }
            assertEquals(2L, json.get("n_layers"));
            assertEquals(4L, json.get("n_heads"));
        }
    }

    @Test
    void compositionWithBaselineTableAndPng(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        assumeTrue(io.arrakis.composer.ScoreReport.canRenderText(), "skipped: no fonts on this machine for the heatmap");
        Result r = run("composition", "--model", GPT2.toString(), "--mode", "k", "--baseline", "--json");
        assertEquals(0, r.status(), r.err());
        Map<?, ?> json = (Map<?, ?>) Json.parse(r.out().trim());
        double[] raw = flatten(json.get("scores"), 4, new long[] {2, 4, 2, 4});
        double[] corrected = flatten(json.get("baseline_corrected"), 4, new long[] {2, 4, 2, 4});
        // corrected = raw - one baseline mean, on the forward pairs
        double shift = raw[((0 * 4 + 0) * 2 + 1) * 4] - corrected[((0 * 4 + 0) * 2 + 1) * 4];
        assertTrue(shift > 0, "the baseline mean of random heads is positive");
        assertEquals(raw[((0 * 4 + 3) * 2 + 1) * 4 + 2] - shift, corrected[((0 * 4 + 3) * 2 + 1) * 4 + 2], 1e-9);

        Path png = dir.resolve("k.png");
        Result t = run("composition", "--model", GPT2.toString(), "--mode", "V", "--top", "3", "--png", png.toString());
        assertEquals(0, t.status(), t.err());
        List<String> lines = t.out().lines().toList();
        assertTrue(lines.get(0).startsWith("rank  sender → receiver"), t.out());
        assertEquals(5, lines.size(), t.out()); // header, 3 pairs, "heatmap: ..."
        assertTrue(lines.get(1).matches("\\s+1  L0H\\d → L1H\\d\\s+0\\.\\d{6}"), lines.get(1));
        assertNotNull(ImageIO.read(png.toFile()), "a readable PNG");
    }

    /** {@code --fold-ln} folds the norm scales in: still [L][H][L][H], and different from the raw scores. */
    @Test
    void compositionFoldLnChangesTheScores() {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result raw = run("composition", "--model", GPT2.toString(), "--mode", "Q", "--json");
        Result folded = run("composition", "--model", GPT2.toString(), "--mode", "Q", "--fold-ln", "--json");
        assertEquals(0, folded.status(), folded.err());
        double[] r = flatten(((Map<?, ?>) Json.parse(raw.out().trim())).get("scores"), 4, new long[] {2, 4, 2, 4});
        double[] f = flatten(((Map<?, ?>) Json.parse(folded.out().trim())).get("scores"), 4, new long[] {2, 4, 2, 4});
        assertTrue(Close.maxAbsDiff(r, f) > 1e-6, "folding the norm weights changed nothing");
    }

    /**
     * {@code --center-writing} with {@code --fold-ln} gives the library's scores with both options; on an RMSNorm
     * model it is refused.
     */
    @Test
    void compositionCenterWritingIsTheLibrarysOption() {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result centred = run("composition", "--model", GPT2.toString(), "--mode", "V", "--fold-ln", "--center-writing",
                "--json");
        assertEquals(0, centred.status(), centred.err());
        double[] cli = flatten(((Map<?, ?>) Json.parse(centred.out().trim())).get("scores"), 4, new long[] {2, 4, 2, 4});
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(GPT2);
             CompositionScores.Result library = CompositionScores.compute(model, CompositionScores.Mode.V,
                     CompositionScores.Options.builder().foldLn(true).centerWritingWeights(true).build())) {
            assertTrue(Close.maxAbsDiff(library.scores().toDoubleArray(), cli) < 1e-12);
        }
        Result refused = run("composition", "--model", Fixtures.SHARED.resolve("llama-tiny-gqa").toString(), "--mode",
                "Q", "--center-writing");
        assertTrue(refused.status() != 0);
        assertTrue(refused.err().contains("RMSNorm"), refused.err());
    }

    /**
     * {@code heads --bos} starts each sequence with the config's bos_token_id: the library's scores with it; GPT-2's
     * default 50256 lies outside the tiny fixture's vocabulary, which is refused.
     */
    @Test
    void headsWithTheBeginningOfSequenceToken() {
        Path gpt2 = Fixtures.huggingFace("gpt2");
        assertHeadsBeginWith(gpt2, gpt2, 1);
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result refused = run("heads", "--model", GPT2.toString(), "--bos");
        assertTrue(refused.status() != 0);
        assertTrue(refused.err().contains("50256") && refused.err().contains("vocabulary"), refused.err());
    }

    /**
     * {@code heads --bos} on {@code model} gives the library's induction scores on {@code weights} with every sequence
     * beginning with {@code bos}.
     */
    private void assertHeadsBeginWith(Path model, Path weights, long bos) {
        Result r = run("heads", "--model", model.toString(), "--seq-len", "6", "--batch", "2", "--bos", "--json");
        assertEquals(0, r.status(), r.err());
        double[] cli = flatten(((Map<?, ?>) Json.parse(r.out().trim())).get("induction"), 2, new long[] {2, 4});
        try (HookedAutoModel library = HookedAutoModel.fromPretrained(weights);
             io.arrakis.composer.HeadDetectors.Scores s = io.arrakis.composer.HeadDetectors.detect(library, 6, 2, 0,
                     java.util.OptionalLong.of(bos))) {
            assertTrue(Close.maxAbsDiff(s.induction().toDoubleArray(), cli) < 1e-6);
        }
    }

    /** Was: a libtorch that cannot be found printed a stack trace (or an initialiser's error) and exited with 1. */
    @Test
    void aLibTorchThatCannotLoadIsOneLine(@org.junit.jupiter.api.io.TempDir Path dir) {
        String model = Fixtures.huggingFace("gpt2").toString();
        for (String command : List.of("info", "forward")) {
            String[] args = command.equals("info") ? new String[] {"info"}
                    : new String[] {"forward", "--model", model, "--input-ids", "1"};
            String out = io.arrakis.testing.ChildJvm.of(Main.class, args)
                    .property(io.arrakis.torch.LibTorch.PROPERTY_FOLDER, dir.resolve("missing").toString())
                    .start().finish(2);
            assertEquals(1, out.strip().lines().count(), out);
            assertTrue(out.contains("libtorch folder") && out.contains("missing"), out);
        }
    }

    /** Was: a model whose attention gives NaN read "none: windows too short", though it has no window. */
    @Test
    void headsSaysWhyEveryScoreIsMissing(@TempDir Path dir) throws Exception {
        Fixtures.writeWithNaN(Fixtures.huggingFace("gpt2"), "attn.c_attn.weight", dir);
        Result r = run("heads", "--model", dir.toString(), "--seq-len", "4");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("induction        -       none: the attention patterns hold NaN"), r.out());
    }

    /**
     * Was: an output named as one of the command's inputs overwrote it (the model's weights with a page, its config
     * with a heatmap), and a page whose clean and corrupted inputs were the same tokens, every effect 0, was written.
     */
    @Test
    void anOutputThatIsAnInputAndCleanInputsThatAreTheCorruptedAreRefused(@TempDir Path dir) throws Exception {
        Path model = Files.createDirectory(dir.resolve("model"));
        for (String file : List.of("config.json", "model.safetensors")) {
            Files.copy(Fixtures.huggingFace("gpt2").resolve(file), model.resolve(file));
        }
        byte[] weights = Files.readAllBytes(model.resolve("model.safetensors"));
        Result r = run("view", "--model", model.toString(), "--input-ids", "1,2,3", "--out",
                model.resolve("model.safetensors").toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("is one of this command's inputs"), r.err());
        assertArrayEquals(weights, Files.readAllBytes(model.resolve("model.safetensors")));
        r = run("composition", "--model", model.toString(), "--mode", "K", "--png", model.resolve("config.json").toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("is one of this command's inputs"), r.err());
        r = run("view", "--model", model.toString(), "--input-ids", "1,2,3", "--out", model.resolve("page.html").toString());
        assertEquals(0, r.status(), r.err() + " (a new file in the model's folder is no input)");

        r = run("view", "--model", model.toString(), "--input-ids", "1,2,3", "--corrupted-input-ids", "1,2,3",
                "--answer", "5", "--wrong", "6", "--out", dir.resolve("same.html").toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("the clean and corrupted inputs are the same tokens"), r.err());
        assertFalse(Files.exists(dir.resolve("same.html")));
    }

    /**
     * Was: an output reaching a model file by another path (a hub cache's snapshot link, or a link named like an
     * output) was written through, replacing the model's config with a page.
     */
    @Test
    void anOutputThatReachesAModelFileThroughLinksIsRefused(@TempDir Path dir) throws Exception {
        Path gpt2 = Fixtures.huggingFace("gpt2");
        Path hub = io.arrakis.io.HubCacheLayout.build(dir.resolve("hub"), "models--x--y",
                List.of(gpt2.resolve("config.json"), gpt2.resolve("model.safetensors")));
        Path snapshotConfig = hub.resolve("snapshots").resolve(io.arrakis.io.HubCacheLayout.COMMIT).resolve("config.json");
        byte[] config = Files.readAllBytes(snapshotConfig);
        Path link = Files.createSymbolicLink(dir.resolve("page.html"), snapshotConfig);
        for (Path out : List.of(snapshotConfig, link)) {
            Result r = run("view", "--model", hub.toString(), "--input-ids", "1,2,3", "--out", out.toString());
            assertEquals(2, r.status(), r.err());
            assertTrue(r.err().contains("is one of this command's inputs"), r.err());
            r = run("composition", "--model", hub.toString(), "--mode", "Q", "--png", out.toString());
            assertEquals(2, r.status(), r.err());
            assertTrue(r.err().contains("is one of this command's inputs"), r.err());
        }
        assertArrayEquals(config, Files.readAllBytes(snapshotConfig));

        Path tokenizerFolder = Files.createDirectory(dir.resolve("tokenizer"));
        Path tokenizer = Files.copy(Fixtures.tokenizer("bytelevel_bpe").resolve("tokenizer.json"),
                tokenizerFolder.resolve("tokenizer.json"));
        byte[] tokenizerBytes = Files.readAllBytes(tokenizer);
        Result r = run("view", "--model", gpt2.toString(), "--text", "hi", "--tokenizer", tokenizerFolder.toString(),
                "--out", tokenizer.toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("is one of this command's inputs"), r.err());
        assertArrayEquals(tokenizerBytes, Files.readAllBytes(tokenizer));

        // was: a --tokenizer hub cache folder's snapshot file was not seen as an input, and the page replaced its blob
        Path tokenizerHub = io.arrakis.io.HubCacheLayout.build(dir.resolve("hub"), "models--x--tok", List.of(tokenizer));
        Path snapshotTokenizer = tokenizerHub.resolve("snapshots").resolve(io.arrakis.io.HubCacheLayout.COMMIT)
                .resolve("tokenizer.json");
        r = run("view", "--model", gpt2.toString(), "--text", "hi", "--tokenizer", tokenizerHub.toString(),
                "--out", snapshotTokenizer.toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("is one of this command's inputs"), r.err());
        assertArrayEquals(tokenizerBytes, Files.readAllBytes(snapshotTokenizer));
    }

    /** Was: a --tokenizer whose ids the model does not embed failed in the pass, naming neither it nor the cause. */
    @Test
    void aTokenizerWhoseIdsTheModelLacksIsNamed() {
        Result r = run("forward", "--model", Fixtures.huggingFace("llama").toString(), "--text", "Hello world",
                "--tokenizer", Fixtures.tokenizer("sentencepiece_bpe").resolve("tokenizer.json").toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("sentencepiece_bpe") && r.err().contains("tokens does not have: is it this model's"
                + " tokenizer?"), r.err());
    }

    /** Was: a named pipe (or a device) given as the output was replaced by a plain file. */
    @Test
    void anOutputThatIsNoFileIsRefused(@TempDir Path dir) throws Exception {
        Path pipe = dir.resolve("pipe");
        assertEquals(0, new ProcessBuilder("mkfifo", pipe.toString()).start().waitFor());
        Result r = run("view", "--model", Fixtures.huggingFace("gpt2").toString(), "--input-ids", "1,2,3", "--out",
                pipe.toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("is a device, pipe or socket"), r.err());
        assertTrue(Files.exists(pipe) && !Files.isRegularFile(pipe));
    }

    /** Was: a receiver or route named twice was patched, and shown, twice. */
    @Test
    void viewPatchesAReceiverNamedTwiceOnce(@TempDir Path dir) throws Exception {
        String gpt2 = Fixtures.huggingFace("gpt2").toString();
        List<byte[]> pages = new java.util.ArrayList<>();
        for (String[] receiversAndRoutes : List.of(new String[] {"1.0,1.2", "Q,V"}, new String[] {"1.0,1.2,1.0", "Q,V,Q"})) {
            Path page = dir.resolve(pages.size() + ".html");
            Result r = run("view", "--model", gpt2, "--input-ids", "1,2,3,4,5", "--corrupted-input-ids", "1,2,3,4,6",
                    "--answer", "7", "--wrong", "8", "--receivers", receiversAndRoutes[0], "--routes",
                    receiversAndRoutes[1], "--out", page.toString());
            assertEquals(0, r.status(), r.err());
            pages.add(Files.readAllBytes(page));
        }
        assertArrayEquals(pages.get(0), pages.get(1));
    }

    /** {@code view --prepend-bos}: the page of the ids with the config's BOS (1) first; it goes with text. */
    @Test
    void viewPrependsTheBeginningOfSequenceWhenAsked(@TempDir Path dir) throws Exception {
        String gpt2 = Fixtures.huggingFace("gpt2").toString();
        String unigram = TOKENIZERS.resolve("unigram").toString();
        Map<?, ?> hello = tokenizerCases("unigram").stream().filter(c -> c.get("text").equals("Hello world"))
                .findFirst().orElseThrow();
        Path byIds = dir.resolve("ids.html");
        Path byText = dir.resolve("text.html");
        Result ids = run("view", "--model", gpt2, "--input-ids", "1," + joined(hello.get("ids")), "--tokenizer",
                unigram, "--out", byIds.toString());
        assertEquals(0, ids.status(), ids.err());
        Result text = run("view", "--model", gpt2, "--text", "Hello world", "--tokenizer", unigram, "--prepend-bos",
                "--out", byText.toString());
        assertEquals(0, text.status(), text.err());
        assertArrayEquals(Files.readAllBytes(byIds), Files.readAllBytes(byText));
        Result noText = run("view", "--model", gpt2, "--input-ids", "1,2", "--prepend-bos", "--out",
                dir.resolve("no.html").toString());
        assertEquals(2, noText.status());
        assertTrue(noText.err().contains("--prepend-bos goes with --text or --corrupted-text"), noText.err());
    }

    /** {@code heads --json}: three [layer][head] score arrays with values in [0, 1]. */
    @Test
    void headsJsonHasOneScorePerHead() {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result r = run("heads", "--model", GPT2.toString(), "--seq-len", "8", "--batch", "2", "--seed", "3", "--json");
        assertEquals(0, r.status(), r.err());
        Map<?, ?> json = (Map<?, ?>) Json.parse(r.out().trim());
        assertEquals(List.of("previous_token", "induction", "duplicate_token"), List.copyOf(json.keySet()));
        for (Object kind : json.values()) {
            double[] v = flatten(kind, 2, new long[] {2, 4});
            for (double x : v) {
                assertTrue(x >= 0 && x <= 1 + 1e-6, "score " + x);
            }
        }
        Result table = run("heads", "--model", GPT2.toString());
        assertEquals(0, table.status(), table.err());
        List<String> lines = table.out().lines().toList();
        assertEquals(4, lines.size(), table.out());
        assertTrue(lines.get(2).matches("induction\\s+L\\dH\\d\\s+\\d\\.\\d{6}"), lines.get(2));
    }

    @Test
    void compositionAndHeadsRejectBadInput() {
        String model = GPT2.toString();
        for (String[] args : List.of(
                new String[] {"composition", "--model", model},
                new String[] {"composition", "--mode", "K"},
                new String[] {"composition", "--model", model, "--mode", "X"},
                new String[] {"composition", "--model", model, "--mode", "K", "--top", "0"},
                new String[] {"composition", "--model", model, "--mode", "K", "--top", "many"},
                new String[] {"composition", "--model", model, "--mode", "K", "--top"},
                new String[] {"composition", "--model", model, "--mode", "K", "--frobnicate"},
                new String[] {"composition", "--model", "/nonexistent", "--mode", "K"},
                new String[] {"heads"},
                new String[] {"heads", "--model", "/nonexistent"},
                new String[] {"heads", "--model", model, "--seq-len", "1"},
                new String[] {"heads", "--model", model, "--seq-len", "100000"},
                new String[] {"heads", "--model", model, "--batch", "0"},
                new String[] {"heads", "--model", model, "--seed", "x"},
                new String[] {"heads", "--model", model, "--json", "--extra"})) {
            Result r = run(args);
            assertEquals(2, r.status(), String.join(" ", args));
            assertEquals(1, r.err().lines().count(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().startsWith("arrakis " + args[0] + ": "), r.err());
            assertEquals("", r.out(), String.join(" ", args));
        }
    }

    /**
     * Were taken: a plus sign and other scripts' digits as integers, {@code --top} beside {@code --json} (which writes
     * every score, so it was ignored), a {@code --config} key named twice (the last one won).
     */
    @Test
    void integersInOtherDigitsAnIgnoredTopAndAConfigKeyNamedTwiceAreRefused() {
        String model = GPT2.toString();
        Map<String[], String> cases = new java.util.LinkedHashMap<>();
        cases.put(new String[] {"forward", "--model", model, "--input-ids", "1,\u0665"}, "is not a comma-separated list");
        cases.put(new String[] {"forward", "--model", model, "--input-ids", "+1,2"}, "is not a comma-separated list");
        cases.put(new String[] {"forward", "--model", model, "--input-ids", "1,99999999999999999999"},
                "'99999999999999999999' is too large for an id");
        cases.put(new String[] {"heads", "--model", model, "--seed", "\u0967"},
                "Invalid value for option '--seed': '\u0967' is not a long integer (the digits 0 to 9, after a minus sign");
        cases.put(new String[] {"heads", "--model", model, "--batch", "+2"}, "'+2' is not an integer (the digits 0 to 9");
        cases.put(new String[] {"composition", "--model", model, "--mode", "K", "--top", "\uff13"},
                "'\uff13' is not an integer (the digits 0 to 9");
        cases.put(new String[] {"composition", "--model", model, "--mode", "K", "--top", "99999999999"},
                "'99999999999' is too large for an integer");
        cases.put(new String[] {"composition", "--model", model, "--mode", "K", "--json", "--top", "3"},
                "--top sets how many pairs the table shows; --json writes every score");
        cases.put(new String[] {"seed-example", "--config", "n_layers=1,d_model=64,n_layers=2"},
                "--config names n_layers twice");
        for (Map.Entry<String[], String> c : cases.entrySet()) {
            String[] args = c.getKey();
            Result r = run(args);
            assertEquals(2, r.status(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().lines().count(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().startsWith("arrakis " + args[0] + ": ") && r.err().contains(c.getValue()),
                    String.join(" ", args) + ": " + r.err());
            assertEquals("", r.out(), String.join(" ", args));
        }
        // what stays valid: ASCII digits, a minus sign (refused as an id by its range, not its spelling)
        assertEquals(0, run("forward", "--model", model, "--input-ids", " 1, 2").status());
        Result negative = run("forward", "--model", model, "--input-ids", "-1");
        assertEquals(2, negative.status());
        assertTrue(!negative.err().contains("comma-separated"), negative.err());
    }

    private static final Path TOKENIZERS = Fixtures.HF_MORE.resolve("tokenizers");

    private static List<Map<?, ?>> tokenizerCases(String kind) throws Exception {
        Map<?, ?> expected = (Map<?, ?>) Json.parse(Files.readString(Fixtures.tokenizer(kind).resolve("expected.json")));
        return ((List<?>) expected.get("cases")).stream().<Map<?, ?>>map(c -> (Map<?, ?>) c).toList();
    }

    private static String joined(Object ids) {
        return String.join(",", ((List<?>) ids).stream().map(String::valueOf).toList());
    }

    /** {@code tokenize --json}: Hugging Face's ids, tokens and decoded text (expected.json) for every case. */
    @Test
    void tokenizeJsonGivesHuggingFacesIdsTokensAndText() throws Exception {
        assumeTrue(Files.isDirectory(TOKENIZERS) || System.getenv("CI") != null, "skipped: no shared fixtures");
        for (String kind : List.of("bytelevel_bpe", "sentencepiece_bpe", "unigram")) {
            Path folder = TOKENIZERS.resolve(kind);
            for (Map<?, ?> c : tokenizerCases(kind)) {
                String text = (String) c.get("text");
                // the folder for one kind, the file itself for the others
                String path = (kind.equals("unigram") ? folder : folder.resolve("tokenizer.json")).toString();
                Result r = run("tokenize", "--tokenizer", path, "--text", text, "--json");
                assertEquals(0, r.status(), r.err());
                assertEquals(1, r.out().lines().count(), r.out());
                assertEquals(Map.of("ids", c.get("ids"), "tokens", c.get("tokens")), Json.parse(r.out().trim()), kind + ": " + text);
                if (!((List<?>) c.get("ids")).isEmpty()) {
                    Result d = run("tokenize", "--tokenizer", path, "--decode", joined(c.get("ids")), "--json");
                    assertEquals(0, d.status(), d.err());
                    assertEquals(Map.of("text", c.get("decoded")), Json.parse(d.out().trim()), kind + ": " + text);
                }
            }
        }
    }

    @Test
    void tokenizeWithoutJsonIsATable() {
        assumeTrue(Files.isDirectory(TOKENIZERS) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Path path = TOKENIZERS.resolve("bytelevel_bpe");
        Result r = run("tokenize", "--tokenizer", path.toString(), "--text", "Hello world");
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("8 tokens", lines.get(0));
        assertEquals(List.of("pos", "id", "token"), List.of(lines.get(1).trim().split("\\s+")));
        assertEquals(List.of("4", "295", "\"Ġw\""), List.of(lines.get(6).trim().split("\\s+")));
        Result d = run("tokenize", "--tokenizer", path.toString(), "--decode", "40, 69, 309, 79, 295, 261, 76, 68");
        assertEquals("Hello world\n", d.out().replace(System.lineSeparator(), "\n"));
    }

    /**
     * {@code forward --text} runs the ids Hugging Face's tokenizer gives (expected.json): the model folder's
     * tokenizer.json, or the one {@code --tokenizer} names.
     */
    @Test
    void forwardTakesTextThroughATokenizer(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Path unigram = TOKENIZERS.resolve("unigram");
        Map<?, ?> hello = tokenizerCases("unigram").stream().filter(c -> c.get("text").equals("Hello world"))
                .findFirst().orElseThrow();
        Result byIds = run("forward", "--model", GPT2.toString(), "--input-ids", joined(hello.get("ids")), "--json");
        assertEquals(0, byIds.status(), byIds.err());

        Result withOption = run("forward", "--model", GPT2.toString(), "--text", "Hello world",
                "--tokenizer", unigram.toString(), "--json");
        assertEquals(0, withOption.status(), withOption.err());
        assertEquals(byIds.out(), withOption.out());

        Path folder = Files.createDirectories(dir.resolve("gpt2-with-tokenizer"));
        for (String file : List.of("config.json", "model.safetensors")) {
            Files.copy(GPT2.resolve(file), folder.resolve(file));
        }
        Files.copy(unigram.resolve("tokenizer.json"), folder.resolve("tokenizer.json"));
        Result fromFolder = run("forward", "--model", folder.toString(), "--text", "Hello world", "--json");
        assertEquals(0, fromFolder.status(), fromFolder.err());
        assertEquals(byIds.out(), fromFolder.out());
    }

    /**
     * {@code --prepend-bos} begins the text's ids with the config's bos_token_id (1 here), as TransformerLens's
     * {@code to_tokens} does by default; it goes with text, and with a BOS the tokenizer has.
     */
    @Test
    void forwardPrependsTheBeginningOfSequenceWhenAsked() throws Exception {
        Path gpt2 = Fixtures.huggingFace("gpt2");
        Path unigram = TOKENIZERS.resolve("unigram");
        Map<?, ?> hello = tokenizerCases("unigram").stream().filter(c -> c.get("text").equals("Hello world"))
                .findFirst().orElseThrow();
        Result byIds = run("forward", "--model", gpt2.toString(), "--input-ids", "1," + joined(hello.get("ids")),
                "--json");
        assertEquals(0, byIds.status(), byIds.err());
        Result withBos = run("forward", "--model", gpt2.toString(), "--text", "Hello world", "--tokenizer",
                unigram.toString(), "--prepend-bos", "--json");
        assertEquals(0, withBos.status(), withBos.err());
        assertEquals(byIds.out(), withBos.out());

        Result noText = run("forward", "--model", gpt2.toString(), "--input-ids", "1,2", "--prepend-bos");
        assertEquals(2, noText.status());
        assertTrue(noText.err().contains("--prepend-bos goes with --text"), noText.err());
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result otherBos = run("forward", "--model", GPT2.toString(), "--text", "Hello world", "--tokenizer",
                unigram.toString(), "--prepend-bos");
        assertEquals(2, otherBos.status());
        assertTrue(otherBos.err().contains("id 50256 is not one of this tokenizer's ids 0 to 399"),
                "GPT2Config's default BOS: " + otherBos.err());
    }

    /**
     * A tokenizer that puts a BOS of its own ({@code <unk>}, id 2) before every text, other than the config's
     * bos_token_id (1): {@code --prepend-bos} and {@code heads --bos} use its own, as Hugging Face does (both gave
     * {@code [1, 2, ...]} or sequences after 1). A folder whose tokenizer cannot be read says why {@code --bos} read
     * it.
     */
    @Test
    void theTokenizersOwnBeginningOfSequenceIsTheOneUsed(@TempDir Path dir) throws Exception {
        Path gpt2 = Fixtures.huggingFace("gpt2");
        Path folder = Files.createDirectories(dir.resolve("own-bos"));
        for (Path file : HubCacheLayout.filesOf(gpt2)) {
            Files.copy(file, folder.resolve(file.getFileName()));
        }
        Map<String, Object> json = new java.util.LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(TOKENIZERS.resolve("unigram").resolve("tokenizer.json"))))
                .forEach((k, v) -> json.put((String) k, v));
        json.put("post_processor", Map.of("type", "TemplateProcessing",
                "single", List.of(Map.of("SpecialToken", Map.of("id", "<unk>", "type_id", 0L)),
                        Map.of("Sequence", Map.of("id", "A", "type_id", 0L))),
                "pair", List.of(Map.of("Sequence", Map.of("id", "A", "type_id", 0L))),
                "special_tokens", Map.of("<unk>", Map.of("id", "<unk>", "ids", List.of(2L),
                        "tokens", List.of("<unk>")))));
        Files.writeString(folder.resolve("tokenizer.json"), Json.write(json));
        Map<?, ?> hello = tokenizerCases("unigram").stream().filter(c -> c.get("text").equals("Hello world"))
                .findFirst().orElseThrow();
        Result byIds = run("forward", "--model", gpt2.toString(), "--input-ids", "2," + joined(hello.get("ids")),
                "--json");
        assertEquals(0, byIds.status(), byIds.err());
        for (Result r : List.of(run("forward", "--model", folder.toString(), "--text", "Hello world", "--prepend-bos",
                        "--json"),
                run("forward", "--model", gpt2.toString(), "--text", "Hello world", "--tokenizer",
                        folder.resolve("tokenizer.json").toString(), "--prepend-bos", "--json"))) {
            assertEquals(0, r.status(), r.err());
            assertEquals(byIds.out(), r.out());
        }
        assertHeadsBeginWith(folder, gpt2, 2);
        Files.writeString(folder.resolve("tokenizer.json"), "{\"version\": \"1.0\", \"model\": {\"type\": \"Nope\"}}");
        Result unreadable = run("heads", "--model", folder.toString(), "--seq-len", "6", "--bos");
        assertEquals(2, unreadable.status());
        assertTrue(unreadable.err().contains("--bos: the model's beginning-of-sequence token is its tokenizer's where"
                + " it has one"), unreadable.err());
    }

    /** A hub cache folder as {@code --model}: the output of the plain folder. */
    @Test
    void forwardReadsAHubCacheFolder(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Path hub = HubCacheLayout.build(dir, "arrakis/gpt2-tiny", HubCacheLayout.filesOf(GPT2));
        Result plain = run("forward", "--model", GPT2.toString(), "--input-ids", "1,2,3;4,5,6", "--json");
        Result cached = run("forward", "--model", hub.toString(), "--input-ids", "1,2,3;4,5,6", "--json");
        assertEquals(0, cached.status(), cached.err());
        assertEquals(plain.out(), cached.out());

        Files.delete(hub.resolve("refs").resolve("main"));
        Result noRef = run("forward", "--model", hub.toString(), "--input-ids", "1,2,3", "--json");
        assertEquals(2, noRef.status());
        assertTrue(noRef.err().startsWith("arrakis forward: ") && noRef.err().contains("no refs/main"), noRef.err());
    }

    @Test
    void tokenizeAndTextRejectBadInput() {
        String tokenizer = TOKENIZERS.resolve("bytelevel_bpe").toString();
        for (String[] args : List.of(
                new String[] {"tokenize", "--text", "Hello"},
                new String[] {"tokenize", "--tokenizer", tokenizer},
                new String[] {"tokenize", "--tokenizer", tokenizer, "--text", "a", "--decode", "1"},
                new String[] {"tokenize", "--tokenizer", tokenizer, "--decode", "1,x"},
                new String[] {"tokenize", "--tokenizer", tokenizer, "--decode", "1,600"},
                new String[] {"tokenize", "--tokenizer", "/nonexistent", "--text", "a"},
                new String[] {"tokenize", "--tokenizer", tokenizer, "--text", "a", "--frobnicate"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1", "--text", "a"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1", "--tokenizer", tokenizer},
                new String[] {"forward", "--model", GPT2.toString(), "--text", "Hello world"},
                new String[] {"forward", "--model", GPT2.toString(), "--text", "", "--tokenizer", tokenizer},
                new String[] {"forward", "--model", GPT2.toString(), "--text", "Hello world", "--tokenizer", tokenizer})) {
            Result r = run(args);
            assertEquals(2, r.status(), String.join(" ", args));
            assertEquals(1, r.err().lines().count(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().startsWith("arrakis " + args[0] + ": "), r.err());
            assertEquals("", r.out(), String.join(" ", args));
        }
    }

    /** Nested lists of the given shape, flattened in row-major order. */
    private static double[] flatten(Object nested, int depth, long[] shape) {
        java.util.ArrayList<Double> out = new java.util.ArrayList<>();
        flattenInto(nested, 0, shape, out);
        assertEquals(depth, shape.length);
        return out.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static void flattenInto(Object o, int level, long[] shape, List<Double> out) {
        if (level == shape.length) {
            out.add(((Number) o).doubleValue());
            return;
        }
        List<?> list = (List<?>) o;
        assertEquals(shape[level], list.size(), "size at level " + level);
        for (Object e : list) {
            flattenInto(e, level + 1, shape, out);
        }
    }
}

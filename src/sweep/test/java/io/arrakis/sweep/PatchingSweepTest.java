package io.arrakis.sweep;

import io.arrakis.Progress;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sweeps in {@code local[2]}: their rows against the library's own values, and their output whole or absent. */
class PatchingSweepTest {
    static final Path MODEL = Fixtures.huggingFace("gpt2");

    @TempDir
    static Path dir;
    private static SparkSession spark;

    /** {@code count} prompt pairs of 10 tokens drawn from a seeded generator, with the answers 72 and 71. */
    static List<PromptPair> prompts(int count) {
        java.util.Random random = new java.util.Random(count);
        List<PromptPair> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long[] clean = random.longs(10, 0, 90).toArray(); // the fixture has 96 tokens
            long[] corrupted = clean.clone();
            corrupted[random.nextInt(10)] = random.nextInt(90);
            corrupted[9] = random.nextInt(90);
            out.add(new PromptPair(i, clean, corrupted, 72, 71));
        }
        return out;
    }

    @BeforeAll
    static void startSpark() {
        spark = Sweeps.session("local[2]", Map.of("spark.ui.enabled", "false"));
    }

    @AfterAll
    static void stopSpark() {
        spark.stop();
    }

    private static String out(String name) {
        return dir.resolve(name).toString();
    }

    @Test
    void everyRowIsThatPairsPathPatchingValue() {
        List<PromptPair> prompts = prompts(6);
        List<Long> progress = new ArrayList<>();
        int[] loadedDuring = new int[1];
        PatchingSweep.Result result = ExecutorModels.during(spark, () -> {
            PatchingSweep.Result r = PatchingSweep.run(spark, MODEL.toString(), prompts, PathPatching.Route.K,
                    List.of(Head.of(1, 0), Head.of(1, 3)), out("k.parquet"), (done, total) -> progress.add(done));
            loadedDuring[0] = ExecutorModels.loaded();
            return r;
        });
        assertEquals(6L * 2 * 4, result.rows(), "prompts x receivers x senders below them");
        assertFalse(progress.isEmpty());
        assertEquals(8, result.top().size(), "every (sender, receiver) pair, as there are fewer than 10");
        List<Row> rows = Sweeps.read(spark, out("k.parquet")).orderBy("prompt_id", "receiver_head", "sender_head").collectAsList();
        assertEquals(48, rows.size());
        // the top pairs, by the magnitude of their mean effect over the prompts, from the rows
        Map<String, Double> sums = new java.util.TreeMap<>();
        for (Row r : rows) {
            sums.merge("L0H" + r.getAs("sender_head") + " L1H" + r.getAs("receiver_head"), (double) r.getAs("effect"),
                    Double::sum);
        }
        List<String> strongest = sums.entrySet().stream()
                .sorted((x, y) -> Double.compare(Math.abs(y.getValue()), Math.abs(x.getValue())))
                .map(Map.Entry::getKey).toList();
        assertEquals(strongest, result.top().stream().map(t -> t.get(0) + " " + t.get(1)).toList());
        assertTrue(sums.values().stream().anyMatch(v -> v < 0), "the ordering is tested with negative effects too");
        Set<List<Object>> keys = new HashSet<>();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            for (Row r : rows) {
                assertTrue(keys.add(List.of(r.getAs("prompt_id"), r.getAs("sender_head"), r.getAs("receiver_head"))), "once");
                assertEquals(0, (int) r.getAs("sender_layer"));
                assertEquals("K", r.getAs("route"));
            }
            for (Row r : List.of(rows.get(0), rows.get(13), rows.get(47))) {
                PromptPair p = prompts.get((int) (long) (Long) r.getAs("prompt_id"));
                Tensor clean = Tensor.of(p.clean(), 1, 10);
                Tensor corrupted = Tensor.of(p.corrupted(), 1, 10);
                PathPatching.Metric metric = PathPatching.Metric.logitDiff(72, 71);
                double expected = PathPatching.patch(model, clean, corrupted, Head.of(0, r.getAs("sender_head")),
                        Head.of(1, r.getAs("receiver_head")), PathPatching.Route.K, metric);
                assertEquals(expected, (double) r.getAs("effect"), 0.0, "the library's value, exactly");
                assertEquals(metric.apply(model.runWithHooks(clean)), (double) r.getAs("clean_metric"), 0.0);
                assertEquals(metric.apply(model.runWithHooks(corrupted)), (double) r.getAs("corrupted_metric"), 0.0);
            }
        }
        assertEquals(1, loadedDuring[0], "one model in this JVM for all its tasks");
        assertEquals(0, ExecutorModels.loaded(), "closed once no sweep of local mode runs");
    }

    /** Was: a task after the weights were replaced loaded the new ones, and the sweep mixed rows of two models. */
    @Test
    void aSweepWhoseWeightsChangeBetweenItsTasksFails() throws Exception {
        Path copy = Files.createDirectories(dir.resolve("changing-within"));
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(MODEL.resolve(f), copy.resolve(f));
        }
        ExecutorModels.during(spark, () -> {
            String began = ExecutorModels.version(copy.toString());
            ExecutorModels.get(copy.toString(), began);
            try {
                halveWeights(copy.resolve("model.safetensors"));
            } catch (java.io.IOException x) {
                throw new java.io.UncheckedIOException(x);
            }
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> ExecutorModels.get(copy.toString(), began));
            assertTrue(e.getMessage().contains("is not as it was when the sweep began"), e.getMessage());
            // a later sweep reads the files as they are now
            ExecutorModels.get(copy.toString(), ExecutorModels.version(copy.toString()));
            assertEquals(2, ExecutorModels.loaded(), "the old weights and the new");
            return null;
        });
    }

    /** Was: models were cached by folder only, so a sweep after the weights were replaced used the old ones. */
    @Test
    void aFolderWhoseWeightsChangedIsLoadedAgain() throws Exception {
        Path copy = Files.createDirectories(dir.resolve("changing"));
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(MODEL.resolve(f), copy.resolve(f));
        }
        List<PromptPair> one = prompts(1);
        List<Head> receiver = List.of(Head.of(1, 0));
        ExecutorModels.during(spark, () -> {
            PatchingSweep.run(spark, copy.toString(), one, PathPatching.Route.Q, receiver, out("before.parquet"),
                    Progress.NONE);
            try {
                halveWeights(copy.resolve("model.safetensors"));
            } catch (java.io.IOException x) {
                throw new java.io.UncheckedIOException(x);
            }
            PatchingSweep.run(spark, copy.toString(), one, PathPatching.Route.Q, receiver, out("after.parquet"),
                    Progress.NONE);
            assertEquals(2, ExecutorModels.loaded(), "the old weights and the new");
            return null;
        });
        double before = Sweeps.read(spark, out("before.parquet")).first().getAs("clean_metric");
        double after = Sweeps.read(spark, out("after.parquet")).first().getAs("clean_metric");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(copy)) {
            PromptPair p = one.getFirst();
            double expected = PathPatching.Metric.logitDiff(p.answer(), p.wrong())
                    .apply(model.runWithHooks(Tensor.of(p.clean(), 1, p.clean().length)));
            assertEquals(expected, after, 0.0);
            assertTrue(before != after, "the weights changed the metric");
        }
    }

    /** Rewrites the file with every tensor halved, as a download replacing it would: a new file renamed over it. */
    private static void halveWeights(Path file) throws java.io.IOException {
        Path temp = file.resolveSibling("new.safetensors.part");
        try (TensorScope scope = TensorScope.open();
             io.arrakis.model.safetensors.SafeTensorsFile old = io.arrakis.model.safetensors.SafeTensorsFile.open(file)) {
            Map<String, Tensor> halved = new java.util.TreeMap<>();
            for (String name : old.names()) {
                halved.put(name, old.tensor(name).mul(0.5));
            }
            io.arrakis.model.safetensors.SafeTensorsWriter.write(temp, halved, Map.of("format", "pt"));
        }
        Files.move(temp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** Were: failures after the work (a pattern read back, a folder that cannot be made) or a message of the temporary. */
    @Test
    void anOutputSparkCannotWriteOrReadBackIsRefusedFirst() {
        for (String bad : List.of("run[1].csv", "brace{a,b}.csv", "a:b.csv", "star*.parquet", "run[1]/c.csv",
                "r*/t.csv")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PatchingSweep.run(spark,
                    MODEL.toString(), prompts(1), PathPatching.Route.Q, List.of(Head.of(1, 0)), out(bad), Progress.NONE));
            assertTrue(e.getMessage().contains("--out " + out(bad)) && e.getMessage().contains("pattern"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PatchingSweep.run(spark,
                MODEL.toString(), prompts(1), PathPatching.Route.Q, List.of(Head.of(1, 0)), "/proc/rows.csv", Progress.NONE));
        assertTrue(e.getMessage().contains("/proc/rows.csv"), e.getMessage());
    }

    /** Were: quotes escaped with a backslash (Python's csv read them wrong), spaces at an end trimmed, newlines split rows. */
    @Test
    void csvTextRoundTripsAsOtherReadersReadIt() throws Exception {
        org.apache.spark.sql.types.StructType schema = new org.apache.spark.sql.types.StructType()
                .add("name", org.apache.spark.sql.types.DataTypes.StringType, false);
        List<String> names = List.of("q\"uote", "trail ", " lead", "two\nlines", "comma,é");
        String out = out("text.csv");
        assertEquals(names.size(), Sweeps.write(spark, spark.createDataFrame(names.stream()
                .map(n -> org.apache.spark.sql.RowFactory.create(n)).toList(), schema), out));
        assertEquals(names.stream().sorted().toList(),
                Sweeps.read(spark, out).collectAsList().stream().map(r -> r.getString(0)).sorted().toList());
        try (Stream<Path> parts = Files.list(Path.of(out))) {
            String text = parts.filter(p -> p.getFileName().toString().endsWith(".csv")).map(p -> {
                try {
                    return Files.readString(p);
                } catch (java.io.IOException x) {
                    throw new java.io.UncheckedIOException(x);
                }
            }).reduce("", String::concat);
            assertTrue(text.contains("\"q\"\"uote\"") && text.contains("trail \n") && !text.contains("\\"), text);
        }
    }

    /**
     * Was: a second sweep writing the same output, both having found it absent at their start, renamed its rows into
     * a hidden folder inside the first one's output, where no reader looks, and reported the first one's rows.
     */
    @Test
    void aSecondWriterOfTheSameOutputFailsAndTheFirstOnesRowsStay() throws Exception {
        org.apache.spark.sql.types.StructType schema = new org.apache.spark.sql.types.StructType()
                .add("x", org.apache.spark.sql.types.DataTypes.LongType, false);
        String out = out("race.csv");
        assertEquals(2, Sweeps.write(spark, spark.createDataFrame(List.of(org.apache.spark.sql.RowFactory.create(1L),
                org.apache.spark.sql.RowFactory.create(2L)), schema), out));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Sweeps.write(spark,
                spark.createDataFrame(List.of(org.apache.spark.sql.RowFactory.create(3L)), schema), out));
        assertTrue(e.getMessage().contains("written by someone else"), e.getMessage());
        assertEquals(2, Sweeps.read(spark, out).count());
        try (Stream<Path> inside = Files.list(Path.of(out)); Stream<Path> beside = Files.list(dir)) {
            assertTrue(inside.noneMatch(p -> p.getFileName().toString().startsWith(".race.csv")), "nothing moved inside");
            assertTrue(beside.noneMatch(p -> p.getFileName().toString().startsWith(".race.csv")), "no temporary left");
        }
    }

    @Test
    void aReceiverNamedTwiceIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> PatchingSweep.run(spark, MODEL.toString(), prompts(1),
                PathPatching.Route.Q, List.of(Head.of(1, 0), Head.of(1, 0)), out("twice.csv"), Progress.NONE));
    }

    @Test
    void csvHoldsTheSameRowsAsParquet() {
        List<PromptPair> prompts = prompts(3);
        List<Head> receivers = List.of(Head.of(1, 1));
        PatchingSweep.run(spark, MODEL.toString(), prompts, PathPatching.Route.V, receivers, out("v.parquet"), Progress.NONE);
        PatchingSweep.run(spark, MODEL.toString(), prompts, PathPatching.Route.V, receivers, out("v.csv"), Progress.NONE);
        assertEquals(sorted(Sweeps.read(spark, out("v.parquet")).collectAsList()), sorted(Sweeps.read(spark, out("v.csv")).collectAsList()));
    }

    static List<String> sorted(List<Row> rows) {
        return rows.stream().map(Row::toString).sorted().toList();
    }

    @Test
    void aFailedJobLeavesNothingAtOutAndAnExistingOutIsRefused() throws Exception {
        String out = out("failed.parquet");
        List<PromptPair> outOfVocabulary = List.of(prompts(1).getFirst(),
                new PromptPair(1, new long[] {1, 100_000}, new long[] {1, 2}, 72, 71)); // refused inside its task
        assertThrows(Exception.class, () -> PatchingSweep.run(spark, MODEL.toString(), outOfVocabulary,
                PathPatching.Route.Q, List.of(Head.of(1, 0)), out, Progress.NONE));
        assertFalse(Files.exists(Path.of(out)), "nothing at --out");
        try (Stream<Path> left = Files.list(dir)) {
            assertTrue(left.noneMatch(p -> p.getFileName().toString().startsWith(".failed.parquet")), "no temporary left");
        }
        PatchingSweep.run(spark, MODEL.toString(), prompts(1), PathPatching.Route.Q, List.of(Head.of(1, 0)), out("once.csv"), Progress.NONE);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PatchingSweep.run(spark,
                MODEL.toString(), prompts(1), PathPatching.Route.Q, List.of(Head.of(1, 0)), out("once.csv"), Progress.NONE));
        assertTrue(e.getMessage().contains("exists"), e.getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> PatchingSweep.run(spark, MODEL.toString(), prompts(1),
                PathPatching.Route.Q, List.of(Head.of(1, 0)), out("rows.json"), Progress.NONE)).getMessage().contains(".parquet"));
    }

    @Test
    void compositionOfEachCheckpointIsItsAllPairsScores() {
        Path llama = Fixtures.huggingFace("llama");
        // lfm2: convolution layers 0 and 2, whose heads have no score, left out
        List<String> checkpoints = List.of(MODEL.toString(), llama.toString(), Fixtures.huggingFace("lfm2").toString());
        List<long[]> reports = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        long rows = CompositionSweep.run(spark, checkpoints, CompositionScores.Mode.Q, out("q.parquet"),
                (done, total) -> reports.add(new long[] {done, total}));
        // was: the read-back jobs' tasks counted too, so that 2 checkpoints ended as more of more
        assertEquals(List.of("1/3", "2/3", "3/3"), reports.stream().map(r -> r[0] + "/" + r[1]).toList());
        List<Row> all = Sweeps.read(spark, out("q.parquet")).collectAsList();
        assertEquals(rows, all.size());
        for (String c : checkpoints) {
            try (HookedAutoModel m = HookedAutoModel.fromPretrained(Path.of(c));
                 Tensor scores = CompositionScores.allPairs(m, CompositionScores.Mode.Q)) {
                long layers = java.util.stream.IntStream.range(0, m.config().nLayers())
                        .filter(m.config()::attentionHeads).count();
                int heads = m.config().nHeads();
                List<Row> mine = all.stream().filter(r -> r.getAs("checkpoint").equals(c)).toList();
                assertEquals(layers * (layers - 1) / 2 * heads * heads, mine.size(), c);
                for (Row r : mine) {
                    int l1 = r.getAs("sender_layer");
                    int l2 = r.getAs("receiver_layer");
                    assertTrue(l1 < l2 && m.config().attentionHeads(l1) && m.config().attentionHeads(l2));
                    int h1 = r.getAs("sender_head");
                    int h2 = r.getAs("receiver_head");
                    double expected = scores.select(0, l1).select(0, h1).select(0, l2).select(0, h2).item();
                    assertEquals(expected, (double) r.getAs("score"), 0.0);
                }
            }
        }
    }

    /** The receivers of {@code --receivers all} are the heads of the attention layers above the first. */
    @Test
    void allReceiversLeaveOutLayersWithoutHeads() {
        HookedAutoConfig lfm2 = HookedAutoConfig.fromJson(Fixtures.huggingFace("lfm2").resolve("config.json"));
        assertEquals(List.of(Head.of(3, 0), Head.of(3, 1), Head.of(3, 2), Head.of(3, 3)),
                PatchingSweep.allReceivers(lfm2, PathPatching.Route.V));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PatchingSweep.allReceivers(
                lfm2.with("layer_types", List.of("conv", "full_attention", "conv", "conv")), PathPatching.Route.V));
        assertTrue(e.getMessage().contains("1 layer attending by softmax") && e.getMessage().contains("convolution"),
                e.getMessage());
    }

    /**
     * Gemma 4's layers 3 and 4 attend to layers 1's and 2's keys and values: receivers of the query route, not of the
     * key and value routes, which a sweep refuses for them before any work.
     */
    @Test
    void allReceiversOfTheKeyAndValueRoutesLeaveOutLayersThatShareThem() {
        HookedAutoConfig gemma4 = HookedAutoConfig.fromJson(Fixtures.huggingFace("gemma4").resolve("config.json"));
        assertEquals(4 * 4, PatchingSweep.allReceivers(gemma4, PathPatching.Route.Q).size());
        List<Head> keys = PatchingSweep.allReceivers(gemma4, PathPatching.Route.K);
        assertEquals(2 * 4, keys.size());
        assertTrue(keys.stream().allMatch(h -> h.layer() <= 2), keys.toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PatchingSweep.run(spark,
                Fixtures.huggingFace("gemma4").toString(), prompts(1), PathPatching.Route.V, List.of(Head.of(3, 0)),
                dir.resolve("none.parquet").toString(), io.arrakis.Progress.NONE));
        assertTrue(e.getMessage().contains("layer 1's"), e.getMessage());
    }

    /**
     * Was: one folder given twice (by two spellings) gave its rows twice; a checkpoint that failed to load was not
     * named among the others.
     */
    @Test
    void compositionRefusesAFolderTwiceAndNamesACheckpointThatFailsToLoad() throws Exception {
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class, () -> CompositionSweep.run(spark,
                List.of(MODEL.toString(), MODEL + "/"), CompositionScores.Mode.Q, out("twice.parquet"), Progress.NONE));
        assertTrue(twice.getMessage().contains("are the same model folder"), twice.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> CompositionSweep.run(spark,
                List.of(dir.resolve("no-such-model").toString()), CompositionScores.Mode.Q, out("missing.parquet"),
                Progress.NONE));
        assertTrue(missing.getMessage().contains("no-such-model is not a folder"), missing.getMessage());
        Path mismatched = Files.createDirectories(dir.resolve("mismatched"));
        Files.writeString(mismatched.resolve("config.json"), Files.readString(MODEL.resolve("config.json"))
                .replaceFirst("\"n_layer\":\\s*\\d+", "\"n_layer\": 7"));
        Files.copy(MODEL.resolve("model.safetensors"), mismatched.resolve("model.safetensors"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CompositionSweep.rows(mismatched.toString(), CompositionScores.Mode.Q));
        assertTrue(e.getMessage().startsWith("checkpoint " + mismatched + ": "), e.getMessage());
    }
}

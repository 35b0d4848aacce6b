package io.arrakis.sweep;

import io.arrakis.io.ModelFolder;

import io.arrakis.Progress;
import io.arrakis.composer.CompositionScores;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.Tensor;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * All-pairs composition scores of many checkpoints (training steps, or a zoo of models), as one Spark job: a task per
 * checkpoint, which it loads, scores and closes; one row per (checkpoint, sender, receiver) with the sender's layer
 * below the receiver's, both attending by softmax (layers without heads have no score).
 */
public final class CompositionSweep {
    /** The columns of the output. */
    public static final StructType SCHEMA = new StructType()
            .add("checkpoint", DataTypes.StringType, false)
            .add("sender_layer", DataTypes.IntegerType, false)
            .add("sender_head", DataTypes.IntegerType, false)
            .add("receiver_layer", DataTypes.IntegerType, false)
            .add("receiver_head", DataTypes.IntegerType, false)
            .add("mode", DataTypes.StringType, false)
            .add("score", DataTypes.DoubleType, false);

    private CompositionSweep() {
    }

    /**
     * The model folders named: each as given, or, for a folder without a {@code config.json}, its subfolders that have
     * one, by name. A Hugging Face hub cache folder ({@code models--ORG--NAME}) counts as the model folder it holds,
     * resolved here to the snapshot its {@code refs/main} names (the rows' {@code checkpoint} then says which
     * revision was scored, and every executor reads that one).
     *
     * @throws IllegalArgumentException for a name that is no folder, a folder without models, or one model folder
     *     reached twice (its rows would be too)
     */
    public static List<String> checkpoints(List<String> given) {
        List<String> found = new ArrayList<>();
        for (String g : given) {
            if (g.isBlank()) { // Path.of("") would be the working folder, and a folder of models there would be swept
                throw new IllegalArgumentException("--checkpoints: an empty folder name ('" + g + "'; a comma too many?)");
            }
            Path dir = Path.of(g);
            if (isModelFolder(dir)) {
                found.add(g);
                continue;
            }
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException("--checkpoints: " + g + " is not a folder");
            }
            try (Stream<Path> children = Files.list(dir)) {
                List<String> inside = children.filter(CompositionSweep::isModelFolder).sorted()
                        .map(Path::toString).toList();
                if (inside.isEmpty()) {
                    throw new IllegalArgumentException("--checkpoints: " + g + " has no config.json, nor subfolders with one");
                }
                found.addAll(inside);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        if (found.isEmpty()) {
            throw new IllegalArgumentException("--checkpoints: no folders given");
        }
        checkDistinct(found, "--checkpoints: ");
        List<String> out = new ArrayList<>();
        for (String f : found) {
            Path folder = ModelFolder.resolve(Path.of(f));
            out.add(folder.equals(Path.of(f)) ? f : folder.toString());
        }
        return out;
    }

    /** Refuses two names of one model folder (its rows would be there twice); {@code prefix} begins the message. */
    private static void checkDistinct(List<String> names, String prefix) {
        Map<Path, String> byFolder = new LinkedHashMap<>();
        for (String name : names) {
            String earlier = byFolder.putIfAbsent(realFolder(name), name);
            if (earlier != null) {
                throw new IllegalArgumentException(prefix + name + " and " + earlier + " are the same model folder");
            }
        }
    }

    /** The model folder {@code name} reaches, links and hub caches followed. */
    private static Path realFolder(String name) {
        Path folder = ModelFolder.resolve(Path.of(name));
        if (!Files.isDirectory(folder)) {
            throw new IllegalArgumentException("checkpoint " + name + " is not a folder");
        }
        try {
            return folder.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the model folder " + name + ": " + e.getMessage(), e);
        }
    }

    private static boolean isModelFolder(Path dir) {
        return Files.isRegularFile(ModelFolder.resolve(dir).resolve("config.json"));
    }

    /** The rows of one checkpoint: what each task computes, without Spark. */
    public static List<Row> rows(String checkpoint, CompositionScores.Mode mode) {
        List<Row> rows = new ArrayList<>();
        HookedAutoModel loaded;
        try {
            loaded = HookedAutoModel.fromPretrained(Path.of(checkpoint));
        } catch (IllegalArgumentException e) { // among many checkpoints, say which
            throw new IllegalArgumentException("checkpoint " + checkpoint + ": " + e.getMessage(), e);
        }
        try (HookedAutoModel model = loaded; Tensor scores = CompositionScores.allPairs(model, mode)) {
            HookedAutoConfig c = model.config();
            int layers = c.nLayers();
            int heads = c.nHeads();
            double[] s = scores.toDoubleArray();
            for (int l1 = 0; l1 < layers; l1++) {
                for (int h1 = 0; h1 < heads && c.attentionHeads(l1); h1++) {
                    for (int l2 = l1 + 1; l2 < layers; l2++) {
                        for (int h2 = 0; h2 < heads && c.attentionHeads(l2); h2++) {
                            rows.add(RowFactory.create(checkpoint, l1, h1, l2, h2, mode.name(),
                                    s[((l1 * heads + h1) * layers + l2) * heads + h2]));
                        }
                    }
                }
            }
        }
        return rows;
    }

    /**
     * Scores every checkpoint and writes the rows to {@code out}; returns how many.
     *
     * @throws IllegalArgumentException for one model folder named twice (its rows would be too)
     */
    public static long run(SparkSession spark, List<String> checkpoints, CompositionScores.Mode mode, String out,
                           Progress progress) {
        checkDistinct(checkpoints, "checkpoints ");
        Sweeps.checkNew(spark, out);
        JavaSparkContext context = JavaSparkContext.fromSparkContext(spark.sparkContext());
        JavaRDD<Row> rows = context.parallelize(checkpoints, checkpoints.size())
                .flatMap(c -> rows(c, mode).iterator());
        return Sweeps.withProgress(spark, progress, () -> Sweeps.write(spark, spark.createDataFrame(rows, SCHEMA), out));
    }
}

package io.arrakis.sweep;

import io.arrakis.model.HookedAutoModel;
import org.apache.spark.sql.SparkSession;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The models of one JVM (a Spark executor, or the driver in local mode), one per model folder and version of its files:
 * loaded, memory-mapped, by the first task that needs it and shared by every later task and thread of the JVM. Weights
 * are never broadcast and never loaded per task. A folder whose config or weights changed (size or modification time)
 * is loaded again for a later sweep; a task that finds other files than the driver found when its sweep began fails,
 * so that no sweep mixes rows of two models. In local mode the models are closed when no sweep of the JVM is running;
 * on an executor, when its JVM ends.
 */
final class ExecutorModels {
    private static final ConcurrentHashMap<String, HookedAutoModel> MODELS = new ConcurrentHashMap<>();
    /** Sweeps running in local mode, in whose JVM their tasks load models. */
    private static int localRuns;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> MODELS.values().forEach(HookedAutoModel::close),
                "arrakis-executor-models"));
    }

    private ExecutorModels() {
    }

    /**
     * The model in {@code folder} for a task of a sweep that began when the folder's files were at {@code version}
     * ({@link #version(String)} on the driver).
     *
     * @throws IllegalStateException where the folder's files are not at that version any more, or not on this machine
     */
    static HookedAutoModel get(String folder, String version) {
        Path path = Path.of(folder).toAbsolutePath().normalize();
        String now = version(path);
        if (!now.equals(version)) {
            throw new IllegalStateException("the model folder " + path + " is not as it was when the sweep began (its"
                    + " config or weights changed, or this machine has other copies than the driver's): a sweep's rows"
                    + " must all come from one model; run it again once the files stay as they are");
        }
        return MODELS.computeIfAbsent(path + "\n" + now, key -> HookedAutoModel.fromPretrained(path));
    }

    /**
     * The names, sizes and modification times of the folder's config and weights, which loading reads: the same on
     * every machine that sees the same files, copies that keep their times included.
     */
    static String version(String folder) {
        return version(Path.of(folder).toAbsolutePath().normalize());
    }

    private static String version(Path folder) {
        List<String> parts = new ArrayList<>();
        try (Stream<Path> files = Files.list(folder)) {
            for (Path f : files.filter(f -> f.getFileName().toString().equals("config.json")
                    || f.getFileName().toString().contains(".safetensors")).sorted().toList()) {
                BasicFileAttributes a = Files.readAttributes(f, BasicFileAttributes.class); // through links, as loading
                parts.add(f.getFileName() + " " + a.size() + " " + a.lastModifiedTime().toMillis());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the model folder " + folder + ": " + e.getMessage(), e);
        }
        return String.join("; ", parts);
    }

    /** Runs {@code sweep}; in local mode, closes the models once no sweep of this JVM runs any more. */
    static <T> T during(SparkSession spark, Supplier<T> sweep) {
        if (!spark.sparkContext().isLocal()) {
            return sweep.get();
        }
        synchronized (ExecutorModels.class) {
            localRuns++;
        }
        try {
            return sweep.get();
        } finally {
            synchronized (ExecutorModels.class) {
                if (--localRuns == 0) {
                    MODELS.values().forEach(HookedAutoModel::close);
                    MODELS.clear();
                }
            }
        }
    }

    /** How many models this JVM holds. */
    static int loaded() {
        return MODELS.size();
    }
}

package io.arrakis.sweep;

import io.arrakis.model.HookedAutoModel;

import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The models of one JVM (a Spark executor, or the driver in local mode), one per model folder: loaded, memory-mapped,
 * by the first task that needs it and shared by every later task and thread of the JVM; closed when the JVM ends,
 * which is when its executor stops. Weights are never broadcast and never loaded per task.
 */
final class ExecutorModels {
    private static final ConcurrentHashMap<String, HookedAutoModel> MODELS = new ConcurrentHashMap<>();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> MODELS.values().forEach(HookedAutoModel::close),
                "arrakis-executor-models"));
    }

    private ExecutorModels() {
    }

    static HookedAutoModel get(String folder) {
        String key = Path.of(folder).toAbsolutePath().normalize().toString();
        return MODELS.computeIfAbsent(key, f -> HookedAutoModel.fromPretrained(Path.of(f)));
    }

    /** How many models this JVM holds. */
    static int loaded() {
        return MODELS.size();
    }
}

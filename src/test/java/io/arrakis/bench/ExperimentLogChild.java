package io.arrakis.bench;

import io.arrakis.model.HookedAutoConfig;
import io.arrakis.torch.Tensor;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs in a child JVM for {@link ExperimentLogTest}: writes records ({@code write DIR}), reads them
 * ({@code read DIR NAME}), or writes two and then dies half-way through the temporary file of a third
 * ({@code crash DIR}: {@code Runtime.halt(3)} from the write seam, as a power cut or {@code kill -9} would).
 */
public final class ExperimentLogChild {
    static final String NAME = "child-experiment";
    static final int CRASH_EXIT = 3;

    private ExperimentLogChild() {
    }

    /** Arguments of run {@code i}. */
    static Map<String, Object> arguments(int i) {
        Map<String, Object> args = new LinkedHashMap<>();
        args.put("run", i);
        args.put("lr", 0.125 * i);
        args.put("layers", List.of(0, 1));
        return args;
    }

    /** Result of run {@code i}; the tensor is the caller's to close. */
    static Map<String, Object> result(int i, Tensor t) {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("score", i / 3.0);
        result.put("nan", Double.NaN);
        result.put("tensor", t);
        return result;
    }

    static Tensor tensor(int i) {
        return Tensor.of(new float[] {i, 0.5f, -1.25f, 1e-7f, 3, 4}, 2, 3);
    }

    static Instant start(int i) {
        return Instant.parse("2026-01-02T03:04:05.123456789Z").plusSeconds(60L * i);
    }

    /** Logs run {@code i}. */
    static ExperimentRecord log(ExperimentLog log, int i) {
        try (Tensor t = tensor(i)) {
            return log.record(NAME, arguments(i), result(i, t), start(i), Duration.ofNanos(1_000_000_007L * (i + 1)),
                    HookedAutoConfig.of("gpt2"));
        }
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[1]);
        ExperimentLog log = new ExperimentLog(dir, ExperimentLog.Options.defaults().withSaveTensors(true));
        switch (args[0]) {
            case "write" -> {
                for (int i = 0; i < 3; i++) {
                    System.out.println("VERSION " + log(log, i).version());
                }
            }
            case "read" -> {
                for (ExperimentRecord r : log.listVersions(args[2])) {
                    System.out.print(r.toJson());
                    System.out.println("END " + r.version());
                }
            }
            case "crash" -> {
                log(log, 0);
                log(log, 1);
                log.onMidWrite(temp -> Runtime.getRuntime().halt(CRASH_EXIT));
                log(log, 2);
                System.out.println("NOT REACHED");
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}

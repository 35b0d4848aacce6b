package io.arrakis.bench;

import io.arrakis.json.Json;

import java.nio.file.Path;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * One logged run of an experiment, as {@link ExperimentLog} stores it and reads it back.
 *
 * <p>{@code arguments}, {@code result} and {@code modelConfig} hold the <em>JSON form</em> of what was logged (maps,
 * lists, strings, {@code Long}, {@code Double}, {@code Boolean}, {@code null}; tensors as summaries, see
 * {@link TensorSummary}), so the record {@link ExperimentLog#record} returns equals the one
 * {@link ExperimentLog#getVersion} reads back, in this JVM or another.
 *
 * @param name            the experiment's name
 * @param version         the content hash of (name, arguments, result): 16 lower-case hex digits
 * @param arguments       argument name to value, in the order given
 * @param result          the result
 * @param startTime       when the run started
 * @param duration        how long it ran
 * @param libraryVersion  the arrakis-jvm version ({@link io.arrakis.Version#get()})
 * @param libtorchVersion the libtorch version loaded ({@code LibTorch.load().version()})
 * @param modelConfig     the model's Hugging Face configuration ({@code model_type} first), or null when no model
 * @param file            the JSON file the record is stored in
 */
public record ExperimentRecord(String name, String version, Map<String, Object> arguments, Object result,
                               Instant startTime, Duration duration, String libraryVersion, String libtorchVersion,
                               Map<String, Object> modelConfig, Path file) {

    /** Format tag written into every record file, for readers of other versions. */
    public static final String FORMAT = "arrakis-jvm experiment record 1";

    /** Checks that nothing required is null. */
    public ExperimentRecord {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(version, "version");
        Objects.requireNonNull(arguments, "arguments");
        Objects.requireNonNull(startTime, "startTime");
        Objects.requireNonNull(duration, "duration");
        Objects.requireNonNull(libraryVersion, "libraryVersion");
        Objects.requireNonNull(libtorchVersion, "libtorchVersion");
        Objects.requireNonNull(file, "file");
    }

    /**
     * The record as it is stored: an ordered map of {@code format}, {@code name}, {@code version},
     * {@code start_time} (ISO-8601 instant), {@code duration} (ISO-8601 duration), {@code library_version},
     * {@code libtorch_version}, {@code model_config}, {@code arguments} and {@code result}. The file path is not part
     * of it.
     *
     * @return an unmodifiable ordered map
     */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("format", FORMAT);
        m.put("name", name);
        m.put("version", version);
        m.put("start_time", startTime.toString());
        m.put("duration", duration.toString());
        m.put("library_version", libraryVersion);
        m.put("libtorch_version", libtorchVersion);
        m.put("model_config", modelConfig);
        m.put("arguments", arguments);
        m.put("result", result);
        return java.util.Collections.unmodifiableMap(m);
    }

    /**
     * {@link #toMap()} as indented JSON text, which is exactly the content of {@link #file()}.
     *
     * @return JSON text ending in a newline
     */
    public String toJson() {
        return Json.writeIndented(toMap()) + "\n";
    }

    /**
     * Every tensor summary inside the arguments and the result, in document order.
     *
     * @return the summaries (each names its path, e.g. {@code result.scores[2]}, as {@link TensorSummary#key()})
     */
    public List<TensorSummary> tensors() {
        List<TensorSummary> out = new ArrayList<>();
        collect(arguments, "arguments", out::add);
        collect(result, "result", out::add);
        return List.copyOf(out);
    }

    private static void collect(Object json, String path, Consumer<TensorSummary> sink) {
        TensorSummary summary = TensorSummary.from(json, path);
        if (summary != null) {
            sink.accept(summary);
        } else if (json instanceof Map<?, ?> m) {
            m.forEach((k, v) -> collect(v, ExperimentValues.member(path, (String) k), sink));
        } else if (json instanceof List<?> l) {
            for (int i = 0; i < l.size(); i++) {
                collect(l.get(i), path + "[" + i + "]", sink);
            }
        }
    }

    /**
     * Reads a record from the text of {@code file}.
     *
     * @throws IllegalStateException naming the file when the text is not a valid record
     */
    @SuppressWarnings("unchecked")
    static ExperimentRecord parse(String text, Path file) {
        try {
            if (!(Json.parse(text) instanceof Map<?, ?> m)) {
                throw new IllegalArgumentException("not a JSON object");
            }
            if (!ExperimentRecord.FORMAT.equals(m.get("format"))) {
                throw new IllegalArgumentException("format is " + m.get("format") + ", expected "
                        + ExperimentRecord.FORMAT);
            }
            String version = (String) m.get("version");
            if (!file.getFileName().toString().equals(version + ".json")) {
                throw new IllegalArgumentException("version " + version + " does not match the file name");
            }
            return new ExperimentRecord((String) m.get("name"), version, (Map<String, Object>) m.get("arguments"),
                    m.get("result"), Instant.parse((String) m.get("start_time")),
                    Duration.parse((String) m.get("duration")), (String) m.get("library_version"),
                    (String) m.get("libtorch_version"), (Map<String, Object>) m.get("model_config"), file);
        } catch (IllegalArgumentException | ClassCastException | NullPointerException | DateTimeException e) {
            throw new IllegalStateException("not a valid experiment record: " + file + ": " + e.getMessage(), e);
        }
    }

    /** Name, version, start time, duration and the arguments, on one line. */
    @Override
    public String toString() {
        String args = Json.write(arguments);
        if (args.length() > 200) {
            args = args.substring(0, 200) + "...";
        }
        return "ExperimentRecord[" + name + " " + version + ", started " + startTime + ", took " + duration
                + ", arguments " + args + "]";
    }
}

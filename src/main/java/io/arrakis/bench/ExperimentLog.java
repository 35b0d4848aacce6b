package io.arrakis.bench;

import io.arrakis.Version;
import io.arrakis.json.Json;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.safetensors.SafeTensorsException;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Experiment tracking: Arrakis's {@code log_experiment}, {@code list_versions} and {@code get_version}, persisted as
 * JSON files under a save folder.
 *
 * <h2>Layout</h2>
 * Each run is one file {@code saveDir/<name>/<version>.json} (the content of {@link ExperimentRecord#toJson()}); with
 * {@link Options#saveTensors()} its tensors are written in full to {@code saveDir/<name>/<version>.safetensors},
 * named by their path in the record ({@code result.scores[2]}).
 *
 * <h2>Versions</h2>
 * The version is the first {@value #VERSION_LENGTH} hex digits (64 bits) of the SHA-256 of the canonical JSON of
 * {@code {"name", "arguments", "result"}}: compact, object keys sorted, each tensor reduced to its dtype, shape and the
 * SHA-256 of its elements. So equal content gives an equal version whatever the map order, the tensor's device, the
 * value limit or the save option, and any difference in content (a tensor's elements included) gives another one. The
 * start time, duration and environment are not part of it. 64 bits make an accidental collision unlikely below
 * billions of records of one name. Numbers are written by {@link Double#toString} (the shortest text that reads back
 * the same double), and strings as Jackson escapes them (quote, backslash and control characters only, the latter
 * as {@code \n}, {@code \t}, ... or <code>&#92;u001F</code> with upper-case hex digits; everything else as UTF-8
 * text), so the text, and the version, are the same on every JDK this library runs on. Logging a version that exists
 * already <b>replaces</b> its record (the same content, run again: the latest run's time and environment
 * win), so a name lists each content once; the tensor data the earlier record kept (its saved tensors, values stored
 * under a larger value limit) stays in the new one where this run would not keep it.
 *
 * <h2>Values</h2>
 * Arguments and results may hold {@code null}, booleans, strings, characters, boxed integers and floating-point
 * numbers, enums (by name), records (as objects of their components, in declaration order), {@code Map}s with
 * {@code String} keys (in iteration order), {@code List}s, object and primitive arrays (a {@code char[]} as the string
 * it spells), and {@link Tensor}s (see
 * {@link TensorSummary}). Integers are read back as {@code Long}, floating-point numbers as {@code Double}. JSON has no
 * NaN or infinity: they are written as the strings {@code "NaN"}, {@code "Infinity"} and {@code "-Infinity"}, and read
 * back as those strings ({@link TensorSummary#valuesAsDoubles()} turns them back into doubles); so the number NaN and
 * the string {@code "NaN"} are one content to the log, with one version. Arguments are taken as they are when
 * {@link #run} starts, before the experiment may change or close them. Anything else — a
 * {@code Set}, a {@code BigDecimal}, a {@code Path}, any other object — is refused with an
 * {@link IllegalArgumentException} naming the type and where it sits, e.g. {@code result.scores[2]}.
 *
 * <h2>Safety</h2>
 * Experiment names are single folder names: empty names, {@code .}, {@code ..}, names starting with a dot, names with
 * {@code /}, {@code \}, {@code :}, control characters or unpaired surrogates, names that start or end with white space,
 * and names longer than 200 UTF-8 bytes are refused, so no name reaches outside {@code saveDir}. Each file is written
 * under a temporary name ({@code .<file>.<random>.tmp}) in the same folder, forced to disk and then renamed over the
 * final name with {@code ATOMIC_MOVE}: a crash leaves at most a temporary file, which readers ignore and {@link
 * #removeTempFiles(Duration)} deletes (and, when tensors are saved, a complete safetensors file that no record names
 * yet, since it is written first). Any number of threads and processes may log into one folder at once: a record is
 * read, merged with the earlier one and written holding the lock of its experiment's {@code .lock} file.
 */
public final class ExperimentLog {
    /** Hex digits in a version. */
    public static final int VERSION_LENGTH = 16;

    private static final Pattern VERSION = Pattern.compile("[0-9a-f]{" + VERSION_LENGTH + "}");

    /**
     * How values are written.
     *
     * @param tensorValueLimit tensors with at most this many elements carry their values in the JSON (0: never)
     * @param saveTensors      whether every tensor is also written in full to a safetensors file beside the record
     */
    public record Options(int tensorValueLimit, boolean saveTensors) {
        /** The default {@link #tensorValueLimit()}. */
        public static final int DEFAULT_TENSOR_VALUE_LIMIT = 1024;

        /** Checks the limit is not negative. */
        public Options {
            if (tensorValueLimit < 0) {
                throw new IllegalArgumentException("tensorValueLimit must be >= 0, got " + tensorValueLimit);
            }
        }

        /**
         * Values of tensors up to {@value #DEFAULT_TENSOR_VALUE_LIMIT} elements, no safetensors files.
         *
         * @return the defaults
         */
        public static Options defaults() {
            return new Options(DEFAULT_TENSOR_VALUE_LIMIT, false);
        }

        /**
         * These options with another value limit.
         *
         * @param limit the new limit
         * @return new options
         */
        public Options withTensorValueLimit(int limit) {
            return new Options(limit, saveTensors);
        }

        /**
         * These options with saving tensors on or off.
         *
         * @param save whether to save
         * @return new options
         */
        public Options withSaveTensors(boolean save) {
            return new Options(tensorValueLimit, save);
        }
    }

    private final Path saveDir;
    private final Options options;
    /** Test seam: called with the temporary file when half of a record's bytes are in it. */
    private volatile Consumer<Path> midWrite = temp -> { };

    /**
     * A log with {@link Options#defaults()}.
     *
     * @param saveDir the folder to keep records in; created (with its parents) if missing
     * @throws UncheckedIOException if it cannot be created
     */
    public ExperimentLog(Path saveDir) {
        this(saveDir, Options.defaults());
    }

    /**
     * A log.
     *
     * @param saveDir the folder to keep records in; created (with its parents) if missing
     * @param options how values are written
     * @throws UncheckedIOException if the folder cannot be created
     */
    public ExperimentLog(Path saveDir, Options options) {
        this.saveDir = Objects.requireNonNull(saveDir, "saveDir").toAbsolutePath().normalize();
        this.options = Objects.requireNonNull(options, "options");
        try {
            Files.createDirectories(this.saveDir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the experiment folder " + this.saveDir + ": " + e, e);
        }
    }

    /** @return the (absolute) folder the records are kept in */
    public Path saveDir() {
        return saveDir;
    }

    /** @return how values are written */
    public Options options() {
        return options;
    }

    /** Sets the test seam; package-private. */
    void onMidWrite(Consumer<Path> hook) {
        midWrite = Objects.requireNonNull(hook);
    }

    // ------------------------------------------------------------------------------------------------ writing

    /**
     * Persists one run of experiment {@code name}.
     *
     * @param name        the experiment's name (a single folder name, see the class comment)
     * @param arguments   argument name to value, in the order to keep (may be empty)
     * @param result      the result (may be null)
     * @param startTime   when the run started
     * @param duration    how long it ran (not negative)
     * @param modelConfig the model's configuration, or null when the experiment has no model
     * @return the record as stored (and as {@link #getVersion} reads it back)
     * @throws IllegalArgumentException for a bad name, a negative duration, or a value that cannot be logged (naming
     *                                  its type and path)
     * @throws UncheckedIOException     if writing fails; no partial record is left
     * @throws io.arrakis.model.safetensors.SafeTensorsException with {@link Options#saveTensors()}, if a tensor
     *                                  cannot be stored as safetensors (complex128); nothing is recorded then
     */
    public ExperimentRecord record(String name, Map<String, ?> arguments, Object result, Instant startTime,
                                   Duration duration, HookedAutoConfig modelConfig) {
        folder(name);
        try (Arguments args = arguments(arguments)) {
            return record(name, args, result, startTime, duration, modelConfig);
        }
    }

    /**
     * Arguments as the log keeps them, taken before the experiment runs (which may change or close them): their JSON,
     * and with {@link Options#saveTensors()} copies of their tensors, freed when this is closed.
     */
    private final class Arguments implements AutoCloseable {
        final Object json;
        final List<ExperimentValues.TensorRef> tensors = new ArrayList<>();

        Arguments(Map<String, ?> arguments) {
            List<ExperimentValues.TensorRef> found = new ArrayList<>();
            json = ExperimentValues.encode(arguments, "arguments", options.tensorValueLimit(), found);
            try {
                for (ExperimentValues.TensorRef ref : found) {
                    tensors.add(options.saveTensors() ? new ExperimentValues.TensorRef(ref.key(),
                            TensorScope.unscoped(() -> List.of(ref.tensor().copy())).getFirst(), ref.summary()) : ref);
                }
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        @Override
        public void close() {
            if (options.saveTensors()) {
                tensors.forEach(ref -> ref.tensor().close());
            }
        }
    }

    private Arguments arguments(Map<String, ?> arguments) {
        return new Arguments(Objects.requireNonNull(arguments, "arguments"));
    }

    private ExperimentRecord record(String name, Arguments arguments, Object result, Instant startTime,
                                    Duration duration, HookedAutoConfig modelConfig) {
        Path dir = folder(name);
        Objects.requireNonNull(startTime, "startTime");
        Objects.requireNonNull(duration, "duration");
        if (duration.isNegative()) {
            throw new IllegalArgumentException("duration must not be negative, got " + duration);
        }
        List<ExperimentValues.TensorRef> tensors = new ArrayList<>(arguments.tensors);
        Object args = arguments.json;
        Object res = ExperimentValues.encode(result, "result", options.tensorValueLimit(), tensors);
        String version = hash(name, args, res);

        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir + ": " + e, e);
        }
        if (options.saveTensors() && !tensors.isEmpty()) {
            String tensorFile = version + ".safetensors";
            Map<String, Tensor> data = new LinkedHashMap<>();
            for (ExperimentValues.TensorRef ref : tensors) {
                data.put(ref.key(), ref.tensor());
                ref.summary().put("file", tensorFile);
                ref.summary().put("key", ref.key());
            }
            // before the JSON, so that a record never names a file that is not there
            SafeTensorsWriter.write(dir.resolve(tensorFile), data, Map.of("experiment", name, "version", version));
        }
        return RecordFiles.locked(dir, () -> {
            keepEarlierData(dir, version, tensors);
            return write(dir, name, version, startTime, duration, modelConfig, args, res);
        });
    }

    private ExperimentRecord write(Path dir, String name, String version, Instant startTime, Duration duration,
                                   HookedAutoConfig modelConfig, Object args, Object res) {
        Map<String, Object> stored = new LinkedHashMap<>();
        stored.put("format", ExperimentRecord.FORMAT);
        stored.put("name", name);
        stored.put("version", version);
        stored.put("start_time", startTime.toString());
        stored.put("duration", duration.toString());
        stored.put("library_version", Version.get());
        stored.put("libtorch_version", LibTorch.load().version());
        stored.put("model_config", modelConfig == null ? null : Json.parse(modelConfig.toJson()));
        stored.put("arguments", args);
        stored.put("result", res);
        String text = Json.writeIndented(stored) + "\n";
        Path file = dir.resolve(version + ".json");
        RecordFiles.writeAtomically(file, text.getBytes(StandardCharsets.UTF_8), midWrite);
        return ExperimentRecord.parse(text, file);
    }

    /**
     * Gives each tensor this record keeps no data of the data the record of the same version already stored kept: its
     * saved file, or its values once they match the tensor's SHA-256. A record that cannot be read is replaced as it is.
     */
    private static void keepEarlierData(Path dir, String version, List<ExperimentValues.TensorRef> tensors) {
        if (tensors.stream().allMatch(ExperimentLog::keepsData)) {
            return;
        }
        Map<String, TensorSummary> earlier = new HashMap<>();
        ExperimentRecord r;
        try {
            r = RecordFiles.read(dir.resolve(version + ".json"));
            if (r == null) {
                return;
            }
            r.tensors().forEach(summary -> earlier.put(summary.key(), summary));
        } catch (RuntimeException unreadable) {
            return;
        }
        String tensorFile = version + ".safetensors";
        for (ExperimentValues.TensorRef ref : tensors) {
            TensorSummary old = earlier.get(ref.key());
            if (keepsData(ref) || old == null || !old.sha256().equals(ref.summary().get("sha256"))) {
                continue;
            }
            if (tensorFile.equals(old.file()) && Files.isRegularFile(dir.resolve(tensorFile))) {
                ref.summary().put("file", tensorFile);
                ref.summary().put("key", ref.key());
            } else if (old.values() != null && valuesMatch(old, r)) {
                ref.summary().put("values", old.values());
            }
        }
    }

    private static boolean keepsData(ExperimentValues.TensorRef ref) {
        return ref.summary().containsKey("values") || ref.summary().containsKey("file");
    }

    private static boolean valuesMatch(TensorSummary summary, ExperimentRecord record) {
        long[] shape = summary.shape().stream().mapToLong(Long::longValue).toArray();
        try (Tensor t = fromValues(summary, dtype(summary, record), shape, record)) {
            checkHash(summary, t, record);
            return true;
        } catch (RuntimeException damaged) {
            return false;
        }
    }

    /**
     * Runs {@code experiment}, times it and {@linkplain #record records} it: Arrakis's {@code log_experiment}.
     *
     * @param name        the experiment's name
     * @param arguments   its arguments
     * @param modelConfig the model's configuration, or null
     * @param experiment  computes the result
     * @return the stored record
     * @throws ExperimentNotLoggedException if the run cannot be recorded, holding its result and why
     */
    public ExperimentRecord run(String name, Map<String, ?> arguments, HookedAutoConfig modelConfig,
                                Supplier<?> experiment) {
        folder(name); // a bad name fails before the work is done
        try (Arguments args = arguments(arguments)) { // as they are before the work, which may change them
            Instant start = Instant.now();
            long t0 = System.nanoTime();
            Object result = experiment.get();
            Duration took = Duration.ofNanos(System.nanoTime() - t0);
            try {
                return record(name, args, result, start, took, modelConfig);
            } catch (RuntimeException e) {
                throw new ExperimentNotLoggedException(name, result, e);
            }
        }
    }

    /**
     * The version {@link #record} would give this content, without writing anything.
     *
     * @param name      the experiment's name
     * @param arguments its arguments
     * @param result    its result
     * @return {@value #VERSION_LENGTH} lower-case hex digits
     */
    public static String version(String name, Map<String, ?> arguments, Object result) {
        checkName(name);
        List<ExperimentValues.TensorRef> ignored = new ArrayList<>();
        return hash(name, ExperimentValues.encode(Objects.requireNonNull(arguments, "arguments"), "arguments", 0, ignored),
                ExperimentValues.encode(result, "result", 0, ignored));
    }

    private static String hash(String name, Object args, Object res) {
        Map<String, Object> content = new LinkedHashMap<>();
        content.put("name", name);
        content.put("arguments", args);
        content.put("result", res);
        return ExperimentValues.sha256Hex(ExperimentValues.canonical(content), VERSION_LENGTH);
    }

    // ------------------------------------------------------------------------------------------------ reading

    /**
     * The names of the experiments logged so far (folders holding at least one record), sorted.
     *
     * @return experiment names
     */
    public List<String> names() {
        try (Stream<Path> entries = Files.list(saveDir)) {
            return entries.filter(Files::isDirectory).filter(p -> RecordFiles.isName(p.getFileName().toString()))
                    .filter(p -> !RecordFiles.recordFiles(p).isEmpty()).map(p -> p.getFileName().toString()).sorted()
                    .toList();
        } catch (NoSuchFileException removed) {
            return List.of();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + saveDir + ": " + e, e);
        }
    }

    /**
     * Every version of experiment {@code name}, oldest start time first (ties by version).
     *
     * @param name the experiment's name
     * @return its records
     * @throws NoSuchElementException   if no record is stored under that name (the message lists the names there are)
     * @throws IllegalArgumentException for a bad name
     * @throws IllegalStateException    if a record file is not a valid record (it was edited or damaged), naming it
     */
    public List<ExperimentRecord> listVersions(String name) {
        Path dir = existingFolder(name);
        List<ExperimentRecord> records = new ArrayList<>();
        for (Path file : RecordFiles.recordFiles(dir)) {
            ExperimentRecord r = RecordFiles.read(file);
            if (r != null) {
                records.add(checked(r, name));
            }
        }
        records.sort(Comparator.comparing(ExperimentRecord::startTime).thenComparing(ExperimentRecord::version));
        return List.copyOf(records);
    }

    /**
     * One version of experiment {@code name}.
     *
     * @param name    the experiment's name
     * @param version its version ({@value #VERSION_LENGTH} hex digits)
     * @return the record
     * @throws NoSuchElementException   if there is no such experiment or version (the message lists what there is)
     * @throws IllegalArgumentException for a bad name or a string that is not a version
     * @throws IllegalStateException    if the record file is not a valid record
     */
    public ExperimentRecord getVersion(String name, String version) {
        Path dir = existingFolder(name);
        Objects.requireNonNull(version, "version");
        if (!VERSION.matcher(version).matches()) {
            throw new IllegalArgumentException("not a version: " + Json.quote(version) + " (versions are "
                    + VERSION_LENGTH + " lower-case hex digits)");
        }
        ExperimentRecord r = RecordFiles.read(dir.resolve(version + ".json"));
        if (r == null) {
            List<String> known = RecordFiles.recordFiles(dir).stream().map(p -> p.getFileName().toString().substring(0, VERSION_LENGTH))
                    .sorted().toList();
            throw new NoSuchElementException("experiment " + Json.quote(name) + " has no version " + version + " in "
                    + saveDir + "; its versions: " + (known.size() > 20 ? known.subList(0, 20) + " and "
                    + (known.size() - 20) + " more" : known));
        }
        return checked(r, name);
    }

    /**
     * {@code r}, read from {@code name}'s folder, once its content is found to be what its version and folder say: a
     * record edited after it was logged, or copied into another experiment's folder, is refused.
     */
    private static ExperimentRecord checked(ExperimentRecord r, String name) {
        if (!r.name().equals(name)) {
            throw new IllegalStateException("not a valid experiment record: " + r.file() + ": it records experiment "
                    + Json.quote(r.name()) + " but lies in the folder of " + Json.quote(name));
        }
        String content = hash(r.name(), r.arguments(), r.result());
        if (!content.equals(r.version())) {
            throw new IllegalStateException("not a valid experiment record: " + r.file() + ": its content is version "
                    + content + ", not " + r.version() + " (it was edited or damaged)");
        }
        // the version hashes each tensor's summary, its SHA-256 included, but not the values written beside it
        List<TensorSummary> summaries;
        try {
            summaries = r.tensors();
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("not a valid experiment record: " + r.file() + ": " + e.getMessage()
                    + " (it was edited or damaged)", e);
        }
        for (TensorSummary summary : summaries) {
            if (summary.values() != null) {
                long[] shape = summary.shape().stream().mapToLong(Long::longValue).toArray();
                try (Tensor t = fromValues(summary, dtype(summary, r), shape, r)) {
                    checkHash(summary, t, r);
                }
            }
        }
        return r;
    }

    /**
     * A logged tensor, in full: from the record's safetensors file when it was saved, else from the values in the
     * JSON (converted to its dtype). Either way its elements are checked against the logged SHA-256.
     *
     * @param record a record of this log
     * @param key    the tensor's path in the record, e.g. {@code result.scores[2]}
     * @return a new CPU tensor, the caller's to close
     * @throws NoSuchElementException if the record has no tensor at {@code key}
     * @throws IllegalStateException  if the tensor was logged without its data, its file cannot be read, or the data
     *                                does not match its hash
     */
    public Tensor loadTensor(ExperimentRecord record, String key) {
        TensorSummary summary = record.tensors().stream().filter(s -> s.key().equals(key)).findFirst()
                .orElseThrow(() -> new NoSuchElementException("record " + record.name() + " " + record.version()
                        + " has no tensor at " + key + "; its tensors: "
                        + record.tensors().stream().map(TensorSummary::key).toList()));
        long[] shape = summary.shape().stream().mapToLong(Long::longValue).toArray();
        DType dtype = dtype(summary, record);
        Tensor t;
        if (summary.file() != null) {
            Path file = record.file().getParent().resolve(summary.file()).normalize();
            if (!file.getParent().equals(record.file().getParent().normalize())) {
                throw new IllegalStateException("record " + record.file() + " names a tensor file outside its folder: "
                        + summary.file());
            }
            try (SafeTensorsFile st = SafeTensorsFile.open(file)) {
                t = st.tensor(key);
            } catch (SafeTensorsException | UncheckedIOException e) {
                throw new IllegalStateException("tensor " + key + " of record " + record.file() + " cannot be read from"
                        + " its file " + file + " (the file was removed, changed or damaged): " + e.getMessage(), e);
            }
            if (t.dtype() != dtype || !Arrays.equals(t.shape(), shape)) {
                String read = t.dtype() + " " + Arrays.toString(t.shape());
                t.close();
                throw new IllegalStateException("tensor " + key + " of record " + record.file() + " is logged as "
                        + dtype + " " + Arrays.toString(shape) + " but its file " + file + " holds " + read
                        + " (the file was changed or damaged)");
            }
        } else if (summary.values() != null) {
            t = fromValues(summary, dtype, shape, record);
        } else {
            throw new IllegalStateException("tensor " + key + " of record " + record.name() + " " + record.version()
                    + " was logged without its data (" + summary.numel() + " elements, " + (summary.isComplex()
                    ? "complex, whose values are not stored" : "over the value limit") + ", and tensors were not saved)");
        }
        try {
            checkHash(summary, t, record);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** The logged dtype of {@code summary}, refusing a name that is none as a damaged record. */
    private static DType dtype(TensorSummary summary, ExperimentRecord record) {
        try {
            return DType.parse(summary.dtype());
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("tensor " + summary.key() + " of record " + record.file() + ": "
                    + e.getMessage() + " (the file was changed or damaged)", e);
        }
    }

    /** Refuses a tensor read back for {@code summary} whose elements do not hash to the logged SHA-256. */
    private static void checkHash(TensorSummary summary, Tensor t, ExperimentRecord record) {
        List<ExperimentValues.TensorRef> refs = new ArrayList<>();
        ExperimentValues.encode(t, summary.key(), 0, refs);
        Object actual = refs.getFirst().summary().get("sha256");
        if (!summary.sha256().equals(actual)) {
            throw new IllegalStateException("tensor " + summary.key() + " of record " + record.file() + " does not match"
                    + " its logged SHA-256 (the file was changed or damaged): logged " + summary.sha256() + ", read "
                    + actual);
        }
    }

    private static Tensor fromValues(TensorSummary summary, DType dtype, long[] shape, ExperimentRecord record) {
        List<Object> values = summary.values();
        if (dtype == DType.BOOL) {
            boolean[] a = new boolean[values.size()];
            for (int i = 0; i < a.length; i++) {
                a[i] = values.get(i) instanceof Boolean b ? b : wrongValue(summary, record, i, "true or false");
            }
            return Tensor.of(a, shape);
        }
        if (dtype.isIntegral()) {
            long[] a = new long[values.size()];
            for (int i = 0; i < a.length; i++) {
                a[i] = values.get(i) instanceof Number n ? n.longValue() : wrongValue(summary, record, i, "an integer");
            }
            try (Tensor wide = Tensor.of(a, shape)) {
                return wide.to(dtype);
            }
        }
        try (Tensor wide = Tensor.of(summary.valuesAsDoubles(), shape)) {
            return wide.to(dtype);
        }
    }

    /** Refuses a record whose value {@code index} of {@code summary} is not {@code expected}. */
    private static <T> T wrongValue(TensorSummary summary, ExperimentRecord record, int index, String expected) {
        throw new IllegalStateException("tensor " + summary.key() + " of record " + record.file() + " is logged as "
                + summary.dtype() + " but its value " + index + " is " + summary.values().get(index) + ", not "
                + expected + " (the file was changed or damaged)");
    }

    /**
     * Deletes temporary files that writes interrupted by a crash left behind, in the experiments' folders.
     *
     * @param olderThan only files last modified longer ago than this: longer than any write of this log, or of another
     *     process on it, takes (one still under way is younger); not negative
     * @return how many were deleted
     * @throws IllegalArgumentException for a negative age, which would reach live writes
     */
    public int removeTempFiles(Duration olderThan) {
        if (olderThan.isNegative()) {
            throw new IllegalArgumentException("removeTempFiles takes an age, not a negative duration: " + olderThan);
        }
        Instant now = Instant.now();
        // an age beyond the clock's start reaches nothing
        Instant cutoff = olderThan.compareTo(Duration.between(Instant.EPOCH, now)) > 0 ? Instant.EPOCH
                : now.minus(olderThan);
        int removed = 0;
        try (Stream<Path> entries = Files.list(saveDir)) {
            for (Path dir : entries.filter(Files::isDirectory)
                    .filter(p -> RecordFiles.isName(p.getFileName().toString())).toList()) {
                removed += RecordFiles.removeTempFiles(dir, cutoff);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + saveDir + ": " + e, e);
        }
        return removed;
    }

    // ------------------------------------------------------------------------------------------------ names

    private Path folder(String name) {
        checkName(name);
        Path dir = saveDir.resolve(name).normalize();
        if (!dir.getParent().equals(saveDir)) { // belt and braces: checkName already keeps names inside
            throw new IllegalArgumentException("experiment name " + Json.quote(name) + " leaves " + saveDir);
        }
        return dir;
    }

    private Path existingFolder(String name) {
        Path dir = folder(name);
        if (RecordFiles.recordFiles(dir).isEmpty()) {
            throw new NoSuchElementException("no experiment named " + Json.quote(name) + " in " + saveDir
                    + "; logged experiments: " + names());
        }
        return dir;
    }

    /**
     * Checks that {@code name} can name an experiment: a single folder name that stays inside the save folder (see the
     * class comment for the rules).
     *
     * @param name the name
     * @throws IllegalArgumentException saying what is wrong with it
     */
    public static void checkName(String name) {
        RecordFiles.checkName(name);
    }
}

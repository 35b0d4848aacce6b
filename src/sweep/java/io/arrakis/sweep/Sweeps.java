package io.arrakis.sweep;

import io.arrakis.Progress;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileContext;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Options;
import org.apache.hadoop.util.ShutdownHookManager;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;
import org.apache.spark.Success$;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/** What the sweeps share: the Spark session, progress from Spark's listener, and output written whole or not at all. */
public final class Sweeps {
    private Sweeps() {
    }

    /**
     * A Spark session on {@code master} ({@code local[*]}, {@code spark://host:port}, or what spark-submit accepts),
     * with {@code extra} settings on top. Executors get native access for libtorch; outside local mode they also get
     * this JVM's class path, which suits machines that share the checkout's path (a shared file system); elsewhere
     * submit with spark-submit and {@code --jars}. Sets this JVM's logging as {@link #quietLogs} does.
     */
    public static SparkSession session(String master, Map<String, String> extra) {
        quietLogs();
        // executors call libtorch; from JDK 24 on Spark's own rows would warn about sun.misc.Unsafe
        String executorOptions = "--enable-native-access=ALL-UNNAMED"
                + (Runtime.version().feature() >= 23 ? " --sun-misc-unsafe-memory-access=allow" : "");
        SparkSession.Builder builder = SparkSession.builder().appName("arrakis sweep").master(master)
                .config("spark.ui.showConsoleProgress", "false");
        extra.forEach(builder::config);
        // the options the user gave (spark-submit --conf, spark-defaults.conf, or extra) are kept, ours added
        builder.config(EXECUTOR_JAVA_OPTIONS, withUsers(EXECUTOR_JAVA_OPTIONS, extra, executorOptions, " "));
        if (!master.startsWith("local")) {
            builder.config(EXECUTOR_CLASS_PATH, withUsers(EXECUTOR_CLASS_PATH, extra,
                    System.getProperty("java.class.path"), File.pathSeparator));
        }
        return builder.getOrCreate();
    }

    private static final String EXECUTOR_JAVA_OPTIONS = "spark.executor.extraJavaOptions";
    private static final String EXECUTOR_CLASS_PATH = "spark.executor.extraClassPath";

    /** The user's value of {@code key} ({@code extra} first, then spark-submit's), followed by {@code ours}. */
    static String withUsers(String key, Map<String, String> extra, String ours, String separator) {
        String users = extra.getOrDefault(key, System.getProperty(key));
        return users == null || users.isBlank() ? ours : users + separator + ours;
    }

    /**
     * Spark's logs at WARN on standard error, instead of its INFO default, less the failures of tasks and jobs, which
     * Spark logs with their stack traces as they happen (the exception the job throws carries them), and less
     * Hadoop's warning that its native library is missing. Replaces the JVM's log4j configuration.
     */
    public static synchronized void quietLogs() {
        ConfigurationBuilder<BuiltConfiguration> b = ConfigurationBuilderFactory.newConfigurationBuilder();
        b.setStatusLevel(Level.ERROR);
        b.add(b.newAppender("stderr", "Console").addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
                .add(b.newLayout("PatternLayout").addAttribute("pattern", "%d{HH:mm:ss} %p %c{1}: %m%n")));
        b.add(b.newRootLogger(Level.WARN).add(b.newAppenderRef("stderr")));
        for (String logger : FAILURE_LOGGERS) {
            b.add(b.newLogger(logger, Level.OFF));
        }
        // warns on every start that Hadoop's own native library is missing; its Java classes serve
        b.add(b.newLogger(HADOOP_NATIVE_CODE_LOADER, Level.ERROR));
        Configurator.reconfigure(b.build());
    }

    static final String HADOOP_NATIVE_CODE_LOADER = "org.apache.hadoop.util.NativeCodeLoader";

    /** The loggers through which Spark reports a failed task, job or start as it happens (and stops after it). */
    private static final List<String> FAILURE_LOGGERS = List.of("org.apache.spark.SparkContext",
            "org.apache.spark.metrics.MetricsSystem",
            "org.apache.spark.executor.Executor",
            "org.apache.spark.scheduler.TaskSetManager", "org.apache.spark.scheduler.TaskSchedulerImpl",
            "org.apache.spark.util.Utils",
            "org.apache.spark.sql.execution.datasources.FileFormatWriter",
            "org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter");

    /** The output format {@code out} names by its extension. */
    static String format(String out) {
        String lower = out.toLowerCase(Locale.ROOT);
        if (lower.endsWith(".parquet")) {
            return "parquet";
        }
        if (lower.endsWith(".csv")) {
            return "csv";
        }
        throw new IllegalArgumentException("--out " + out + ": name it RESULTS.parquet or RESULTS.csv");
    }

    /**
     * Refuses an output that exists already (a sweep never overwrites, nor mixes its rows into, another's), a name that
     * Spark would read back as a pattern or a URI, and a folder where the output cannot be written.
     */
    static void checkNew(SparkSession spark, String out) {
        format(out);
        String name = out.substring(out.lastIndexOf('/') + 1);
        if (name.chars().anyMatch(c -> "[]{}*?\\:".indexOf(c) >= 0)) {
            throw new IllegalArgumentException("--out " + out + ": a name with any of [ ] { } * ? \\ : is read back as a"
                    + " pattern or a URI; choose one without them");
        }
        String folders = new org.apache.hadoop.fs.Path(out).toUri().getPath(); // without a scheme and authority
        if (folders.chars().anyMatch(c -> "[]{}*?\\".indexOf(c) >= 0)) {
            throw new IllegalArgumentException("--out " + out + ": a folder with any of [ ] { } * ? \\ in its name is"
                    + " read back as a pattern, matching other folders' files; write elsewhere");
        }
        try {
            org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(out);
            FileSystem fs = path.getFileSystem(hadoop(spark));
            if (fs.exists(path)) {
                throw new IllegalArgumentException("--out " + out + " exists; give a new name or remove it");
            }
            // where the job would fail only after its work, at its first write
            org.apache.hadoop.fs.Path probe = temporary(path);
            List<org.apache.hadoop.fs.Path> created = missingFolders(fs, path); // the job's write makes them again
            try {
                if (!fs.mkdirs(probe)) {
                    throw new IllegalArgumentException("--out " + out + ": cannot create a folder beside it");
                }
            } catch (IOException e) {
                throw new IllegalArgumentException("--out " + out + ": cannot write beside it: " + e.getMessage(), e);
            } finally {
                fs.delete(probe, true);
                removeEmpty(fs, created);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The folders above {@code path} that do not exist, deepest first. */
    private static List<org.apache.hadoop.fs.Path> missingFolders(FileSystem fs, org.apache.hadoop.fs.Path path)
            throws IOException {
        List<org.apache.hadoop.fs.Path> missing = new ArrayList<>();
        for (org.apache.hadoop.fs.Path p = path.getParent(); p != null && !fs.exists(p); p = p.getParent()) {
            missing.add(p);
        }
        return missing;
    }

    /** Removes these folders, deepest first, where they are empty: what another writer put in one is theirs. */
    private static void removeEmpty(FileSystem fs, List<org.apache.hadoop.fs.Path> folders) {
        for (org.apache.hadoop.fs.Path folder : folders) {
            try {
                fs.delete(folder, false);
            } catch (IOException notEmpty) {
                return;
            }
        }
    }

    /** A hidden sibling of {@code target}, unique to this call. */
    private static org.apache.hadoop.fs.Path temporary(org.apache.hadoop.fs.Path target) {
        return new org.apache.hadoop.fs.Path(target.getParent(), "." + target.getName() + ".tmp-" + UUID.randomUUID());
    }

    /**
     * Writes {@code rows} to {@code out} whole or not at all: into a hidden sibling first, renamed to {@code out} when
     * every task has committed; a failed job leaves nothing at {@code out}, nor the folders it made for it. Returns the
     * rows written, read back.
     */
    static long write(SparkSession spark, Dataset<Row> rows, String out) {
        String format = format(out);
        org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(out);
        org.apache.hadoop.fs.Path temp = temporary(target);
        try {
            FileSystem fs = target.getFileSystem(hadoop(spark));
            // a sweep stopped by a signal or Ctrl-C: after Spark's own hooks have stopped its jobs
            Runnable removeTemp = () -> {
                try {
                    fs.delete(temp, true);
                } catch (IOException ignored) {
                    // the JVM is going down; nothing more can be done
                }
            };
            ShutdownHookManager.get().addShutdownHook(removeTemp, FileSystem.SHUTDOWN_HOOK_PRIORITY + 20);
            List<org.apache.hadoop.fs.Path> created = missingFolders(fs, target);
            boolean written = false;
            try {
                rows.write().format(format).options(CSV_OPTIONS).save(temp.toString());
                // a plain FileSystem.rename onto an existing folder moves the temporary inside it, where no reader
                // looks: another sweep that wrote the same --out meanwhile must make this one fail instead
                try {
                    FileContext.getFileContext(fs.getUri(), hadoop(spark)).rename(fs.makeQualified(temp),
                            fs.makeQualified(target), Options.Rename.NONE);
                } catch (FileAlreadyExistsException e) {
                    throw new IllegalStateException("--out " + out + " was written by someone else while this sweep"
                            + " ran; its rows were not written", e);
                }
                written = true;
            } finally {
                try {
                    fs.delete(temp, true);
                    if (!written) {
                        removeEmpty(fs, created);
                    }
                } finally {
                    if (!ShutdownHookManager.get().isShutdownInProgress()) { // removing one then throws
                        ShutdownHookManager.get().removeShutdownHook(removeTemp);
                    }
                }
            }
            return read(spark, out).count();
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + out + " failed: " + e.getMessage(), e);
        }
    }

    /** What {@link #write} wrote. */
    public static Dataset<Row> read(SparkSession spark, String out) {
        return spark.read().format(format(out)).options(CSV_OPTIONS).option("inferSchema", "true")
                .option("multiLine", "true").load(out);
    }

    /**
     * A header, quotes doubled inside quoted fields (as RFC 4180 and Python's csv module read them; Spark's default
     * escapes them with a backslash), and white space at either end of a field kept, as folder names may have it.
     */
    private static final Map<String, String> CSV_OPTIONS = Map.of("header", "true", "escape", "\"",
            "ignoreLeadingWhiteSpace", "false", "ignoreTrailingWhiteSpace", "false");

    private static Configuration hadoop(SparkSession spark) {
        return spark.sparkContext().hadoopConfiguration();
    }

    /**
     * Runs {@code job} while telling {@code progress} how many tasks of its first Spark job (the sweep's own, which
     * writes its rows; reading them back after it runs jobs of its own) have finished, from Spark's listener.
     */
    static <T> T withProgress(SparkSession spark, Progress progress, Supplier<T> job) {
        AtomicLong total = new AtomicLong();
        AtomicLong done = new AtomicLong();
        java.util.Set<Integer> stages = java.util.concurrent.ConcurrentHashMap.newKeySet(); // the first job's
        java.util.concurrent.atomic.AtomicBoolean started = new java.util.concurrent.atomic.AtomicBoolean();
        SparkListener listener = new SparkListener() {
            @Override
            public void onJobStart(SparkListenerJobStart start) {
                if (started.compareAndSet(false, true)) {
                    for (org.apache.spark.scheduler.StageInfo stage
                            : scala.jdk.javaapi.CollectionConverters.asJava(start.stageInfos())) {
                        stages.add(stage.stageId());
                        total.addAndGet(stage.numTasks());
                    }
                }
            }

            @Override
            public void onTaskEnd(SparkListenerTaskEnd task) {
                if (task.reason() == Success$.MODULE$ && stages.contains(task.stageId())) {
                    progress.advanced(done.incrementAndGet(), Math.max(total.get(), done.get()));
                }
            }
        };
        spark.sparkContext().addSparkListener(listener);
        try {
            return job.get();
        } finally {
            spark.sparkContext().removeSparkListener(listener);
        }
    }
}

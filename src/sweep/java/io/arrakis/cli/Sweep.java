package io.arrakis.cli;

import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.io.ModelFolder;
import io.arrakis.json.Json;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.sweep.CompositionSweep;
import io.arrakis.sweep.PatchingSweep;
import io.arrakis.sweep.PromptFile;
import io.arrakis.sweep.PromptPair;
import io.arrakis.sweep.Sweeps;
import io.arrakis.text.HfTokenizer;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code scripts/arrakis sweep}: path patching over many prompt pairs and composition over many checkpoints as Apache
 * Spark jobs, in this JVM ({@code local[*]}) or on a cluster ({@code --master}). Built with the Maven profile
 * {@code sweep}, which {@code scripts/arrakis} turns on for this command.
 */
@Command(name = "sweep", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class,
        description = "Sweeps on Apache Spark: path patching over prompt pairs, composition over checkpoints.",
        subcommands = {Sweep.Patching.class, Sweep.Composition.class})
final class Sweep implements Callable<Integer> {
    @ParentCommand
    private Main main;

    @Override
    public Integer call() {
        new picocli.CommandLine(this).usage(main.out);
        return 0;
    }

    @Command(name = "patching", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description = {
            "Path patching of every sender into the receivers, one row per (prompt, sender, receiver, route).",
            "PROMPTS has one {\"clean\": [ids], \"corrupted\": [ids], \"answer\": id, \"wrong\": id} per line",
            "(or \"clean_text\"/\"corrupted_text\"). Columns: prompt_id, sender_layer, sender_head, receiver_layer,",
            "receiver_head, route, effect, clean_metric, corrupted_metric; prompt_id counts PROMPTS' pairs from 0,",
            "blank lines left out (an error names the line of the file, from 1)."})
    static final class Patching implements Callable<Integer> {
        @ParentCommand
        private Sweep sweep;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "the model folder (every executor reads it)")
        private Path model;
        @Option(names = "--prompts", required = true, paramLabel = "FILE.jsonl", description = "the prompt pairs")
        private Path prompts;
        @Option(names = "--route", required = true, paramLabel = "Q|K|V", description = "the receivers' input")
        private PathPatching.Route route;
        @Option(names = "--receivers", paramLabel = "all|L.H,...", description = "receiving heads (default: all)")
        private String receivers = "all";
        @Mixin
        private SparkJob job;
        @Option(names = "--json", description = "print {\"rows\": N, \"seconds\": S, \"top\": [[sender, receiver, mean_effect], ...]}")
        private boolean json;

        @Override
        public Integer call() throws Exception {
            Main main = sweep.main;
            List<PromptPair> pairs;
            List<Head> heads;
            String folder = model.toAbsolutePath().toString();
            // the driver needs the config and the tokenizer only: the weights are the executors' (ExecutorModels)
            HookedAutoConfig config = HookedAutoConfig.fromPretrained(model);
            Path tokenizerFile = ModelFolder.resolve(model).resolve(HfTokenizer.FILE_NAME);
            try (HfTokenizer tokenizer = Files.isRegularFile(tokenizerFile) ? HfTokenizer.load(tokenizerFile) : null) {
                pairs = PromptFile.read(prompts, tokenizer, config.vocabSize(), config.maxPositions());
            }
            heads = receivers.equals("all") ? PatchingSweep.allReceivers(config, route)
                    : parseReceivers(receivers, config, route);
            PatchingSweep.Result result;
            try (SparkSession spark = job.start();
                 TerminalProgress progress = TerminalProgress.of("sweep patching", "tasks", json, main.err)) {
                result = PatchingSweep.run(spark, folder, pairs, route, heads, job.out, progress);
            }
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("rows", result.rows());
                o.put("seconds", result.seconds());
                o.put("top", result.top());
                main.out.println(Json.write(o));
            } else {
                main.out.printf(Locale.ROOT, "%d rows from %d prompt pairs in %.1f s (%.2f pairs/s) -> %s%n", result.rows(),
                        pairs.size(), result.seconds(), pairs.size() / result.seconds(), job.out);
                // a NaN or infinite mean comes as the string JSON writes it
                result.top().forEach(t -> main.out.printf(Locale.ROOT, "  %s -> %s  mean effect %s%n", t.get(0), t.get(1),
                        t.get(2) instanceof Number n ? String.format(Locale.ROOT, "%.6g", n.doubleValue()) : t.get(2)));
            }
            return 0;
        }
    }

    @Command(name = "composition", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description = {
            "All-pairs composition scores of each checkpoint, one row per (checkpoint, sender, receiver).",
            "Columns: checkpoint, sender_layer, sender_head, receiver_layer, receiver_head, mode, score."})
    static final class Composition implements Callable<Integer> {
        @ParentCommand
        private Sweep sweep;
        @Option(names = "--checkpoints", required = true, split = ",", paramLabel = "DIR",
                description = "model folders, or a folder of them")
        private List<String> checkpoints = new ArrayList<>();
        @Option(names = "--mode", required = true, paramLabel = "Q|K|V", description = "which composition")
        private CompositionScores.Mode mode;
        @Mixin
        private SparkJob job;
        @Option(names = "--json", description = "print {\"rows\": N, \"checkpoints\": C, \"seconds\": S}")
        private boolean json;

        @Override
        public Integer call() throws Exception {
            Main main = sweep.main;
            List<String> folders = CompositionSweep.checkpoints(checkpoints).stream()
                    .map(c -> Path.of(c).toAbsolutePath().toString()).toList();
            // a configuration the library refuses is named here, not by a failed Spark task
            folders.forEach(f -> HookedAutoConfig.fromPretrained(Path.of(f)));
            long start = System.nanoTime();
            long rows;
            try (SparkSession spark = job.start();
                 TerminalProgress progress = TerminalProgress.of("sweep composition", "checkpoints", json, main.err)) {
                rows = CompositionSweep.run(spark, folders, mode, job.out, progress);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("rows", rows);
                o.put("checkpoints", (long) folders.size());
                o.put("seconds", seconds);
                main.out.println(Json.write(o));
            } else {
                main.out.printf(Locale.ROOT, "%d rows from %d checkpoints in %.1f s -> %s%n", rows, folders.size(), seconds, job.out);
            }
            return 0;
        }
    }

    /** The options every sweep takes: where its results go and which Spark runs it. */
    static final class SparkJob {
        @Option(names = "--out", required = true, paramLabel = "RESULTS", description = "RESULTS.parquet or RESULTS.csv (a new path)")
        String out;
        @Option(names = "--master", paramLabel = "URL", description = "Spark's master (default: spark-submit's, else local[*], this JVM)")
        private String master;

        /** The master asked for, else the one spark-submit set, else this JVM ({@code local[*]}). */
        String master() {
            return master != null ? master : System.getProperty("spark.master", "local[*]");
        }

        /** A Spark session on {@link #master()}, or a message saying why there is none. */
        SparkSession start() {
            String url = master();
            checkAnswers(url);
            SparkSession spark;
            try {
                spark = Sweeps.session(url, Map.of());
            } catch (Exception e) { // Spark's own exception is checked, thrown without being declared
                throw new IllegalArgumentException("cannot start Spark on " + url + ": " + Main.firstLine(e), e);
            }
            if (spark.sparkContext().isStopped()) { // Spark gives up on an unreachable master, stopping the context
                spark.stop();
                throw new IllegalArgumentException("Spark on " + url + " stopped as it started: is the master reachable?");
            }
            return spark;
        }
    }

    /**
     * Refuses a standalone master ({@code spark://host:port[,host:port]}) where nothing accepts a connection: Spark
     * would retry for a minute, logging each try, before failing with a message that does not say why.
     */
    private static void checkAnswers(String url) {
        if (!url.startsWith("spark://")) {
            return;
        }
        List<String> silent = new ArrayList<>();
        for (String address : url.substring("spark://".length()).split(",")) {
            int colon = address.endsWith("]") ? -1 : address.lastIndexOf(':'); // [IPv6] without a port
            String host = (colon < 0 ? address : address.substring(0, colon)).replaceAll("^\\[|]$", "");
            int port;
            try {
                port = colon < 0 ? 7077 : Main.parseInt(address.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = 0;
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("--master " + url + ": '" + address + "' has no port number from 1"
                        + " to 65535");
            }
            try (java.net.Socket socket = new java.net.Socket()) {
                socket.connect(new java.net.InetSocketAddress(host, port), 5_000);
                return;
            } catch (IOException | IllegalArgumentException e) {
                silent.add(address + " (" + e.getMessage() + ")");
            }
        }
        throw new IllegalArgumentException("--master " + url + ": no master answers at " + String.join(", ", silent));
    }

    /** "1.0,2.3" → those heads, each checked against the model. */
    private static List<Head> parseReceivers(String text, HookedAutoConfig config, PathPatching.Route route) {
        List<Head> heads = new ArrayList<>();
        for (String part : text.split(",", -1)) {
            Head head = Main.parseHead(part);
            if (head.layer() < 1 || head.layer() >= config.nLayers() || head.index() < 0
                    || head.index() >= config.nHeads()) {
                throw new IllegalArgumentException("--receivers: '" + part.trim() + "' is not a receiving head of this"
                        + " model (layers 1 to " + (config.nLayers() - 1) + ", heads 0 to "
                        + (config.nHeads() - 1) + ")");
            }
            if (heads.contains(head)) {
                throw new IllegalArgumentException("--receivers: '" + part.trim() + "' is named twice");
            }
            try { // a head of a layer without heads, or with none below it, or no such route: before Spark starts
                PathPatching.checkReceiver(config, head);
                PathPatching.checkRoute(config, head, route);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--receivers: " + e.getMessage(), e);
            }
            heads.add(head);
        }
        return heads;
    }
}

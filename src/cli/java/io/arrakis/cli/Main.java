package io.arrakis.cli;

import io.arrakis.Progress;
import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.composer.PathPatching;
import io.arrakis.composer.ScoreReport;
import io.arrakis.examples.SeedExample;
import io.arrakis.io.ModelFolder;
import io.arrakis.json.Json;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.plot.Heatmap;
import io.arrakis.text.HfTokenizer;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import io.arrakis.view.AttentionView;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import java.io.BufferedWriter;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.Callable;

/** The {@code scripts/arrakis} command line: one subcommand per job, parsed by picocli. */
@Command(name = "arrakis", description = "Mechanistic interpretability of transformer models on the JVM.",
        mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class,
        subcommands = {CommandLine.HelpCommand.class, Main.Info.class, Main.Demo.class, Main.SeedExampleCommand.class,
                Main.Forward.class, Main.Tokenize.class, Main.Composition.class, Main.Heads.class, Main.View.class})
public final class Main implements Callable<Integer> {
    /** An integer as {@link #parseLong} takes it: ASCII digits, after a minus sign for a negative one. */
    private static final java.util.regex.Pattern INTEGER = java.util.regex.Pattern.compile("-?[0-9]+");
    /** The exit status of a command stopped by a signal, as a shell reports Ctrl-C. */
    static final int INTERRUPTED = 130;
    /** Set once the JVM begins to shut down (Ctrl-C, SIGTERM): a command that fails meanwhile was interrupted. */
    static volatile boolean shuttingDown;

    final PrintStream out;
    final PrintStream err;

    private Main(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        // the command line has no logging backend: DJL's logs go nowhere, without slf4j's warning that they do
        System.setProperty("slf4j.internal.verbosity", "ERROR");
        // JSON is UTF-8 whatever the locale says (tokens such as "Ġworld" would turn into "?")
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> shuttingDown = true, "arrakis-shutdown"));
        int status = run(args, out, err);
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Runs one command; returns the exit status: 0, or 2 for bad usage or input, said in one line on {@code err}
     * ({@code arrakis COMMAND: what is wrong}).
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        CommandLine cli = new CommandLine(new Main(out, err));
        addIfBuilt(cli, "io.arrakis.cli.Sweep");
        // after the subcommands are added: picocli registers a converter with the commands it has at that moment
        CommandLine.ITypeConverter<Long> asLong = text -> converted(text, Main::parseLong, "a long integer");
        CommandLine.ITypeConverter<Integer> asInt = text -> converted(text, Main::parseInt, "an integer");
        cli.registerConverter(Long.class, asLong).registerConverter(Long.TYPE, asLong)
                .registerConverter(Integer.class, asInt).registerConverter(Integer.TYPE, asInt);
        cli.setOut(new PrintWriter(out, true)).setErr(new PrintWriter(err, true)).setCaseInsensitiveEnumValuesAllowed(true);
        cli.setParameterExceptionHandler((e, arguments) -> badInput(err, e.getCommandLine(), e));
        cli.setExecutionExceptionHandler((e, command, parsed) -> {
            if (shuttingDown) { // what failed was stopped under it (a sweep's Spark context, stopped by its own hook)
                err.println(command.getCommandSpec().qualifiedName() + ": interrupted");
                return INTERRUPTED;
            }
            Throwable cause = reported(e);
            if (cause instanceof IllegalArgumentException || cause instanceof IllegalStateException
                    || cause instanceof UnsupportedOperationException || cause instanceof java.io.UncheckedIOException
                    || cause instanceof io.arrakis.model.safetensors.SafeTensorsException
                    || cause instanceof io.arrakis.torch.LibTorchException) {
                return badInput(err, command, cause);
            }
            if (cause instanceof io.arrakis.torch.TorchException) { // an op libtorch could not do (out of memory, ...)
                err.println(command.getCommandSpec().qualifiedName() + ": " + firstLine(cause));
                return 1;
            }
            throw e;
        });
        try {
            int status = cli.execute(args);
            // a PrintStream keeps its write errors (a full disk, a closed pipe) to itself: the output is incomplete
            if (out.checkError()) {
                err.println("arrakis: cannot write standard output; what was written is incomplete");
                return status == 0 ? 1 : status;
            }
            return status;
        } catch (ExceptionInInitializerError e) { // a libtorch that cannot load fails the initialisation of a class
            if (e.getCause() instanceof io.arrakis.torch.LibTorchException cause) {
                err.println("arrakis: " + firstLine(cause));
                return 2;
            }
            throw e;
        }
    }

    /** Adds the command {@code className} where it was built: {@code sweep} needs Spark, the profile of its own. */
    private static void addIfBuilt(CommandLine cli, String className) {
        try {
            java.lang.reflect.Constructor<?> constructor = Class.forName(className).getDeclaredConstructor();
            constructor.setAccessible(true);
            cli.addSubcommand(constructor.newInstance());
        } catch (ClassNotFoundException | NoClassDefFoundError notBuilt) {
            // built without that profile: the command does not exist
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int badInput(PrintStream err, CommandLine command, Throwable e) {
        err.println(command.getCommandSpec().qualifiedName() + ": " + firstLine(e));
        return 2;
    }

    static String firstLine(Throwable e) {
        return String.valueOf(e.getMessage()).lines().findFirst().orElse("");
    }

    /** What {@code --version} prints. */
    static final class LibraryVersion implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"arrakis-jvm " + io.arrakis.Version.get()};
        }
    }

    /** No command: the usage. */
    @Override
    public Integer call() {
        new CommandLine(this).usage(out);
        return 0;
    }

    @Command(name = "info", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class,
            description = "Which libtorch is loaded, and whether CUDA is available.")
    static final class Info implements Callable<Integer> {
        @ParentCommand
        private Main main;

        @Override
        public Integer call() {
            main.out.println(LibTorch.load() + "; packed weights: "
                    + (LibTorch.packedWeights() ? "on" : "off") + "; CPU float32 model weights: "
                    + (LibTorch.oneDnnFloat32Weights() ? "oneDNN, packed" : "libtorch") + "; CPU bfloat16 model weights: "
                    + (LibTorch.oneDnnBfloat16Weights() ? "oneDNN, packed" : "libtorch") + "; CPU einsum products: "
                    + (LibTorch.batchedEinsum() ? "OpenBLAS batched" : "libtorch") + "; CUDA devices: "
                    + LibTorch.cudaDeviceCount());
            return 0;
        }
    }

    @Command(name = "demo", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class,
            description = "A short tour: zero-copy tensors, a hooked model with its cache, and the composer on it.")
    static final class Demo implements Callable<Integer> {
        @ParentCommand
        private Main main;

        @Override
        public Integer call() {
            demo(main.out);
            return 0;
        }
    }

    @Command(name = "seed-example", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description = {
            "The seed page's example, on the llama defaults.",
            "Random weights (bfloat16 when float32 does not fit), random ids (1, 50), an MIExperiment bench,",
            "head_composition and attention_path_patching of heads (0,0) and (0,1), alpha 0.5."})
    static final class SeedExampleCommand implements Callable<Integer> {
        @ParentCommand
        private Main main;
        @Option(names = "--json", description = "the result as one line of JSON (notes go to standard error)")
        private boolean json;
        @Option(names = "--config", paramLabel = "KEY=VALUE[,KEY=VALUE...]",
                description = "Hugging Face config keys to override, e.g. num_hidden_layers=2; a value may be JSON,"
                        + " e.g. rope_scaling={\"rope_type\":\"linear\",\"factor\":2.0}")
        private String config;
        @Option(names = "--seed", description = "the random seed of weights and ids (default 0)")
        private long seed;

        @Override
        public Integer call() {
            seedExample(json, config, seed, main.out, main.err);
            return 0;
        }
    }

    @Command(name = "forward", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description = {
            "Runs a model and prints the logits and the chosen activations.",
            "The model is a Hugging Face model folder or hub cache folder (models--ORG--NAME); --text goes through",
            "its tokenizer.json (or --tokenizer's)."})
    static final class Forward implements Callable<Integer> {
        @ParentCommand
        private Main main;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "the model folder")
        private Path model;
        @ArgGroup(multiplicity = "1")
        private Input input;
        @Option(names = "--tokenizer", paramLabel = "PATH", description = "a tokenizer.json (or its folder) for --text")
        private Path tokenizer;
        @Option(names = "--prepend-bos", description = "begin --text with the model's beginning-of-sequence token"
                + " (its tokenizer's own, else the config's bos_token_id), as TransformerLens's to_tokens does by"
                + " default (without it: the tokenizer's ids, as Hugging Face gives them)")
        private boolean prependBos;
        @Option(names = "--hooks", split = ",", paramLabel = "NAME", description = "hook points to print")
        private List<String> hooks = new ArrayList<>();
        @Option(names = "--json", description = "the activations as one JSON object")
        private boolean json;

        static final class Input {
            @Option(names = "--input-ids", required = true, paramLabel = "\"1,2,3;4,5,6\"",
                    description = "token ids, rows separated by ;")
            private String ids;
            @Option(names = "--text", required = true, paramLabel = "TEXT", description = "text to tokenize")
            private String text;
        }

        @Override
        public Integer call() {
            forward(model, input.ids, input.text, tokenizer, prependBos, hooks, json, main.out, main.err);
            return 0;
        }
    }

    @Command(name = "tokenize", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class,
            description = "A tokenizer.json (or a folder holding one): the ids and tokens of TEXT, or the text of ids.")
    static final class Tokenize implements Callable<Integer> {
        @ParentCommand
        private Main main;
        @Option(names = "--tokenizer", required = true, paramLabel = "PATH", description = "the tokenizer.json")
        private Path tokenizer;
        @ArgGroup(multiplicity = "1")
        private What what;
        @Option(names = "--json", description = "as JSON")
        private boolean json;

        static final class What {
            @Option(names = "--text", required = true, paramLabel = "TEXT", description = "text to tokenize")
            private String text;
            @Option(names = "--decode", required = true, paramLabel = "1,2,3", description = "ids to decode")
            private String decode;
        }

        @Override
        public Integer call() {
            tokenize(tokenizer, what.text, what.decode, json, main.out);
            return 0;
        }
    }

    @Command(name = "composition", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description = {
            "All-pairs Q-, K- or V-composition scores.",
            "The top pairs as a table, or all [layer][head][layer][head] scores as JSON."})
    static final class Composition implements Callable<Integer> {
        @ParentCommand
        private Main main;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "the model folder")
        private Path model;
        @Option(names = "--mode", required = true, paramLabel = "Q|K|V", description = "which composition")
        private CompositionScores.Mode mode;
        @Option(names = "--baseline", description = "subtract the mean score of random heads of the same shapes")
        private boolean baseline;
        @Option(names = "--fold-ln", description = "fold the attention-input norm scales into W_Q, W_K, W_V first"
                + " (and centre them after a LayerNorm, as TransformerLens)")
        private boolean foldLn;
        @Option(names = "--center-writing", description = "centre each W_O along d_model first, as TransformerLens's"
                + " center_writing_weights (LayerNorm models only; with --fold-ln, TransformerLens's from_pretrained"
                + " defaults)")
        private boolean centerWriting;
        @Option(names = "--top", paramLabel = "K", description = "how many pairs the table shows (default 10; not"
                + " with --json)")
        private Integer top;
        @Option(names = "--png", paramLabel = "FILE", description = "also write a heatmap")
        private Path png;
        @Option(names = "--json", description = "all scores as JSON")
        private boolean json;

        @Override
        public Integer call() {
            if (json && top != null) {
                throw new IllegalArgumentException("--top sets how many pairs the table shows; --json writes every"
                        + " score: give one of them");
            }
            CompositionScores.Options.Builder options = CompositionScores.Options.builder().baseline(baseline)
                    .foldLn(foldLn).centerWritingWeights(centerWriting);
            composition(model, mode, options, atLeast(top == null ? 10 : top, 1, "--top"), png, json, main.out,
                    main.err);
            return 0;
        }
    }

    @Command(name = "heads", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description =
            "Previous-token, induction and duplicate-token scores of every head on repeated random tokens.")
    static final class Heads implements Callable<Integer> {
        @ParentCommand
        private Main main;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "the model folder")
        private Path model;
        @Option(names = "--seq-len", paramLabel = "N", description = "tokens per repeated half (default: up to 50)")
        private Integer seqLen;
        @Option(names = "--batch", paramLabel = "B", description = "sequences (default 4)")
        private int batch = 4;
        @Option(names = "--seed", paramLabel = "S", description = "the random seed (default 0)")
        private long seed;
        @Option(names = "--bos", description = "start every sequence with the model's beginning-of-sequence token"
                + " (its tokenizer's own, else the config's bos_token_id), as TransformerLens's to_tokens does")
        private boolean bos;
        @Option(names = "--json", description = "all scores as JSON")
        private boolean json;

        @Override
        public Integer call() {
            heads(model, seqLen == null ? null : atLeast(seqLen, 2, "--seq-len"), atLeast(batch, 1, "--batch"), seed, bos,
                    json, main.out, main.err);
            return 0;
        }
    }

    @Command(name = "view", mixinStandardHelpOptions = true, versionProvider = Main.LibraryVersion.class, description = {
            "One self-contained HTML page of a model on one input, which opens from file:// with no network.",
            "It shows the attention pattern of every layer and head, Q/K/V composition, the head detectors' scores",
            "and, with a corrupted input, path patching into chosen receivers."})
    static final class View implements Callable<Integer> {
        @ParentCommand
        private Main main;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "the model folder")
        private Path model;
        @ArgGroup(multiplicity = "1")
        private Clean input;
        @ArgGroup(multiplicity = "0..1")
        private Corrupted corrupted;
        @Option(names = "--tokenizer", paramLabel = "PATH", description = "a tokenizer.json (or its folder) for text and labels")
        private Path tokenizer;
        @Option(names = "--prepend-bos", description = "begin --text and --corrupted-text with the model's"
                + " beginning-of-sequence token (its tokenizer's own, else the config's bos_token_id), as"
                + " TransformerLens's to_tokens does by default (without it: the tokenizer's ids, as Hugging Face"
                + " gives them)")
        private boolean prependBos;
        @Option(names = "--answer", paramLabel = "ID", description = "patching: the right token (default: the clean input's top token)")
        private long answer = -1;
        @Option(names = "--wrong", paramLabel = "ID", description = "patching: the wrong token (default: the corrupted input's top token)")
        private long wrong = -1;
        @Option(names = "--receivers", split = ",", paramLabel = "L.H",
                description = "patching: receiving heads (default: the last softmax-attention layer's)")
        private List<String> receivers = new ArrayList<>();
        @Option(names = "--routes", split = ",", paramLabel = "Q|K|V", description = "patching: the receivers' inputs (default: Q,K,V)")
        private List<PathPatching.Route> routes = new ArrayList<>();
        @Option(names = "--baseline", description = "composition scores minus the random baseline")
        private boolean baseline;
        @Option(names = "--out", paramLabel = "FILE", description = "the page (default: view.html)")
        private Path out = Path.of("view.html");
        @Option(names = "--json", description = "print {\"out\": FILE, \"bytes\": N} and no progress")
        private boolean json;

        static final class Clean {
            @Option(names = "--input-ids", required = true, paramLabel = "\"1,2,3\"", description = "the token ids of one sequence")
            private String ids;
            @Option(names = "--text", required = true, paramLabel = "TEXT", description = "text to tokenize")
            private String text;
        }

        static final class Corrupted {
            @Option(names = "--corrupted-input-ids", required = true, paramLabel = "\"1,2,3\"", description = "patching's corrupted ids")
            private String ids;
            @Option(names = "--corrupted-text", required = true, paramLabel = "TEXT", description = "patching's corrupted text")
            private String text;
        }

        @Override
        public Integer call() {
            view(this, main.out, main.err);
            return 0;
        }
    }

    /**
     * Refuses, before any work, an output file that is a folder or no file at all (a device, a pipe), whose nearest
     * existing ancestor is no folder or cannot be written in, or that is one of the command's inputs by any path: a
     * file of the folder the {@code model} loads from that loading reads, or the {@code tokenizer} file (null for none).
     */
    private static void checkOutput(Path file, String flag, Path model, Path tokenizer) {
        if (java.nio.file.Files.isDirectory(file)) {
            throw new IllegalArgumentException(flag + " " + file + " is a folder; name a file");
        }
        if (java.nio.file.Files.exists(file) && !java.nio.file.Files.isRegularFile(file)) {
            throw new IllegalArgumentException(flag + " " + file + " is a device, pipe or socket; name a file (the"
                    + " output replaces a whole file)");
        }
        for (Path p = file.toAbsolutePath().getParent(); p != null; p = p.getParent()) {
            if (java.nio.file.Files.exists(p)) {
                if (!java.nio.file.Files.isDirectory(p)) {
                    throw new IllegalArgumentException(flag + " " + file + ": " + p + " is a file, not a folder");
                }
                if (!java.nio.file.Files.isWritable(p)) {
                    throw new IllegalArgumentException(flag + " " + file + ": cannot write in " + p);
                }
                break;
            }
        }
        if (!java.nio.file.Files.exists(file)) {
            return;
        }
        try {
            List<Path> inputs = new ArrayList<>(modelFiles(model));
            if (tokenizer != null) {
                inputs.add(java.nio.file.Files.isDirectory(tokenizer)
                        ? ModelFolder.resolve(tokenizer).resolve("tokenizer.json") : tokenizer);
            }
            for (Path input : inputs) { // the same file by any path: through links, or a hub cache's blobs
                if (java.nio.file.Files.exists(input) && java.nio.file.Files.isSameFile(file, input)) {
                    throw new IllegalArgumentException(flag + " " + file + " is one of this command's inputs ("
                            + input + "); name another file");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot compare " + flag + " " + file + " with the inputs", e);
        }
    }

    /** The files of the folder the model loads from (a hub cache's snapshot) that loading reads. */
    private static List<Path> modelFiles(Path model) throws IOException {
        Path folder = ModelFolder.resolve(model);
        if (!java.nio.file.Files.isDirectory(folder)) {
            return List.of();
        }
        try (java.util.stream.Stream<Path> entries = java.nio.file.Files.list(folder)) {
            return entries.filter(p -> {
                String name = p.getFileName().toString();
                return name.equals("config.json") || name.equals("tokenizer.json") || name.endsWith(".safetensors")
                        || name.endsWith(".safetensors.index.json");
            }).toList();
        }
    }

    /**
     * What {@code e} reports: a libtorch that could not load, wherever in its causes (it fails the initialisation of a
     * class, in a Spark task too); otherwise a failed Spark job's task's exception (a sweep finds a bad model folder
     * there); otherwise {@code e}.
     */
    private static Throwable reported(Throwable e) {
        for (Throwable t = e; t != null && t.getCause() != t; t = t.getCause()) {
            if (t instanceof io.arrakis.torch.LibTorchException) {
                return t;
            }
        }
        return e.getClass().getName().equals("org.apache.spark.SparkException") && e.getCause() != null
                ? e.getCause() : e;
    }

    /** The folder's own name, or the whole path where it has none (the file system's root). */
    private static String folderName(Path folder) {
        Path name = folder.toAbsolutePath().normalize().getFileName();
        return name == null ? folder.toString() : name.toString();
    }

    /** The page of {@code v}'s model and inputs, written to {@code v.out}. */
    private static void view(View v, PrintStream out, PrintStream err) {
        checkOutput(v.out, "--out", v.model, v.tokenizer);
        if (v.prependBos && v.input.text == null && (v.corrupted == null || v.corrupted.text == null)) {
            throw new IllegalArgumentException("--prepend-bos goes with --text or --corrupted-text");
        }
        // a head or route named twice is patched once
        List<Head> receivers = v.receivers.stream().map(Main::parseHead).distinct().toList();
        List<PathPatching.Route> routes = v.routes.stream().distinct().toList();
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel m = HookedAutoModel.fromPretrained(v.model);
             HfTokenizer tokenizer = v.tokenizer == null ? null : HfTokenizer.load(v.tokenizer);
             TerminalProgress progress = TerminalProgress.of("view", "steps", v.json, err)) {
            Tensor ids = v.input.text == null ? idsTensor(v.input.ids)
                    : textTensor(m, v.input.text, v.tokenizer, v.prependBos);
            AttentionView.Options options = AttentionView.Options.defaults().withTitle(folderName(v.model))
                    .withTokens(tokenizer).withBaseline(v.baseline).withProgress(progress);
            if (v.corrupted != null) {
                Tensor corrupted = v.corrupted.text == null ? idsTensor(v.corrupted.ids)
                        : textTensor(m, v.corrupted.text, v.tokenizer, v.prependBos);
                if (Arrays.equals(ids.shape(), corrupted.shape())
                        && Arrays.equals(ids.toLongArray(), corrupted.toLongArray())) {
                    throw new IllegalArgumentException("the clean and corrupted inputs are the same tokens: every"
                            + " patching effect would be 0");
                }
                options = options.withPatching(corrupted, v.answer, v.wrong, receivers, routes);
            } else if (v.answer != -1 || v.wrong != -1 || !receivers.isEmpty() || !routes.isEmpty()) {
                throw new IllegalArgumentException("--answer, --wrong, --receivers and --routes are for path patching:"
                        + " give a corrupted input too (--corrupted-input-ids or --corrupted-text)");
            }
            Path file = AttentionView.of(m, ids, options).writeHtml(v.out);
            progress.close();
            long bytes;
            try {
                bytes = java.nio.file.Files.size(file);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            if (v.json) {
                Map<String, Object> object = new LinkedHashMap<>();
                object.put("out", file.toString());
                object.put("bytes", bytes);
                out.println(Json.write(object));
            } else {
                out.println("wrote " + file + " (" + bytes + " bytes); open it in a browser");
            }
        }
    }

    /**
     * Tells {@code progress} each block a pass of {@code model} finishes, through a hook that only watches
     * ({@code hook_resid_post} leaves the attention's route as it is); no hook where nobody watches.
     */
    private static HookedAutoModel.HookHandle layerProgress(HookedAutoModel model, Progress progress, boolean json) {
        if (!TerminalProgress.watched(json)) {
            return () -> { };
        }
        int layers = model.config().nLayers();
        return model.addHook(HookedAutoModel.HookSpec.matching(name -> name.endsWith(".hook_resid_post"), (activation, name) -> {
            progress.advanced(Integer.parseInt(name.substring("blocks.".length(), name.indexOf('.', 7))) + 1L, layers);
            return activation;
        }));
    }

    /** "1.2" → layer 1, head 2, for the option {@code --receivers}. */
    static Head parseHead(String text) {
        String[] parts = text.trim().split("\\.", -1);
        try {
            if (parts.length == 2) {
                return Head.of(parseInt(parts[0]), parseInt(parts[1]));
            }
        } catch (NumberFormatException e) {
            // falls through to the message
        }
        throw new IllegalArgumentException("--receivers: '" + text + "' is not LAYER.HEAD, e.g. 1.3");
    }

    private static int atLeast(int value, int min, String option) {
        if (value < min) {
            throw new IllegalArgumentException(option + " must be at least " + min + ", got " + value);
        }
        return value;
    }

    /** All-pairs composition scores as a table, JSON or a heatmap. */
    private static void composition(Path model, CompositionScores.Mode mode, CompositionScores.Options.Builder options,
                                    int top, Path png, boolean json, PrintStream out, PrintStream err) {
        if (png != null) {
            checkOutput(png, "--png", model, null);
            Heatmap.requireFonts(); // before the scores, which may take long
        }
        ScoreReport report;
        CompositionScores.Options chosen;
        try (TerminalProgress progress = TerminalProgress.of(mode + "-composition", "pairs", json, err);
             HookedAutoModel m = HookedAutoModel.fromPretrained(model)) {
            chosen = options.progress(progress).build();
            try (CompositionScores.Result result = CompositionScores.compute(m, mode, chosen)) {
                report = ScoreReport.ofComposition(result.scores(), result.baselineCorrected());
            }
        }
        if (png != null) {
            report.writeHeatmapPng(png, mode + "-composition scores of " + folderName(model)
                    + (chosen.foldLn() ? ", norms folded" : "") + (chosen.centerWritingWeights() ? ", W_O centred" : "")
                    + (chosen.baseline() ? " (minus the random baseline)" : ""));
        }
        if (json) {
            Map<String, Object> object = new LinkedHashMap<>();
            object.put("mode", mode.name());
            object.putAll(castMap((Map<?, ?>) report.json()));
            out.println(Json.write(object));
        } else {
            out.print(report.table(top));
            if (png != null) {
                out.println("heatmap: " + png);
            }
        }
    }

    /** The head detectors' scores as a table or JSON. */
    private static void heads(Path model, Integer seqLen, int batch, long seed, boolean bos, boolean json,
                              PrintStream out, PrintStream err) {
        Map<String, ScoreReport> reports = new LinkedHashMap<>();
        boolean windowed;
        try (HookedAutoModel m = HookedAutoModel.fromPretrained(model);
             TerminalProgress progress = TerminalProgress.of("head detectors", "layers", json, err);
             HookedAutoModel.HookHandle layers = layerProgress(m, progress, json)) {
            OptionalLong bosId;
            try {
                bosId = bos ? m.bosTokenId() : OptionalLong.empty();
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--bos: the model's beginning-of-sequence token is its tokenizer's"
                        + " where it has one: " + e.getMessage(), e);
            }
            if (bos && bosId.isEmpty()) {
                throw new IllegalArgumentException("--bos: this model's tokenizer puts no beginning-of-sequence token"
                        + " before a text and its config.json sets no single bos_token_id");
            }
            // where the context is too short for any length, the library's refusal names the model's context
            int n = seqLen != null ? seqLen : (int) Math.max(2,
                    Math.min(AttentionView.defaultDetectorSeqLen(m), (m.config().maxPositions() - (bos ? 1 : 0)) / 2));
            HookedAutoConfig c = m.config();
            windowed = java.util.stream.IntStream.range(0, c.nLayers())
                    .anyMatch(l -> c.isSlidingWindowLayer(l) || c.isLocalAttentionLayer(l));
            try (HeadDetectors.Scores s = HeadDetectors.detect(m, n, batch, seed, bosId)) {
                reports.put("previous_token", ScoreReport.ofHeads(s.previousToken()));
                reports.put("induction", ScoreReport.ofHeads(s.induction()));
                reports.put("duplicate_token", ScoreReport.ofHeads(s.duplicateToken()));
            }
        }
        if (json) {
            Map<String, Object> object = new LinkedHashMap<>();
            reports.forEach((kind, r) -> object.put(kind, ((Map<?, ?>) r.json()).get("scores")));
            out.println(Json.write(object));
        } else {
            int width = "duplicate_token".length();
            out.printf(Locale.ROOT, "%-" + width + "s  %-6s  %s%n", "kind", "top", "score");
            reports.forEach((kind, r) -> {
                List<ScoreReport.Entry> best = r.top(1);
                if (best.isEmpty()) { // every score is NaN
                    out.printf(Locale.ROOT, "%-" + width + "s  %-6s  %s%n", kind, "-", windowed
                            ? "none: windows too short, or NaN in the attention patterns"
                            : "none: the attention patterns hold NaN");
                } else {
                    out.printf(Locale.ROOT, "%-" + width + "s  %-6s  %.6f%n", kind, best.getFirst().label(),
                            best.getFirst().score());
                }
            });
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> castMap(Map<?, ?> m) {
        return (Map<String, Object>) m;
    }

    /** The ids and tokens of {@code text}, or the text of the ids {@code decode}. */
    private static void tokenize(Path path, String text, String decode, boolean json, PrintStream out) {
        try (HfTokenizer tokenizer = HfTokenizer.load(path)) {
            if (decode != null) {
                String decoded = tokenizer.decode(parseIdRow(decode, "--decode"));
                out.println(json ? Json.write(Map.of("text", decoded)) : decoded);
                return;
            }
            HfTokenizer.Tokens t = tokenizer.tokenize(text);
            if (json) {
                Map<String, Object> object = new LinkedHashMap<>();
                object.put("ids", t.ids());
                object.put("tokens", t.tokens());
                out.println(Json.write(object));
            } else {
                out.println(t.ids().length + " tokens");
                out.printf(Locale.ROOT, "%5s  %8s  %s%n", "pos", "id", "token");
                for (int i = 0; i < t.ids().length; i++) {
                    out.printf(Locale.ROOT, "%5d  %8d  %s%n", i, t.ids()[i], Json.quote(t.tokens().get(i)));
                }
            }
        }
    }

    /** The logits and the chosen activations of one pass, as text or one JSON object. */
    private static void forward(Path model, String ids, String text, Path tokenizerPath, boolean prependBos,
                                List<String> hooks, boolean json, PrintStream out, PrintStream err) {
        if (tokenizerPath != null && text == null) {
            throw new IllegalArgumentException("--tokenizer goes with --text");
        }
        if (prependBos && text == null) {
            throw new IllegalArgumentException("--prepend-bos goes with --text");
        }
        List<String> names = new ArrayList<>(hooks.stream().map(String::trim).filter(h -> !h.isEmpty()).distinct()
                .toList());
        if (!names.contains("logits")) {
            names.add("logits");
        }
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel m = HookedAutoModel.fromPretrained(model);
             TerminalProgress progress = TerminalProgress.of("forward", "layers", json, err);
             HookedAutoModel.HookHandle layers = layerProgress(m, progress, json);
             ModelOutput result = m.forward(text == null ? idsTensor(ids)
                     : textTensor(m, text, tokenizerPath, prependBos), CacheSpec.only(names.toArray(String[]::new)))) {
            progress.close();
            if (json) {
                // written as it goes: the logits of a long batch need not fit the heap as one string
                Writer writer = new BufferedWriter(new OutputStreamWriter(out, out.charset()));
                try {
                    result.cache().writeJson(names, writer);
                    writer.flush();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                out.println();
            } else {
                for (String name : names) {
                    out.println(name + " " + result.cache().get(name));
                }
            }
        }
    }

    /** "1,2,3;4,5,6" as a {@code [2, 3]} tensor. */
    private static Tensor idsTensor(String text) {
        long[][] rows = parseIds(text);
        return Tensor.of(Arrays.stream(rows).flatMapToLong(Arrays::stream).toArray(), rows.length, rows[0].length);
    }

    /**
     * {@code text} as {@code [1, pos]} ids through {@code tokenizerPath}'s tokenizer, else the model's; beginning with
     * the model's beginning-of-sequence token where {@code prependBos}.
     */
    private static Tensor textTensor(HookedAutoModel model, String text, Path tokenizerPath, boolean prependBos) {
        if (tokenizerPath == null) {
            return prependBos ? model.toTokens(text, true) : model.toTokens(text);
        }
        try (HfTokenizer tokenizer = HfTokenizer.load(tokenizerPath)) {
            Tensor ids;
            if (!prependBos) {
                ids = tokenizer.encodeAsTensor(text);
            } else {
                long bos = model.bosTokenId(tokenizer).orElseThrow(() -> new IllegalArgumentException("--prepend-bos:"
                        + " the tokenizer puts no beginning-of-sequence token before a text and the model's config.json"
                        + " names no single bos_token_id"));
                ids = tokenizer.encodeAsTensor(text, bos, true);
            }
            for (long id : ids.toLongArray()) {
                if (id >= model.config().vocabSize()) {
                    throw new IllegalArgumentException("--tokenizer " + tokenizerPath + " gives id " + id + ", which the"
                            + " model's vocabulary of " + model.config().vocabSize() + " tokens does not have: is it"
                            + " this model's tokenizer?");
                }
            }
            return ids;
        }
    }

    /** "1,2,3;4,5,6" → two rows of three ids; rows must be equally long. */
    private static long[][] parseIds(String text) {
        String[] rows = text.split(";", -1); // an empty row ("1,2;" or ";") is refused, not dropped
        long[][] ids = new long[rows.length][];
        for (int r = 0; r < rows.length; r++) {
            ids[r] = parseIdRow(rows[r], "--input-ids");
            if (ids[r].length != ids[0].length) {
                throw new IllegalArgumentException("--input-ids: every row needs the same length (row " + r + " has "
                        + ids[r].length + ", row 0 has " + ids[0].length + ")");
            }
        }
        return ids;
    }

    /** "1,2,3" → three ids. */
    private static long[] parseIdRow(String row, String option) {
        String[] items = row.split(",", -1);
        long[] ids = new long[items.length];
        for (int i = 0; i < items.length; i++) {
            String item = items[i].trim();
            try {
                ids[i] = parseLong(item);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + ": '" + row + "' is not a comma-separated list of integers"
                        + (isInteger(item) ? " ('" + item + "' is too large for an id)" : ""));
            }
        }
        return ids;
    }

    /**
     * An integer written in ASCII digits, after a minus sign for a negative one: Java's own parsing also takes a plus
     * sign and the digits of any script ("٥" as 5), which no one types as a token id or a count on purpose.
     */
    static long parseLong(String text) {
        return Long.parseLong(checkedInteger(text));
    }

    /** The same, within an int. */
    static int parseInt(String text) {
        return Integer.parseInt(checkedInteger(text));
    }

    /** {@code parse(text)} for picocli, which puts a conversion's own message after the option it names. */
    private static <T> T converted(String text, java.util.function.Function<String, T> parse, String what) {
        try {
            return parse.apply(text);
        } catch (NumberFormatException e) {
            throw new CommandLine.TypeConversionException(isInteger(text) ? "'" + text + "' is too large for "
                    + what : "'" + text + "' is not " + what + " (the digits 0 to 9, after a minus sign for a negative one)");
        }
    }

    private static boolean isInteger(String text) {
        return INTEGER.matcher(text).matches();
    }

    private static String checkedInteger(String text) {
        if (!isInteger(text)) {
            throw new NumberFormatException("'" + text + "' is not an integer in the digits 0 to 9");
        }
        return text;
    }

    /** The seed page's example, printed as JSON; notes go to {@code err} when the JSON goes to {@code out}. */
    private static void seedExample(boolean json, String config, long seed, PrintStream out, PrintStream err) {
        Map<String, Object> overrides = new LinkedHashMap<>();
        if (config != null) {
            for (String pair : topLevelPairs(config)) {
                String[] kv = pair.split("=", 2);
                if (kv.length != 2 || kv[0].isBlank()) {
                    throw new IllegalArgumentException("--config takes KEY=VALUE pairs, got '" + pair + "'");
                }
                String key = kv[0].trim();
                if (overrides.containsKey(key)) {
                    throw new IllegalArgumentException("--config names " + key + " twice");
                }
                overrides.put(key, configValue(kv[1].trim()));
            }
        }
        PrintStream notes = json ? err : out;
        HookedAutoModel built;
        try (TerminalProgress progress = TerminalProgress.of("random weights", "weights", json, err)) {
            built = SeedExample.buildModel(overrides, seed, progress.printer(notes), progress);
        }
        try (HookedAutoModel model = built;
             Tensor ids = SeedExample.inputIds(model.config(), seed)) {
            long t0 = System.nanoTime();
            Map<String, Object> result = SeedExample.run(model, ids);
            notes.printf(java.util.Locale.ROOT, "experiment ran in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            out.println(json ? Json.write(result) : Json.writeIndented(result));
        }
    }

    /** {@code text} split at the commas outside JSON objects, arrays and strings: the values may be JSON. */
    static List<String> topLevelPairs(String text) {
        List<String> pairs = new ArrayList<>();
        int depth = 0;
        boolean inString = false;
        int start = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (inString) {
                if (c == '\\') {
                    i++;
                } else if (c == '"') {
                    inString = false;
                }
            } else if (c == '"') {
                inString = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            } else if (c == ',' && depth == 0) {
                pairs.add(text.substring(start, i));
                start = i + 1;
            }
        }
        pairs.add(text.substring(start));
        return pairs;
    }

    /** A --config value as the JSON it spells (number, boolean, null, object, array), else as a string. */
    private static Object configValue(String text) {
        try {
            return Json.parse(text);
        } catch (Json.ParseException e) {
            return text; // not JSON: a bare string such as silu
        }
    }

    /**
     * The main job in one minute: a small random Llama with hooks and a cache, then the composer on it — the seed
     * example's {@code head_composition} and {@code attention_path_patching}, K-composition scores of every head pair,
     * and the head detectors. Zero-copy tensors from Java memory come first, as the library's footing.
     */
    private static void demo(PrintStream out) {
        out.println(LibTorch.load());
        try (TensorScope scope = TensorScope.open(); Arena arena = Arena.ofConfined()) {
            MemorySegment javaMemory = arena.allocate(ValueLayout.JAVA_FLOAT, 6);
            for (int i = 0; i < 6; i++) {
                javaMemory.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            Tensor shared = Tensor.fromSegment(javaMemory, DType.FLOAT32, 2, 3);
            out.printf("%nzero copy: %s lives at 0x%x, the Java segment at 0x%x%n", shared, shared.asSegment().address(),
                    javaMemory.address());

            HookedAutoConfig config = HookedAutoConfig.of("llama").with(Map.of("num_hidden_layers", 2,
                    "hidden_size", 256, "intermediate_size", 688, "num_attention_heads", 8, "num_key_value_heads", 8));
            out.println("\nmodel: " + config + " (the llama defaults, made small), random weights, seed 0");
            HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU);
            Tensor inputIds = Tensor.randint(new Generator(0), 0, config.vocabSize(), new long[] {1, 50}, Device.CPU);
            try (ModelOutput result = model.forward(inputIds)) {
                out.println("forward: logits " + Arrays.toString(result.logits().shape()) + ", "
                        + result.cache().size() + " activations cached, e.g. blocks.0.attn.hook_pattern "
                        + Arrays.toString(result.cache().get("blocks.0.attn.hook_pattern").shape()));
            }

            AttentionComposer composer = new AttentionComposer(model);
            try (AttentionComposer.HeadComposition hc = composer.headComposition(Head.of(0, 0), Head.of(1, 1), 0.5)) {
                out.println("\nhead_composition(L0H0, L1H1, 0.5): " + hc);
            }
            Tensor patched = composer.attentionPathPatching(inputIds, Head.of(0, 0), Head.of(0, 1));
            out.println("attention_path_patching(L0H0 -> L0H1): logits " + Arrays.toString(patched.shape()));
            out.println("\nK-composition, strongest pairs (random weights, so all small):");
            out.print(ScoreReport.ofComposition(composer.compositionScores(CompositionScores.Mode.K), null).table(5));
            HeadDetectors.Scores heads = composer.detectHeads(20, 4, 0);
            out.println("\nhead detectors on repeated random tokens (top head of each kind):");
            out.println("  previous-token " + HeadDetectors.argmax(heads.previousToken())
                    + ", induction " + HeadDetectors.argmax(heads.induction())
                    + ", duplicate-token " + HeadDetectors.argmax(heads.duplicateToken()));
            model.close();
        }
    }
}

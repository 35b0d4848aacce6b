package io.arrakis.bench;

import io.arrakis.io.IoErrors;
import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.ScoreReport;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.text.Tokenizer;
import io.arrakis.torch.Tensor;
import io.arrakis.view.AttentionView;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.IntToDoubleFunction;

/**
 * Arrakis's bench: a model, a set of named tools handed to user experiments, and a log of experiment runs under
 * {@code saveDir}. Subclass it as the seed example does ({@code class MIExperiment extends BaseInterpretabilityBench}).
 *
 * <pre>{@code
 * MIExperiment exp = new MIExperiment(model, Path.of("experiments"));
 * Experiment<HeadPair, Map<String, Object>> test = exp.useTools("composer").experiment("test_attention_composer",
 *         (args, tools) -> {
 *             AttentionComposer composer = tools.get("composer", AttentionComposer.class);
 *             ...
 *         });
 * test.run(new HeadPair(Head.of(0, 0), Head.of(0, 1), 0.5));
 * }</pre>
 *
 * <p>Tools are made from the model when first asked for ({@link #useTools}, {@link #tool}) and shared by the bench's
 * experiments; {@code "composer"} (an
 * {@link AttentionComposer}) is built in, {@link #registerTool} adds more. {@link #logExperiment} records every run
 * of an experiment ({@link ExperimentLog}); {@link #profileModel}, {@link #testHypothesis} and the {@code plot}
 * methods are Arrakis's {@code profile_model}, {@code test_hypothesis} and {@code plot_results}. The bench does not
 * own the model: close the model yourself; {@link #close} closes the tools that are {@link AutoCloseable}.
 */
public class BaseInterpretabilityBench implements AutoCloseable {
    /** Where experiment records go unless a bench is given a folder: {@code experiments}, as in Arrakis. */
    public static final Path DEFAULT_SAVE_DIR = Path.of("experiments");

    private final HookedAutoModel model;
    private final Path saveDir;
    private final Map<String, Function<HookedAutoModel, ?>> factories = new ConcurrentHashMap<>();
    private final Map<String, Object> tools = new ConcurrentHashMap<>();
    /** The tools whose factories are running, in order, guarded by this bench. */
    private final java.util.SequencedSet<String> making = new java.util.LinkedHashSet<>();
    private boolean closed; // guarded by this bench
    private final ExperimentLog.Options logOptions;
    private volatile ExperimentLog log;
    private volatile Tokenizer tokenizer;

    /** A bench over {@code model} that records experiments under {@link #DEFAULT_SAVE_DIR}. */
    public BaseInterpretabilityBench(HookedAutoModel model) {
        this(model, DEFAULT_SAVE_DIR);
    }

    /** A bench over {@code model} that records experiments under {@code saveDir} (created when the log is first used). */
    public BaseInterpretabilityBench(HookedAutoModel model, Path saveDir) {
        this(model, saveDir, ExperimentLog.Options.defaults());
    }

    /**
     * A bench whose experiment log has {@code logOptions}: how many tensor values a record shows, and whether tensors
     * are also stored in full as safetensors beside it.
     */
    public BaseInterpretabilityBench(HookedAutoModel model, Path saveDir, ExperimentLog.Options logOptions) {
        this.model = Objects.requireNonNull(model, "model");
        this.saveDir = Objects.requireNonNull(saveDir, "saveDir");
        this.logOptions = Objects.requireNonNull(logOptions, "logOptions");
        registerTool("composer", AttentionComposer::new);
    }

    /** The model under study. */
    public HookedAutoModel model() {
        return model;
    }

    /** The folder experiment records are saved under. */
    public Path saveDir() {
        return saveDir;
    }

    // ------------------------------------------------------------------------------------------------ tools

    /**
     * Adds a tool that experiments can ask for by {@code name}; {@code factory} makes it from the model when it is
     * first asked for.
     *
     * @throws IllegalArgumentException when the name is blank or already registered
     * @throws IllegalStateException when the bench is closed
     */
    public final synchronized void registerTool(String name, Function<HookedAutoModel, ?> factory) {
        Objects.requireNonNull(factory, "factory");
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("a tool needs a name, got '" + name + "'");
        }
        if (closed) {
            throw new IllegalStateException("this bench is closed: it takes no more tools");
        }
        if (factories.putIfAbsent(name, factory) != null) {
            throw new IllegalArgumentException("a tool named '" + name + "' is already registered");
        }
    }

    /** The registered tools' names, sorted. */
    public final Set<String> toolNames() {
        return new java.util.TreeSet<>(factories.keySet());
    }

    /**
     * The tool {@code name} as a {@code type}, made if this is the first time it is asked for.
     *
     * @throws IllegalArgumentException when no such tool is registered (the message lists those that are), or it is not
     *                                  a {@code type}
     */
    public final <T> T tool(String name, Class<T> type) {
        return new Tools(Map.of(name, instance(name))).get(name, type);
    }

    /**
     * Arrakis's {@code @exp.use_tools(...)}: the experiments made from the result receive these tools.
     *
     * @throws IllegalArgumentException when a name is not a registered tool (the message lists those that are)
     */
    public final ToolUse useTools(String... names) {
        Map<String, Object> chosen = new LinkedHashMap<>();
        for (String name : names) {
            chosen.put(name, instance(name));
        }
        return new ToolUse(new Tools(chosen));
    }

    /**
     * The tool, made on first use. A factory may ask for other tools (one lock, held again by the same thread, rather
     * than a map's atomic update, which refuses an update nested in another); one that asks for itself is refused.
     */
    private synchronized Object instance(String name) {
        Objects.requireNonNull(name, "tool name");
        Function<HookedAutoModel, ?> factory = factories.get(name);
        if (factory == null) {
            throw new IllegalArgumentException("no tool named '" + name + "'; registered tools: " + toolNames());
        }
        if (closed) {
            throw new IllegalStateException("this bench is closed, and its tools with it");
        }
        Object made = tools.get(name);
        if (made != null) {
            return made;
        }
        if (making.contains(name)) {
            String asking = making.getLast(); // the factory being run now
            throw new IllegalStateException("the factory of tool '" + asking + "' asks for tool '" + name + "', which"
                    + " is being made (" + String.join(" asks for ", making) + " asks for " + name + ")");
        }
        making.add(name);
        try {
            made = Objects.requireNonNull(factory.apply(model), () -> "the factory of tool '" + name + "' returned null");
        } finally {
            making.remove(name);
        }
        tools.put(name, made);
        return made;
    }

    /** The tools chosen by {@link #useTools}, ready to be handed to an experiment. */
    public static final class ToolUse {
        private final Tools tools;

        private ToolUse(Tools tools) {
            this.tools = tools;
        }

        /** An experiment named {@code name} whose body receives its arguments and the chosen tools. */
        public <A, R> Experiment<A, R> experiment(String name, ToolExperiment<A, R> body) {
            Objects.requireNonNull(body, "body");
            return new Experiment<>(name, args -> body.run(args, tools));
        }
    }

    /** The body of an experiment that uses tools. */
    @FunctionalInterface
    public interface ToolExperiment<A, R> {
        /** Runs the experiment on {@code args} with the declared {@code tools}. */
        R run(A args, Tools tools);
    }

    // ------------------------------------------------------------------------------------------------ experiment tracking

    /**
     * Arrakis's {@code @exp.log_experiment(name)}: {@code experiment}, recording each run under {@link #saveDir} with
     * its arguments as they were before it ran (a record's components, a map's entries, which need {@code String}
     * keys, or {@code {"args": value}}), its result, timing, the
     * library and libtorch versions and the model's config; the version of a run is the hash of its content.
     */
    public <A, R> Experiment<A, R> logExperiment(Experiment<A, R> experiment) {
        Objects.requireNonNull(experiment, "experiment");
        ExperimentLog.checkName(experiment.name());
        return new Experiment<>(experiment.name(), args -> {
            List<R> result = new ArrayList<>(1);
            // the arguments are logged as they are before the run, which may change them
            experimentLog().run(experiment.name(), argumentsOf(args), model.config(), () -> {
                R r = experiment.run(args);
                result.add(r);
                return r;
            });
            return result.getFirst();
        });
    }

    /** The logged runs of experiment {@code name}, by start time (Arrakis's {@code list_versions}). */
    public List<ExperimentRecord> listVersions(String name) {
        return experimentLog().listVersions(name);
    }

    /** The logged run of {@code name} with content hash {@code version} (Arrakis's {@code get_version}). */
    public ExperimentRecord getVersion(String name, String version) {
        return experimentLog().getVersion(name, version);
    }

    /** The log behind {@link #logExperiment}, over {@link #saveDir} (created on first use). */
    public ExperimentLog experimentLog() {
        ExperimentLog l = log;
        if (l == null) {
            synchronized (this) {
                if (log == null) {
                    log = new ExperimentLog(saveDir, logOptions);
                }
                l = log;
            }
        }
        return l;
    }

    private static Map<String, ?> argumentsOf(Object args) {
        if (args == null) {
            return Map.of();
        }
        if (args instanceof Map<?, ?> map) {
            Map<String, Object> named = new LinkedHashMap<>();
            map.forEach((k, v) -> {
                if (!(k instanceof String key)) { // String.valueOf would merge 1 and "1"
                    throw new IllegalArgumentException("cannot log the arguments: a map of arguments needs String keys,"
                            + " got " + (k == null ? "null" : k.getClass().getName() + " " + k));
                }
                named.put(key, v);
            });
            return named;
        }
        if (args instanceof Record r) {
            Map<String, Object> named = new LinkedHashMap<>();
            for (var component : r.getClass().getRecordComponents()) {
                try {
                    component.getAccessor().setAccessible(true);
                    named.put(component.getName(), component.getAccessor().invoke(r));
                } catch (ReflectiveOperationException e) {
                    throw new IllegalArgumentException("cannot read argument '" + component.getName() + "' of " + r, e);
                }
            }
            return named;
        }
        return Map.of("args", args);
    }

    // ------------------------------------------------------------------------------------------------ measures

    /** Arrakis's {@code profile_model}: time and activation bytes per layer and component of one forward pass. */
    public ModelProfile profileModel(Tensor inputIds) {
        return ModelProfiler.profile(model, inputIds);
    }

    /**
     * Arrakis's {@code test_hypothesis}: the statistic drawn {@code n} times under the null and under the alternative
     * (given the sample index, to seed from), compared by Welch's t-test at {@code alpha}.
     */
    public WelchResult testHypothesis(IntToDoubleFunction nullStatistic, IntToDoubleFunction alternativeStatistic,
                                      int n, double alpha) {
        return HypothesisTest.test(nullStatistic, alternativeStatistic, n, alpha);
    }

    /**
     * Arrakis's {@code plot_results} for attention: one PNG heatmap ({@code width × height}) per chosen layer and head
     * of the patterns on {@code inputIds}, under {@code saveDir/plots}, with tokens as tick labels when a
     * {@linkplain #setTokenizer tokenizer} is set.
     */
    public List<Path> plotAttentionPatterns(Tensor inputIds, int[] layers, int[] heads, int width, int height) {
        Tokenizer t = tokenizer().orElse(null);
        List<String> tokens = null;
        if (t != null) {
            if (inputIds.dim() == 2 && inputIds.size(0) != 1) {
                throw new IllegalArgumentException("token labels need one sequence, got input ids " + inputIds);
            }
            tokens = t.labels(inputIds.toLongArray());
        }
        return Plots.attentionPatterns(model, inputIds, layers, heads, tokens, saveDir.resolve("plots"), width, height);
    }

    /** Arrakis's {@code plot_results} for composition: a PNG heatmap of all-pairs {@code mode} scores, under {@code saveDir/plots}. */
    public Path plotCompositionScores(CompositionScores.Mode mode, int width, int height) {
        try (Tensor scores = CompositionScores.allPairs(model, mode)) {
            return Plots.compositionScores(ScoreReport.ofComposition(scores, null), mode + "-composition",
                    saveDir.resolve("plots").resolve("composition-" + mode + ".png"), width, height);
        }
    }

    /**
     * One self-contained HTML page of the model on {@code inputIds} ({@link AttentionView}: attention patterns of every
     * layer and head, Q/K/V composition, head detectors), token labels from the bench's tokenizer, written to
     * {@code saveDir/views/<name>.html}; returns the file. The name follows the rules of experiment names (one file
     * name, inside that folder).
     */
    public Path view(Tensor inputIds, String name) {
        ExperimentLog.checkName(name);
        Path file = saveDir.resolve("views").resolve(name + ".html");
        try {
            Files.createDirectories(file.getParent());
        } catch (IOException e) {
            throw new UncheckedIOException("could not create " + file.getParent() + ": " + IoErrors.reason(e), e);
        }
        AttentionView.Options options = AttentionView.Options.defaults().withTitle(name).withTokens(tokenizer().orElse(null));
        return AttentionView.of(model, inputIds, options).writeHtml(file);
    }

    /** Sets the tokenizer for text input and plot labels (e.g. {@code Gpt2Tokenizer.get()} for GPT-2's vocabulary); without one, the model's own is used. */
    public void setTokenizer(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The tokenizer that was set, else the model's own (its folder's {@code tokenizer.json}), when it has one. */
    public Optional<Tokenizer> tokenizer() {
        Tokenizer t = tokenizer;
        return t != null ? Optional.of(t) : model.tokenizer();
    }

    /**
     * {@code text} as input ids {@code [1, n]} through the tokenizer; ids stay the primary input, as in Arrakis.
     *
     * @throws IllegalStateException when no tokenizer is set and the model has none
     */
    public Tensor encode(String text) {
        return tokenizer().orElseThrow(() -> new IllegalStateException("no tokenizer is set and the model's folder has"
                + " none: call setTokenizer, e.g. with HfTokenizer.load(path) or Gpt2Tokenizer.get() for GPT-2's vocabulary"))
                .encodeAsTensor(text);
    }

    // ------------------------------------------------------------------------------------------------ lifecycle

    /**
     * Closes the tools that hold resources, after a factory running on another thread has made its tool; the model
     * stays open, even where a tool is the model itself. A tool asked for afterwards is refused.
     */
    @Override
    public synchronized void close() {
        closed = true;
        RuntimeException failure = null;
        for (Object tool : tools.values()) {
            if (tool instanceof AutoCloseable c && tool != model) {
                try {
                    c.close();
                } catch (Exception e) {
                    if (failure == null) {
                        failure = new IllegalStateException("closing a tool failed", e);
                    } else {
                        failure.addSuppressed(e);
                    }
                }
            }
        }
        tools.clear();
        if (failure != null) {
            throw failure;
        }
    }
}

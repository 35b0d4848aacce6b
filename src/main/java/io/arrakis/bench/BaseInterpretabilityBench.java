package io.arrakis.bench;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.model.HookedAutoModel;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Arrakis's bench: a model, a set of named tools handed to user experiments, and a log of experiment runs under
 * {@code saveDir}. Subclass it as the seed example does ({@code class MIExperiment extends BaseInterpretabilityBench}).
 *
 * <pre>{@code
 * MIExperiment exp = new MIExperiment(model);
 * Experiment<HeadPair, Map<String, Object>> test = exp.useTools("composer").experiment("test_attention_composer",
 *         (args, tools) -> {
 *             AttentionComposer composer = tools.get("composer", AttentionComposer.class);
 *             ...
 *         });
 * test.run(new HeadPair(Head.of(0, 0), Head.of(0, 1), 0.5));
 * }</pre>
 *
 * <p>Tools are made from the model on first use and shared by the bench's experiments; {@code "composer"} (an
 * {@link AttentionComposer}) is built in, {@link #registerTool} adds more. The bench does not own the model: close the
 * model yourself; {@link #close} closes the tools that are {@link AutoCloseable}.
 */
public class BaseInterpretabilityBench implements AutoCloseable {
    /** Where experiment records go unless a bench is given a folder: {@code experiments}, as in Arrakis. */
    public static final Path DEFAULT_SAVE_DIR = Path.of("experiments");

    private final HookedAutoModel model;
    private final Path saveDir;
    private final Map<String, Function<HookedAutoModel, ?>> factories = new ConcurrentHashMap<>();
    private final Map<String, Object> tools = new ConcurrentHashMap<>();

    /** A bench over {@code model} that records experiments under {@link #DEFAULT_SAVE_DIR}. */
    public BaseInterpretabilityBench(HookedAutoModel model) {
        this(model, DEFAULT_SAVE_DIR);
    }

    /** A bench over {@code model} that records experiments under {@code saveDir} (created on the first record). */
    public BaseInterpretabilityBench(HookedAutoModel model, Path saveDir) {
        this.model = Objects.requireNonNull(model, "model");
        this.saveDir = Objects.requireNonNull(saveDir, "saveDir");
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
     * Adds a tool that experiments can ask for by {@code name}; {@code factory} makes it from the model on first use.
     *
     * @throws IllegalArgumentException when the name is blank or already registered
     */
    public final void registerTool(String name, Function<HookedAutoModel, ?> factory) {
        Objects.requireNonNull(factory, "factory");
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("a tool needs a name, got '" + name + "'");
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
     * The tool {@code name} as a {@code type}, made on first use.
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

    private Object instance(String name) {
        Function<HookedAutoModel, ?> factory = factories.get(name);
        if (factory == null) {
            throw new IllegalArgumentException("no tool named '" + name + "'; registered tools: " + toolNames());
        }
        return tools.computeIfAbsent(name, n -> Objects.requireNonNull(factory.apply(model),
                () -> "the factory of tool '" + n + "' returned null"));
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

    // ------------------------------------------------------------------------------------------------ lifecycle

    /** Closes the tools that hold resources; the model stays open. */
    @Override
    public void close() {
        RuntimeException failure = null;
        for (Object tool : tools.values()) {
            if (tool instanceof AutoCloseable c) {
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

package io.arrakis.bench;

import java.util.Objects;
import java.util.function.Function;

/**
 * A named user experiment made by a {@link BaseInterpretabilityBench}: the Java form of an Arrakis function decorated
 * with {@code @exp.use_tools(...)} (and {@code @exp.log_experiment(...)} when {@link BaseInterpretabilityBench#logExperiment}
 * wrapped it). Its arguments are one value, best a record whose components name them.
 *
 * @param <A> the arguments
 * @param <R> the result
 */
public final class Experiment<A, R> {
    private final String name;
    private final Function<A, R> body;

    Experiment(String name, Function<A, R> body) {
        this.name = Objects.requireNonNull(name, "name");
        this.body = Objects.requireNonNull(body, "body");
    }

    /** The experiment's name, under which logged runs are recorded. */
    public String name() {
        return name;
    }

    /** Runs the experiment once with {@code args}. */
    public R run(A args) {
        return body.apply(args);
    }

    @Override
    public String toString() {
        return "Experiment[" + name + "]";
    }
}

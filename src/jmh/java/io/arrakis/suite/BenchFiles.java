package io.arrakis.suite;

import java.nio.file.Path;

/** Where scripts/bench.sh put the suite's checkpoints ({@code -Darrakis.bench.dir}, default {@code target/bench}). */
public final class BenchFiles {
    private BenchFiles() {
    }

    public static Path dir() {
        return Path.of(System.getProperty("arrakis.bench.dir", "target/bench"));
    }

    public static Path gpt2Small() {
        return dir().resolve("gpt2s");
    }

    public static Path tiny() {
        return dir().resolve("tiny");
    }
}

package io.arrakis.suite;

import java.nio.file.Path;

/** Where scripts/bench.sh put the suite's checkpoints ({@code -Darrakis.bench.dir}, default {@code target/bench}). */
public final class BenchFiles {
    private BenchFiles() {
    }

    public static Path dir() {
        return Path.of(System.getProperty("arrakis.bench.dir", "target/bench"));
    }

    /** The GPT-2-small-shaped checkpoint, written first if a benchmark runs without the suite. */
    public static Path gpt2Small() {
        return ensured().resolve("gpt2s");
    }

    /** The tiny checkpoint of the throughput and start-up rows, written first if needed. */
    public static Path tiny() {
        return ensured().resolve("tiny");
    }

    /** The GPT-2-small checkpoint's input ids {@code [1, 128]}, the ones every implementation runs. */
    public static io.arrakis.torch.Tensor gpt2SmallIds() {
        return io.arrakis.torch.Tensor.of(io.arrakis.model.BenchCheckpoint.readIds(gpt2Small()), 1,
                io.arrakis.model.BenchCheckpoint.SEQ);
    }

    private static Path ensured() {
        try {
            io.arrakis.model.BenchCheckpoint.main(new String[] {dir().toString()}); // a no-op when both are there
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot write the benchmark checkpoints under " + dir(), e);
        }
        return dir();
    }
}

package io.arrakis.cli;

import io.arrakis.composer.CompositionScores;

import java.io.PrintStream;

/**
 * A one-line progress bar of an all-pairs computation, redrawn in place on a terminal stream; drawn only for
 * computations of more than {@link #MIN_PAIRS} head pairs, which take long enough to watch.
 */
final class ProgressBar implements CompositionScores.Progress {
    static final long MIN_PAIRS = 1000;
    private static final int WIDTH = 30;

    private final PrintStream out;
    private final String label;
    private final long start = System.nanoTime();
    private int lastPercent = -1;

    ProgressBar(PrintStream out, String label) {
        this.out = out;
        this.label = label;
    }

    @Override
    public void advanced(long donePairs, long totalPairs) {
        if (totalPairs <= MIN_PAIRS) {
            return;
        }
        int percent = (int) (100 * donePairs / totalPairs);
        if (percent == lastPercent) {
            return;
        }
        lastPercent = percent;
        int filled = percent * WIDTH / 100;
        out.print("\r" + label + " [" + "#".repeat(filled) + " ".repeat(WIDTH - filled) + "] " + percent + "% ("
                + donePairs + "/" + totalPairs + " head pairs, " + (System.nanoTime() - start) / 1_000_000 + " ms)");
        if (donePairs == totalPairs) {
            out.println();
        }
        out.flush();
    }
}

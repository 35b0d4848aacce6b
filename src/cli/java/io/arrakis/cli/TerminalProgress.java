package io.arrakis.cli;

import io.arrakis.Progress;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.Console;
import java.io.PrintStream;

/**
 * A long step's progress drawn as a bar on standard error by me.tongfei's progressbar, only where a person watches:
 * when standard output is a terminal and the command does not print JSON. Piped and scripted runs stay silent.
 */
final class TerminalProgress implements Progress, AutoCloseable {
    private final String task;
    private final String unit;
    private final PrintStream err;
    private final boolean shown;
    private ProgressBar bar; // made on the first report, which brings the total

    TerminalProgress(String task, String unit, PrintStream err, boolean shown) {
        this.task = task;
        this.unit = unit;
        this.err = err;
        this.shown = shown;
    }

    /** A bar for {@code task}, counted in {@code unit}s, shown when {@link #watched} says so. */
    static TerminalProgress of(String task, String unit, boolean json, PrintStream err) {
        return new TerminalProgress(task, unit, err, watched(json));
    }

    /** Whether progress is worth drawing: output to a terminal, and not JSON for a program to read. */
    static boolean watched(boolean json) {
        Console console = System.console();
        return !json && console != null && console.isTerminal();
    }

    @Override
    public void advanced(long done, long total) {
        if (!shown) {
            return;
        }
        if (bar == null) {
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setUnit(" " + unit, 1)
                    .setStyle(ProgressBarStyle.ASCII).setConsumer(new ConsoleProgressBarConsumer(err))
                    .continuousUpdate().build();
        }
        bar.maxHint(total);
        bar.stepTo(done);
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}

package io.arrakis.cli;

import io.arrakis.Progress;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.Console;
import java.io.PrintStream;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * A long step's progress drawn as a bar on standard error by me.tongfei's progressbar, only where a person watches:
 * when standard output and standard error are a terminal and the command does not print JSON. Piped and scripted
 * runs, and standard error sent to a file, stay silent. Close it before printing a result: its last frame is drawn
 * then.
 */
final class TerminalProgress implements Progress, AutoCloseable {
    private final String task;
    private final String unit;
    private final PrintStream err;
    private final boolean shown;
    /** {@code isatty} of the C library, or null where it has none. */
    private static final MethodHandle ISATTY = isatty();
    private ProgressBar bar; // made on the first report, which brings the total
    private boolean closed;
    private final List<Runnable> afterBar = new ArrayList<>();

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

    /**
     * Whether progress is worth drawing: output to a terminal, and not JSON for a program to read; and standard error,
     * where it is drawn, a terminal too (the JDK's console looks at standard input and output only).
     */
    static boolean watched(boolean json) {
        Console console = System.console();
        return !json && console != null && console.isTerminal() && standardErrorIsTerminal();
    }

    private static boolean standardErrorIsTerminal() {
        try {
            return ISATTY != null && (int) ISATTY.invokeExact(2) == 1;
        } catch (Throwable t) {
            return false;
        }
    }

    private static MethodHandle isatty() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("isatty").map(f -> linker.downcallHandle(f,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT))).orElse(null);
        } catch (RuntimeException noNativeAccess) { // IllegalCallerException where native access is denied
            return null;
        }
    }

    /**
     * Prints each line to {@code to} at once while no bar is drawn, and otherwise once the bar is closed, so that no
     * frame of it lands on the line.
     */
    Consumer<String> printer(PrintStream to) {
        return line -> {
            synchronized (this) {
                if (bar == null) {
                    to.println(line);
                } else {
                    afterBar.add(() -> to.println(line));
                }
            }
        };
    }

    @Override
    public synchronized void advanced(long done, long total) {
        if (!shown || closed) {
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

    /** Draws the bar's last frame and prints what waited for it; later reports draw nothing. */
    @Override
    public synchronized void close() {
        closed = true;
        if (bar != null) {
            bar.close();
            bar = null;
        }
        afterBar.forEach(Runnable::run);
        afterBar.clear();
    }
}

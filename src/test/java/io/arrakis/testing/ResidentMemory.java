package io.arrakis.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's resident set (VmRSS), the measure of native leaks in the memory tests. */
public final class ResidentMemory {
    public static final long MB = 1L << 20;

    private ResidentMemory() {
    }

    /** VmRSS now, in bytes. */
    public static long rss() {
        return status("VmRSS");
    }

    /** VmHWM, the highest resident set since the process started or {@link #resetPeak}, in bytes. */
    public static long peak() {
        return status("VmHWM");
    }

    /** Sets VmHWM to the resident set now, so that {@link #peak} measures from here. */
    public static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long status(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalStateException("no " + field + " in /proc/self/status");
    }

    /**
     * RSS once the garbage collector, the tensor reaper and G1's background uncommit of a shrunk heap have caught up:
     * collects until two readings 50 ms apart agree within 1 MB (at most ~2 s).
     */
    public static long settled() {
        long previous = Long.MAX_VALUE;
        long current = rss();
        for (int i = 0; i < 40 && Math.abs(current - previous) > MB; i++) {
            System.gc();
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            previous = current;
            current = rss();
        }
        return current;
    }

    /**
     * RSS once it has come within {@code bound} bytes above {@code baseline}, or after {@code seconds}: collects and
     * reads every 100 ms, for memory that the library returns in the background (the heap trimmer, the tensor reaper).
     */
    public static long settledWithin(long baseline, long bound, int seconds) {
        long deadline = System.nanoTime() + seconds * 1_000_000_000L;
        long current = settled();
        while (current - baseline >= bound && System.nanoTime() < deadline) {
            System.gc();
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            current = rss();
        }
        return current;
    }

    /** Prints one measurement, so that a passing run still shows its figures. */
    public static void report(String test, String what, long before, long after) {
        System.out.printf("%s %s: RSS %d MB -> %d MB (%+.1f MB); Java heap committed %d MB%n", test, what, before / MB,
                after / MB, (after - before) / (double) MB,
                java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted() / MB);
    }
}

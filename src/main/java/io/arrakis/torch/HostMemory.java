package io.arrakis.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This machine's memory as Linux reports it, in bytes (0 where unknown: not Linux, or unreadable). Two questions, two
 * figures: whether a tensor can ever be backed ({@link #totalBytes()}: Linux hands out more than it has and kills the
 * process when the pages are touched), and whether something fits now ({@link #availableBytes()}).
 */
public final class HostMemory {
    private static final long TOTAL = readTotal();

    private HostMemory() {
    }

    /** MemTotal plus swap, read once. */
    public static long totalBytes() {
        return TOTAL;
    }

    /** MemAvailable, capped by this process's cgroup limit (less what the cgroup uses) when there is one; read now. */
    public static long availableBytes() {
        long available = meminfo("MemAvailable:");
        long limit = cgroupRoom();
        if (limit > 0) {
            available = available > 0 ? Math.min(available, limit) : limit;
        }
        return available;
    }

    private static long readTotal() {
        long total = meminfo("MemTotal:");
        return total > 0 ? total + meminfo("SwapTotal:") : 0;
    }

    private static long meminfo(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: unknown
        }
        return 0;
    }

    private static long cgroupRoom() {
        try {
            Path max = Path.of("/sys/fs/cgroup/memory.max");
            Path current = Path.of("/sys/fs/cgroup/memory.current");
            if (Files.isReadable(max)) {
                String text = Files.readString(max).trim();
                if (!text.equals("max")) {
                    long used = Files.isReadable(current) ? Long.parseLong(Files.readString(current).trim()) : 0;
                    return Long.parseLong(text) - used;
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cgroup v2 limit readable
        }
        return 0;
    }
}

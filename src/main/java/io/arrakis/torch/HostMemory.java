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
    private static final long USABLE = readUsable();

    private HostMemory() {
    }

    /** MemTotal plus swap, read once. */
    public static long totalBytes() {
        return TOTAL;
    }

    /** MemTotal without swap, capped by this process's cgroup limit when there is one; read once. */
    public static long usableBytes() {
        return USABLE;
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

    private static long readUsable() {
        long total = meminfo("MemTotal:");
        long limit = cgroupLimit();
        return limit > 0 && (total <= 0 || limit < total) ? limit : total;
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
        long limit = cgroupLimit();
        if (limit <= 0) {
            return 0;
        }
        try {
            Path current = Path.of("/sys/fs/cgroup/memory.current");
            return limit - (Files.isReadable(current) ? Long.parseLong(Files.readString(current).trim()) : 0);
        } catch (IOException | RuntimeException e) {
            return limit;
        }
    }

    /** The cgroup v2 memory limit, or 0 where there is none or it is unreadable. */
    private static long cgroupLimit() {
        try {
            Path max = Path.of("/sys/fs/cgroup/memory.max");
            if (Files.isReadable(max)) {
                String text = Files.readString(max).trim();
                if (!text.equals("max")) {
                    return Long.parseLong(text);
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cgroup v2 limit readable
        }
        return 0;
    }
}

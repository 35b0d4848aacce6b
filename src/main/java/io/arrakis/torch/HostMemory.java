package io.arrakis.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * This machine's memory as Linux reports it, in bytes: totals 0 where unknown (not Linux, or unreadable), what is
 * available now -1 where unknown, as 0 means none is left. Two questions, two figures: whether a tensor can ever be
 * backed ({@link #totalBytes()}: Linux hands out more than it has and kills the process when the pages are touched),
 * and whether something fits now ({@link #availableBytes()}).
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

    /**
     * MemAvailable, capped by the room this process's cgroups leave when one has a limit: the limit less what the
     * cgroup uses, not counting the file cache the kernel reclaims first ({@code inactive_file}), 0 once it is full;
     * read now; -1 where neither is known.
     */
    public static long availableBytes() {
        return capped(meminfo("MemAvailable:"), cgroupLimit(), true);
    }

    private static long readTotal() {
        long total = meminfo("MemTotal:");
        return total > 0 ? total + Math.max(0, meminfo("SwapTotal:")) : 0;
    }

    private static long readUsable() {
        return Math.max(0, capped(meminfo("MemTotal:"), cgroupLimit(), false));
    }

    /** {@code bytes} (-1: unknown) capped by the limit's room ({@code room}) or by the limit itself. */
    static long capped(long bytes, Limit limit, boolean room) {
        if (limit == null) {
            return bytes;
        }
        long cap = room ? limit.room() : limit.max();
        return bytes >= 0 ? Math.min(bytes, cap) : cap;
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
        return -1;
    }

    /** A cgroup's memory limit and what its processes use now, less the file cache the kernel can reclaim at once. */
    record Limit(long max, long used) {
        long room() {
            return Math.max(0, max - used);
        }
    }

    /** The tightest memory limit of this process's cgroups, or null where none has one or none is readable. */
    private static Limit cgroupLimit() {
        try {
            return cgroupLimit(Path.of("/sys/fs/cgroup"), Files.readAllLines(Path.of("/proc/self/cgroup")));
        } catch (IOException | RuntimeException e) {
            return null; // not Linux, or unreadable
        }
    }

    /**
     * The limit that leaves the least room among the cgroups (v2, and v1's memory controller) that {@code membership}
     * ({@code /proc/self/cgroup}'s lines) names under {@code root} and their ancestors; a cgroup a namespace hides is
     * read at the hierarchy's root, as it is mounted there.
     */
    static Limit cgroupLimit(Path root, List<String> membership) {
        Limit tightest = null;
        for (String line : membership) {
            String[] parts = line.split(":", 3);
            if (parts.length < 3) {
                continue;
            }
            Limit limit = null;
            if (parts[0].equals("0") && parts[1].isEmpty()) {
                limit = tightest(root, parts[2], "memory.max", "memory.current", "inactive_file");
            } else if (Arrays.asList(parts[1].split(",")).contains("memory")) {
                limit = tightest(root.resolve("memory"), parts[2], "memory.limit_in_bytes", "memory.usage_in_bytes",
                        "total_inactive_file");
            }
            if (limit != null && (tightest == null || limit.room() < tightest.room())) {
                tightest = limit;
            }
        }
        return tightest;
    }

    private static Limit tightest(Path hierarchy, String cgroup, String maxFile, String usedFile, String inactiveFile) {
        Path dir = hierarchy.resolve(cgroup.replaceFirst("^/+", ""));
        if (!Files.isDirectory(dir)) {
            dir = hierarchy;
        }
        Limit tightest = null;
        for (; dir != null && dir.startsWith(hierarchy); dir = dir.getParent()) {
            long max = number(dir.resolve(maxFile));
            // v1 writes "no limit" as a number near 2^63
            if (max > 0 && max < 1L << 60) {
                long used = number(dir.resolve(usedFile)) - Math.max(0, stat(dir.resolve("memory.stat"), inactiveFile));
                Limit limit = new Limit(max, Math.max(0, used));
                if (tightest == null || limit.room() < tightest.room()) {
                    tightest = limit;
                }
            }
        }
        return tightest;
    }

    /** The value of {@code key} in a {@code memory.stat} file, or -1 where it has none. */
    private static long stat(Path file, String key) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (line.startsWith(key + " ")) {
                    return Long.parseLong(line.substring(key.length() + 1).trim());
                }
            }
        } catch (IOException | RuntimeException e) {
            // absent or unreadable
        }
        return -1;
    }

    /** The number a cgroup file holds, or -1 where it is absent, unreadable or not a number ("max"). */
    private static long number(Path file) {
        try {
            return Long.parseLong(Files.readString(file).trim());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }
}

package io.arrakis.torch;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The memory figures against {@code /proc/meminfo} read here: usable memory is at most the RAM, and what is available
 * is within it; and the cgroup limits, on cgroup trees written as the kernel writes them.
 */
class HostMemoryTest {
    @Test
    void usableMemoryIsAtMostTheRamAndHoldsWhatIsAvailable() throws Exception {
        Path meminfo = Path.of("/proc/meminfo");
        assumeTrue(Files.isReadable(meminfo), "not Linux");
        long ram = Files.readAllLines(meminfo).stream().filter(l -> l.startsWith("MemTotal:"))
                .mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024).findFirst().orElseThrow();
        long usable = HostMemory.usableBytes();
        assertTrue(usable > 0 && usable <= ram, "usable " + usable + " of RAM " + ram);
        assertTrue(HostMemory.totalBytes() >= ram, "MemTotal plus swap");
        long available = HostMemory.availableBytes();
        assertTrue(available >= 0 && available <= usable, "available " + available + " of usable " + usable);
    }

    private static final long GIB = 1L << 30;

    private static void write(Path file, String text) throws Exception {
        Files.createDirectories(file.getParent());
        Files.writeString(file, text);
    }

    /** Was: a cgroup at or over its limit read as no limit at all, and the host's free memory was reported. */
    @Test
    void aFullCgroupLeavesNoRoom(@TempDir Path root) throws Exception {
        write(root.resolve("memory.max"), "4294967296\n");
        write(root.resolve("memory.current"), "4395630592\n");
        HostMemory.Limit limit = HostMemory.cgroupLimit(root, List.of("0::/"));
        assertEquals(new HostMemory.Limit(4 * GIB, 4395630592L), limit);
        assertEquals(0, HostMemory.capped(20 * GIB, limit, true));
        assertEquals(4 * GIB, HostMemory.capped(20 * GIB, limit, false));
        assertEquals(0, HostMemory.capped(-1, limit, true), "full, where MemAvailable is unknown");
        assertEquals(-1, HostMemory.capped(-1, null, true), "unknown stays unknown, not 0: none left");
    }

    @Test
    void reclaimableFileCacheIsRoom(@TempDir Path root) throws Exception {
        write(root.resolve("memory.max"), String.valueOf(4 * GIB));
        write(root.resolve("memory.current"), String.valueOf(4 * GIB));
        write(root.resolve("memory.stat"), "anon 1073741824\nfile 3221225472\ninactive_file 2147483648\n");
        assertEquals(2 * GIB, HostMemory.capped(20 * GIB, HostMemory.cgroupLimit(root, List.of("0::/")), true));
    }

    @Test
    void theProcessesOwnCgroupAndItsAncestorsAreRead(@TempDir Path root) throws Exception {
        write(root.resolve("system.slice/memory.max"), String.valueOf(8 * GIB));
        write(root.resolve("system.slice/memory.current"), String.valueOf(7 * GIB));
        write(root.resolve("system.slice/app.service/memory.max"), "max\n");
        write(root.resolve("system.slice/app.service/memory.current"), String.valueOf(GIB));
        HostMemory.Limit limit = HostMemory.cgroupLimit(root, List.of("0::/system.slice/app.service"));
        assertEquals(new HostMemory.Limit(8 * GIB, 7 * GIB), limit, "the parent's limit binds");
        assertNull(HostMemory.cgroupLimit(root, List.of("0::/")), "the root has no limit");
    }

    @Test
    void cgroupV1sMemoryControllerIsRead(@TempDir Path root) throws Exception {
        Path group = root.resolve("memory/process_api/abc");
        write(group.resolve("memory.limit_in_bytes"), String.valueOf(2 * GIB));
        write(group.resolve("memory.usage_in_bytes"), String.valueOf(GIB));
        write(group.resolve("memory.stat"), "cache 0\ntotal_inactive_file 268435456\n");
        write(root.resolve("memory/memory.limit_in_bytes"), "9223372036854771712\n"); // v1's "no limit"
        List<String> membership = List.of("9:name=systemd:/", "4:memory:/process_api/abc", "1:cpu:/", "0::/");
        assertEquals(new HostMemory.Limit(2 * GIB, GIB - 268435456L), HostMemory.cgroupLimit(root, membership));
        write(group.resolve("memory.limit_in_bytes"), "9223372036854771712\n");
        assertNull(HostMemory.cgroupLimit(root, membership));
    }

    @Test
    void aCgroupANamespaceHidesIsReadAtTheRoot(@TempDir Path root) throws Exception {
        write(root.resolve("memory.max"), String.valueOf(GIB));
        write(root.resolve("memory.current"), "0");
        assertEquals(new HostMemory.Limit(GIB, 0), HostMemory.cgroupLimit(root, List.of("0::/kubepods/pod1/ctr")));
    }
}

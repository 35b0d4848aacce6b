package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The memory figures against {@code /proc/meminfo} read here: usable memory is at most the RAM, and what is available
 * is within it.
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
        assertTrue(available > 0 && available <= usable, "available " + available + " of usable " + usable);
    }
}

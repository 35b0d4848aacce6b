package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The C heap policy: applied by default on glibc, left alone where the user chose otherwise. */
class NativeHeapTest {
    private static final String TRIMMING = "free arena memory returned when a thread that used libtorch ends";

    @Test
    void limitsArenasToTheCoresByDefault() {
        NativeHeap.Outcome outcome = NativeHeap.configure(null, Map.of(), 16);
        assertTrue(outcome.applied(), outcome.reason());
        assertEquals("at most 16 malloc arenas; " + TRIMMING, outcome.reason());
        assertEquals("at most 2 malloc arenas; " + TRIMMING, NativeHeap.configure("bounded", Map.of(), 1).reason());
        assertTrue(NativeHeap.configure(null, Map.of("ARRAKIS_MALLOC", " bounded "), 2).applied());
    }

    /**
     * A pool thread whose pool clears its thread-locals when it idles (the common pool's workers) runs the
     * registration again on its next native call: the trimmer keeps it once, not once per task.
     */
    @Test
    void aThreadRegisteringAgainIsKeptOnce() {
        assumeTrue(LibTorch.load().nativeHeap().contains(TRIMMING), "the trimming policy is off here");
        NativeHeap.noteThread();
        NativeHeap.register();
        NativeHeap.register();
        assertEquals(1, NativeHeap.registrations(Thread.currentThread()));
    }

    @Test
    void theLoadedLibraryReportsThePolicy() {
        String choice = System.getProperty("arrakis.malloc", System.getenv("ARRAKIS_MALLOC"));
        String expected = "default".equals(choice) ? "keeps glibc's own malloc settings" : TRIMMING;
        assertTrue(LibTorch.load().nativeHeap().contains(expected), LibTorch.load().toString());
        assertTrue(LibTorch.load().toString().contains("; native heap: "), LibTorch.load().toString());
    }

    @Test
    void theUsersChoiceWins() {
        NativeHeap.Outcome property = NativeHeap.configure("default", Map.of("ARRAKIS_MALLOC", "bounded"), 2);
        assertFalse(property.applied());
        assertEquals("-Darrakis.malloc=default keeps glibc's own malloc settings", property.reason());
        NativeHeap.Outcome env = NativeHeap.configure(null, Map.of("ARRAKIS_MALLOC", "default"), 2);
        assertFalse(env.applied());
        assertEquals("$ARRAKIS_MALLOC=default keeps glibc's own malloc settings", env.reason());
    }

    @Test
    void anArenaLimitFromTheEnvironmentIsKept() {
        assertEquals("arena limit from the environment; " + TRIMMING,
                NativeHeap.configure(null, Map.of("MALLOC_ARENA_MAX", "4"), 2).reason());
        assertEquals("arena limit from the environment; " + TRIMMING, NativeHeap.configure(null,
                Map.of("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=2"), 2).reason());
        assertEquals("at most 2 malloc arenas; " + TRIMMING,
                NativeHeap.configure(null, Map.of("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536"), 2).reason());
    }

    @Test
    void anUnknownPolicyIsRefusedByName() {
        LibTorchException e = assertThrows(LibTorchException.class, () -> NativeHeap.configure("mmap", Map.of(), 2));
        assertEquals("-Darrakis.malloc must be 'bounded' or 'default', got 'mmap'", e.getMessage());
        LibTorchException env = assertThrows(LibTorchException.class,
                () -> NativeHeap.configure(null, Map.of("ARRAKIS_MALLOC", "off"), 2));
        assertEquals("$ARRAKIS_MALLOC must be 'bounded' or 'default', got 'off'", env.getMessage());
    }
}

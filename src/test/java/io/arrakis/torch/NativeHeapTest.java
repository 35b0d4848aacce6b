package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The C heap policy: applied by default on glibc, left alone where the user chose otherwise. */
class NativeHeapTest {

    @Test
    void fixesTheThresholdByDefault() {
        NativeHeap.Outcome outcome = NativeHeap.configure(null, Map.of());
        assertTrue(outcome.applied(), outcome.reason());
        assertEquals("mmap threshold fixed at 131072 bytes", outcome.reason());
        assertTrue(NativeHeap.configure("bounded", Map.of()).applied());
        assertTrue(NativeHeap.configure(null, Map.of("ARRAKIS_MALLOC", " bounded ")).applied());
    }

    @Test
    void theLoadedLibraryReportsThePolicy() {
        String expected = System.getenv("MALLOC_MMAP_THRESHOLD_") != null ? "the environment sets glibc's mmap threshold"
                : "default".equals(System.getProperty("arrakis.malloc", System.getenv("ARRAKIS_MALLOC")))
                ? "keeps glibc's own malloc settings" : "mmap threshold fixed at 131072 bytes";
        assertTrue(LibTorch.load().nativeHeap().contains(expected), LibTorch.load().toString());
        assertTrue(LibTorch.load().toString().contains("native heap: "), LibTorch.load().toString());
    }

    @Test
    void theUsersChoiceWins() {
        NativeHeap.Outcome property = NativeHeap.configure("default", Map.of("ARRAKIS_MALLOC", "bounded"));
        assertFalse(property.applied());
        assertEquals("-Darrakis.malloc=default keeps glibc's own malloc settings", property.reason());
        NativeHeap.Outcome env = NativeHeap.configure(null, Map.of("ARRAKIS_MALLOC", "default"));
        assertFalse(env.applied());
        assertEquals("$ARRAKIS_MALLOC=default keeps glibc's own malloc settings", env.reason());
    }

    @Test
    void aThresholdFromTheEnvironmentIsKept() {
        assertFalse(NativeHeap.configure(null, Map.of("MALLOC_MMAP_THRESHOLD_", "65536")).applied());
        NativeHeap.Outcome tunable = NativeHeap.configure(null,
                Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"));
        assertFalse(tunable.applied());
        assertEquals("the environment sets glibc's mmap threshold", tunable.reason());
        assertTrue(NativeHeap.configure(null, Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")).applied());
    }

    @Test
    void anUnknownPolicyIsRefusedByName() {
        LibTorchException e = assertThrows(LibTorchException.class, () -> NativeHeap.configure("mmap", Map.of()));
        assertEquals("-Darrakis.malloc must be 'bounded' or 'default', got 'mmap'", e.getMessage());
        LibTorchException env = assertThrows(LibTorchException.class,
                () -> NativeHeap.configure(null, Map.of("ARRAKIS_MALLOC", "off")));
        assertEquals("$ARRAKIS_MALLOC must be 'bounded' or 'default', got 'off'", env.getMessage());
    }
}

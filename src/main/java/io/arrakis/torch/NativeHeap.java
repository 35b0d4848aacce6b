package io.arrakis.torch;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.Optional;

/**
 * Keeps the C heap that libtorch's CPU tensors live on from growing under thread churn.
 *
 * <p>libtorch allocates CPU tensors with {@code malloc}. glibc serves a large block with {@code mmap} (returned to the
 * system on free) only while it is above the <em>mmap threshold</em>, and it raises that threshold to the size of each
 * mmapped block freed, up to 32 MiB. After the first large tensor is freed, later ones come from the malloc arena of
 * the thread that allocates them; when a thread ends, its arena keeps the freed memory for a thread that may never
 * come. A service whose pool churns threads (a web server, a Spark executor) then grows by tens of megabytes per
 * thread. Fixing the threshold at glibc's own starting value (128 KiB) with {@code mallopt(M_MMAP_THRESHOLD)} turns
 * the adjustment off: large tensors keep coming from {@code mmap} and go back when freed; small ones stay in arenas.
 *
 * <p>Applied once, before libtorch loads, unless the user chose otherwise: {@code -Darrakis.malloc=default} or
 * {@code ARRAKIS_MALLOC=default} keeps glibc's behaviour, and so does a threshold of the user's own
 * ({@code MALLOC_MMAP_THRESHOLD_} or a {@code glibc.malloc.mmap_threshold} tunable). On a C library other than glibc
 * nothing is changed.
 */
final class NativeHeap {
    private static final String PROPERTY = LibTorch.PROPERTY_MALLOC;
    private static final String ENV = LibTorch.ENV_MALLOC;
    /** glibc's initial mmap threshold, kept fixed. */
    static final int MMAP_THRESHOLD = 128 * 1024;
    /** {@code M_MMAP_THRESHOLD} of glibc's {@code <malloc.h>}. */
    private static final int M_MMAP_THRESHOLD = -3;

    /** What was done: the threshold set, or why nothing was. */
    record Outcome(boolean applied, String reason) {
    }

    private NativeHeap() {
    }

    /** Applies the policy chosen by the JVM's properties and the environment. */
    static Outcome configure() {
        return configure(System.getProperty(PROPERTY), System.getenv());
    }

    static Outcome configure(String property, Map<String, String> env) {
        String choice = property != null ? property : env.get(ENV);
        String source = property != null ? "-D" + PROPERTY : "$" + ENV;
        if (choice != null && !choice.isBlank()) {
            switch (choice.trim()) {
                case "default" -> {
                    return new Outcome(false, source + "=default keeps glibc's own malloc settings");
                }
                case "bounded" -> {
                }
                default -> throw new LibTorchException(source + " must be 'bounded' or 'default', got '" + choice + "'");
            }
        }
        if (env.containsKey("MALLOC_MMAP_THRESHOLD_")
                || env.getOrDefault("GLIBC_TUNABLES", "").contains("glibc.malloc.mmap_threshold")) {
            return new Outcome(false, "the environment sets glibc's mmap threshold");
        }
        Optional<MemorySegment> mallopt = glibcSymbol("mallopt");
        if (mallopt.isEmpty()) {
            return new Outcome(false, "the C library is not glibc");
        }
        MethodHandle call = Linker.nativeLinker().downcallHandle(mallopt.get(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        int ok;
        try {
            ok = (int) call.invokeExact(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        } catch (Throwable t) {
            throw new LibTorchException("mallopt(M_MMAP_THRESHOLD) failed: " + t, t);
        }
        return ok == 1 ? new Outcome(true, "mmap threshold fixed at " + MMAP_THRESHOLD + " bytes")
                : new Outcome(false, "glibc refused mallopt(M_MMAP_THRESHOLD, " + MMAP_THRESHOLD + ")");
    }

    /** A symbol of the C library, present only where it is glibc (which alone has {@code gnu_get_libc_version}). */
    private static Optional<MemorySegment> glibcSymbol(String name) {
        SymbolLookup libc = Linker.nativeLinker().defaultLookup();
        return libc.find("gnu_get_libc_version").isPresent() ? libc.find(name) : Optional.empty();
    }
}

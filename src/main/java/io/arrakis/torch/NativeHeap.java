package io.arrakis.torch;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * Keeps the C heap that libtorch's CPU tensors live on from growing as threads come and go.
 *
 * <p>libtorch allocates CPU tensors with {@code malloc}. After the first large block is freed, glibc serves large
 * blocks from the malloc arena of the allocating thread rather than from {@code mmap}, and keeps what is freed there
 * for reuse. That is fast for a thread that keeps working, but when the thread ends its arena keeps the memory, and
 * glibc makes up to 8 arenas per core: a service whose pool replaces threads (a web server, a Spark executor) grows
 * by the working set of every thread it has let go. Two settings bound it without slowing the threads that work:
 * <ul>
 *   <li>at most one arena per core, at least 2 ({@code mallopt(M_ARENA_MAX)}), so the memory arenas keep is bounded
 *       by the cores, not by the threads there have been (glibc fixes its limit when the ninth arena is made, so
 *       arenas the JVM's own threads made before libtorch loaded still count, and stay);</li>
 *   <li>when a thread that used libtorch has ended, a daemon thread hands the free memory of every arena back to the
 *       system ({@code malloc_trim(0)}), twice: at once, and again shortly after, for tensors of that thread that the
 *       garbage collector's backstop frees later; and at once when the backstop of a {@link TensorScope} nobody
 *       closed has freed the scope's tensors.</li>
 * </ul>
 * Forcing large blocks to {@code mmap} instead (a fixed {@code M_MMAP_THRESHOLD}) would bound memory too, but every
 * large tensor would then start on fresh pages, a page fault per 4 KiB, which virtual machines make expensive.
 *
 * <p>Applied once, before libtorch loads, unless the user chose otherwise: {@code -Darrakis.malloc=default} or
 * {@code ARRAKIS_MALLOC=default} keeps glibc's behaviour; an arena limit of the user's own ({@code MALLOC_ARENA_MAX}
 * or a {@code glibc.malloc.arena_max} tunable) is kept, and the trimming still applies. On a C library other than
 * glibc nothing is changed.
 */
final class NativeHeap {
    private static final String PROPERTY = LibTorch.PROPERTY_MALLOC;
    private static final String ENV = LibTorch.ENV_MALLOC;
    /** {@code M_ARENA_MAX} of glibc's {@code <malloc.h>}. */
    private static final int M_ARENA_MAX = -8;
    /** How often the trimmer looks for threads that have ended. */
    private static final long POLL_MILLIS = 250;

    /** What was done, in words. */
    record Outcome(boolean applied, String reason) {
    }

    private static final List<WeakReference<Thread>> THREADS = new ArrayList<>(); // guarded by itself
    private static final ThreadLocal<Boolean> REGISTERED = ThreadLocal.withInitial(NativeHeap::register);
    private static volatile MethodHandle mallocTrim; // set once the policy applies

    private NativeHeap() {
    }

    /** Applies the policy chosen by the JVM's properties and the environment. */
    static Outcome configure() {
        Outcome outcome = configure(System.getProperty(PROPERTY), System.getenv(),
                Runtime.getRuntime().availableProcessors());
        if (outcome.applied()) {
            startTrimmer();
        }
        return outcome;
    }

    /** Decides and sets the arena limit; the trimmer is started by {@link #configure()}. */
    static Outcome configure(String property, Map<String, String> env, int cores) {
        LibTorch.Setting setting = LibTorch.Setting.of(PROPERTY, property, ENV, env.get(ENV));
        String choice = setting.value();
        String source = setting.source();
        if (choice != null) {
            switch (choice.trim()) {
                case "default" -> {
                    return new Outcome(false, source + "=default keeps glibc's own malloc settings");
                }
                case "bounded" -> {
                }
                default -> throw new LibTorchException(source + " must be 'bounded' or 'default', got '" + choice + "'");
            }
        }
        SymbolLookup libc = Linker.nativeLinker().defaultLookup();
        if (libc.find("gnu_get_libc_version").isEmpty()) {
            return new Outcome(false, "the C library is not glibc: malloc left as it is");
        }
        mallocTrim = downcall(libc.find("malloc_trim"), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        String trimming = "free arena memory returned when a thread that used libtorch ends";
        if (env.containsKey("MALLOC_ARENA_MAX") || env.getOrDefault("GLIBC_TUNABLES", "").contains("glibc.malloc.arena_max")) {
            return new Outcome(true, "arena limit from the environment; " + trimming);
        }
        int arenas = Math.max(2, cores);
        MethodHandle mallopt = downcall(libc.find("mallopt"),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        int ok;
        try {
            ok = (int) mallopt.invokeExact(M_ARENA_MAX, arenas);
        } catch (Throwable t) {
            throw new LibTorchException("mallopt(M_ARENA_MAX) failed: " + t, t);
        }
        if (ok != 1) {
            return new Outcome(true, "glibc refused mallopt(M_ARENA_MAX, " + arenas + "); " + trimming);
        }
        return new Outcome(true, "at most " + arenas + " malloc arenas; " + trimming);
    }

    /** Called on a thread's first native call; registers the thread with the trimmer once. */
    static void noteThread() {
        REGISTERED.get();
    }

    /** Returns the free memory of every arena to the system now; false where the policy does not apply. */
    static boolean trim() {
        MethodHandle trim = mallocTrim;
        if (trim == null) {
            return false;
        }
        try {
            int released = (int) trim.invokeExact(0L);
            return released >= 0;
        } catch (Throwable t) {
            throw new LibTorchException("malloc_trim failed: " + t, t);
        }
    }

    /** Registers the calling thread with the trimmer, once however often its thread-locals are cleared. */
    static Boolean register() {
        // malloc arenas belong to OS threads: a virtual thread's end frees none (its carrier lives on)
        Thread current = Thread.currentThread();
        if (mallocTrim != null && !current.isVirtual()) {
            synchronized (THREADS) {
                // a pool thread whose thread-locals its pool cleared registers again: keep it once
                if (THREADS.stream().noneMatch(ref -> ref.get() == current)) {
                    THREADS.add(new WeakReference<>(current));
                }
            }
        }
        return Boolean.TRUE;
    }

    /**
     * Asks the trimmer to hand the free memory of every arena back to the system now, rather than at the next end of
     * a thread; requests made while it trims are served by one more trim. Nothing where the policy does not apply.
     */
    static void trimSoon() {
        Thread t = trimmer;
        if (t != null) {
            TRIM_ASKED.set(true);
            LockSupport.unpark(t);
        }
    }

    private static final AtomicBoolean TRIMMER_STARTED = new AtomicBoolean();
    private static final AtomicBoolean TRIM_ASKED = new AtomicBoolean();
    private static volatile Thread trimmer;

    /** Starts the trimmer once per JVM, however many times loading is tried. */
    private static void startTrimmer() {
        if (!TRIMMER_STARTED.compareAndSet(false, true)) {
            return;
        }
        Thread t = new Thread(NativeHeap::trimWhenThreadsEnd, "arrakis-heap-trimmer");
        t.setDaemon(true);
        trimmer = t;
        t.start();
    }

    private static void trimWhenThreadsEnd() {
        boolean again = false;
        while (true) {
            long until = System.nanoTime() + POLL_MILLIS * 1_000_000L;
            while (!TRIM_ASKED.get() && System.nanoTime() < until) {
                LockSupport.parkNanos(until - System.nanoTime());
                if (Thread.currentThread().isInterrupted()) {
                    return;
                }
            }
            boolean asked = TRIM_ASKED.getAndSet(false);
            boolean ended = removeEndedThreads();
            if (ended || asked || again) {
                trim();
            }
            // memory the backstop frees shortly after a thread's end is handed back at the next poll
            again = ended || asked;
        }
    }

    /** How many times {@code thread} is registered with the trimmer now. */
    static long registrations(Thread thread) {
        synchronized (THREADS) {
            return THREADS.stream().filter(ref -> ref.get() == thread).count();
        }
    }

    private static boolean removeEndedThreads() {
        synchronized (THREADS) {
            return THREADS.removeIf(ref -> {
                Thread t = ref.get();
                return t == null || !t.isAlive();
            });
        }
    }

    private static MethodHandle downcall(Optional<MemorySegment> symbol, FunctionDescriptor descriptor) {
        return Linker.nativeLinker().downcallHandle(symbol.orElseThrow(
                () -> new LibTorchException("glibc without " + descriptor + ": cannot manage the native heap")), descriptor);
    }
}

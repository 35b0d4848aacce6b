package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Runs small CPU ops on the calling thread alone.
 *
 * <p>libtorch splits a layer norm or a softmax over its rows, and CPU flash attention over its heads and query
 * blocks, whatever their size. Waking OpenMP's pool and waiting for it at the end costs more than the whole op on a
 * small input, and a small model's forward pass is mostly such ops. Around these ops, when the work each pool thread
 * would get is below a grain, the calling thread's OpenMP team size is set to 1 and put back afterwards: an OpenMP
 * setting of that thread only, so concurrent callers are unaffected, and large inputs still use the pool.
 *
 * <p>The OpenMP runtime is the one libtorch links (found through the libraries this library loaded); a libtorch
 * without one keeps its own splitting.
 */
final class SmallOps {
    /** Elements per thread below which a row-wise op (layer norm, softmax) runs on one thread. */
    static final long ROW_GRAIN = 1L << 17;
    /** Multiply-adds per thread (batch · heads · queries · keys · head size) below which attention runs on one thread. */
    static final long ATTENTION_GRAIN = 1L << 20;

    private static final MethodHandle SET_NUM_THREADS = find("omp_set_num_threads", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));

    private SmallOps() {
    }

    /** Whether this library can set the team size of the OpenMP runtime libtorch uses. */
    static boolean available() {
        return SET_NUM_THREADS != null;
    }

    /**
     * Makes the calling thread run its next parallel regions alone if {@code work} split over its team is below
     * {@code grain}; returns the team size to put back with {@link #restore}, or 0 where nothing was changed.
     * {@code scratch} holds the answer of libtorch's thread count (4 bytes).
     */
    static int serialIfSmall(long work, long grain, MemorySegment scratch) {
        if (!available()) {
            return 0;
        }
        // libtorch's count, not OpenMP's: it first gives this thread libtorch's default if it has none yet
        Native.check(arrakis_torch_h.torch_get_num_threads(scratch), "torch_get_num_threads");
        int team = scratch.get(ValueLayout.JAVA_INT, 0);
        if (team <= 1 || work / team >= grain) {
            return 0;
        }
        setThreads(1);
        return team;
    }

    /** Puts back the team size {@link #serialIfSmall} returned (0: nothing to do). */
    static void restore(int team) {
        if (team > 0) {
            setThreads(team);
        }
    }

    private static void setThreads(int threads) {
        try {
            SET_NUM_THREADS.invokeExact(threads);
        } catch (Throwable t) {
            throw new LibTorchException("omp_set_num_threads failed: " + t, t);
        }
    }

    private static MethodHandle find(String name, FunctionDescriptor descriptor) {
        LibTorch.load();
        Optional<MemorySegment> symbol = SymbolLookup.loaderLookup().find(name);
        return symbol.map(s -> Linker.nativeLinker().downcallHandle(s, descriptor, Linker.Option.critical(false))).orElse(null);
    }
}

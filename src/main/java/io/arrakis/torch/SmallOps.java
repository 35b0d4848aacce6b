package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Runs small CPU ops on fewer threads than libtorch's pool holds.
 *
 * <p>libtorch splits a layer norm or a softmax over its rows, CPU flash attention over its heads and query blocks,
 * and oneDNN a linear layer over its output blocks, whatever their size. Waking OpenMP's pool and waiting for it at
 * the end costs more than the whole op on a small input, and a small model's forward pass is mostly such ops. Around
 * these ops the calling thread's OpenMP team is cut to as many threads as get at least a grain of work each (one, for
 * the smallest; a model's linear layer, whose packed weight is laid out for its team, gets one thread or all of them,
 * see {@link LinearWeight}) and put back afterwards: an OpenMP setting of that thread only, so concurrent callers are unaffected,
 * and large inputs still use the whole pool. A virtual thread keeps the whole team: between the cut and the restore
 * it may move to another carrier, another OS thread with a setting of its own, leaving the first one cut.
 *
 * <p>The OpenMP runtime is the one libtorch links (found through the libraries this library loaded); a libtorch
 * without one keeps its own splitting.
 */
final class SmallOps {
    /** Elements per thread below which a row-wise op (layer norm, softmax) gets fewer threads. */
    static final long ROW_GRAIN = 1L << 17;
    /** Multiply-adds per thread (batch · heads · queries · keys · head size) below which attention gets fewer threads. */
    static final long ATTENTION_GRAIN = 1L << 20;
    /** Output elements per thread below which a model's linear layer multiplies through its one-thread copy. */
    static final long LINEAR_OUTPUT_GRAIN = 1L << 15;

    private static final MethodHandle SET_NUM_THREADS = Native.optionalFunction("omp_set_num_threads",
            FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT), Linker.Option.critical(false));

    private SmallOps() {
    }

    /** Whether this library can set the team size of the OpenMP runtime libtorch uses. */
    static boolean available() {
        return SET_NUM_THREADS != null;
    }

    /** Whether the calling thread's team may be cut: where it can be set, and not on a virtual thread. */
    static boolean cutsTeams() {
        return available() && !Thread.currentThread().isVirtual();
    }

    /**
     * Cuts the calling thread's team for its next parallel regions to as many threads as get at least {@code grain}
     * of {@code work} each; returns the team size to put back with {@link #restore}, or 0 where nothing was changed.
     * {@code scratch} holds the answer of libtorch's thread count (4 bytes).
     */
    static int fitTeam(long work, long grain, MemorySegment scratch) {
        if (!cutsTeams()) {
            return 0;
        }
        int team = threads(scratch);
        int fitting = fitted(team, work, grain);
        if (fitting == team) {
            return 0;
        }
        setThreads(fitting);
        return team;
    }

    /** As many of {@code team} threads as get at least {@code grain} of {@code work} each, and at least one. */
    static int fitted(int team, long work, long grain) {
        return (int) Math.min(team, Math.max(1, work / grain));
    }

    /**
     * Sets the calling thread's team for its next parallel regions to exactly {@code threads}, from {@code current}
     * (its {@link #threads} now); returns the team size to put back with {@link #restore}, or 0 where nothing changed.
     */
    static int exactTeam(int threads, int current) {
        if (current == threads) {
            return 0;
        }
        setThreads(threads);
        return current;
    }

    /** libtorch's thread count for the calling thread, not OpenMP's: it first gives the thread libtorch's default. */
    static int threads(MemorySegment scratch) {
        Native.check(arrakis_torch_h.torch_get_num_threads(scratch), "torch_get_num_threads");
        return scratch.get(ValueLayout.JAVA_INT, 0);
    }

    /** Puts back the team size {@link #fitTeam} returned (0: nothing to do). */
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
}

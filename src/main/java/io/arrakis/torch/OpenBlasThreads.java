package io.arrakis.torch;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Keeps OpenBLAS on one thread while libtorch calls it from inside its own parallel regions.
 *
 * <p>The bundled OpenBLAS runs its own pool of threads (a pthreads build) that knows nothing of OpenMP. libtorch's CPU
 * flash attention multiplies its blocks from each of its OpenMP threads at once; each of those products hands work to
 * the same few OpenBLAS threads and waits for them, and the op becomes many times slower once its blocks are large
 * enough for OpenBLAS to split (a few hundred tokens). While any thread runs such an op, OpenBLAS is set to one thread,
 * and put back when the last one leaves. The setting is process-wide, so products elsewhere run on one thread
 * meanwhile: slower, never wrong, though OpenBLAS may round their last bits otherwise on one thread than on several, so
 * what they give depends to rounding on what other threads run. An OpenBLAS without these functions, or another BLAS,
 * is left alone.
 */
final class OpenBlasThreads {
    private static final MethodHandle SET = Native.optionalFunction("openblas_set_num_threads",
            FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT), Linker.Option.critical(false));
    private static final MethodHandle GET = Native.optionalFunction("openblas_get_num_threads",
            FunctionDescriptor.of(ValueLayout.JAVA_INT), Linker.Option.critical(false));
    private static final Object LOCK = new Object();
    private static int inside; // threads between enter and leave
    private static int saved; // OpenBLAS's thread count when the first of them entered

    private OpenBlasThreads() {
    }

    /** Called before an op that runs OpenBLAS inside libtorch's parallel regions; pair with {@link #leave}. */
    static void enter() {
        if (SET == null || GET == null) {
            return;
        }
        synchronized (LOCK) {
            if (inside == 0) {
                saved = threads();
                if (saved > 1) {
                    set(1);
                }
            }
            inside++; // counted once the setting took, so that a failure leaves nothing to put back
        }
    }

    static void leave() {
        if (SET == null || GET == null) {
            return;
        }
        synchronized (LOCK) {
            if (--inside == 0 && saved > 1) {
                set(saved);
            }
        }
    }

    /** OpenBLAS's thread count now (0 where there is no OpenBLAS). */
    static int threads() {
        if (GET == null) {
            return 0;
        }
        try {
            return (int) GET.invokeExact();
        } catch (Throwable t) {
            throw new LibTorchException("openblas_get_num_threads failed: " + t, t);
        }
    }

    private static void set(int threads) {
        try {
            SET.invokeExact(threads);
        } catch (Throwable t) {
            throw new LibTorchException("openblas_set_num_threads failed: " + t, t);
        }
    }
}

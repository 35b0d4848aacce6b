package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.PhantomReference;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A tensor's libtorch handle and its release, freed exactly once: by {@link #release()} (close or scope) or, for
 * tensors nobody closed, by a daemon thread after the garbage collector finds the tensor unreachable. Native calls
 * hold the handle ({@link #enter()} to {@link #close()}): a release while calls are in flight, on other threads, marks
 * the tensor closed at once and leaves the freeing to the last of them, so no call reads a freed handle.
 *
 * <p>This replaces {@link java.lang.ref.Cleaner}, whose registry is one list behind one lock: here the registry is
 * striped by thread, so threads creating and freeing tensors at once do not contend, and each tensor costs one object.
 * Tensors a {@link TensorScope} owns are not registered at all: the scope frees them.
 */
final class NativeHandle extends PhantomReference<Tensor> implements Tensor.Held {
    private static final ReferenceQueue<Tensor> QUEUE = new ReferenceQueue<>();
    /** Released handles whose segments a native call was reading: the reaper frees them once it is done. */
    private static final Queue<NativeHandle> BUSY = new ConcurrentLinkedQueue<>();
    private static final long BUSY_RETRY_MILLIS = 50;
    private static final Thread REAPER;
    private static final int STRIPE_COUNT = 32; // a power of two
    private static final Stripe[] STRIPES = new Stripe[STRIPE_COUNT];
    private static final VarHandle STATE;
    /** The bit of {@link #state} that says the handle is released; the other bits count the calls holding it. */
    private static final int RELEASED = Integer.MIN_VALUE;

    static {
        for (int i = 0; i < STRIPE_COUNT; i++) {
            STRIPES[i] = new Stripe();
        }
        try {
            STATE = MethodHandles.lookup().findVarHandle(NativeHandle.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
        REAPER = new Thread(NativeHandle::reap, "arrakis-tensor-reaper");
        REAPER.setDaemon(true);
        REAPER.start();
    }

    /** The registered handles of one stripe, a doubly linked list so removal is O(1). */
    private static final class Stripe {
        NativeHandle head;
    }

    final long address;
    /** The scope that frees this handle, or null when the handle is registered for the garbage collector instead. */
    TensorScope.Owned owner;
    /** The bytes of the tensor's storage, counted by {@link NativePressure} while the handle is registered. */
    private long bytes;
    private volatile Stripe stripe;
    private NativeHandle prev;
    private NativeHandle next;
    private volatile int state;
    /**
     * The arena of segments handed out by {@link Tensor#asSegment()}, closed with the handle. Weak: the tensor holds
     * it, and it holds the tensor (so that a segment keeps its tensor reachable), and this handle must not keep them.
     */
    volatile WeakReference<Arena> segmentArena;

    /** A handle owned by a scope (which frees it), or, with {@code register}, by the garbage collector's backstop. */
    NativeHandle(Tensor tensor, long address, boolean register) {
        super(tensor, QUEUE);
        this.address = address;
        if (register) {
            register();
        }
    }

    /** Makes the garbage collector's backstop responsible for this handle. */
    void register() {
        if (!enter()) {
            return; // released by another thread already: nothing left to register
        }
        try {
            bytes = Native.storageBytes(MemorySegment.ofAddress(address));
        } finally {
            close();
        }
        Stripe s = STRIPES[(int) Thread.currentThread().threadId() & (STRIPE_COUNT - 1)];
        stripe = s;
        synchronized (s) {
            next = s.head;
            if (next != null) {
                next.prev = this;
            }
            s.head = this;
            NativePressure.registered(bytes); // under the lock that unlinking takes, so it is counted before it leaves
        }
        if (isReleased()) { // released on another thread before it could see the stripe, so it could not unlink
            unlink(s);
        }
        NativePressure.collectIfDue();
    }

    boolean isReleased() {
        return state < 0;
    }

    /** Whether some thread holds the handle for native calls now. */
    boolean isHeld() {
        return (state & ~RELEASED) != 0;
    }

    /** Holds the handle for one native call; false when it is released. */
    boolean enter() {
        while (true) {
            int s = state;
            if (s < 0) {
                return false;
            }
            if (STATE.compareAndSet(this, s, s + 1)) {
                return true;
            }
        }
    }

    /** Ends a hold of {@link #enter()}; the last hold after a release frees the handle. */
    @Override
    public void close() {
        if ((int) STATE.getAndAdd(this, -1) - 1 == RELEASED) {
            free();
        }
    }

    /**
     * Frees the handle if nobody has, or marks it released for the last call holding it to free; safe from any thread,
     * any number of times.
     */
    void release() {
        int s;
        do {
            s = state;
            if (s < 0) {
                return;
            }
        } while (!STATE.compareAndSet(this, s, s | RELEASED));
        Stripe stripe = this.stripe;
        if (stripe != null) {
            unlink(stripe);
        }
        clear();
        if (s == 0) {
            free();
        }
    }

    private void free() {
        WeakReference<Arena> ref = segmentArena;
        Arena arena = ref == null ? null : ref.get();
        if (arena != null) {
            try {
                arena.close();
            } catch (IllegalStateException acquired) {
                BUSY.add(this); // a downcall on another thread holds one of its segments: free the tensor after it
                if (Thread.currentThread() != REAPER) {
                    REAPER.interrupt(); // wakes it to retry
                }
                return;
            }
        }
        Native.deleteTensor(address);
    }

    private void unlink(Stripe stripe) {
        synchronized (stripe) {
            if (prev == null && stripe.head != this) {
                return; // not linked, or unlinked already
            }
            if (prev != null) {
                prev.next = next;
            } else {
                stripe.head = next;
            }
            if (next != null) {
                next.prev = prev;
            }
            prev = null;
            next = null;
            NativePressure.released(bytes, Thread.currentThread() == REAPER);
        }
    }

    private static void reap() {
        while (true) {
            try {
                Reference<? extends Tensor> unreachable = QUEUE.remove(BUSY.isEmpty() ? 0 : BUSY_RETRY_MILLIS);
                if (unreachable != null) {
                    ((NativeHandle) unreachable).release();
                }
                for (int n = BUSY.size(); n > 0; n--) {
                    NativeHandle busy = BUSY.poll();
                    if (busy != null) {
                        busy.free();
                    }
                }
            } catch (InterruptedException e) {
                // a daemon: keep reaping until the JVM exits
            } catch (RuntimeException e) {
                System.err.println("arrakis: freeing an unreachable tensor failed: " + e);
            }
        }
    }
}

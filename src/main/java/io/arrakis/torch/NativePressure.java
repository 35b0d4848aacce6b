package io.arrakis.torch;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Makes the garbage collector's backstop see native memory. A tensor nobody closed is freed only when a collection
 * finds it unreachable, and collections come from pressure on the Java heap, where a tensor is a few dozen bytes
 * however much native memory it holds: a loop that forgets its outputs and makes little other garbage would hold
 * gigabytes before a collection came. So this counts the bytes of the tensors left to the backstop and asks for a
 * collection once they have grown by {@link #STEP} since the last one asked for, less what collections found since,
 * as the JDK does for direct buffers. Tensors closed do not lower that mark: work whose tensors in use grow past a
 * step and are closed each time (a large cache per pass) pays one collection, not one each time.
 */
final class NativePressure {
    /** The growth that asks for a collection. */
    static final long STEP = Math.max(256L << 20, HostMemory.usableBytes() / 32);
    private static final long MIN_INTERVAL_NANOS = 20_000_000L;

    private static final AtomicLong REGISTERED = new AtomicLong();
    /** Where {@link #REGISTERED} asks for the next collection. */
    private static final AtomicLong COLLECT_AT = new AtomicLong(STEP);
    /**
     * The least {@link #REGISTERED} since the last collection asked for: growth of {@link #MAX_GROWTH} over it asks
     * for one whatever closed tensors left the mark at (a closed model's weights, say).
     */
    private static final AtomicLong LOWEST = new AtomicLong();
    private static final long MAX_GROWTH = 4 * STEP;
    private static final AtomicLong LAST_COLLECTION = new AtomicLong(System.nanoTime() - MIN_INTERVAL_NANOS);
    private static final AtomicLong COLLECTIONS = new AtomicLong();

    private NativePressure() {
    }

    /** A tensor of {@code bytes} was left to the backstop. */
    static void registered(long bytes) {
        REGISTERED.addAndGet(bytes);
    }

    /** A tensor of {@code bytes} the backstop was responsible for was freed: closed, or {@code reaped}. */
    static void released(long bytes, boolean reaped) {
        long now = REGISTERED.addAndGet(-bytes);
        if (reaped) {
            COLLECT_AT.addAndGet(-bytes);
        }
        if (now < LOWEST.get()) {
            LOWEST.accumulateAndGet(now, Math::min);
        }
    }

    /**
     * Asks for a collection, on this thread, once the bytes left to the backstop pass the mark or have grown by
     * {@link #MAX_GROWTH} over their least since the last one; at most one per {@link #MIN_INTERVAL_NANOS}, so that a
     * burst of long-lived tensors (a model's weights) costs few.
     */
    static void collectIfDue() {
        long now = REGISTERED.get();
        if (now < COLLECT_AT.get() && now - LOWEST.get() < MAX_GROWTH) {
            return;
        }
        long time = System.nanoTime();
        long last = LAST_COLLECTION.get();
        if (time - last >= MIN_INTERVAL_NANOS && LAST_COLLECTION.compareAndSet(last, time)) {
            COLLECT_AT.accumulateAndGet(now + STEP, Math::max);
            LOWEST.set(now);
            COLLECTIONS.incrementAndGet();
            System.gc();
        }
    }

    /** The collections asked for so far. */
    static long collectionsAsked() {
        return COLLECTIONS.get();
    }
}

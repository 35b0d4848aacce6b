package io.arrakis.torch;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Makes the garbage collector's backstop see native memory. A tensor nobody closed is freed only when a collection
 * finds it unreachable, and collections come from pressure on the Java heap, where a tensor is a few dozen bytes
 * however much native memory it holds: a loop that forgets its outputs and makes little other garbage would hold
 * gigabytes before a collection came. So this counts the bytes of the tensors left to the backstop and asks for a
 * collection once they have grown by {@link #STEP} since the last one asked for, less what collections found since,
 * as the JDK does for direct buffers. Tensors closed do not lower that mark: work whose tensors in use grow past a
 * step and are closed each time (a large cache per pass) pays one collection, not one each time.
 *
 * <p>The bytes counted are not all a forgotten tensor holds: glibc cannot reuse the block of a closed tensor that a
 * live one above it pins (libtorch's aligned allocations ask for a little more than the block they freed), so one
 * forgotten 4-byte tensor a pass can keep a closed pass's worth of memory each time. So the resident memory that
 * neither the JVM (its heap and other pools, as committed) nor the tensors left to the backstop account for is watched
 * too, read once per {@link #RESIDENT_CHECK_BYTES} of tensors made: growth of a step over where it settled after the
 * last such collection asks for another, and for the free memory of glibc's arenas to be handed back.
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
    /** How many bytes of tensors made between two readings of the resident memory. */
    private static final long RESIDENT_CHECK_BYTES = 64L << 20;
    private static final AtomicLong MADE_SINCE_CHECK = new AtomicLong();
    /** {@link #RESIDENT_MARK} before a reading sets it: at the start, and after a collection it asked for. */
    private static final long UNSET = Long.MIN_VALUE;
    /** The resident memory nothing accounts for that asks for the next collection, or {@link #UNSET}. */
    private static final AtomicLong RESIDENT_MARK = new AtomicLong(UNSET);
    private static final AtomicLong COLLECTIONS = new AtomicLong();

    private NativePressure() {
    }

    /** A tensor of {@code bytes} was left to the backstop. */
    static void registered(long bytes) {
        REGISTERED.addAndGet(bytes);
        MADE_SINCE_CHECK.addAndGet(bytes);
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
        boolean resident = false;
        if (now < COLLECT_AT.get() && now - LOWEST.get() < MAX_GROWTH) {
            resident = residentPastMark();
            if (!resident) {
                return;
            }
        }
        long time = System.nanoTime();
        long last = LAST_COLLECTION.get();
        if (time - last >= MIN_INTERVAL_NANOS && LAST_COLLECTION.compareAndSet(last, time)) {
            COLLECT_AT.accumulateAndGet(now + STEP, Math::max);
            LOWEST.set(now);
            COLLECTIONS.incrementAndGet();
            System.gc();
            if (resident) {
                RESIDENT_MARK.set(UNSET); // read again once the collection and the trim have handed memory back
                NativeHeap.trimSoon();
            }
        }
    }

    /**
     * Whether the resident memory nothing accounts for has passed its mark, read once per
     * {@link #RESIDENT_CHECK_BYTES} of tensors made. The JVM's committed memory may be untouched, so the figure can be
     * negative: only its growth counts.
     */
    private static boolean residentPastMark() {
        long made = MADE_SINCE_CHECK.get();
        if (made < RESIDENT_CHECK_BYTES || !MADE_SINCE_CHECK.compareAndSet(made, 0)) {
            return false;
        }
        long resident = HostMemory.residentAnonymousBytes();
        if (resident < 0) {
            return false;
        }
        MemoryMXBean jvm = ManagementFactory.getMemoryMXBean();
        long unaccounted = resident - jvm.getHeapMemoryUsage().getCommitted()
                - jvm.getNonHeapMemoryUsage().getCommitted() - REGISTERED.get();
        long mark = RESIDENT_MARK.get();
        if (mark == UNSET) {
            RESIDENT_MARK.compareAndSet(UNSET, unaccounted + STEP);
            return false;
        }
        return unaccounted >= mark;
    }

    /** The collections asked for so far. */
    static long collectionsAsked() {
        return COLLECTIONS.get();
    }
}

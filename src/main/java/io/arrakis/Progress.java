package io.arrakis;

/**
 * Told how far a long computation has come, {@code done} of {@code total} units (head pairs scored, weights drawn,
 * passes run): from the thread doing the work, or, for a Spark sweep, from Spark's listener thread. The library never
 * draws progress itself: a command line or a service decides how to show it.
 */
@FunctionalInterface
public interface Progress {
    /** Reports nothing. */
    Progress NONE = (done, total) -> { };

    void advanced(long done, long total);
}

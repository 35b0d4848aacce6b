package io.arrakis.testing;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** The tests' one elementwise comparison of numbers with a tolerance. */
public final class Close {
    private Close() {
    }

    /**
     * Asserts {@code |expected − actual| ≤ atol + rtol·|expected|} elementwise; NaN and infinities must match exactly.
     * The message names the first element out of tolerance, and the largest difference.
     */
    public static void assertAllClose(double[] expected, double[] actual, double rtol, double atol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            if (Double.isNaN(e) || Double.isInfinite(e)) {
                assertEquals(e, a, what + ": element " + i);
                continue;
            }
            double tol = atol + rtol * Math.abs(e);
            if (!(Math.abs(e - a) <= tol)) {
                fail(what + ": element " + i + " is " + a + ", expected " + e + " (|diff| " + Math.abs(e - a) + " > " + tol
                        + "; largest |diff| " + maxAbsDiff(expected, actual) + ")"
                        + (expected.length <= 32 ? "\nexpected " + Arrays.toString(expected) + "\nactual   "
                        + Arrays.toString(actual) : ""));
            }
        }
    }

    /** The largest {@code |a[i] − b[i]|}. */
    public static double maxAbsDiff(double[] a, double[] b) {
        assertEquals(a.length, b.length, "length");
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }
}

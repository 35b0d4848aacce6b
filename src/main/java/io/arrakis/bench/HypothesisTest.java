package io.arrakis.bench;

import org.apache.commons.statistics.descriptive.Mean;
import org.apache.commons.statistics.descriptive.Variance;
import org.apache.commons.statistics.inference.DataDispersion;
import org.apache.commons.statistics.inference.TTest;

import java.util.Objects;
import java.util.function.IntFunction;
import java.util.function.IntToDoubleFunction;
import java.util.function.ToDoubleFunction;

/**
 * Arrakis's {@code test_hypothesis}: draws a statistic {@code n} times under a null and under an alternative, and
 * compares the two samples with Welch's unequal-variance t-test ({@link #welch}).
 *
 * <p>The generators are given the sample index {@code 0 .. n-1}, so a run is reproducible by seeding from it
 * ({@code i -> statistic(new Generator(seed + i))}). All null samples are drawn first, in index order, then all
 * alternative samples, on the calling thread. The null sample is {@link WelchResult#a()}, the alternative
 * {@link WelchResult#b()} (the argument order of {@code scipy.stats.ttest_ind(null, alternative)}), so
 * {@code t < 0} when the alternative's mean is larger.
 *
 * <p>The arithmetic is Apache Commons Statistics' ({@link TTest} with heteroscedastic dispersion: Welch's t, the
 * Welch–Satterthwaite degrees of freedom, and the two-sided p-value from its Student's t distribution).
 *
 * <p>Refused with an {@link IllegalArgumentException}: fewer than 2 observations in a sample, {@code alpha} outside
 * (0, 1), a NaN or infinite observation (naming which), and two samples that both have zero variance, for which t is
 * 0/0 or ±∞ and no p-value exists. One constant sample is fine (its variance term is 0).
 */
public final class HypothesisTest {
    private static final TTest WELCH = TTest.withDefaults().with(DataDispersion.HETEROSCEDASTIC);

    private HypothesisTest() {
    }

    /**
     * Runs the statistic under both hypotheses {@code n} times each and tests whether their means differ.
     *
     * @param nullStatistic        the statistic of sample {@code i} under the null hypothesis
     * @param alternativeStatistic the statistic of sample {@code i} under the alternative
     * @param n                    samples of each (at least 2)
     * @param alpha                the significance level, in (0, 1)
     * @return the test's outcome; samples labelled {@code "null"} and {@code "alternative"}
     */
    public static WelchResult test(IntToDoubleFunction nullStatistic, IntToDoubleFunction alternativeStatistic, int n,
                                   double alpha) {
        Objects.requireNonNull(nullStatistic, "nullStatistic");
        Objects.requireNonNull(alternativeStatistic, "alternativeStatistic");
        checkN(n, "n");
        checkAlpha(alpha);
        double[] nul = new double[n];
        for (int i = 0; i < n; i++) {
            nul[i] = nullStatistic.applyAsDouble(i);
        }
        double[] alt = new double[n];
        for (int i = 0; i < n; i++) {
            alt[i] = alternativeStatistic.applyAsDouble(i);
        }
        return welch(nul, "null", alt, "alternative", alpha);
    }

    /**
     * Arrakis's form: a generator per hypothesis and one statistic applied to what they generate.
     *
     * @param nullHypothesis        makes input {@code i} under the null hypothesis
     * @param alternativeHypothesis makes input {@code i} under the alternative
     * @param statistic             the statistic of one input
     * @param n                     samples of each (at least 2)
     * @param alpha                 the significance level, in (0, 1)
     * @param <T>                   the inputs' type
     * @return the test's outcome; samples labelled {@code "null"} and {@code "alternative"}
     */
    public static <T> WelchResult test(IntFunction<? extends T> nullHypothesis, IntFunction<? extends T> alternativeHypothesis,
                                       ToDoubleFunction<? super T> statistic, int n, double alpha) {
        Objects.requireNonNull(nullHypothesis, "nullHypothesis");
        Objects.requireNonNull(alternativeHypothesis, "alternativeHypothesis");
        Objects.requireNonNull(statistic, "statistic");
        return test(i -> statistic.applyAsDouble(nullHypothesis.apply(i)),
                i -> statistic.applyAsDouble(alternativeHypothesis.apply(i)), n, alpha);
    }

    /**
     * Welch's t-test of {@code a} against {@code b} (two-sided).
     *
     * @param a     the first sample (at least 2 finite values)
     * @param b     the second sample (at least 2 finite values)
     * @param alpha the significance level, in (0, 1)
     * @return the outcome; samples labelled {@code "a"} and {@code "b"}
     */
    public static WelchResult welch(double[] a, double[] b, double alpha) {
        return welch(a, "a", b, "b", alpha);
    }

    private static WelchResult welch(double[] a, String labelA, double[] b, String labelB, double alpha) {
        Objects.requireNonNull(a, labelA);
        Objects.requireNonNull(b, labelB);
        checkAlpha(alpha);
        checkN(a.length, "sample " + labelA);
        checkN(b.length, "sample " + labelB);
        checkFinite(a, labelA);
        checkFinite(b, labelB);
        double meanA = Mean.of(a).getAsDouble();
        double meanB = Mean.of(b).getAsDouble();
        // t, its degrees of freedom and p do not depend on the unit; in one where the largest magnitude is about 1,
        // the variances and their squares in the degrees of freedom neither overflow nor underflow
        double scale = Math.scalb(1.0, -Math.getExponent(Math.max(maxAbs(a), maxAbs(b))));
        double[] scaledA = scaled(a, scale);
        double[] scaledB = scaled(b, scale);
        double varA = Variance.of(scaledA).getAsDouble(); // unbiased (n - 1), in the scaled unit
        double varB = Variance.of(scaledB).getAsDouble();
        if (varA == 0 && varB == 0) {
            throw new IllegalArgumentException("Welch's t-test: both samples are constant (" + labelA + " = " + meanA
                    + ", " + labelB + " = " + meanB + "; variance 0), so t is " + (meanA == meanB ? "0/0" : "infinite")
                    + " and there is no p-value");
        }
        TTest.Result r = WELCH.test(scaledA, scaledB);
        double p = r.getPValue();
        // back in the samples' unit: 0 or infinite where the variance itself does not fit a double
        return new WelchResult(r.getStatistic(), r.getDegreesOfFreedom(), p, alpha, p < alpha,
                new WelchResult.Sample(labelA, a.length, meanA, varA / scale / scale),
                new WelchResult.Sample(labelB, b.length, meanB, varB / scale / scale));
    }

    private static double maxAbs(double[] sample) {
        double max = 0;
        for (double x : sample) {
            max = Math.max(max, Math.abs(x));
        }
        return max;
    }

    /** The sample times a power of two: exact, unless a value becomes subnormal. */
    private static double[] scaled(double[] sample, double scale) {
        double[] out = new double[sample.length];
        for (int i = 0; i < sample.length; i++) {
            out[i] = sample[i] * scale;
        }
        return out;
    }

    private static void checkN(int n, String what) {
        if (n < 2) {
            throw new IllegalArgumentException("Welch's t-test needs at least 2 observations per sample; " + what + " has "
                    + n);
        }
    }

    private static void checkAlpha(double alpha) {
        if (!(alpha > 0 && alpha < 1)) {
            throw new IllegalArgumentException("alpha must be in (0, 1), got " + alpha);
        }
    }

    private static void checkFinite(double[] sample, String label) {
        for (int i = 0; i < sample.length; i++) {
            if (!Double.isFinite(sample[i])) {
                throw new IllegalArgumentException("Welch's t-test: observation " + i + " of the " + label + " sample is "
                        + sample[i] + "; every statistic must be a finite number");
            }
        }
    }
}

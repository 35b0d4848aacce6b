package io.arrakis.bench;

import org.apache.commons.statistics.descriptive.Variance;
import org.apache.commons.statistics.distribution.TDistribution;

import java.util.Objects;
import java.util.function.IntFunction;
import java.util.function.IntToDoubleFunction;
import java.util.function.ToDoubleFunction;

/**
 * Arrakis's {@code test_hypothesis}: draws a statistic {@code n} times under a null and under an alternative, and
 * compares the two samples with Welch's unequal-variance t-test ({@link #welch}).
 *
 * <p>The generators are given the sample index {@code 0 .. n-1}, so a run is reproducible by seeding from it
 * ({@code i -> statistic(new Generator(seed + i))}). Give the two hypotheses different seeds: with the same ones, the
 * samples are paired, which this unpaired test does not use. All null samples are drawn first, in index order, then all
 * alternative samples, on the calling thread. The null sample is {@link WelchResult#a()}, the alternative
 * {@link WelchResult#b()} (the argument order of {@code scipy.stats.ttest_ind(null, alternative, equal_var=False)}),
 * so {@code t < 0} when the alternative's mean is larger. Arrakis's {@code test_hypothesis} calls {@code ttest_ind}
 * with scipy's default, Student's test with a pooled variance: its t is the same for samples of equal size, its
 * degrees of freedom ({@code 2n - 2}) and p-value are not, unless the two variances are equal.
 *
 * <p>Each sample's mean and variance are computed where its largest magnitude is about 1, the mean with a correction
 * pass that keeps what rounding its sum lost, so a constant sample reports its value exactly and a spread in the last
 * digits of a double still gives the right t. Welch's t and the Welch–Satterthwaite degrees of freedom are computed
 * from the ratio of the two squared standard errors, so that no magnitude of the samples overflows or underflows them;
 * the two-sided p-value is that of Apache
 * Commons Statistics' Student's t distribution ({@link TDistribution}), its far tail scaled where t's square would
 * overflow.
 *
 * <p>Refused with an {@link IllegalArgumentException}: fewer than 2 observations in a sample, {@code alpha} outside
 * (0, 1), a NaN or infinite observation (naming which), and two samples that both have zero variance, for which t is
 * 0/0 or ±∞ and no p-value exists. One constant sample is fine (its variance term is 0).
 */
public final class HypothesisTest {
    /** Where the t distribution's tail is scaled rather than computed (see {@link #survival}). */
    private static final double LARGE_T = 1e100;

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
        Summary sa = Summary.of(a);
        Summary sb = Summary.of(b);
        Scaled sdA = sa.sd();
        Scaled sdB = sb.sd();
        if (sdA.mantissa() == 0 && sdB.mantissa() == 0) {
            throw new IllegalArgumentException("Welch's t-test: both samples are constant (" + labelA + " = "
                    + sa.mean() + ", " + labelB + " = " + sb.mean() + "; variance 0), so t is "
                    + (sa.mean() == sb.mean() ? "0/0" : "infinite") + " and there is no p-value");
        }
        // the squared standard errors of the means only through their ratio r <= 1 (the larger one factored out), so
        // that neither they nor their squares in the degrees of freedom overflow or underflow at any magnitude
        Scaled seA = sdA.dividedBy(Math.sqrt(a.length));
        Scaled seB = sdB.dividedBy(Math.sqrt(b.length));
        boolean aLarger = seA.over(seB) >= 1;
        Scaled larger = aLarger ? seA : seB;
        double ratio = (aLarger ? seB : seA).over(larger);
        double r = ratio * ratio;
        double df = (1 + r) * (1 + r) / (1.0 / ((aLarger ? a.length : b.length) - 1) + r * r / ((aLarger ? b.length : a.length) - 1));
        // t in a unit 2^e where the larger of the samples' magnitudes and the standard error is about 1
        int e = Math.max(Math.max(sa.exponent(), sb.exponent()), larger.binaryExponent());
        double t = sa.meanMinus(sb, e) / (larger.inUnit(e) * Math.sqrt(1 + r));
        double p = Math.min(1, 2 * survival(df, Math.abs(t)));
        return new WelchResult(t, df, p, alpha, p < alpha, new WelchResult.Sample(labelA, a.length, sa.mean(), sdA.squared()),
                new WelchResult.Sample(labelB, b.length, sb.mean(), sdB.squared()));
    }

    /**
     * {@code P(T > t)} for Student's t with {@code df} degrees of freedom, {@code t >= 0}. Commons Statistics squares
     * {@code t}, which overflows past about 1e154; beyond {@link #LARGE_T} the tail follows {@code t^-df} to within a
     * relative {@code df / t²}, far below a double's precision, so it is scaled from there.
     */
    private static double survival(double df, double t) {
        TDistribution distribution = TDistribution.of(df);
        return t <= LARGE_T ? distribution.survivalProbability(t)
                : distribution.survivalProbability(LARGE_T) * Math.pow(LARGE_T / t, df);
    }

    /** A non-negative {@code mantissa · 2^exponent}: a spread near the largest double may not fit one. */
    private record Scaled(double mantissa, int exponent) {
        Scaled dividedBy(double d) {
            return new Scaled(mantissa / d, exponent);
        }

        /** This divided by {@code other}, which is not 0; infinite where this is the far larger. */
        double over(Scaled other) {
            return Math.scalb(mantissa / other.mantissa, exponent - other.exponent);
        }

        /** The exponent of the value's leading bit. */
        int binaryExponent() {
            return Math.getExponent(mantissa) + exponent;
        }

        /** The value in units of {@code 2^e}. */
        double inUnit(int e) {
            return Math.scalb(mantissa, exponent - e);
        }

        /** The square as a double: 0 or infinite where it does not fit one. */
        double squared() {
            return Math.scalb(mantissa * mantissa, 2 * exponent);
        }
    }

    /**
     * A sample's mean and standard deviation (n - 1), computed on a copy scaled by {@code 2^-exponent} so that its largest
     * magnitude is about 1: neither overflows nor underflows, whatever the sample's magnitude. The mean is
     * {@code head + tail} in that unit, the tail being what the rounding of the head lost.
     */
    private record Summary(double head, double tail, Scaled sd, int exponent) {
        static Summary of(double[] sample) {
            int exponent = Math.getExponent(Math.max(maxAbs(sample), Double.MIN_NORMAL));
            double[] scaled = new double[sample.length];
            double sum = 0;
            for (int i = 0; i < sample.length; i++) {
                scaled[i] = Math.scalb(sample[i], -exponent);
                sum += scaled[i];
            }
            double head = sum / sample.length;
            double residuals = 0;
            for (double x : scaled) {
                residuals += x - head;
            }
            return new Summary(head, residuals / sample.length,
                    new Scaled(Math.sqrt(Variance.of(scaled).getAsDouble()), exponent), exponent);
        }

        /** The mean, rounded once to a double. */
        double mean() {
            return Math.scalb(head + tail, exponent);
        }

        /** This mean less {@code other}'s, in units of {@code 2^e}, with no exponent below either sample's. */
        double meanMinus(Summary other, int e) {
            double heads = Math.scalb(head, exponent - e) - Math.scalb(other.head, other.exponent - e);
            return heads + (Math.scalb(tail, exponent - e) - Math.scalb(other.tail, other.exponent - e));
        }
    }

    private static double maxAbs(double[] sample) {
        double max = 0;
        for (double x : sample) {
            max = Math.max(max, Math.abs(x));
        }
        return max;
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

package io.arrakis.bench;

import io.arrakis.json.Json;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * The outcome of Welch's unequal-variance t-test of two samples, {@code a} and {@code b}.
 *
 * <p>{@code t = (mean(a) - mean(b)) / sqrt(var(a)/n(a) + var(b)/n(b))} with unbiased (n - 1) variances;
 * {@code degreesOfFreedom} is the Welch–Satterthwaite approximation (not rounded); {@code pValue} is two-sided,
 * {@code P(|T| >= |t|)} for Student's t with those degrees of freedom; the null hypothesis (equal means) is rejected
 * when {@code pValue < alpha}. The p-value is a double: below the least positive double (about 4.9e-324) it is 0,
 * which {@link #toString} shows as {@code p < 4.9E-324}, and below the least normal one (about 2.2e-308) it keeps
 * fewer significant digits.
 *
 * @param t                Welch's t statistic
 * @param degreesOfFreedom the Welch–Satterthwaite degrees of freedom
 * @param pValue           the two-sided p-value
 * @param alpha            the significance level
 * @param rejectNull       whether {@code pValue < alpha}
 * @param a                the first sample's summary ({@code "null"} in {@link HypothesisTest#test})
 * @param b                the second sample's summary ({@code "alternative"} in {@link HypothesisTest#test})
 */
public record WelchResult(double t, double degreesOfFreedom, double pValue, double alpha, boolean rejectNull,
                          Sample a, Sample b) {

    /**
     * One sample's summary.
     *
     * @param label    what the sample is ({@code "a"}, {@code "null"}, ...)
     * @param n        its size
     * @param mean     its mean
     * @param variance its unbiased variance (divided by n - 1); 0 or infinite where the true variance does not fit a
     *                 double (a sample of subnormal numbers, or of numbers near the largest double)
     */
    public record Sample(String label, int n, double mean, double variance) {
        /**
         * Checks the summary is one a sample can have.
         *
         * @throws IllegalArgumentException for fewer than 2 observations, a mean that is not finite or a variance that is
         *                                  negative or NaN
         */
        public Sample {
            Objects.requireNonNull(label, "label");
            if (n < 2 || !Double.isFinite(mean) || !(variance >= 0)) {
                throw new IllegalArgumentException("sample " + label + ": needs n >= 2, a finite mean and a variance >= 0,"
                        + " got n = " + n + ", mean = " + mean + ", variance = " + variance);
            }
        }

        Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("n", n);
            m.put("mean", Json.number(mean));
            m.put("variance", Json.number(variance)); // "Infinity" where it does not fit a double
            return m;
        }
    }

    /** The keys of {@link #toMap()} that a sample's label cannot take. */
    private static final Set<String> KEYS = Set.of("test", "t", "df", "p_value", "alpha", "reject_null");

    /**
     * Checks the parts agree with one another.
     *
     * @throws IllegalArgumentException for a NaN t, degrees of freedom that are not positive, a p-value outside
     *                                  [0, 1], {@code alpha} outside (0, 1), {@code rejectNull} other than
     *                                  {@code pValue < alpha}, or labels that are equal or a key of {@link #toMap()}
     */
    public WelchResult {
        Objects.requireNonNull(a, "a");
        Objects.requireNonNull(b, "b");
        if (Double.isNaN(t) || !(degreesOfFreedom > 0) || !(pValue >= 0 && pValue <= 1) || !(alpha > 0 && alpha < 1)) {
            throw new IllegalArgumentException("Welch's t-test result: needs a t that is not NaN, degrees of freedom > 0,"
                    + " a p-value in [0, 1] and alpha in (0, 1), got t = " + t + ", df = " + degreesOfFreedom + ", p = "
                    + pValue + ", alpha = " + alpha);
        }
        if (rejectNull != pValue < alpha) {
            throw new IllegalArgumentException("Welch's t-test result: rejectNull is " + rejectNull + " but p = " + pValue
                    + (pValue < alpha ? " < " : " >= ") + "alpha = " + alpha);
        }
        if (a.label().equals(b.label()) || KEYS.contains(a.label()) || KEYS.contains(b.label())) {
            throw new IllegalArgumentException("Welch's t-test result: the samples need two different labels, neither of"
                    + " them one of " + new TreeSet<>(KEYS) + ", got " + a.label() + " and " + b.label());
        }
    }

    /**
     * The result as an ordered map: {@code test}, {@code t}, {@code df}, {@code p_value}, {@code alpha},
     * {@code reject_null}, then each sample under its label ({@code n}, {@code mean}, {@code variance}).
     *
     * @return an unmodifiable ordered map
     */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("test", "welch");
        m.put("t", Json.number(t)); // "Infinity" where the samples are far apart for their spread
        m.put("df", Json.number(degreesOfFreedom));
        m.put("p_value", Json.number(pValue));
        m.put("alpha", alpha);
        m.put("reject_null", rejectNull);
        m.put(a.label(), a.toMap());
        m.put(b.label(), b.toMap());
        return java.util.Collections.unmodifiableMap(m);
    }

    /**
     * {@link #toMap()} as compact JSON.
     *
     * @return JSON text
     */
    public String toJson() {
        return Json.write(toMap());
    }

    /**
     * One line, e.g. {@code Welch's t-test: t = -2.455, df = 24.99, p = 0.02138 (two-sided) < alpha = 0.05: reject the
     * null hypothesis [a: n = 15, mean = 20.82, variance = 7.867; b: n = 15, mean = 22.99, variance = 3.813]}.
     */
    @Override
    public String toString() {
        String p = pValue == 0 ? "p < " + Double.MIN_VALUE : String.format(Locale.ROOT, "p = %.4g", pValue);
        return String.format(Locale.ROOT, "Welch's t-test: t = %.4g, df = %.4g, %s (two-sided) %s alpha = %s: %s"
                        + " [%s; %s]", t, degreesOfFreedom, p, rejectNull ? "<" : ">=", alpha,
                rejectNull ? "reject the null hypothesis" : "do not reject the null hypothesis", describe(a), describe(b));
    }

    private static String describe(Sample s) {
        return String.format(Locale.ROOT, "%s: n = %d, mean = %.4g, variance = %.4g", s.label(), s.n(), s.mean(),
                s.variance());
    }
}

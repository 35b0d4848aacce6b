package io.arrakis.bench;

import io.arrakis.json.Json;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HypothesisTestTest {
    /*
     * Wikipedia, "Welch's t-test", section "Examples", first example (two samples of 15 with equal variance):
     * published Welch t = -2.46, df = 25.0, p = 0.021 (rounded as shown there). The same data through SciPy 1.17.1,
     * scipy.stats.ttest_ind(A1, A2, equal_var=False): t = -2.455356398286006, p = 0.021378001462866992,
     * df = 24.988529290231416.
     */
    private static final double[] WIKI_A1 = {27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
    private static final double[] WIKI_A2 = {27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};

    /*
     * R's t.test(ts1, ts2) (Welch Two Sample t-test, R's default), as printed in an answer on Cross Validated
     * ("Welch's t-test confidence interval"): t = -1.8325, df = 17.9, p-value = 0.08356. SciPy 1.17.1 on the same data:
     * t = -1.8325416653445783, p = 0.08355979161922325, df = 17.900310146211787.
     */
    private static final double[] R_TS1 = {11, 9, 10, 11, 10, 12, 9, 11, 12, 9};
    private static final double[] R_TS2 = {11, 13, 10, 13, 12, 9, 11, 12, 12, 11};

    /**
     * With one degree of freedom the two-sided p-value is {@code (2/π)·atan(1/t)}; it stays so where t's square
     * overflows (it was 0 past t ≈ 1.3e154). Samples {m, m} and {0, 1} give t = 2m − 1 and df = 1.
     */
    @Test
    void pValuesOfHugeTAsTheClosedFormOfOneDegreeOfFreedom() {
        for (double m : new double[] {5e98, 5e100, 1e160, 5e307}) {
            WelchResult r = HypothesisTest.welch(new double[] {m, m}, new double[] {0, 1}, 0.05);
            assertEquals(1.0, r.degreesOfFreedom(), 1e-12);
            double expected = 2 / Math.PI * Math.atan(1 / r.t());
            assertTrue(expected > 0, "representable: " + expected);
            assertEquals(expected, r.pValue(), expected * 1e-12, "t " + r.t());
        }
    }

    @Test
    void wikipediaExampleWithinPublishedRounding() {
        WelchResult r = HypothesisTest.welch(WIKI_A1, WIKI_A2, 0.05);
        assertEquals(-2.46, r.t(), 0.005);
        assertEquals(25.0, r.degreesOfFreedom(), 0.05);
        assertEquals(0.021, r.pValue(), 0.0005);
        assertTrue(r.rejectNull());
        // and against SciPy to full precision
        assertEquals(-2.455356398286006, r.t(), 1e-12);
        assertEquals(24.988529290231416, r.degreesOfFreedom(), 1e-10);
        assertEquals(0.021378001462866992, r.pValue(), 1e-10);
        assertEquals(15, r.a().n());
        assertEquals(15, r.b().n());
    }

    @Test
    void rExampleWithinPublishedRounding() {
        WelchResult r = HypothesisTest.welch(R_TS1, R_TS2, 0.05);
        assertEquals(-1.8325, r.t(), 0.00005);
        assertEquals(17.9, r.degreesOfFreedom(), 0.05);
        assertEquals(0.08356, r.pValue(), 0.000005);
        assertFalse(r.rejectNull());
        assertTrue(HypothesisTest.welch(R_TS1, R_TS2, 0.1).rejectNull());
        assertEquals(10.4, r.a().mean(), 1e-12); // R: mean of x 10.4, mean of y 11.4
        assertEquals(11.4, r.b().mean(), 1e-12);
        assertEquals(0.08355979161922325, r.pValue(), 1e-10);
        assertEquals(17.900310146211787, r.degreesOfFreedom(), 1e-10);
    }

    @Test
    void swappingTheSamplesNegatesT() {
        WelchResult ab = HypothesisTest.welch(WIKI_A1, WIKI_A2, 0.05);
        WelchResult ba = HypothesisTest.welch(WIKI_A2, WIKI_A1, 0.05);
        assertEquals(-ab.t(), ba.t(), 1e-12);
        assertEquals(ab.pValue(), ba.pValue(), 1e-15);
        assertEquals(ab.degreesOfFreedom(), ba.degreesOfFreedom(), 1e-12);
    }

    @Test
    void oneConstantSampleIsFine() {
        // SciPy: ttest_ind([1,1,1], [1,2,3,4], equal_var=False) -> t = -2.32379000772445, p = 0.10272807885839899, df = 3
        WelchResult r = HypothesisTest.welch(new double[] {1, 1, 1}, new double[] {1, 2, 3, 4}, 0.05);
        assertEquals(-2.32379000772445, r.t(), 1e-12);
        assertEquals(3.0, r.degreesOfFreedom(), 1e-12);
        assertEquals(0.10272807885839899, r.pValue(), 1e-10);
        assertEquals(0.0, r.a().variance());
    }

    @Test
    void testDrawsNullThenAlternativeByIndex() {
        int n = 200;
        WelchResult r = HypothesisTest.test(i -> new SplittableRandom(i).nextGaussian(), i -> 1 + new SplittableRandom(1000 + i).nextGaussian(),
                n, 0.01);
        double[] nul = new double[n];
        double[] alt = new double[n];
        for (int i = 0; i < n; i++) {
            nul[i] = new SplittableRandom(i).nextGaussian();
            alt[i] = 1 + new SplittableRandom(1000 + i).nextGaussian();
        }
        WelchResult direct = HypothesisTest.welch(nul, alt, 0.01);
        assertEquals(direct.t(), r.t());
        assertEquals(direct.pValue(), r.pValue());
        assertEquals("null", r.a().label());
        assertEquals("alternative", r.b().label());
        assertTrue(r.t() < 0, "t < 0 when the alternative's mean is larger: " + r);
        assertTrue(r.rejectNull(), r.toString());
        assertEquals(n, r.a().n());
    }

    @Test
    void sameDistributionIsNotRejectedAndGeneratorFormAgrees() {
        // SplittableRandom, not Random: Random's first draws from adjacent small seeds are correlated
        WelchResult r = HypothesisTest.test(i -> new SplittableRandom(i).doubles(10).toArray(),
                i -> new SplittableRandom(5000 + i).doubles(10).toArray(), v -> java.util.Arrays.stream(v).sum(), 100, 0.001);
        assertFalse(r.rejectNull(), r.toString());
        WelchResult scalar = HypothesisTest.test(i -> new SplittableRandom(i).doubles(10).sum(),
                i -> new SplittableRandom(5000 + i).doubles(10).sum(), 100, 0.001);
        assertEquals(scalar, r);
    }

    /**
     * t, its degrees of freedom and p do not depend on the unit. Was: at magnitudes near 1e80 (or 1e-160) the squared
     * variances in the Welch–Satterthwaite degrees of freedom overflowed (underflowed), giving p = NaN for finite data.
     */
    @Test
    void theOutcomeDoesNotDependOnTheUnit() {
        WelchResult unit = HypothesisTest.welch(new double[] {0, 1, 0.5}, new double[] {0, 2, 3}, 0.05);
        for (double scale : new double[] {1e80, 1e-160, 1e300, 3.0}) {
            WelchResult r = HypothesisTest.welch(new double[] {0, scale, 0.5 * scale}, new double[] {0, 2 * scale, 3 * scale},
                    0.05);
            assertEquals(unit.t(), r.t(), 1e-12 * Math.abs(unit.t()), "t at scale " + scale);
            assertEquals(unit.degreesOfFreedom(), r.degreesOfFreedom(), 1e-9, "df at scale " + scale);
            assertEquals(unit.pValue(), r.pValue(), 1e-12, "p at scale " + scale);
        }
        // Was: the variances were taken before the change of unit, so at 1e-200 they underflowed to 0 and the samples
        // were refused as constant, and at 1e200 they overflowed and the result's JSON could not be written
        WelchResult tiny = HypothesisTest.welch(new double[] {1e-200, 2e-200, 3e-200},
                new double[] {4e-200, 5e-200, 7e-200}, 0.05);
        WelchResult plain = HypothesisTest.welch(new double[] {1, 2, 3}, new double[] {4, 5, 7}, 0.05);
        assertEquals(plain.t(), tiny.t(), 1e-12 * Math.abs(plain.t()));
        assertEquals(plain.pValue(), tiny.pValue(), 1e-12);
        WelchResult huge = HypothesisTest.welch(new double[] {1e200, 2e200, 3e200}, new double[] {4e200, 5e200, 7e200},
                0.05);
        assertEquals(plain.pValue(), huge.pValue(), 1e-12);
        assertEquals(Double.POSITIVE_INFINITY, huge.a().variance(), "1e400 does not fit a double");
        assertTrue(huge.toJson().contains("\"variance\":\"Infinity\""), huge.toJson());
        // Was: near the largest double the standard deviation of b (1.9e308) overflowed, giving t = 0 and p = 1
        WelchResult edge = HypothesisTest.welch(new double[] {1e308, -1e308, 1.7e308},
                new double[] {-1.7e308, 1.6e308, -1.7e308}, 0.05);
        WelchResult small = HypothesisTest.welch(new double[] {1, -1, 1.7}, new double[] {-1.7, 1.6, -1.7}, 0.05);
        double varA = (Math.pow(1 - 0.5667, 2) + Math.pow(-1 - 0.5667, 2) + Math.pow(1.7 - 0.5667, 2)) / 2; // by hand
        double varB = (Math.pow(-1.7 + 0.6, 2) + Math.pow(1.6 + 0.6, 2) + Math.pow(-1.7 + 0.6, 2)) / 2;
        assertEquals((1.7 / 3 + 0.6) / Math.sqrt(varA / 3 + varB / 3), small.t(), 1e-3);
        assertEquals(small.t(), edge.t(), 1e-12 * small.t());
        assertEquals(small.degreesOfFreedom(), edge.degreesOfFreedom(), 1e-9);
        assertEquals(small.pValue(), edge.pValue(), 1e-12);
        assertEquals(1.7e308 / 3, edge.a().mean(), 1e294);
        assertEquals(-0.6e308, edge.b().mean(), 1e294);
        // the other sample keeps its own precision beside one near the largest double (a first fix rescaled both)
        WelchResult beside = HypothesisTest.welch(new double[] {1.7e308, -1.7e308, 1e308},
                new double[] {1e-306, 2e-306, 4e-306}, 0.05);
        assertEquals(7e-306 / 3, beside.b().mean(), 7e-306 / 3 * 1e-12);
        WelchResult constantBeside = HypothesisTest.welch(new double[] {1.7e308, 1.7e308}, new double[] {1e-306, 2e-306},
                0.05);
        assertEquals(Double.POSITIVE_INFINITY, constantBeside.t(), "about 3.4e614: b is not constant");
        assertEquals(1, constantBeside.degreesOfFreedom(), 1e-12);
        // Was: an infinite t (here the rounding of about 2e600) made toJson() throw
        WelchResult apart = HypothesisTest.welch(new double[] {1e300, 1e300}, new double[] {0, 1e-300}, 0.05);
        assertEquals(Double.POSITIVE_INFINITY, apart.t());
        assertTrue(apart.toJson().contains("\"t\":\"Infinity\""), apart.toJson());
        assertEquals(Double.POSITIVE_INFINITY, edge.b().variance(), "3.6e616 does not fit a double");
    }

    /**
     * One sample's spread far below the other's magnitude. The degrees of freedom tend to the varying sample's n - 1,
     * and with 1 or 2 of them Student's t has closed forms: two-sided p = (2/π)·atan(1/|t|) for 1, and
     * 2 / (√(t²+2)·(√(t²+2) + |t|)) for 2. Was: df and p NaN ("not rejected"), or p 4.3 times too small, from squared
     * variances that underflowed; a sample that is not constant was called constant; a variance that fits a double
     * was reported as 0.
     */
    @Test
    void aSpreadFarBelowTheOtherSamplesMagnitudeKeepsItsDegreesOfFreedom() {
        WelchResult two = HypothesisTest.welch(new double[] {1, 1, 1}, new double[] {1e-90, 2e-90, 3e-90}, 0.05);
        double t = (1 - 2e-90) / (1e-90 / Math.sqrt(3));
        assertEquals(t, two.t(), t * 1e-12);
        assertEquals(2, two.degreesOfFreedom(), 1e-12);
        double root = Math.sqrt(t * t + 2);
        assertEquals(2 / (root * (root + t)), two.pValue(), 2 / (root * (root + t)) * 1e-9);
        assertTrue(two.rejectNull());

        WelchResult one = HypothesisTest.welch(new double[] {1, 1}, new double[] {0, 1e-80}, 0.05);
        assertEquals(1, one.degreesOfFreedom(), 1e-12);
        double tOne = (1 - 5e-81) / (1e-80 / Math.sqrt(2) / Math.sqrt(2));
        assertEquals(tOne, one.t(), tOne * 1e-12);
        assertEquals(2 / Math.PI * Math.atan(1 / tOne), one.pValue(), 3.2e-81 * 1e-9);

        WelchResult tiny = HypothesisTest.welch(new double[] {1e6, 1e6, 1e6}, new double[] {-1e-160, 1e-160, 0}, 0.05);
        assertEquals(2, tiny.degreesOfFreedom(), 1e-12);
        assertEquals(0.0, tiny.pValue(), "about 3e-333, below the least double");
        assertTrue(tiny.rejectNull());
        assertTrue(tiny.toString().contains("p < 4.9E-324 (two-sided)"), tiny.toString());

        WelchResult apart = HypothesisTest.welch(new double[] {1e300, 1.0000001e300}, new double[] {1e-10, 2e-10}, 0.05);
        assertEquals(5e-21, apart.b().variance(), 5e-21 * 1e-9);
    }

    /** Was: the means were off in their last digit, so a constant sample did not report its value and t was -6. */
    @Test
    void aSpreadInTheLastDigitGivesTheExactT() {
        double x = 0.7;
        // b's deviations from its mean are -u/3, -u/3 and 2u/3 (u = ulp(0.7)): variance u^2/3, standard error u/3, and
        // the means differ by u/3, so t = -1 exactly; a is constant, so df = n(b) - 1 = 2, and for Student's t with 2
        // degrees of freedom P(|T| >= 1) = 1 - 1/sqrt(3)
        WelchResult r = HypothesisTest.welch(new double[] {x, x, x}, new double[] {x, x, Math.nextUp(x)}, 0.05);
        assertEquals(x, r.a().mean());
        assertEquals(-1.0, r.t(), 1e-12);
        assertEquals(2.0, r.degreesOfFreedom(), 1e-12);
        assertEquals(1 - 1 / Math.sqrt(3), r.pValue(), 1e-12);
        assertFalse(r.rejectNull());
        assertEquals(0.1, HypothesisTest.welch(new double[] {0.1, 0.1, 0.1, 0.1, 0.1}, new double[] {1, 2}, 0.05)
                .a().mean());
    }

    /** Was: the means were taken before scaling, so samples of subnormal numbers had means of 0 and t = 0. */
    @Test
    void subnormalSamplesGiveTheTOfTheirUnit() {
        double u = Double.MIN_VALUE;
        WelchResult tiny = HypothesisTest.welch(new double[] {0, u}, new double[] {0, 2 * u, u}, 0.05);
        WelchResult unit = HypothesisTest.welch(new double[] {0, 1}, new double[] {0, 2, 1}, 0.05);
        // means 0.5 and 1, variances 0.5 and 1: t = -0.5 / sqrt(0.5/2 + 1/3)
        assertEquals(-0.5 / Math.sqrt(0.25 + 1.0 / 3), unit.t(), 1e-15);
        assertEquals(unit.t(), tiny.t(), 1e-15);
        assertEquals(unit.degreesOfFreedom(), tiny.degreesOfFreedom(), 1e-12);
        assertEquals(unit.pValue(), tiny.pValue(), 1e-15);
        assertEquals(u, tiny.b().mean()); // the variances, u^2, are below the smallest double: 0, as documented
        assertEquals(0.0, tiny.b().variance());
    }

    @Test
    void aResultWhosePartsDisagreeIsRefused() {
        WelchResult.Sample a = new WelchResult.Sample("a", 3, 1, 1);
        WelchResult.Sample b = new WelchResult.Sample("b", 3, 2, 1);
        assertEquals(0.4, new WelchResult(-1.2, 4, 0.4, 0.05, false, a, b).pValue());
        assertMessage("rejectNull is true", () -> new WelchResult(-1.2, 4, 0.4, 0.05, true, a, b));
        assertMessage("alpha in (0, 1)", () -> new WelchResult(-1.2, 4, 0.4, Double.NaN, false, a, b));
        assertMessage("t that is not NaN", () -> new WelchResult(Double.NaN, 4, 0.4, 0.05, false, a, b));
        assertMessage("p-value in [0, 1]", () -> new WelchResult(-1.2, 4, 1.5, 0.05, false, a, b));
        assertMessage("degrees of freedom > 0", () -> new WelchResult(-1.2, -1, 0.4, 0.05, false, a, b));
        assertMessage("two different labels", () -> new WelchResult(-1.2, 4, 0.4, 0.05, false, a, a));
        assertMessage("two different labels", () -> new WelchResult(-1.2, 4, 0.4, 0.05, false,
                new WelchResult.Sample("t", 3, 1, 1), b));
        assertMessage("variance >= 0", () -> new WelchResult.Sample("a", 3, 1, -1));
        assertMessage("n >= 2", () -> new WelchResult.Sample("a", 1, 1, 0));
        assertMessage("finite mean", () -> new WelchResult.Sample("a", 3, Double.NaN, 0));
    }

    @Test
    void badInputsAreRefused() {
        double[] ok = {1, 2, 3};
        assertMessage("at least 2", () -> HypothesisTest.welch(new double[] {1}, ok, 0.05));
        assertMessage("at least 2", () -> HypothesisTest.test(i -> i, i -> i, 1, 0.05));
        for (double alpha : new double[] {0, 1, -0.1, 1.5, Double.NaN}) {
            assertMessage("alpha must be in (0, 1)", () -> HypothesisTest.welch(ok, ok, alpha));
        }
        assertMessage("observation 1 of the b sample is NaN", () -> HypothesisTest.welch(ok, new double[] {1, Double.NaN}, 0.05));
        assertMessage("observation 2 of the null sample is Infinity",
                () -> HypothesisTest.test(i -> i == 2 ? Double.POSITIVE_INFINITY : i, i -> i, 5, 0.05));
        assertMessage("both samples are constant", () -> HypothesisTest.welch(new double[] {2, 2}, new double[] {3, 3, 3}, 0.05));
        assertMessage("0/0", () -> HypothesisTest.welch(new double[] {2, 2}, new double[] {2, 2, 2}, 0.05));
    }

    @Test
    void readableForms() {
        WelchResult r = HypothesisTest.welch(WIKI_A1, WIKI_A2, 0.05);
        String s = r.toString();
        assertEquals("Welch's t-test: t = -2.455, df = 24.99, p = 0.02138 (two-sided) < alpha = 0.05: reject the null"
                + " hypothesis [a: n = 15, mean = 20.82, variance = 7.867; b: n = 15, mean = 22.99, variance = 3.813]", s);
        Map<?, ?> m = (Map<?, ?>) Json.parse(r.toJson());
        assertEquals(r.t(), (Double) m.get("t"));
        assertEquals(r.degreesOfFreedom(), (Double) m.get("df"));
        assertEquals(r.pValue(), (Double) m.get("p_value"));
        assertEquals(true, m.get("reject_null"));
        assertEquals(15L, ((Map<?, ?>) m.get("b")).get("n"));
        assertEquals(r.toMap().keySet().stream().toList(), m.keySet().stream().toList());
    }

    private static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}

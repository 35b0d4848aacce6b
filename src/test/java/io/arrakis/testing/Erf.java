package io.arrakis.testing;

/** The error function in double precision, for references worked out by hand. */
public final class Erf {
    private Erf() {
    }

    /**
     * erf(z) = 2/√π · e^{−z²} · Σ_{n≥0} 2ⁿ z^{2n+1} / (1·3·5···(2n+1)) (A&amp;S 7.1.6): every term is positive, so
     * the sum has no cancellation and is accurate to some tens of ulps for |z| ≤ 6.
     */
    public static double erf(double z) {
        if (z < 0) {
            return -erf(-z);
        }
        double term = z;
        double sum = z;
        for (int n = 1; n < 500; n++) {
            term *= 2 * z * z / (2 * n + 1);
            sum += term;
            if (term < 1e-17 * sum) {
                break;
            }
        }
        return Math.min(1.0, 2 / Math.sqrt(Math.PI) * Math.exp(-z * z) * sum);
    }
}

package io.arrakis.model;

/**
 * The rotate-every-two rotary embedding computed by hand: position p turns the pair (2i, 2i+1) of the first
 * {@code rotaryDim} features of each head by p · theta^(-2i / rotaryDim), so that (a, b) becomes
 * (a cos − b sin, b cos + a sin); the features after {@code rotaryDim} pass through.
 */
final class InterleavedRotation {
    private InterleavedRotation() {
    }

    /** The rotation of {@code x}, laid out {@code [pos, dHead]}. */
    static double[] of(double[] x, int pos, int dHead, int rotaryDim, double theta) {
        double[] expected = x.clone();
        for (int p = 0; p < pos; p++) {
            for (int i = 0; i < rotaryDim / 2; i++) {
                double angle = p * Math.pow(theta, -2.0 * i / rotaryDim);
                double a = x[p * dHead + 2 * i];
                double b = x[p * dHead + 2 * i + 1];
                expected[p * dHead + 2 * i] = a * Math.cos(angle) - b * Math.sin(angle);
                expected[p * dHead + 2 * i + 1] = b * Math.cos(angle) + a * Math.sin(angle);
            }
        }
        return expected;
    }
}

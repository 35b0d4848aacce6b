package io.arrakis.torch;

/**
 * A seeded source of random numbers for {@link Tensor#randn}, {@link Tensor#rand} and {@link Tensor#randint}.
 *
 * <p>The same seed gives the same numbers on every machine, JDK and device: the stream is SplitMix64 (Steele, Lea and
 * Flood 2014), uniforms take its top 53 bits, normals use Marsaglia and Tsang's ziggurat (2000; 256 layers, 52-bit
 * draws laid out in the word as NumPy's {@code standard_normal} lays them out, though not its tables), and integers
 * in a range use Lemire's unbiased multiply-shift rejection. Numbers are drawn in Java, then copied to the device, so a CPU and a GPU tensor made from the same seed are
 * equal. A generator is not thread-safe; give each thread its own.
 */
public final class Generator {
    private static final int LAYERS = 256;
    private static final double R = 3.6541528853610088; // where the ziggurat's base strip meets the tail
    private static final double INV_R = 1 / R;
    private static final double AREA = 0.00492867323399; // of each layer
    private static final long[] K = new long[LAYERS]; // fast-accept thresholds on the 52-bit draw
    private static final double[] W = new double[LAYERS]; // draw-to-x scale of each layer
    private static final double[] F = new double[LAYERS]; // exp(-x^2/2) at each layer's edge

    static { // Marsaglia and Tsang (2000), section 4, for 52-bit draws
        double m = 0x1.0p52;
        double dn = R;
        double tn = dn;
        double q = AREA / Math.exp(-0.5 * dn * dn);
        K[0] = (long) ((dn / q) * m);
        K[1] = 0;
        W[0] = q / m;
        W[LAYERS - 1] = dn / m;
        F[0] = 1.0;
        F[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
        for (int i = LAYERS - 2; i >= 1; i--) {
            dn = Math.sqrt(-2.0 * Math.log(AREA / dn + Math.exp(-0.5 * dn * dn)));
            K[i + 1] = (long) ((dn / tn) * m);
            tn = dn;
            F[i] = Math.exp(-0.5 * dn * dn);
            W[i] = dn / m;
        }
    }

    private long state;

    /** A generator starting from {@code seed}. */
    public Generator(long seed) {
        this.state = seed;
    }

    /** The next 64 random bits. */
    public long nextLong() {
        long z = (state += 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1). */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Uniform in [0, 1) on a grid of 2^-bits (1 to 53 bits), so the value is exact in a type with that precision. */
    public double nextDouble(int bits) {
        if (bits < 1 || bits > 53) {
            throw new IllegalArgumentException("bits must be in 1..53, got " + bits);
        }
        return (nextLong() >>> (64 - bits)) * Math.scalb(1.0, -bits);
    }

    /** Standard normal. */
    public double nextGaussian() {
        long bits = nextLong();
        int layer = (int) (bits & 0xFF);
        long draw = (bits >>> 9) & 0x000F_FFFF_FFFF_FFFFL;
        if (draw < K[layer]) { // inside the layer's rectangle: ~98.5% of draws
            // bit 8 is the sign, moved to the double's sign bit: a branch here would mispredict half the time
            return Double.longBitsToDouble(Double.doubleToRawLongBits(draw * W[layer]) ^ ((bits & 0x100) << 55));
        }
        return gaussianOutsideRectangles(bits, layer, draw);
    }

    /** The ziggurat's slow path, kept out of {@link #nextGaussian} so that the fast path inlines. */
    private double gaussianOutsideRectangles(long bits, int layer, long draw) {
        while (true) {
            boolean negative = (bits & 0x100) != 0;
            double x = draw * W[layer];
            if (layer == 0) { // the tail beyond R, by Marsaglia's exponential method
                double xx;
                double yy;
                do {
                    xx = -INV_R * Math.log1p(-nextDouble());
                    yy = -Math.log1p(-nextDouble());
                } while (yy + yy <= xx * xx);
                return negative ? -(R + xx) : R + xx;
            }
            if ((F[layer - 1] - F[layer]) * nextDouble() + F[layer] < Math.exp(-0.5 * x * x)) {
                return negative ? -x : x;
            }
            bits = nextLong();
            layer = (int) (bits & 0xFF);
            draw = (bits >>> 9) & 0x000F_FFFF_FFFF_FFFFL;
            if (draw < K[layer]) {
                x = draw * W[layer];
                return (bits & 0x100) != 0 ? -x : x;
            }
        }
    }

    /**
     * The generator of one chunk of a large draw: chunks of a tensor draw in parallel from independent streams seeded
     * by the tensor's stream seed and the chunk's index, so the values do not depend on the number of threads.
     */
    static Generator forChunk(long streamSeed, long chunk) {
        return new Generator(new Generator(streamSeed ^ (chunk * 0xD1B54A32D192ED03L)).nextLong());
    }

    /** Uniform in [low, high); requires low &lt; high. */
    public long nextLong(long low, long high) {
        if (low >= high) {
            throw new IllegalArgumentException("empty range [" + low + ", " + high + ")");
        }
        long range = high - low;
        if (range <= 0) { // wider than Long.MAX_VALUE: reject out-of-range draws
            long r;
            do {
                r = nextLong();
            } while (r < low || r >= high);
            return r;
        }
        long x = nextLong();
        long l = x * range;
        if (Long.compareUnsigned(l, range) < 0) {
            long threshold = Long.remainderUnsigned(-range, range);
            while (Long.compareUnsigned(l, threshold) < 0) {
                x = nextLong();
                l = x * range;
            }
        }
        return low + Math.unsignedMultiplyHigh(x, range);
    }
}

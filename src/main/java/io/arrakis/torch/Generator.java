package io.arrakis.torch;

/**
 * A seeded source of random numbers for {@link Tensor#randn}, {@link Tensor#rand} and {@link Tensor#randint}.
 *
 * <p>The same seed gives the same numbers on every machine, JDK and device: the stream is SplitMix64 (Steele, Lea and
 * Flood 2014), uniforms take its top 53 bits, normals use the Box-Muller transform, and integers in a range use
 * Lemire's unbiased multiply-shift rejection. Numbers are drawn in Java, in row-major order, then copied to the device,
 * so a CPU and a GPU tensor made from the same seed are equal. A generator is not thread-safe; give each thread its own.
 */
public final class Generator {
    private long state;
    private double spareNormal;
    private boolean hasSpare;

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
        if (hasSpare) {
            hasSpare = false;
            return spareNormal;
        }
        double u1;
        do {
            u1 = nextDouble();
        } while (u1 == 0.0);
        double u2 = nextDouble();
        double r = Math.sqrt(-2.0 * Math.log(u1));
        spareNormal = r * Math.sin(2.0 * Math.PI * u2);
        hasSpare = true;
        return r * Math.cos(2.0 * Math.PI * u2);
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

package io.arrakis.testing;

/** bfloat16 rounding in Java float arithmetic, for references worked out by hand. */
public final class Bfloat16 {
    private Bfloat16() {
    }

    /** {@code f} rounded to the nearest bfloat16, ties to even; NaN and the infinities as they are. */
    public static float round(float f) {
        if (Float.isNaN(f) || Float.isInfinite(f)) {
            return f;
        }
        int bits = Float.floatToRawIntBits(f);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return Float.intBitsToFloat(bits & 0xFFFF0000);
    }
}

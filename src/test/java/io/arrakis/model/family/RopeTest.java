package io.arrakis.model.family;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Rotary frequencies against values derived by hand from the published definitions (Llama 3.1's frequency bands,
 * YaRN's ramp), in double precision; the float32 results may differ in the last bits. The Hugging Face fixture
 * {@code shared/fixtures-hf-more/llama3} checks the llama3 frequencies end to end (ModelParityTest).
 */
class RopeTest {

    /** {@code 1 / theta^(2i / dim)}. */
    private static double base(double theta, int dim, int i) {
        return Math.pow(theta, -2.0 * i / dim);
    }

    private static void assertClose(double expected, float actual, String what) {
        assertEquals(expected, actual, 2e-6 * expected, what);
    }

    @Test
    void defaultAndLinear() {
        float[] unscaled = new Rope(64, 10000, new Rope.Unscaled()).inverseFrequencies();
        float[] linear = new Rope(64, 10000, new Rope.Linear(4.0)).inverseFrequencies();
        assertEquals(32, unscaled.length);
        assertEquals(1.0f, unscaled[0]);
        for (int i = 0; i < 32; i++) {
            assertClose(base(10000, 64, i), unscaled[i], "default " + i);
            assertClose(base(10000, 64, i) / 4, linear[i], "linear " + i);
        }
        assertEquals(1.0, new Rope(64, 10000, new Rope.Linear(4.0)).attentionFactor());
    }

    /**
     * Llama 3.1 8B: d_head 128, theta 500000, factor 8, low/high frequency factors 1/4, pretraining context 8192.
     * Wavelengths {@code 2 pi theta^(i/64)} below 8192 / 4 = 2048 (i <= 28) are kept, above 8192 (i >= 35) divided
     * by 8, and in between blended by {@code s = (8192 / wavelength - 1) / (4 - 1)}.
     */
    @Test
    void llama3KeepsHighFrequenciesAndStretchesLowOnes() {
        float[] inv = new Rope(128, 500000, new Rope.Llama3(8, 1, 4, 8192)).inverseFrequencies();
        for (int i = 0; i < 64; i++) {
            double b = base(500000, 128, i);
            double wavelength = 2 * Math.PI / b;
            double s = (8192 / wavelength - 1) / 3;
            double expected = i <= 28 ? b : i >= 35 ? b / 8 : (1 - s) * b / 8 + s * b;
            assertClose(expected, inv[i], "dimension pair " + i);
        }
        assertEquals(1.0, new Rope(128, 500000, new Rope.Llama3(8, 1, 4, 8192)).attentionFactor());
    }

    /**
     * gpt-oss: d_head 64, theta 150000, factor 32, beta_fast 32, beta_slow 1, pretraining context 4096. The
     * correction range runs from the dimension {@code 64 ln(4096 / (32 * 2 pi)) / (2 ln 150000)} = 8.0928 to
     * {@code 64 ln(4096 / (2 pi)) / (2 ln 150000)} = 17.3980; below it the frequency is kept, above it divided by
     * 32, inside it blended linearly; the attention factor is {@code 0.1 ln 32 + 1}.
     */
    @Test
    void yarnBlendsOverTheCorrectionRange() {
        Rope gptOss = new Rope(64, 150000, new Rope.Yarn(32, 0.1 * Math.log(32) + 1, 32, 1, 4096, false));
        float[] inv = gptOss.inverseFrequencies();
        double low = 8.092779;
        double high = 17.398025;
        for (int i = 0; i < 32; i++) {
            double b = base(150000, 64, i);
            double ramp = Math.clamp((i - low) / (high - low), 0, 1);
            assertClose(b / 32 * ramp + b * (1 - ramp), inv[i], "dimension pair " + i);
        }
        assertEquals(1.3465736, gptOss.attentionFactor(), 1e-7);

        // truncated, the range is [8, 18]: dimension pair 13 sits half way
        float[] truncated = new Rope(64, 150000, new Rope.Yarn(32, 1, 32, 1, 4096, true)).inverseFrequencies();
        assertClose(base(150000, 64, 8), truncated[8], "start of the range");
        assertClose((base(150000, 64, 13) / 32 + base(150000, 64, 13)) / 2, truncated[13], "middle of the range");
        assertClose(base(150000, 64, 18) / 32, truncated[18], "end of the range");
    }
}

package io.arrakis.model.family;

/**
 * Rotary position embeddings: the first {@code dim} features of each head are rotated by angles
 * {@code position * inverseFrequencies()[i]}.
 *
 * @param dim how many features of a head are rotated, even
 * @param theta the base of the frequencies
 */
public record Rope(int dim, double theta) {

    /**
     * The {@code dim / 2} inverse frequencies, in float32 as Hugging Face computes them:
     * {@code 1 / theta^(2i / dim)}.
     *
     * @return a new array
     */
    public float[] inverseFrequencies() {
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / Math.pow(theta, (float) (2 * i) / dim));
        }
        return inv;
    }
}

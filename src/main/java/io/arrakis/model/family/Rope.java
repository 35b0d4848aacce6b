package io.arrakis.model.family;

import java.util.List;

/**
 * Rotary position embeddings: in a pass over {@code n} positions the first {@code dim} features of each head are
 * rotated by angles {@code position * inverseFrequencies(n)[i]}, and cos and sin are multiplied by
 * {@link #attentionFactor(long) attentionFactor(n)}; only longrope's depend on {@code n}. The
 * frequencies are computed as {@code transformers} 5 computes them ({@code ROPE_INIT_FUNCTIONS} of
 * {@code modeling_rope_utils.py}), in float32.
 *
 * @param dim how many features of a head are rotated, even
 * @param theta the base of the frequencies
 * @param scaling how the frequencies are stretched for longer contexts ({@code rope_type})
 */
public record Rope(int dim, double theta, Scaling scaling) {

    /** A {@code rope_type} and its parameters. */
    public sealed interface Scaling {
    }

    /** {@code "default"}: {@code 1 / theta^(2i / dim)}. */
    public record Unscaled() implements Scaling {
    }

    /** {@code "linear"}: every frequency divided by {@code factor} (positions interpolated). */
    public record Linear(double factor) implements Scaling {
    }

    /**
     * {@code "llama3"} (Llama 3.1): wavelengths longer than {@code originalMaxPositions / lowFreqFactor} divided by
     * {@code factor}, shorter than {@code originalMaxPositions / highFreqFactor} kept, interpolated between.
     */
    public record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
            implements Scaling {
    }

    /**
     * {@code "yarn"}: per dimension a blend of the interpolated ({@code / factor}) and the original frequency, by a
     * linear ramp over the dimensions between the correction range of {@code betaFast} and {@code betaSlow}
     * rotations (rounded outwards when {@code truncate}); cos and sin scaled by {@code attentionFactor}.
     */
    public record Yarn(double factor, double attentionFactor, double betaFast, double betaSlow,
            int originalMaxPositions, boolean truncate) implements Scaling {
    }

    /**
     * HunYuan's {@code "dynamic"} rope with an {@code alpha}: the unscaled frequencies of the base
     * {@code theta · alpha^(dim / (dim - 2))}, which its rotary embedding keeps up to {@code max_position_embeddings}.
     */
    public record NtkAlpha(double alpha) implements Scaling {
    }

    /**
     * {@code "dynamic"} (dynamic NTK scaling): unscaled for a pass of at most {@code maxPositions} positions; for a
     * longer pass of {@code n}, the unscaled frequencies of the base
     * {@code theta · (factor · n / maxPositions - (factor - 1))^(dim / (dim - 2))}, as transformers computes them for
     * a model whose passes so far were no longer than this one.
     */
    public record DynamicNtk(double factor, int maxPositions) implements Scaling {
    }

    /**
     * {@code "proportional"} (Gemma 4's full-attention layers): the first {@code floor(rotatedFraction · dim / 2)}
     * frequencies are {@code 1 / theta^(2i / dim)}, over the whole head's {@code dim}, the others 0, so that their
     * pairs {@code (i, i + dim / 2)} turn by no angle; each divided by {@code factor}.
     */
    public record Proportional(double rotatedFraction, double factor) implements Scaling {
        /** How many of the {@code dim / 2} frequencies are not 0. */
        int rotated(int dim) {
            return (int) Math.floor(rotatedFraction * dim / 2); // Python: int(fraction * head_dim // 2)
        }
    }

    /**
     * {@code "longrope"} (Phi-3's long-context models): each frequency divided by its own factor, of
     * {@code shortFactor} for a pass of at most {@code originalMaxPositions} positions and of {@code longFactor} for a
     * longer one, as transformers switches them by the pass's length; cos and sin scaled by
     * {@code shortAttentionFactor} or {@code longAttentionFactor} likewise (the same but for PhiMoE's
     * {@code short_mscale} and {@code long_mscale}).
     */
    public record LongRope(List<Double> shortFactor, List<Double> longFactor, int originalMaxPositions,
            double shortAttentionFactor, double longAttentionFactor) implements Scaling {
        public LongRope {
            shortFactor = List.copyOf(shortFactor);
            longFactor = List.copyOf(longFactor);
        }
    }

    /**
     * The {@code dim / 2} inverse frequencies of a pass within the pretraining context (longrope's short factors), in
     * float32.
     *
     * @return a new array
     */
    public float[] inverseFrequencies() {
        return inverseFrequencies(1);
    }

    /**
     * The {@code dim / 2} inverse frequencies of a pass over {@code positions} positions, in float32: longrope's long
     * factors where that is more than its pretraining context, the same frequencies for any length otherwise.
     *
     * @return a new array
     */
    public float[] inverseFrequencies(long positions) {
        return switch (scaling) {
            case Unscaled u -> unscaled();
            case NtkAlpha a -> unscaled(theta * Math.pow(a.alpha(), (double) dim / (dim - 2)));
            case Linear l -> linear(l);
            case Llama3 l -> llama3(l);
            case Yarn y -> yarn(y);
            case LongRope l -> longRope(positions > l.originalMaxPositions() ? l.longFactor() : l.shortFactor());
            case DynamicNtk n -> positions > n.maxPositions() ? dynamicNtk(n, positions) : unscaled();
            case Proportional p -> proportional(p);
        };
    }

    /**
     * This rope, once its inverse frequencies are checked to be positive and finite.
     *
     * @throws IllegalArgumentException naming the frequency that is not, and {@code theta} and the scaling that gave
     *     it (e.g. YaRN's correction range with {@code theta} 1, or a vanishing beta)
     */
    Rope checked() {
        if (scaling instanceof LongRope l) {
            for (List<Double> factors : List.of(l.shortFactor(), l.longFactor())) {
                if (factors.size() != dim / 2) {
                    throw new IllegalArgumentException("longrope's " + (factors == l.shortFactor() ? "short" : "long")
                            + "_factor has " + factors.size() + " entries, but rotating " + dim + " features of a"
                            + " head takes one per frequency, " + dim / 2);
                }
            }
            check(inverseFrequencies((long) l.originalMaxPositions() + 1));
        }
        check(inverseFrequencies());
        return this;
    }

    private void check(float[] inv) {
        int turning = scaling instanceof Proportional p ? p.rotated(dim) : inv.length; // the rest are 0 by design
        for (int i = 0; i < turning; i++) {
            if (!(inv[i] > 0) || Float.isInfinite(inv[i])) {
                throw new IllegalArgumentException("rotary embeddings with rope_theta " + theta + " and " + scaling
                        + " give the inverse frequency " + inv[i] + " for dimension " + 2 * i + " of " + dim
                        + "; every one must be a positive number");
            }
        }
    }

    /**
     * The factor cos and sin are multiplied by in a pass within the pretraining context: YaRN's and longrope's, 1
     * otherwise.
     *
     * @return the factor
     */
    public double attentionFactor() {
        return attentionFactor(1);
    }

    /**
     * The factor cos and sin are multiplied by in a pass over {@code positions} positions: YaRN's
     * {@code attention_factor}, longrope's for the side of its pretraining context the pass is on, 1 otherwise.
     *
     * @return the factor
     */
    public double attentionFactor(long positions) {
        return switch (scaling) {
            case Yarn y -> y.attentionFactor();
            case LongRope l -> positions > l.originalMaxPositions() ? l.longAttentionFactor()
                    : l.shortAttentionFactor();
            default -> 1.0;
        };
    }

    /** {@code 1 / theta^(2i / dim)}, the float32 exponent as {@code arange(0, dim, 2).float() / dim}. */
    private float[] unscaled() {
        return unscaled(theta);
    }

    /** {@code 1 / base^(2i / dim)}, as {@link #unscaled()}. */
    private float[] unscaled(double base) {
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / Math.pow(base, (float) (2 * i) / dim));
        }
        return inv;
    }

    /**
     * {@code _compute_dynamic_ntk_parameters} for {@code positions} beyond the context, each step in float32 as its
     * tensor arithmetic on the length takes it: the base's growth, its power, the base, then
     * {@code 1 / base^(2i / dim)}.
     */
    private float[] dynamicNtk(DynamicNtk n, long positions) {
        float factor = (float) n.factor();
        float growth = factor * positions / n.maxPositions() - (float) (n.factor() - 1);
        float base = (float) theta * (float) Math.pow(growth, (float) ((double) dim / (dim - 2)));
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = 1.0f / (float) Math.pow(base, (float) (2 * i) / dim);
        }
        return inv;
    }

    /** {@code 1 / (factor_i · theta^(2i / dim))}, each step in float32, as {@code _compute_longrope_parameters}. */
    private float[] longRope(List<Double> factors) {
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            float power = (float) Math.pow(theta, (float) (2 * i) / dim);
            inv[i] = 1.0f / (factors.get(i).floatValue() * power);
        }
        return inv;
    }

    private float[] linear(Linear l) {
        float[] inv = unscaled();
        for (int i = 0; i < inv.length; i++) {
            inv[i] /= (float) l.factor();
        }
        return inv;
    }

    /** {@code _compute_proportional_rope_parameters}: the unscaled frequencies, the unrotated ones 0, over the factor. */
    private float[] proportional(Proportional p) {
        float[] inv = unscaled();
        for (int i = 0; i < inv.length; i++) {
            inv[i] = i < p.rotated(dim) ? inv[i] / (float) p.factor() : 0f;
        }
        return inv;
    }

    /** {@code _compute_llama3_parameters}, operation by operation in float32. */
    private float[] llama3(Llama3 l) {
        float factor = (float) l.factor();
        float low = (float) l.lowFreqFactor();
        float high = (float) l.highFreqFactor();
        float lowFreqWavelen = (float) (l.originalMaxPositions() / l.lowFreqFactor());
        float highFreqWavelen = (float) (l.originalMaxPositions() / l.highFreqFactor());
        float[] inv = unscaled();
        for (int i = 0; i < inv.length; i++) {
            float wavelen = (float) (2 * Math.PI) / inv[i];
            float scaled = wavelen > lowFreqWavelen ? inv[i] / factor : inv[i];
            if (!(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen)) {
                float smooth = ((float) l.originalMaxPositions() / wavelen - low) / (float) (l.highFreqFactor()
                        - l.lowFreqFactor());
                scaled = (1 - smooth) * scaled / factor + smooth * scaled;
            }
            inv[i] = scaled;
        }
        return inv;
    }

    /** {@code _compute_yarn_parameters}, the frequencies in float32, the correction range in double as in Python. */
    private float[] yarn(Yarn y) {
        double low = correctionDim(y.betaFast(), y.originalMaxPositions());
        double high = correctionDim(y.betaSlow(), y.originalMaxPositions());
        if (y.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) {
            high += 0.001; // as transformers: no zero-width ramp
        }
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            float posFreq = (float) Math.pow(theta, (float) (2 * i) / dim);
            float extrapolation = 1.0f / posFreq;
            float interpolation = 1.0f / ((float) y.factor() * posFreq);
            float ramp = Math.clamp(((float) i - (float) low) / (float) (high - low), 0f, 1f);
            float extrapolationFactor = 1 - ramp;
            inv[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
        }
        return inv;
    }

    /** The dimension whose wavelength fits {@code rotations} times into the original context. */
    private double correctionDim(double rotations, int originalMaxPositions) {
        return dim * Math.log(originalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
    }
}

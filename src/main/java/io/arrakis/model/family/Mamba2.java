package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.intOrStringOrNull;
import static io.arrakis.model.family.Key.list;
import static io.arrakis.model.family.Key.pos;

/**
 * Mamba-2's selective state space, the token mixer of Granite 4.0's and Bamba's {@code "mamba"} layers in place of
 * attention, as transformers' {@code BambaMixer} (Granite 4.0's {@code GraniteMoeHybridMambaLayer}) computes it without
 * the CUDA kernels. One projection
 * of the layer's input ({@code in_proj}) gives a gate of {@code heads · headDim} channels, the channels {@code x},
 * {@code B} and {@code C} side by side, and a time step per head. {@code x}, {@code B} and {@code C} pass through a
 * causal depthwise convolution of {@code convKernel} positions and the model's activation; the time step {@code dt} is
 * the softplus of the step plus {@code dt_bias}, clamped to {@code [dtMin, dtMax]}. Each head {@code h} keeps a state
 * {@code [headDim, stateSize]} that every position decays by {@code exp(dt · A)} ({@code A = −exp(A_log)}) and adds
 * {@code dt · x ⊗ B} to, and reads with {@code C}: {@code y = state · C + D · x}. The heads' outputs, times the
 * activation of the gate, are RMS-normalised together and multiplied by the norm's weight, then projected back
 * ({@code out_proj}). {@code B} and {@code C} come in {@code groups}; head {@code h} reads group
 * {@code h / (heads / groups)}. The state space is computed as Mamba-2's duality states it, in chunks of
 * {@code chunk} positions: within a chunk as a masked product, like attention, between chunks by the recurrence.
 *
 * @param heads the heads, each with its own state ({@code mamba_n_heads})
 * @param headDim the channels of {@code x} each head reads ({@code mamba_d_head})
 * @param groups the groups of {@code B} and {@code C} ({@code mamba_n_groups})
 * @param stateSize the width of {@code B}, {@code C} and each state's rows ({@code mamba_d_state})
 * @param convKernel the convolution's length in positions ({@code mamba_d_conv})
 * @param chunk the positions of one chunk of the computation ({@code mamba_chunk_size})
 * @param convBias whether the convolution has a bias ({@code mamba_conv_bias})
 * @param projectionBias whether {@code in_proj} and {@code out_proj} have biases ({@code mamba_proj_bias})
 * @param dtMin the least time step ({@code time_step_limit[0]})
 * @param dtMax the greatest time step ({@code time_step_limit[1]}; infinity for none)
 * @param layers per layer, whether it is a Mamba layer rather than a softmax-attention one
 */
public record Mamba2(int heads, int headDim, int groups, int stateSize, int convKernel, int chunk, boolean convBias,
        boolean projectionBias, double dtMin, double dtMax, List<Boolean> layers) {

    public Mamba2 {
        layers = List.copyOf(layers);
        if (heads % groups != 0) {
            throw new IllegalArgumentException("heads " + heads + " is not a multiple of groups " + groups);
        }
    }

    /**
     * The keys of the Mamba-2 mixer that Bamba's config and those built on it share, with BambaConfig's defaults
     * ({@code mamba_d_head} {@code "auto"}: {@code mamba_expand · hidden_size / mamba_n_heads}; {@code time_step_limit}
     * no limit, spelt as transformers 5 writes it).
     */
    static List<Key> keys() {
        return List.of(pos("mamba_n_heads", 128), pos("mamba_n_groups", 1), pos("mamba_d_state", 256),
                intOrStringOrNull("mamba_d_head", "auto"), pos("mamba_d_conv", 4), pos("mamba_expand", 2),
                pos("mamba_chunk_size", 256), bool("mamba_conv_bias", true), bool("mamba_proj_bias", false),
                list("time_step_limit", List.of(0.0, Map.of("__float__", "Infinity"))));
    }

    /**
     * The state space of the layers {@code layers} marks, as {@link #keys} size it, checked as
     * {@code validate_architecture} checks them.
     */
    static Mamba2 of(Settings s, List<Boolean> layers) {
        long inner = (long) s.integer("mamba_expand") * s.integer("hidden_size");
        int heads = s.integer("mamba_n_heads");
        if (inner % heads != 0) {
            throw invalid("mamba_n_heads", heads, "must divide mamba_expand * hidden_size = " + inner);
        }
        Object given = s.get("mamba_d_head");
        int headDim;
        if ("auto".equals(given)) {
            headDim = (int) (inner / heads);
        } else if (given instanceof Integer d && d > 0) {
            headDim = d;
        } else {
            throw invalid("mamba_d_head", given, "must be a positive integer or \"auto\"");
        }
        if ((long) headDim * heads != inner) {
            throw invalid("mamba_d_head", given, "times mamba_n_heads = " + heads + " must be mamba_expand *"
                    + " hidden_size = " + inner);
        }
        int groups = s.integer("mamba_n_groups");
        if (heads % groups != 0) {
            throw invalid("mamba_n_groups", groups, "must divide mamba_n_heads = " + heads + ": each head reads one"
                    + " group of B and C");
        }
        double[] limit = timeStepLimit(s.listOrNull("time_step_limit"));
        return new Mamba2(heads, headDim, groups, s.integer("mamba_d_state"), s.integer("mamba_d_conv"),
                s.integer("mamba_chunk_size"), s.bool("mamba_conv_bias"), s.bool("mamba_proj_bias"), limit[0],
                limit[1], layers);
    }

    /**
     * {@code time_step_limit} as its least and greatest time step. transformers 5 writes an infinite bound as
     * {@code {"__float__": "Infinity"}}, which JSON's numbers cannot hold.
     */
    private static double[] timeStepLimit(List<?> limit) {
        double[] bounds = new double[2];
        for (int i = 0; i < bounds.length && limit.size() == 2; i++) {
            Object bound = limit.get(i);
            bounds[i] = bound instanceof Number n ? n.doubleValue()
                    : bound instanceof Map<?, ?> m && m.size() == 1 && m.get("__float__") instanceof String f
                    && (f.equals("Infinity") || f.equals("-Infinity")) ? Double.parseDouble(f) : Double.NaN;
        }
        if (limit.size() != 2 || !(bounds[0] <= bounds[1])) {
            throw invalid("time_step_limit", limit, "must be two numbers, the least time step and the greatest");
        }
        return bounds;
    }

    /**
     * Whether a layer mixes tokens by the state space.
     *
     * @param layer the layer index
     * @return true for a Mamba layer
     */
    public boolean at(int layer) {
        return layers.get(layer);
    }

    /**
     * The channels of {@code x}, of the gate and of the output before {@code out_proj}.
     *
     * @return {@code heads · headDim}
     */
    public int inner() {
        return heads * headDim;
    }

    /**
     * The channels the convolution runs over: {@code x}, {@code B} and {@code C} side by side.
     *
     * @return {@code inner() + 2 · groups · stateSize}
     */
    public int convChannels() {
        return inner() + 2 * groups * stateSize;
    }

    /**
     * The outputs of {@code in_proj}: the gate, the convolution's channels and a time step per head.
     *
     * @return {@code inner() + convChannels() + heads}
     */
    public int projection() {
        return inner() + convChannels() + heads;
    }
}

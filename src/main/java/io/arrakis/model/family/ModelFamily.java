package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

/**
 * One Hugging Face model family ({@code model_type}): its {@code config.json} keys with their defaults and aliases,
 * how its configuration maps to the normalised {@link Architecture}, and its checkpoint. Subclasses live in this
 * package and are listed in {@link Families}.
 */
public abstract class ModelFamily {
    private final String name;
    private final String modelType;
    private final Keys keys;

    /**
     * @param name the canonical name ({@code "gpt-neo"})
     * @param modelType the Hugging Face {@code model_type} ({@code "gpt_neo"})
     * @param keys the configuration class's keys
     */
    ModelFamily(String name, String modelType, Keys keys) {
        this.name = name;
        this.modelType = modelType;
        this.keys = keys;
    }

    /**
     * The canonical name.
     *
     * @return e.g. {@code "gpt-neo"}
     */
    public final String name() {
        return name;
    }

    /**
     * The Hugging Face {@code model_type}.
     *
     * @return e.g. {@code "gpt_neo"}
     */
    public final String modelType() {
        return modelType;
    }

    /**
     * Other {@code model_type}s whose configurations transformers reads as this family's.
     *
     * @return none by default
     */
    public List<String> otherModelTypes() {
        return List.of();
    }

    /** Whether a {@code config.json}'s {@code model_type} names this family. */
    final boolean hasModelType(String type) {
        return modelType.equals(type) || otherModelTypes().contains(type);
    }

    /**
     * The keyword defaults of the family's configuration class.
     *
     * @return a new, modifiable map in argument order
     */
    public final Map<String, Object> defaults() {
        return keys.defaults();
    }

    /**
     * {@code base} with {@code overrides} applied: aliases resolved, family keys type-checked and normalised.
     *
     * @param keepUnknown keep keys the family does not define (a {@code config.json}'s {@code architectures}, ...);
     *     otherwise they are an error unless {@code base} has them
     * @return a new map
     * @throws IllegalArgumentException for an unknown key, a value of the wrong type, or an alias and its key given
     *     different values
     */
    public final Map<String, Object> merge(Map<String, Object> base, Map<String, ?> overrides, boolean keepUnknown) {
        return keys.merge(name, base, overrides, keepUnknown);
    }

    /**
     * The configuration a {@code config.json}'s keys (all but {@code model_type}) give: {@link #merge} over the
     * defaults, keeping keys the family does not define, after {@link #checkFile}.
     *
     * @throws IllegalArgumentException as {@link #merge} does, or for a key the family's configuration class ignores in a
     *     file although this library would read it
     */
    public final Map<String, Object> fromFile(Map<String, Object> file) {
        checkFile(file);
        return merge(defaults(), file, true);
    }

    /**
     * Refuses what a file gives that {@link #merge} would read but the family's configuration class ignores in a file
     * (an alias it takes only as an attribute), where it differs from what that class reads; nothing by default.
     */
    void checkFile(Map<String, Object> file) {
    }

    /**
     * The family's key for a standard name ({@code num_hidden_layers} is {@code n_layer} for gpt2).
     *
     * @param standardName a name of the family's {@code attribute_map}, or any key
     * @return the real key
     */
    public final String realKey(String standardName) {
        return keys.realKey(standardName);
    }

    /**
     * Validates a configuration of this family and derives its normalised view.
     *
     * @param raw a map {@link #merge} made
     * @return the architecture
     * @throws IllegalArgumentException naming the key and value of anything invalid or not implemented
     */
    public final Architecture architecture(Map<String, Object> raw) {
        Object quantization = raw.get("quantization_config");
        // Hugging Face quantizes the layers as it loads them, or reads weights stored quantized: either way its model
        // computes something other than the floating-point weights this library multiplies by, unless it was told to
        // dequantize them (as a dequantized gpt-oss checkpoint's config may still say)
        if (quantization != null && !(quantization instanceof Map<?, ?> q && Boolean.TRUE.equals(q.get("dequantize")))) {
            boolean mxfp4 = quantization instanceof Map<?, ?> q && "mxfp4".equals(q.get("quant_method"));
            throw ConfigValues.invalid("quantization_config", quantization, "is not implemented: only models whose"
                    + " weights are stored and used in floating point load here" + (mxfp4 ? "; dequantize the"
                    + " checkpoint first (transformers: load it with Mxfp4Config(dequantize=True) and save_pretrained)"
                    : ""));
        }
        // transformers builds every family's attention mask from these, whatever the family: a config that is not
        // causal attends both ways, and one with per-layer settings gives its layers other sizes or settings
        if (raw.containsKey("is_causal") && !Boolean.TRUE.equals(raw.get("is_causal"))) {
            throw ConfigValues.invalid("is_causal", raw.get("is_causal"), "is not supported: only causal attention is");
        }
        Object perLayer = raw.get("per_layer_config");
        if (perLayer != null && !(perLayer instanceof Map<?, ?> m && m.isEmpty()) && !readsPerLayerConfig()) {
            throw ConfigValues.invalid("per_layer_config", perLayer, "is not supported: every layer takes the"
                    + " model's own settings");
        }
        return architecture(new Settings(raw));
    }

    abstract Architecture architecture(Settings s);

    /** Whether the family reads {@code per_layer_config} itself (Gemma 4: its layers' heads); refused otherwise. */
    boolean readsPerLayerConfig() {
        return false;
    }

    /**
     * Refuses a {@code head_dim} other than {@code width / heads} in a family whose heads are that wide: its
     * {@code transformers} rotary embedding reads {@code head_dim} where a file gives one, its projections do not.
     */
    static void requireHeadDimOfWidth(Settings s, String width, String heads) {
        Object headDim = s.get("head_dim");
        if (headDim != null && !(headDim instanceof Number n && n.doubleValue() * s.integer(heads) == s.integer(width))) {
            throw ConfigValues.invalid("head_dim", headDim, "is not supported: the heads are " + width + " / " + heads
                    + " = " + s.integer(width) / (double) s.integer(heads) + " wide, and transformers' rotary embedding"
                    + " would read head_dim instead; remove it");
        }
    }

    /**
     * The checkpoint of a configuration of this family.
     *
     * @param a an architecture {@link #architecture(Map)} derived for this family
     * @return the checkpoint's description
     */
    public abstract Checkpoint checkpoint(Architecture a);

    @Override
    public String toString() {
        return name;
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;

/** The {@code layer_types} key of the families that mark each layer {@code "full_attention"} or {@code "sliding_attention"}. */
final class LayerTypes {
    private LayerTypes() {
    }

    /**
     * The layers {@code layer_types} lists, {@link LayerAttention#SLIDING} where it says {@code "sliding_attention"};
     * null when the key is null.
     *
     * @throws IllegalArgumentException naming the key when it has the wrong length or an unknown entry
     */
    static List<LayerAttention> read(Settings s, int layers) {
        return read(s, "layer_types", layers, "num_hidden_layers",
                Map.of("full_attention", LayerAttention.FULL, "sliding_attention", LayerAttention.SLIDING));
    }

    /**
     * The layers the list at {@code key} names, one entry per layer, each a name of {@code kinds}; null when the key
     * is null.
     *
     * @throws IllegalArgumentException naming the key when it has the wrong length or an unknown entry
     */
    static List<LayerAttention> read(Settings s, String key, int layers, String layersKey,
                                     Map<String, LayerAttention> kinds) {
        List<?> types = s.listOrNull(key);
        if (types == null) {
            return null;
        }
        if (types.size() != layers) {
            throw invalid(key, types, "has " + types.size() + " entries but " + layersKey + " = " + layers);
        }
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        for (Object t : types) {
            LayerAttention kind = t instanceof String name ? kinds.get(name) : null;
            if (kind == null) {
                throw invalid(key, types, "entries must be " + kinds.keySet().stream().sorted()
                        .map(n -> "\"" + n + "\"").collect(Collectors.joining(" or ")) + ", got " + describe(t));
            }
            perLayer.add(kind);
        }
        return perLayer;
    }

    /**
     * The layers of a family whose sliding layers come every {@code period}-th layer but the last of each period
     * ({@code "sliding_attention" if (i + 1) % period else "full_attention"}), when {@code layer_types} is null.
     */
    static List<LayerAttention> readOrEvery(Settings s, int layers, int period) {
        List<LayerAttention> given = read(s, layers);
        if (given != null) {
            return given;
        }
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            perLayer.add((i + 1) % period != 0 ? LayerAttention.SLIDING : LayerAttention.FULL);
        }
        return perLayer;
    }

    /**
     * {@code rope_parameters} as {@code transformers} 5 writes it for a family with a rotary embedding per layer
     * type: one object per type; null when the key is null.
     *
     * @throws IllegalArgumentException naming the key when it holds anything else
     */
    static Map<?, ?> rotaryObjects(Settings s, String family) {
        return rotaryObjects(s, "rope_parameters", family);
    }

    /** {@link #rotaryObjects(Settings, String)} under {@code key} (mellum's {@code rope_scaling} takes its place). */
    static Map<?, ?> rotaryObjects(Settings s, String key, String family) {
        Map<?, ?> rp = s.mapOrNull(key);
        if (rp != null && !Set.of("full_attention", "sliding_attention").containsAll(rp.keySet())) {
            throw invalid(key, rp, "must hold one object per layer type (full_attention, sliding_attention) for "
                    + family);
        }
        return rp;
    }

    /**
     * The full layers' rotary object: the one of {@link #rotaryObjects} with {@code rope_scaling} merged in, as the
     * {@code convert_rope_params_to_dict} of gemma3 and olmo3 merge them. Without {@code rope_parameters} they merge it
     * into {@code {"rope_type": "default"}}, so a {@code rope_scaling} that names its type with the older key
     * {@code "type"} alone leaves the layers unscaled in {@code transformers} 5.17, where 4.x scaled them: refused.
     */
    static Map<Object, Object> fullLayerRotary(Map<?, ?> rotaryObjects, Map<?, ?> scaling) {
        Map<Object, Object> full = new LinkedHashMap<>(rotaryObject(rotaryObjects, "full_attention"));
        if (scaling != null) {
            if (rotaryObjects == null && scaling.containsKey("type") && !scaling.containsKey("rope_type")) {
                throw invalid("rope_scaling.type", scaling.get("type"), "is the older key, which transformers 5.17"
                        + " does not read for the full layers without rope_type (they stay unscaled; 4.x scaled them);"
                        + " give rope_type");
            }
            full.putAll(scaling);
        }
        return full;
    }

    /** The rotary object of one layer type in {@link #rotaryObjects}; empty when there is none. */
    static Map<?, ?> rotaryObject(Map<?, ?> rotaryObjects, String layerType) {
        return rotaryObject(rotaryObjects, "rope_parameters", layerType);
    }

    /** {@link #rotaryObject(Map, String)} of the objects under {@code key}. */
    static Map<?, ?> rotaryObject(Map<?, ?> rotaryObjects, String key, String layerType) {
        Object entry = rotaryObjects == null ? null : rotaryObjects.get(layerType);
        if (entry != null && !(entry instanceof Map<?, ?>)) {
            throw invalid(key + "." + layerType, entry, "must be a JSON object");
        }
        return entry == null ? Map.of() : (Map<?, ?>) entry;
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;

import java.util.ArrayList;
import java.util.List;

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
        List<?> types = s.listOrNull("layer_types");
        if (types == null) {
            return null;
        }
        if (types.size() != layers) {
            throw invalid("layer_types", types, "has " + types.size() + " entries but num_hidden_layers = " + layers);
        }
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        for (Object t : types) {
            if (!"full_attention".equals(t) && !"sliding_attention".equals(t)) {
                throw invalid("layer_types", types,
                        "entries must be \"full_attention\" or \"sliding_attention\", got " + describe(t));
            }
            perLayer.add("sliding_attention".equals(t) ? LayerAttention.SLIDING : LayerAttention.FULL);
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
}

package io.arrakis.composer;

import io.arrakis.model.HookedAutoConfig;

/**
 * One attention head: a layer and a (query) head index within it, written {@code L0H3}. Only negative numbers are
 * rejected here; whether the head exists is checked against a model's config where it is used
 * ({@link #checkIn(HookedAutoConfig, String)}).
 */
public record Head(int layer, int index) {

    public Head {
        if (layer < 0 || index < 0) {
            throw new IllegalArgumentException("a head has a non-negative layer and index, got layer " + layer
                    + ", head " + index);
        }
    }

    public static Head of(int layer, int index) {
        return new Head(layer, index);
    }

    /**
     * Throws {@link IllegalArgumentException} unless this head exists in a model of config {@code c}: layers
     * {@code 0..nLayers-1} that attend by softmax, query heads {@code 0..nHeads-1}. {@code what} names the role in the
     * message ("sender", "receiver", ...).
     */
    public void checkIn(HookedAutoConfig c, String what) {
        if (layer < c.nLayers() && index < c.nHeads()) {
            if (!c.attentionHeads(layer)) {
                throw new IllegalArgumentException((what == null || what.isEmpty() ? "head " : what + " head ") + this
                        + " is in layer " + layer + ", which mixes tokens by " + c.mixer(layer).description()
                        + ": it has no attention heads");
            }
            return;
        }
        StringBuilder m = new StringBuilder();
        m.append(what == null || what.isEmpty() ? "head " : what + " head ").append(this)
                .append(" is not in this model: layers 0..").append(c.nLayers() - 1)
                .append(", heads 0..").append(c.nHeads() - 1);
        int kvHeads = layer < c.nLayers() ? c.nKvHeads(layer) : c.nKvHeads();
        if (kvHeads != c.nHeads()) {
            m.append(" (query heads: this grouped-query model has ").append(c.nHeads()).append(" query heads sharing ")
                    .append(kvHeads).append(" key/value heads; a head is named by its query-head index, its key/value"
                            + " head is index / ").append(c.nHeads() / kvHeads).append(")");
        }
        throw new IllegalArgumentException(m.toString());
    }

    @Override
    public String toString() {
        return "L" + layer + "H" + index;
    }
}

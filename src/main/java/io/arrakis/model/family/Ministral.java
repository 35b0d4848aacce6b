package io.arrakis.model.family;

/**
 * Ministral ({@code transformers/models/ministral}; Ministral-8B-Instruct-2410): Mistral's configuration and layers,
 * with {@code layer_types} marking the sliding layers (by default every layer where {@code sliding_window} is set),
 * as {@link Mistral} reads them.
 */
final class Ministral extends ModelFamily {

    Ministral() {
        super("ministral", "ministral", Mistral.keys());
    }

    @Override
    Architecture architecture(Settings s) {
        return Mistral.architectureOf(s);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

package io.arrakis.model.family;

import java.util.Map;

/**
 * VaultGemma ({@code transformers/models/vaultgemma}; VaultGemma-1B): Gemma 2's blocks without the norms after
 * attention and MLP ({@code input_layernorm} before attention, {@code pre_feedforward_layernorm} before the MLP), and
 * Gemma 2's configuration, less {@code use_bidirectional_attention}, as its attention is always causal.
 */
final class VaultGemma extends ModelFamily {

    VaultGemma() {
        super("vaultgemma", "vaultgemma", Keys.of(Gemma2.keys().stream()
                .filter(k -> !k.name().equals("use_bidirectional_attention")).toList(), Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        return Gemma2.gemma2Layout(s, 2).sublayerNorms(true, false).rotary("rope_theta", null).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpointWithPreFeedforwardNorm(a);
    }
}

package io.arrakis.model;

import io.arrakis.torch.Tensor;

/**
 * A function run at a hook point during a forward pass, as in TransformerLens: it sees the activation and may return a
 * replacement (same shape and dtype), or null to leave it unchanged. The activation belongs to the forward pass: read
 * it, or derive a new tensor from it, but do not close it.
 */
@FunctionalInterface
public interface Hook {
    /**
     * @param activation the activation at the hook point
     * @param hookName the hook point's name, e.g. {@code blocks.0.attn.hook_pattern}
     * @return a replacement activation, or null to keep {@code activation}
     */
    Tensor apply(Tensor activation, String hookName);
}

package io.arrakis.model;

import io.arrakis.torch.Tensor;

/**
 * A function run at a hook point during a forward pass, as in TransformerLens: it sees the activation and may return a
 * replacement (same shape, dtype and device), or null to leave it unchanged. The activation belongs to the forward
 * pass: read it, or derive a new tensor from it, but do not close it. Tensors the hook makes belong to the pass too, and
 * are freed when it ends; to keep an activation, cache its hook point ({@link CacheSpec}), or make the copy inside
 * {@link io.arrakis.torch.TensorScope#unscoped} and close it yourself. Writing into the activation in place changes
 * every tensor that shares its memory (the cache's entries of it included, as one activation may sit at two hook
 * points, {@code blocks.0.hook_resid_post} and {@code blocks.1.hook_resid_pre}), as in TransformerLens: return a
 * replacement to change this hook point alone.
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

package io.arrakis.model;

import io.arrakis.torch.Tensor;

/**
 * What a forward pass returns: the logits {@code [batch, pos, vocab]} and the activation cache — the Java form of
 * Arrakis's {@code output, cache = model(input_ids)}. Closing it frees both.
 *
 * @param logits the unembedded output; on the CPU it may be a view whose rows are wider than the vocabulary (a packed
 *     unembedding with rows added, see {@link io.arrakis.torch.LinearWeight}): {@code contiguous()} gives a dense copy,
 *     for {@code asSegment()} or a {@code view} that merges the vocabulary with other dims
 * @param cache the kept activations (empty with {@link CacheSpec#none()})
 */
public record ModelOutput(Tensor logits, ActivationCache cache) implements AutoCloseable {
    @Override
    public void close() {
        cache.close();
        logits.close();
    }
}

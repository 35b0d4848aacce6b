package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;

import java.util.List;

/**
 * The layout the chunked recurrences ({@link GatedDeltaRule}, {@link Mamba2Scan}) work in: heads first, positions in
 * chunks.
 */
final class PositionChunks {
    private PositionChunks() {
    }

    /** {@code x [batch, pos, heads, d]} as {@code [batch, heads, padded, d]} in float32, zeros after its positions. */
    static Tensor headsFirst(Tensor x, long padded) {
        Tensor wide = (x.dtype() == DType.FLOAT32 ? x : x.to(DType.FLOAT32)).transpose(1, 2);
        long pos = wide.size(2);
        if (padded == pos) {
            return wide.contiguous();
        }
        long[] shape = wide.shape();
        shape[2] = padded - pos;
        return Tensor.cat(List.of(wide, Tensor.zeros(shape, DType.FLOAT32, x.device())), 2);
    }

    /** {@code x [batch, heads, padded, d]} as {@code [batch, heads, chunks, chunk, d]}. */
    static Tensor inChunks(Tensor x, int chunks, int chunk) {
        return x.view(x.size(0), x.size(1), chunks, chunk, x.size(3));
    }
}

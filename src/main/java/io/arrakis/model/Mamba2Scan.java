package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.List;
import java.util.function.IntFunction;

import static io.arrakis.model.PositionChunks.headsFirst;
import static io.arrakis.model.PositionChunks.inChunks;

/**
 * The state space of a Mamba-2 layer ({@link io.arrakis.model.family.Mamba2}) over a whole pass, in float32, computed
 * as transformers' {@code mamba2_chunk_scan} (the fallback of the {@code mamba_ssm} kernel) computes it: positions in
 * chunks, within a chunk as a masked product of {@code C}, {@code B} and the decay between positions (the duality of
 * Mamba-2: attention with a decaying mask), between chunks by one product of the states that end them with the decay
 * from chunk to chunk. Each head's state starts at zero.
 */
final class Mamba2Scan {
    private Mamba2Scan() {
    }

    /**
     * Each head's output {@code y = state · C + D · x}, {@code [batch, pos, heads, head_dim]} in float32.
     *
     * @param x the channels each head reads {@code [batch, pos, heads, head_dim]}
     * @param dt the time steps {@code [batch, pos, heads]}, after the softplus and the limits
     * @param a each head's {@code A = −exp(A_log)} {@code [heads]}, float32
     * @param b the groups of {@code B} {@code [batch, pos, groups, state]}; head {@code h} reads group
     *     {@code h / (heads / groups)}
     * @param c the groups of {@code C}, likewise
     * @param skip each head's {@code D} {@code [heads]}
     * @param chunk the positions of a chunk
     * @param triangles for a size {@code n}: the strictly lower triangle of ones {@code [n, n]} in float32, and the
     *     strictly upper triangle {@code [n, n]} as bool, on the tensors' device
     */
    static Tensor apply(Tensor x, Tensor dt, Tensor a, Tensor b, Tensor c, Tensor skip, int chunk,
                        IntFunction<List<Tensor>> triangles) {
        long batch = x.size(0);
        long pos = x.size(1);
        long heads = x.size(2);
        long headDim = x.size(3);
        long state = b.size(3);
        // a pass shorter than a chunk is one chunk of its own length: the padding would add nothing to any position
        int size = (int) Math.min(chunk, pos);
        long padded = (pos + size - 1) / size * size;
        int chunks = (int) (padded / size);
        try (TensorScope steps = TensorScope.open()) {
            long perGroup = heads / b.size(2);
            Tensor timeSteps = dt.to(DType.FLOAT32);
            Tensor inputs = x.to(DType.FLOAT32);
            Tensor skipped = inputs.mul(skip.to(DType.FLOAT32).unsqueeze(-1));
            Tensor xs = inChunks(headsFirst(inputs.mul(timeSteps.unsqueeze(-1)), padded), chunks, size);
            Tensor logDecay = headsFirst(timeSteps.mul(a).unsqueeze(-1), padded).view(batch, heads, chunks, size);
            Tensor bs = inChunks(headsFirst(perHead(b, perGroup), padded), chunks, size);
            Tensor cs = inChunks(headsFirst(perHead(c, perGroup), padded), chunks, size);

            // within a chunk: [i, j] C_i · B_j times the decay from position j to i, 0 where j comes after i
            Tensor within = cs.matmul(bs.transpose(-1, -2)).mul(segmentSum(logDecay, triangles.apply(size)).exp());
            Tensor out = within.matmul(xs);
            if (chunks > 1) { // the first chunk starts from a zero state; each later one from what those before leave
                Tensor cumulative = logDecay.cumsum(-1); // the log of the decay from a chunk's start to each position
                // the state each chunk ends with, from its own positions; then the state each chunk starts with
                Tensor toEnd = cumulative.narrow(-1, size - 1, 1).sub(cumulative).exp().unsqueeze(-1);
                Tensor ending = bs.mul(toEnd).transpose(-1, -2).matmul(xs); // [batch, heads, chunks, state, head_dim]
                Tensor chunkDecay = Tensor.cat(List.of(Tensor.zeros(new long[] {batch, heads, 1}, DType.FLOAT32,
                        x.device()), cumulative.select(-1, size - 1)), -1);
                Tensor ends = Tensor.cat(List.of(Tensor.zeros(new long[] {batch, heads, 1, state * headDim},
                        DType.FLOAT32, x.device()), ending.reshape(batch, heads, chunks, state * headDim)), 2);
                Tensor starting = segmentSum(chunkDecay, triangles.apply(chunks + 1)).exp().matmul(ends)
                        .narrow(2, 0, chunks).view(batch, heads, chunks, state, headDim);
                out = out.add(cs.matmul(starting).mul(cumulative.exp().unsqueeze(-1)));
            }
            Tensor y = out.view(batch, heads, padded, headDim).narrow(2, 0, pos).transpose(1, 2).add(skipped);
            return steps.keep(y.contiguous());
        }
    }

    /**
     * {@code [..., i, j]}: the sum of {@code a} over positions {@code j + 1} to {@code i}, as running sums of the
     * masked values rather than differences of running sums; minus infinity where {@code j > i}.
     */
    private static Tensor segmentSum(Tensor a, List<Tensor> triangles) {
        return a.unsqueeze(-1).mul(triangles.get(0)).cumsum(-2).maskedFill(triangles.get(1),
                Double.NEGATIVE_INFINITY);
    }

    /** The groups {@code [batch, pos, groups, state]} as each head's, {@code [batch, pos, heads, state]}, float32. */
    private static Tensor perHead(Tensor groups, long perGroup) {
        Tensor wide = groups.to(DType.FLOAT32);
        return perGroup == 1 ? wide : wide.repeatInterleave(perGroup, 2);
    }

}

package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.List;

import static io.arrakis.model.PositionChunks.headsFirst;
import static io.arrakis.model.PositionChunks.inChunks;

/**
 * The gated delta rule of linear attention ({@link io.arrakis.model.family.LinearAttention}) over a whole pass, in
 * float32, computed as transformers' {@code torch_chunk_gated_delta_rule} computes it: positions in chunks of
 * {@link #CHUNK}, each chunk's updates condensed into triangular solves, and one step of the recurrence per chunk.
 * Each value head's state starts at zero.
 */
final class GatedDeltaRule {
    /** The positions one step of the recurrence takes. */
    static final int CHUNK = 64;

    private GatedDeltaRule() {
    }

    /**
     * Each value head's output {@code [batch, pos, value_heads, value_dim]}, in the values' dtype.
     *
     * @param q the queries {@code [batch, pos, key_heads, key_dim]}, not yet normalised
     * @param k the keys, likewise
     * @param v the values {@code [batch, pos, value_heads, value_dim]}
     * @param decay the log of each position's decay of the state {@code [batch, pos, value_heads]}, float32
     * @param beta how far each position corrects the state towards its value {@code [batch, pos, value_heads]}
     * @param future the strictly upper triangle of a chunk, {@code [CHUNK, CHUNK]} bool on the tensors' device
     */
    static Tensor apply(Tensor q, Tensor k, Tensor v, Tensor decay, Tensor beta, Tensor future) {
        long batch = v.size(0);
        long pos = v.size(1);
        long heads = v.size(2);
        long keyDim = q.size(3);
        long valueDim = v.size(3);
        long padded = (pos + CHUNK - 1) / CHUNK * CHUNK;
        int chunks = (int) (padded / CHUNK);
        try (TensorScope steps = TensorScope.open()) {
            long perKey = heads / q.size(2); // value heads read their key head's queries and keys
            Tensor queries = headsFirst(perKey == 1 ? q : q.repeatInterleave(perKey, 2), padded);
            Tensor keys = l2Normalized(headsFirst(perKey == 1 ? k : k.repeatInterleave(perKey, 2), padded));
            queries = l2Normalized(queries).mul(1 / Math.sqrt(keyDim));
            Tensor values = headsFirst(v, padded);
            Tensor betas = headsFirst(beta.unsqueeze(-1), padded);
            Tensor g = headsFirst(decay.unsqueeze(-1), padded).view(batch, heads, chunks, CHUNK);
            Tensor kBeta = inChunks(keys.mul(betas), chunks, CHUNK);
            Tensor vBeta = inChunks(values.mul(betas), chunks, CHUNK);
            queries = inChunks(queries, chunks, CHUNK);
            keys = inChunks(keys, chunks, CHUNK);

            Tensor cumulative = g.cumsum(-1); // the log of the decay from a chunk's start to each position
            // [i, j]: the decay between positions j and i of a chunk; 0 where j comes after i
            Tensor pairwise = cumulative.unsqueeze(-1).sub(cumulative.unsqueeze(-2))
                    .maskedFill(future, Double.NEGATIVE_INFINITY).exp();
            Tensor system = kBeta.matmul(keys.transpose(-1, -2)).mul(pairwise);
            Tensor intra = queries.matmul(keys.transpose(-1, -2)).mul(pairwise);
            Tensor fromStart = cumulative.exp().unsqueeze(-1);
            // the chunk's corrections to the values, and the keys that read the state it starts with
            Tensor corrections = system.solveTriangular(vBeta, false, true);
            Tensor stateKeys = system.solveTriangular(kBeta.mul(fromStart), false, true);
            Tensor decayedQueries = queries.mul(fromStart);
            Tensor toEnd = cumulative.narrow(-1, CHUNK - 1, 1).sub(cumulative).exp().unsqueeze(-1);
            Tensor decayedKeys = keys.mul(toEnd);
            Tensor chunkDecay = cumulative.narrow(-1, CHUNK - 1, 1).exp().unsqueeze(-1); // [batch, heads, chunks, 1, 1]

            Tensor state = Tensor.zeros(new long[] {batch, heads, keyDim, valueDim}, DType.FLOAT32, v.device());
            List<Tensor> outputs = new ArrayList<>(chunks);
            for (int i = 0; i < chunks; i++) {
                Tensor delta = corrections.select(2, i).sub(stateKeys.select(2, i).matmul(state));
                outputs.add(decayedQueries.select(2, i).matmul(state).add(intra.select(2, i).matmul(delta)));
                state = state.mul(chunkDecay.select(2, i))
                        .add(decayedKeys.select(2, i).transpose(-1, -2).matmul(delta));
            }
            Tensor out = Tensor.stack(outputs, 2).view(batch, heads, padded, valueDim).narrow(2, 0, pos)
                    .transpose(1, 2);
            return steps.keep(out.to(v.dtype()));
        }
    }

    /** {@code x / sqrt(Σ x² + 1e-6)} over the last dim, as the FLA library and transformers normalise. */
    private static Tensor l2Normalized(Tensor x) {
        return x.mul(x.mul(x).sum(-1, true).add(1e-6).rsqrt());
    }
}

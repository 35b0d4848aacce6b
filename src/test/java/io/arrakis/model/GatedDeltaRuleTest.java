package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The chunked gated delta rule against its definition, the recurrence one position at a time (Yang et al., "Gated
 * Delta Networks", 2024; transformers' {@code torch_recurrent_gated_delta_rule}), written here in double precision:
 * each value head's state {@code S [key_dim, value_dim]} starts at zero; at each position it decays by {@code exp(g)},
 * moves towards the value by {@code S += k ⊗ beta (v − Sᵀk)} and is read by {@code o = Sᵀq}, with queries and keys
 * L2-normalised and the queries scaled by {@code key_dim^-1/2}. Lengths within one chunk, of exactly one, and across
 * several with a partial last one.
 */
class GatedDeltaRuleTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 64, 150})
    void theChunkedRuleIsTheRecurrence(int pos) {
        int batch = 2;
        int keyHeads = 2;
        int valueHeads = 4;
        int keyDim = 5;
        int valueDim = 3;
        Random r = new Random(pos);
        double[] q = gaussian(r, batch * pos * keyHeads * keyDim);
        double[] k = gaussian(r, batch * pos * keyHeads * keyDim);
        double[] v = gaussian(r, batch * pos * valueHeads * valueDim);
        double[] g = new double[batch * pos * valueHeads];
        double[] beta = new double[g.length];
        for (int i = 0; i < g.length; i++) {
            g[i] = -0.05 - 2 * r.nextDouble(); // decays between e^-2.05 and e^-0.05
            beta[i] = r.nextDouble();
        }
        double[] expected = recurrence(q, k, v, g, beta, batch, pos, keyHeads, valueHeads, keyDim, valueDim);
        try (TensorScope scope = TensorScope.open()) {
            Tensor future = Tensor.ones(new long[] {GatedDeltaRule.CHUNK, GatedDeltaRule.CHUNK}, DType.BOOL,
                    Device.CPU).triu(1);
            Tensor out = GatedDeltaRule.apply(Tensor.of(q, batch, pos, keyHeads, keyDim),
                    Tensor.of(k, batch, pos, keyHeads, keyDim), Tensor.of(v, batch, pos, valueHeads, valueDim),
                    Tensor.of(g, batch, pos, valueHeads), Tensor.of(beta, batch, pos, valueHeads), future);
            assertArrayEquals(new long[] {batch, pos, valueHeads, valueDim}, out.shape());
            assertEquals(DType.FLOAT64, out.dtype(), "the values' dtype");
            double[] actual = out.toDoubleArray();
            // float32 inside: the rule computes in float32 as transformers' does
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], actual[i], 1e-5 * Math.max(1, Math.abs(expected[i])), "element " + i);
            }
        }
    }

    /** The recurrence, {@code [batch, pos, value_heads, value_dim]}. */
    private static double[] recurrence(double[] q, double[] k, double[] v, double[] g, double[] beta, int batch,
                                       int pos, int keyHeads, int valueHeads, int keyDim, int valueDim) {
        double[] out = new double[batch * pos * valueHeads * valueDim];
        int perKey = valueHeads / keyHeads;
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < valueHeads; h++) {
                int kh = h / perKey;
                double[][] state = new double[keyDim][valueDim];
                for (int t = 0; t < pos; t++) {
                    double[] qt = normalized(q, ((b * pos + t) * keyHeads + kh) * keyDim, keyDim);
                    double[] kt = normalized(k, ((b * pos + t) * keyHeads + kh) * keyDim, keyDim);
                    int at = (b * pos + t) * valueHeads + h;
                    double decay = Math.exp(g[at]);
                    double[] read = new double[valueDim];
                    for (int i = 0; i < keyDim; i++) {
                        for (int j = 0; j < valueDim; j++) {
                            state[i][j] *= decay;
                            read[j] += state[i][j] * kt[i];
                        }
                    }
                    for (int j = 0; j < valueDim; j++) {
                        double delta = (v[at * valueDim + j] - read[j]) * beta[at];
                        for (int i = 0; i < keyDim; i++) {
                            state[i][j] += kt[i] * delta;
                        }
                    }
                    for (int j = 0; j < valueDim; j++) {
                        double o = 0;
                        for (int i = 0; i < keyDim; i++) {
                            o += state[i][j] * qt[i] / Math.sqrt(keyDim);
                        }
                        out[at * valueDim + j] = o;
                    }
                }
            }
        }
        return out;
    }

    /** {@code x[from, from + n)} over {@code sqrt(Σ x² + 1e-6)}. */
    private static double[] normalized(double[] x, int from, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += x[from + i] * x[from + i];
        }
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = x[from + i] / Math.sqrt(sum + 1e-6);
        }
        return out;
    }

    private static double[] gaussian(Random r, int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = r.nextGaussian();
        }
        return x;
    }
}

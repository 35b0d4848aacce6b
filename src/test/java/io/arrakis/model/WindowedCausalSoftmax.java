package io.arrakis.model;

import io.arrakis.torch.Tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * An attention pattern checked against the softmax of {@code q·k / sqrt(d_head)} over the keys of each query's
 * window, worked out in double precision from a pass's own queries and keys.
 */
final class WindowedCausalSoftmax {
    private WindowedCausalSoftmax() {
    }

    /**
     * Asserts that query i of {@code pattern} attends to keys {@code i - window + 1 .. i} as that softmax says and to
     * no other key.
     *
     * @param q {@code [batch, pos, heads, d_head]}, the queries the scores are made of (rotated where the layer
     *     rotates)
     * @param k {@code [batch, pos, kv_heads, d_head]}
     * @param pattern {@code [batch, heads, pos, pos]}
     */
    static void assertPattern(Tensor q, Tensor k, Tensor pattern, int window, double tolerance) {
        int batch = (int) q.size(0);
        int pos = (int) q.size(1);
        int heads = (int) q.size(2);
        int kvHeads = (int) k.size(2);
        int d = (int) q.size(3);
        float[] qs = q.toFloatArray();
        float[] ks = k.toFloatArray();
        float[] actual = pattern.toFloatArray();
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int kh = h / (heads / kvHeads);
                for (int i = 0; i < pos; i++) {
                    double[] scores = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    int first = Math.max(0, i - window + 1);
                    for (int j = first; j <= i; j++) {
                        double dot = 0;
                        int qAt = ((b * pos + i) * heads + h) * d;
                        int kAt = ((b * pos + j) * kvHeads + kh) * d;
                        for (int e = 0; e < d; e++) {
                            dot += qs[qAt + e] * ks[kAt + e];
                        }
                        scores[j] = dot / Math.sqrt(d);
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = first; j <= i; j++) {
                        sum += Math.exp(scores[j] - max);
                    }
                    for (int j = 0; j < pos; j++) {
                        double expected = j >= first && j <= i ? Math.exp(scores[j] - max) / sum : 0;
                        assertEquals(expected, actual[((b * heads + h) * pos + i) * pos + j], tolerance,
                                "batch " + b + " head " + h + " query " + i + " key " + j);
                    }
                }
            }
        }
    }
}

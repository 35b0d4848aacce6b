package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ops linear attention adds ({@code log1p}, {@code softplus}, {@code cumsum}, {@code conv1d},
 * {@code solveTriangular}) against values derived by hand or from their definitions in double precision, and their
 * refusals of shapes libtorch would only complain about on standard error.
 */
class LinearAttentionOpsTest {

    @Test
    void log1pAndSoftplusFollowTheirDefinitions() {
        try (TensorScope scope = TensorScope.open()) {
            double[] x = {-30, -1, -1e-12, 0, 1e-12, 0.5, 19.9, 20, 20.5, 40};
            Tensor t = Tensor.of(x, x.length);
            double[] log1p = t.log1p().toDoubleArray();
            double[] softplus = t.softplus().toDoubleArray();
            for (int i = 0; i < x.length; i++) {
                if (x[i] > -1) {
                    assertEquals(Math.log1p(x[i]), log1p[i], 1e-15 * Math.max(1, Math.abs(log1p[i])), "log1p " + x[i]);
                }
                // torch's softplus: x itself above the threshold 20, log(1 + e^x) at and below it
                double expected = x[i] > 20 ? x[i] : Math.log1p(Math.exp(x[i]));
                assertEquals(expected, softplus[i], 1e-15 * Math.max(1, expected), "softplus " + x[i]);
            }
            assertEquals(1e-12, log1p[4], 1e-24, "exact near 0, where add(1).log() gives 1.000088900582341e-12");
            assertTrue(Double.isNaN(Tensor.of(new double[] {-2}, 1).log1p().item()));
            assertEquals(DType.FLOAT32, Tensor.of(new float[] {1f}, 1).softplus().dtype());
            assertThrows(IllegalArgumentException.class, () -> Tensor.of(new long[] {1}, 1).softplus());
        }
    }

    @Test
    void cumsumRunsAlongTheDim() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor m = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
            assertArrayEquals(new double[] {1, 3, 6, 4, 9, 15}, m.cumsum(-1).toDoubleArray());
            assertArrayEquals(new double[] {1, 2, 3, 5, 7, 9}, m.cumsum(0).toDoubleArray());
            assertThrows(IllegalArgumentException.class, () -> m.cumsum(2));
            assertThrows(IllegalArgumentException.class, () -> Tensor.scalar(1.0).cumsum(0));
        }
    }

    /** A causal depthwise convolution as linear attention runs it: two channels, kernel 3, padded by 2 each side. */
    @Test
    void conv1dComputesEachChannelsCorrelation() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x = Tensor.of(new double[] {1, 2, 3, 4, 10, 20, 30, 40}, 1, 2, 4);
            Tensor w = Tensor.of(new double[] {1, 0, -1, 0.5, 0.25, 2}, 2, 1, 3);
            Tensor y = x.conv1d(w, 2, 2);
            assertArrayEquals(new long[] {1, 2, 6}, y.shape());
            // output j reads inputs j - 2 .. j (zeros outside): sum_k w[k] x[j - 2 + k]
            double[] expected = new double[12];
            double[][] in = {{1, 2, 3, 4}, {10, 20, 30, 40}};
            double[][] kernel = {{1, 0, -1}, {0.5, 0.25, 2}};
            for (int c = 0; c < 2; c++) {
                for (int j = 0; j < 6; j++) {
                    for (int k = 0; k < 3; k++) {
                        int at = j - 2 + k;
                        expected[c * 6 + j] += at >= 0 && at < 4 ? kernel[c][k] * in[c][at] : 0;
                    }
                }
            }
            assertArrayEquals(expected, y.toDoubleArray(), 1e-12);
            assertEquals(-1.0, expected[0], "the first output reads the first input through the last tap");
            assertThrows(IllegalArgumentException.class, () -> x.conv1d(w, 2, 1), "2 input channels, 1 group");
            assertThrows(IllegalArgumentException.class, () -> x.conv1d(Tensor.of(new double[] {1}, 1, 1, 1), 0, 2));
            assertThrows(IllegalArgumentException.class, () -> x.conv1d(Tensor.of(new double[9], 1, 1, 9), 0, 2));
            // a bias per output channel: each of its outputs moves by that channel's
            double[] biased = x.conv1d(w, Tensor.of(new double[] {0.5, -3}, 2), 2, 2).toDoubleArray();
            for (int i = 0; i < 12; i++) {
                assertEquals(expected[i] + (i < 6 ? 0.5 : -3), biased[i], 1e-12, "output " + i);
            }
            assertThrows(IllegalArgumentException.class, () -> x.conv1d(w, Tensor.of(new double[] {1}, 1), 2, 2));
        }
    }

    @Test
    void solveTriangularSolvesTheLowerUnitSystem() {
        try (TensorScope scope = TensorScope.open()) {
            // L = [[1, 0], [2, 1]] (its stored diagonal 5 and 7 ignored as unit), b = [[3], [8]]: x = [3, 8 - 2·3]
            Tensor a = Tensor.of(new double[] {5, 9, 2, 7}, 2, 2);
            Tensor b = Tensor.of(new double[] {3, 8}, 2, 1);
            assertArrayEquals(new double[] {3, 2}, a.solveTriangular(b, false, true).toDoubleArray(), 1e-12);
            // with its diagonal: 5 x0 = 3, 2 x0 + 7 x1 = 8
            assertArrayEquals(new double[] {0.6, (8 - 1.2) / 7}, a.solveTriangular(b, false, false).toDoubleArray(),
                    1e-12);
            // upper, unit: [[1, 9], [0, 1]] x = b: x1 = 8, x0 = 3 - 72
            assertArrayEquals(new double[] {-69, 8}, a.solveTriangular(b, true, true).toDoubleArray(), 1e-12);
            assertThrows(IllegalArgumentException.class, () -> a.solveTriangular(Tensor.of(new double[3], 3, 1),
                    false, true));
            assertThrows(IllegalArgumentException.class, () -> Tensor.of(new double[6], 2, 3).solveTriangular(b,
                    false, true));
        }
    }
}

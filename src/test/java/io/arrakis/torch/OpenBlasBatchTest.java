package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Two-operand einsums and batched matrix products through OpenBLAS's batched product equal libtorch's own einsum in
 * float64, for the layouts
 * attention passes (strided views of a fused projection, grouped-query keys shared by several query heads, outputs in
 * the equation's order) and for transposed operands and outputs; contractions the route does not cover go to libtorch
 * and are right too.
 */
class OpenBlasBatchTest {
    private final Generator g = new Generator(5);

    private Tensor randn(DType dtype, long... shape) {
        return Tensor.randn(g, shape, dtype, Device.CPU);
    }

    /**
     * libtorch's einsum in float64, kept off the batched route by a third operand of ones along the output's first
     * letter (which changes nothing).
     */
    private static Tensor reference(String equation, Tensor a, Tensor b) {
        String[] parts = equation.replace(" ", "").split("->");
        char first = parts[1].charAt(0);
        String[] terms = parts[0].split(",");
        long size = terms[0].indexOf(first) >= 0 ? a.size(terms[0].indexOf(first)) : b.size(terms[1].indexOf(first));
        Tensor ones = Tensor.ones(new long[] {size}, DType.FLOAT64, Device.CPU);
        return Tensor.einsum(parts[0] + "," + first + "->" + parts[1], a.to(DType.FLOAT64), b.to(DType.FLOAT64), ones);
    }

    private static void assertEinsum(String equation, Tensor a, Tensor b, boolean batched) {
        Tensor direct = OpenBlasBatch.einsum(equation, a, b, 1.0);
        if (batched) {
            assertNotNull(direct, equation + " on " + a.describe() + ", " + b.describe() + " should take the batched route");
        } else {
            assertNull(direct, equation + " on " + a.describe() + ", " + b.describe() + " should stay with libtorch");
        }
        Tensor expected = reference(equation, a, b);
        Tensor actual = Tensor.einsum(equation, a, b);
        assertArrayEquals(expected.shape(), actual.shape(), equation);
        if (batched) {
            assertTrue(actual.isContiguous(), equation + " writes its output in the equation's order");
        }
        double scale = Math.max(1, expected.abs().max().item());
        double diff = actual.to(DType.FLOAT64).sub(expected).abs().max().item();
        double tolerance = switch (a.dtype()) {
            case FLOAT64 -> 1e-12;
            case FLOAT32 -> 1e-5;
            default -> 1e-2; // bfloat16's 8-bit significand
        };
        assertTrue(diff <= tolerance * scale, equation + " on " + a.describe() + ", " + b.describe() + " off by " + diff
                + " (largest value " + scale + ")");
    }

    @Test
    void theBundledLibtorchTakesTheRoute() {
        assumeTrue(System.getProperty("os.arch").equals("amd64") && LibTorch.load().source().equals("maven"),
                "the bundled x86-64 build carries the OpenBLAS this route was checked with");
        assertTrue(OpenBlasBatch.available());
    }

    @Test
    void attentionScoresAndValuesFromAFusedProjection() {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
            long batch = 2;
            long pos = 128;
            long heads = 4;
            long dHead = 64;
            List<Tensor> qkv = randn(dtype, batch, pos, 3 * heads * dHead).view(batch, pos, 3 * heads, dHead)
                    .split(new long[] {heads, heads, heads}, 2);
            assertEinsum("bqhd,bkhd->bhqk", qkv.get(0), qkv.get(1), true);
            Tensor pattern = randn(dtype, batch, heads, pos, pos).softmax(-1);
            assertEinsum("bhqk,bkhd->bqhd", pattern, qkv.get(2), true);
        }
    }

    @Test
    void groupedQueryHeadsShareTheirKeysWithoutACopy() {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        long pos = 130;
        Tensor q = randn(DType.FLOAT32, 1, pos, 6, 64).view(1, pos, 2, 3, 64); // 2 key heads, 3 query heads each
        Tensor k = randn(DType.FLOAT32, 1, pos, 2, 64);
        assertEinsum("bqngd,bknd->bngqk", q, k, true);
        Tensor pattern = randn(DType.FLOAT32, 1, 2, 3, pos, pos);
        assertEinsum("bngqk,bknd->bqngd", pattern, k, true);
    }

    @Test
    void transposedOperandsAndOutputs() {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        Tensor a = randn(DType.FLOAT32, 3, 200, 150);
        Tensor b = randn(DType.FLOAT32, 3, 200, 120);
        assertEinsum("bkm,bkn->bmn", a, b, true); // the left operand read transposed
        assertEinsum("bkm,bkn->bnm", a, b, true); // an output whose rows run along the right operand
        assertEinsum("bkm,bkn->mbn", a, b, true); // the batch letter in the middle of the output
        assertEinsum("kbm,bkn->bmn", a.transpose(0, 1).contiguous(), b, true);
        assertEinsum("ij,jk->ik", randn(DType.FLOAT32, 160, 130), randn(DType.FLOAT32, 130, 100), true);
        assertEinsum("ij , jk -> ki", randn(DType.FLOAT32, 160, 130), randn(DType.FLOAT32, 130, 100), true);
    }

    @Test
    void batchedMatrixProductsTakeTheRouteToo() {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        Tensor s = randn(DType.FLOAT32, 24, 64, 768);
        Tensor r = randn(DType.FLOAT32, 24, 64, 768);
        Tensor product = s.bmm(r.transpose(1, 2)); // as the composition scores multiply their factors
        Tensor expected = reference("bij,bkj->bik", s, r);
        assertArrayEquals(expected.shape(), product.shape());
        assertTrue(product.to(DType.FLOAT64).allclose(expected, 1e-4, 1e-4));
        assertNotNull(OpenBlasBatch.einsum("bij,bjk->bik", s, r.transpose(1, 2), 1.0));
        // matmul of batches of matrices, of any rank
        Tensor q = randn(DType.FLOAT64, 2, 3, 128, 64);
        Tensor k = randn(DType.FLOAT64, 2, 3, 128, 64);
        Tensor viaMatmul = q.matmul(k.transpose(2, 3));
        assertTrue(viaMatmul.allclose(reference("abxy,abzy->abxz", q, k), 1e-12, 1e-12));
        assertTrue(viaMatmul.isContiguous());
        // broadcast batches go to libtorch, and are right too
        Tensor shared = randn(DType.FLOAT64, 1, 3, 64, 128);
        assertTrue(q.matmul(shared).allclose(reference("abxy,byz->abxz", q, shared.select(0, 0)), 1e-12, 1e-12));
    }

    @Test
    void concurrentCallersGetTheSingleThreadedResults() throws Exception {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        List<Tensor> qkv = randn(DType.FLOAT32, 1, 256, 3 * 8 * 64).view(1, 256, 24, 64).split(new long[] {8, 8, 8}, 2);
        Tensor q = qkv.get(0);
        Tensor k = qkv.get(1);
        Tensor v = qkv.get(2);
        Tensor scores = Tensor.einsum("bqhd,bkhd->bhqk", q, k);
        // fused attention on other threads meanwhile sets OpenBLAS to one thread and back (OpenBlasThreads)
        Tensor attention = Tensor.scaledDotProductAttention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                null, true, 0.125);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                results.add(pool.submit(() -> {
                    int mismatches = 0;
                    for (int i = 0; i < 20; i++) {
                        try (TensorScope scope = TensorScope.open()) {
                            if (!Tensor.einsum("bqhd,bkhd->bhqk", q, k).allclose(scores, 1e-6, 1e-6)
                                    || !Tensor.scaledDotProductAttention(q.transpose(1, 2), k.transpose(1, 2),
                                            v.transpose(1, 2), null, true, 0.125).allclose(attention, 1e-6, 1e-6)) {
                                mismatches++;
                            }
                        }
                    }
                    return mismatches;
                }));
            }
            for (Future<Integer> r : results) {
                assertTrue(r.get(60, TimeUnit.SECONDS) == 0, "results differing from the single-threaded ones");
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void whatTheRouteDoesNotCoverStaysWithLibtorch() {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        // at most 100³ multiply-adds per product: the checked OpenBLAS cannot batch those
        assertEinsum("bqhd,bkhd->bhqk", randn(DType.FLOAT32, 1, 32, 4, 64), randn(DType.FLOAT32, 1, 32, 4, 64), false);
        assertEinsum("bij,bjk->bik", randn(DType.FLOAT32, 2, 100, 100), randn(DType.FLOAT32, 2, 100, 100), false);
        Tensor a = randn(DType.FLOAT32, 2, 200, 120);
        Tensor b = randn(DType.FLOAT32, 2, 120, 150);
        assertEinsum("bij,bjk->bi", a, b, false); // a letter summed within one operand
        assertEinsum("bij,bjk->bkj", a, b, false); // no summed letter
        assertEinsum("bij,cjk->bik", a, b, false); // two summed letters (b and c are not shared)
        Tensor strided = randn(DType.FLOAT32, 2, 120, 150, 2).select(3, 0); // neither matrix stride is 1
        assertEinsum("bij,bjk->bik", a, strided, false);
        assertEinsum("bij,bjk->bik", a.to(DType.BFLOAT16), b.to(DType.BFLOAT16), false);
        Tensor none = randn(DType.FLOAT32, 0, 200, 120);
        Tensor noneRight = randn(DType.FLOAT32, 0, 120, 150);
        assertNull(OpenBlasBatch.einsum("bij,bjk->bik", none, noneRight, 1.0), "a batch of no matrices");
        assertArrayEquals(new long[] {0, 200, 150}, Tensor.einsum("bij,bjk->bik", none, noneRight).shape());
    }

    /**
     * Was: a space inside a term made the term's length match one more dim than it names, and the route multiplied
     * the operand's first slice along the dim no letter names (no exception). Spaces are skipped as libtorch skips
     * them, and subscripts other than letters are refused.
     */
    @Test
    void spacesAreSkippedAndSubscriptsOtherThanLettersAreRefused() {
        assumeTrue(OpenBlasBatch.available(), "this libtorch's BLAS is not the checked OpenBLAS");
        Tensor a = randn(DType.FLOAT32, 2, 200, 120);
        Tensor b = randn(DType.FLOAT32, 2, 120, 150);
        assertEinsum("b i j, b j k -> b i k", a, b, true);
        Tensor fourDims = randn(DType.FLOAT32, 2, 2, 128, 128).permute(1, 2, 3, 0);
        Tensor right = randn(DType.FLOAT32, 2, 128, 128);
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Tensor.einsum("bm k,bkn->bmn", fourDims, right));
        assertTrue(e.getMessage().contains("names 3 dims"), e.getMessage());
        assertNull(OpenBlasBatch.einsum("b_k,bkn->b_n", a, b, 1.0), "'_' is no subscript");
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Tensor.einsum("b_k,bkn->b_n", a, b));
        assertTrue(e.getMessage().contains("has '_'"), e.getMessage());
    }
}

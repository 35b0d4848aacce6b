package io.arrakis.suite;

import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.List;

/**
 * All-pairs composition scores the way TransformerLens computes them ({@code HookedTransformer.all_composition_scores}
 * → {@code utils.composition_scores} on {@code FactoredMatrix}), written with our tensor API so that it runs on the
 * same libtorch and BLAS as {@link io.arrakis.composer.CompositionScores}: the OV and QK factored matrices are
 * broadcast against each other ({@code [L, H, 1, 1, ...]} × {@code [1, 1, L, H, ...]}), the product is collapsed as
 * {@code FactoredMatrix.__matmul__} collapses it ({@code (W_V · (W_O W_Q)) · W_Kᵀ}: an {@code [..., d_model, d_head]}
 * factor per pair), and every Frobenius norm is {@code FactoredMatrix.norm()}: the singular values of A, of B and of
 * {@code diag(S_A) V_Aᵀ U_B diag(S_B)}. Scores of pairs with l1 ≥ l2 are zeroed afterwards, as TransformerLens masks
 * them.
 *
 * <p>The only departure: the broadcast is done one sender layer at a time ({@code senderLayers} of them), to bound
 * memory (TransformerLens materialises all of {@code [L, H, L, H, d_model, d_head]}, 4 GiB for GPT-2 small).
 */
public final class TlComposition {
    private TlComposition() {
    }

    /** Q-composition scores {@code [senderLayers, H, L, H]} of the first {@code senderLayers} sender layers. */
    public static Tensor qScores(HookedAutoModel model, int senderLayers) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor wq = model.W_Q();              // [L, H, d_model, d_head]
            Tensor wk = model.W_K(true);
            Tensor wv = model.W_V(true);
            Tensor wo = model.W_O();              // [L, H, d_head, d_model]
            long layers = wq.size(0);
            Tensor rightA = wq.unsqueeze(0).unsqueeze(0);                 // [1, 1, L, H, d_model, d_head]
            Tensor rightB = wk.transpose(-2, -1).unsqueeze(0).unsqueeze(0); // [1, 1, L, H, d_head, d_model]
            Tensor rightNorm = factoredNorm(rightA, rightB);              // [1, 1, L, H]
            Tensor[] rows = new Tensor[senderLayers];
            for (int l1 = 0; l1 < senderLayers; l1++) {
                Tensor leftA = wv.narrow(0, l1, 1).unsqueeze(2).unsqueeze(2); // [1, H, 1, 1, d_model, d_head]
                Tensor leftB = wo.narrow(0, l1, 1).unsqueeze(2).unsqueeze(2); // [1, H, 1, 1, d_head, d_model]
                Tensor leftNorm = factoredNorm(leftA, leftB);                  // [1, H, 1, 1]
                // left @ right = (left @ right.A) @ right.B; left @ right.A = FactoredMatrix(left.A, left.B @ right.A)
                // since rdim (d_model) > mdim (d_head); then @ right.B: rdim == mdim, so FactoredMatrix(AB, right.B)
                Tensor middle = leftB.matmul(rightA);                          // [1, H, L, H, d_head, d_head]
                Tensor ab = leftA.matmul(middle);                              // [1, H, L, H, d_model, d_head]
                Tensor compNorm = factoredNorm(ab, rightB);                    // [1, H, L, H]
                rows[l1] = compNorm.div(rightNorm).div(leftNorm);
            }
            Tensor scores = Tensor.cat(List.of(rows), 0);                     // [senderLayers, H, L, H]
            long heads = scores.size(1);
            boolean[] later = new boolean[(int) (senderLayers * layers)];
            for (int a = 0; a < senderLayers; a++) {
                for (int b = a + 1; b < layers; b++) {
                    later[(int) (a * layers + b)] = true;
                }
            }
            Tensor mask = Tensor.of(later, senderLayers, 1, layers, 1).expand(senderLayers, heads, layers, heads);
            return scope.keep(scores.where(mask, Tensor.zeros(scores.shape())));
        }
    }

    /** {@code FactoredMatrix(a, b).norm()}: the square root of the sum of squares of its singular values. */
    static Tensor factoredNorm(Tensor a, Tensor b) {
        List<Tensor> svdA = a.svd(); // U, S, Vh
        List<Tensor> svdB = b.svd();
        Tensor sa = svdA.get(1);
        Tensor sb = svdB.get(1);
        Tensor middle = sa.unsqueeze(-1).mul(svdA.get(2)).matmul(svdB.get(0)).mul(sb.unsqueeze(-2));
        List<Tensor> svdM = middle.svd();
        // FactoredMatrix.svd() also forms U = U_A U_M and Vh = V_B Vh_M, which norm() then ignores
        svdA.get(0).matmul(svdM.get(0));
        svdB.get(2).transpose(-2, -1).matmul(svdM.get(2));
        return svdM.get(1).pow(2).sum(-1, false).sqrt();
    }
}

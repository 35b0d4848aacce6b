package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every 2-d projection a model holds, fused ones included, is the transpose of a contiguous {@code [out, in]}
 * tensor, the layout linear layers take (and the only one oneDNN's takes), whether the checkpoint stores
 * {@code nn.Linear}'s {@code [out, in]} (llama) or GPT-2's {@code Conv1D} {@code [in, out]}, and for a model made
 * with random weights.
 */
class LinearLayoutTest {

    private static List<Tensor> projections(Weights w) {
        List<Tensor> all = new ArrayList<>();
        for (int i = 0; i < w.layers.size(); i++) {
            Weights.Layer l = w.layers.get(i);
            Weights.Fused f = w.fused.get(i);
            for (Tensor t : new Tensor[] {l.wq(), l.wk(), l.wv(), l.wo(), l.win(), l.wgate(), l.wout(), f.qkv(), f.gateUp()}) {
                if (t != null) {
                    all.add(t);
                }
            }
        }
        all.add(w.unembed);
        return all;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama", "gpt-neox", "random"})
    void projectionsAreTransposesOfContiguousRows(String family) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = family.equals("random")
                     ? HookedAutoModel.create(TinyConfigs.of("gpt2"), 1, DType.FLOAT32, Device.CPU)
                     : HookedAutoModel.fromPretrained(Fixtures.huggingFace(family), DType.FLOAT32, Device.CPU)) {
            List<Tensor> projections = projections(model.weights());
            assertFalse(projections.isEmpty());
            for (Tensor w : projections) {
                assertTrue(w.transpose(0, 1).isContiguous(), family + ": a projection of shape " + java.util.Arrays.toString(w.shape()) + " and strides "
                        + java.util.Arrays.toString(w.strides()) + " is not the transpose of contiguous rows");
            }
        }
    }
}

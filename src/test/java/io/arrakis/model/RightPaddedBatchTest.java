package io.arrakis.model;

import io.arrakis.model.family.Rope;
import io.arrakis.testing.Close;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prompts of different lengths in one batch, padded at the end with any id: under causal attention a position sees only
 * the ones before it, so each prompt's own positions give what its pass alone gives, in every family (sliding windows
 * and mixtures of experts included), as the README says; but a longrope model padded past its pretraining context,
 * which rotates every position the long way, as in transformers.
 */
class RightPaddedBatchTest {
    static Stream<String> families() {
        return HookedAutoConfig.supportedFamilies().stream();
    }

    @ParameterizedTest
    @MethodSource("families")
    void eachPromptOfARightPaddedBatchGetsItsOwnLogits(String family) {
        Path dir = Fixtures.huggingFace(family);
        long[] shorter = {5, 17, 3, 40, 11};
        long[] longer = {7, 2, 30, 19, 4, 4, 25, 1, 12};
        long[] padded = new long[2 * longer.length];
        System.arraycopy(shorter, 0, padded, 0, shorter.length);
        java.util.Arrays.fill(padded, shorter.length, longer.length, 0L);
        System.arraycopy(longer, 0, padded, longer.length, longer.length);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput batch = model.forward(Tensor.of(padded, 2, longer.length), CacheSpec.none());
             ModelOutput alone = model.forward(Tensor.of(shorter, 1, shorter.length), CacheSpec.none());
             ModelOutput other = model.forward(Tensor.of(longer, 1, longer.length), CacheSpec.none())) {
            // gemma4's fixture, its random weights ill-conditioned, amplifies the rounding that differs between
            // batch shapes: up to 3.4e-5 (transformers' own float32 logits lie up to 2.1e-5 from float64's)
            double tolerance = family.equals("gemma4") ? 5e-5 : 1e-5;
            Close.assertAllClose(other.logits().select(0, 0).toDoubleArray(),
                    batch.logits().select(0, 1).toDoubleArray(), tolerance, tolerance, family + ": the longer prompt");
            double[] own = alone.logits().select(0, 0).toDoubleArray();
            double[] inBatch = batch.logits().select(0, 0).narrow(0, 0, shorter.length).toDoubleArray();
            if (model.config().architecture().rope() != null
                    && model.config().architecture().rope().scaling() instanceof Rope.LongRope l
                    && l.originalMaxPositions() >= shorter.length && l.originalMaxPositions() < longer.length) {
                // as in transformers, padding past the pretraining context turns every position the long way
                assertTrue(Close.maxAbsDiff(own, inBatch) > 1e-3, family + ": longrope across its context");
                return;
            }
            Close.assertAllClose(own, inBatch, tolerance, tolerance, family + ": the shorter prompt's positions");
        }
    }
}

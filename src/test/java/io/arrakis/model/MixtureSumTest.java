package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * In bfloat16 a mixture sums a token's weighted expert outputs as {@code transformers} 5's default experts
 * ({@code grouped_mm}) do: at once, in float32, rounded to the model's dtype once, the float32 routing weights of
 * Mixtral promoting the weighted outputs, Qwen3-MoE's in the model's dtype. Its {@code eager} experts, which add them
 * one by one into a bfloat16 buffer, round apart from top-k 3 on. Fixtures of 8 experts, top 4, made by
 * {@code scripts/make-hf-moe-sum-fixtures.py} with transformers 5.17: our logits lie at most a tenth as far from the
 * default pass as the eager pass does (on the machine they were made on, they are the default pass's to the bit).
 */
class MixtureSumTest {

    @ParameterizedTest
    @ValueSource(strings = {"mixtral", "qwen3-moe"})
    void aTokensExpertsAreSummedAsTransformersDefaultExpertsSumThem(String family) {
        Path dir = Path.of("src/test/resources/fixtures-moe-sum", family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU)) {
            double[] expected = reference.tensor("bfloat16.logits").toDoubleArray();
            double[] eager = reference.tensor("bfloat16.eager.logits").toDoubleArray();
            double[] logits = model.runWithHooks(reference.tensor("input_ids")).to(DType.FLOAT64).toDoubleArray();
            double ours = 0;
            double theirs = 0;
            for (int i = 0; i < expected.length; i++) {
                ours += Math.abs(logits[i] - expected[i]);
                theirs += Math.abs(eager[i] - expected[i]);
            }
            assertTrue(theirs > 0, "the eager pass rounds apart");
            assertTrue(ours <= theirs / 10, family + ": mean distance " + ours / expected.length + ", the eager"
                    + " pass's " + theirs / expected.length);
        }
    }
}

package io.arrakis.model;

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
        double[] d = Fixtures.bfloat16Distances(Path.of("src/test/resources/fixtures-moe-sum", family),
                "bfloat16.eager.logits");
        assertTrue(d[1] > 0, "the eager pass rounds apart");
        assertTrue(d[0] <= d[1] / 10, family + ": mean distance " + d[0] + ", the eager pass's " + d[1]);
    }
}

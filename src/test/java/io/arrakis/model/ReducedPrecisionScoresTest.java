package io.arrakis.model;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * In bfloat16, gpt-neo and gpt-j compute attention scores and their softmax from queries and keys converted to float32
 * and convert the pattern back, as Hugging Face's {@code GPTNeoSelfAttention._attn} and {@code GPTJAttention._attn} do
 * ("to avoid overflow"); other families keep the model's dtype, as theirs do. Was: every family in the model's dtype.
 */
class ReducedPrecisionScoresTest {

    @ParameterizedTest
    @CsvSource({"gpt-neo, float32", "gpt-j, float32", "llama, bfloat16", "gpt2, bfloat16"})
    void scoresAreFloat32WhereTheFamilyComputesThemSo(String family, String scoresDtype) {
        HookedAutoConfig config = TinyConfigs.of(family);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 4, DType.BFLOAT16, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {1, 7, 42, 9, 3, 3, 0, 12}, 1, 8);
            try (ModelOutput out = model.forward(ids, CacheSpec.only("blocks.1.attn.hook_attn_scores",
                    "blocks.1.attn.hook_pattern"))) {
                assertEquals(scoresDtype, out.cache().get("blocks.1.attn.hook_attn_scores").dtype().toString());
                Tensor pattern = out.cache().get("blocks.1.attn.hook_pattern");
                assertEquals(DType.BFLOAT16, pattern.dtype(), "the pattern is in the model's dtype");
                double rowSum = pattern.to(DType.FLOAT32).sum(-1, false).select(0, 0).select(0, 0).select(0, 7).item();
                assertEquals(1.0, rowSum, 2e-2);
            }
            // the composer recomputes a head as the forward pass does, in the same dtypes
            AttentionComposer composer = new AttentionComposer(model);
            Tensor patched = composer.attentionPathPatching(ids, new Head(0, 1), new Head(1, 2));
            assertTrue(Double.isFinite(patched.to(DType.FLOAT32).abs().max().item()));
        }
    }

    /**
     * GPT-2's {@code reorder_and_upcast_attn} computes the scaled scores and their softmax in float32 from float32
     * queries and keys ({@code GPT2Attention._upcast_and_reordered_attn}). Was: accepted, and ignored.
     */
    @Test
    void gpt2ReorderAndUpcastAttnComputesScoresInFloat32() {
        HookedAutoConfig config = TinyConfigs.of("gpt2").with(java.util.Map.of("reorder_and_upcast_attn", true));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 4, DType.BFLOAT16, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {1, 7, 42, 9, 3, 3, 0, 12}, 1, 8);
            try (ModelOutput out = model.forward(ids, CacheSpec.only("blocks.1.attn.hook_q", "blocks.1.attn.hook_k",
                    "blocks.1.attn.hook_attn_scores"))) {
                Tensor scores = out.cache().get("blocks.1.attn.hook_attn_scores");
                assertEquals(DType.FLOAT32, scores.dtype());
                Tensor q = out.cache().get("blocks.1.attn.hook_q").to(DType.FLOAT32);
                Tensor k = out.cache().get("blocks.1.attn.hook_k").to(DType.FLOAT32);
                Tensor expected = Tensor.einsum("bqhd,bkhd->bhqk", q, k).mul(1 / Math.sqrt(config.dHead()));
                // the last query sees every key: no -inf in its row
                assertTrue(scores.select(2, 7).allclose(expected.select(2, 7), 1e-5, 1e-6));
            }
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPT-BigCode's defaults, {@code GPTBigCodeConfig}'s, both layouts of its fused projection, the softmax settings that
 * change nothing and its refusals. Its multi-query forward pass is checked against {@link GptBigCodeReference} by
 * {@link ModelParityTest} and every family-generic test; here, the same reference without multi-query attention, and
 * with unscaled scores, ReLU and an untied head.
 */
class GptBigCodeTest {

    @Test
    void defaultsAreGptBigCodeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("gpt_bigcode");
        Architecture a = c.architecture();
        assertEquals("gpt-bigcode", c.family());
        assertEquals(Architecture.Norm.LAYER_NORM, a.norm());
        assertEquals(Architecture.Activation.GELU_TANH, a.activationFunction());
        assertTrue(a.qkvBias() && a.outBias() && a.mlpBias() && a.tiedEmbeddings() && a.scaleAttention());
        assertFalse(c.rotary() || a.gatedMlp() || a.parallelResidual());
        assertEquals(1, c.nKvHeads(), "multi_query");
        assertEquals(64, c.dHead());
        assertEquals(3072, c.dMlp(), "n_inner null: 4 x n_embd");
        assertEquals(1024, c.maxPositions());
        assertEquals(1e-5, c.normEps());
        // the tied 50257 x 768 embedding and 1024 x 768 positions; per layer two LayerNorms, c_attn 768 -> 768 + 2 x 64
        // with its bias, c_proj 768 x 768, c_fc and the MLP's c_proj 768 x 3072, with their biases; the final norm
        assertEquals(50257L * 768 + 1024L * 768 + 12L * (4 * 768 + 768L * 896 + 896 + 768L * 768 + 768
                + 2L * 768 * 3072 + 3072 + 768) + 2 * 768, c.parameterCount());
    }

    @Test
    void cAttnHoldsOneKeyAndValueHeadWithMultiQueryAttentionAndEveryHeadsWithout() {
        HookedAutoConfig tiny = TinyConfigs.of("gpt-bigcode");
        assertArrayEquals(new long[] {32 + 2 * 8, 32},
                tiny.checkpoint().tensors().get("transformer.h.0.attn.c_attn.weight").shape());
        HookedAutoConfig full = tiny.with("multi_query", false);
        assertEquals(4, full.nKvHeads());
        assertArrayEquals(new long[] {3 * 32, 32},
                full.checkpoint().tensors().get("transformer.h.0.attn.c_attn.weight").shape());
    }

    @Test
    void withoutMultiQueryAttentionEveryHookMatchesItsReference(@TempDir Path dir) throws Exception {
        GptBigCodeReference.write(dir, GptBigCodeReference.Variant.EVERY_HEAD);
        ModelParityTest.assertParity(dir, "gpt-bigcode without multi_query", 2 * 2 + 2);
    }

    @Test
    void unscaledScoresReluAndAnUntiedHeadMatchTheirReference(@TempDir Path dir) throws Exception {
        GptBigCodeReference.write(dir, GptBigCodeReference.Variant.UNSCALED_RELU_UNTIED);
        ModelParityTest.assertParity(dir, "gpt-bigcode, scale_attn_weights false, relu, untied", 2 * 2 + 2);
    }

    @Test
    void theSoftmaxSettingsChangeNothing() {
        HookedAutoConfig tiny = TinyConfigs.of("gpt-bigcode");
        // transformers 5.17's eager attention computes its softmax in float32 and reads neither
        assertEquals(tiny.architecture(), tiny.with(Map.of("attention_softmax_in_fp32", false,
                "scale_attention_softmax_in_fp32", false)).architecture());
    }

    @Test
    void crossAttentionAndHeadsNotDividingTheWidthAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("gpt-bigcode");
        String m = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("add_cross_attention", true).architecture()).getMessage();
        assertTrue(m.startsWith("add_cross_attention = true"), m);
        m = assertThrows(IllegalArgumentException.class, () -> tiny.with("n_head", 5).architecture()).getMessage();
        assertTrue(m.startsWith("n_head = 5") && m.contains("n_embd = 32"), m);
    }
}

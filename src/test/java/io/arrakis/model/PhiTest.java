package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Phi (Phi-1, 1.5, 2): PhiConfig's defaults, the fixture's settings and the refused {@code qk_layernorm} (the forward
 * pass itself is checked against Hugging Face by {@link ModelParityTest}).
 */
class PhiTest {

    @Test
    void defaultsArePhi1() {
        HookedAutoConfig c = HookedAutoConfig.of("phi");
        assertEquals(0.5, c.raw().get("partial_rotary_factor"));
        assertEquals(32, c.rotaryDim(), "half of d_head 64");
        assertEquals("gelu_new", c.activation());
        assertTrue(c.qkvBias() && c.outBias() && c.mlpBias());
        assertFalse(c.tiedEmbeddings() || c.gatedMlp() || c.rmsNorm());
        // embed_tokens and lm_head 2 x 51200 x 2048 with lm_head's bias 51200; per layer q/k/v/dense 4 x (2048² +
        // 2048), fc1/fc2 2 x 2048 x 8192 + 8192 + 2048, input_layernorm 2 x 2048; final_layernorm 2 x 2048
        assertEquals(2L * 51200 * 2048 + 51200 + 24L * (4L * (2048 * 2048 + 2048) + 2L * 2048 * 8192 + 8192 + 2048
                + 4096) + 4096, c.parameterCount());
        assertEquals(1_418_270_720L, c.parameterCount());
    }

    @Test
    void theFixtureRunsAttentionAndMlpOnOneLayerNorm() {
        HookedAutoConfig c = HookedAutoConfig.fromJson(Fixtures.huggingFace("phi").resolve("config.json"));
        Architecture a = c.architecture();
        assertTrue(a.parallelResidual() && a.sharedNorm());
        assertFalse(a.rotaryInterleaved());
        assertEquals(2, c.nKvHeads());
        assertEquals(8, c.rotaryDim(), "0.5 of d_head 16");
        assertFalse(HookedAutoModel.hookNamesOf(c).contains("blocks.0.hook_resid_mid"));
    }

    @Test
    void qkLayerNormIsRefused() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> HookedAutoConfig.of("phi").with(Map.of("qk_layernorm", true))).getMessage();
        assertTrue(m.contains("qk_layernorm") && m.contains("true"), m);
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * VaultGemma's defaults, Gemma 2's, and its blocks' two norms. Its forward pass is checked against
 * {@link VaultGemmaReference} by {@link ModelParityTest} and every family-generic test.
 */
class VaultGemmaTest {

    @Test
    void defaultsAreGemma2sWithoutTheOutputNorms() {
        HookedAutoConfig c = HookedAutoConfig.of("vaultgemma");
        assertFalse(c.raw().containsKey("use_bidirectional_attention"), "VaultGemmaConfig removes it");
        // a file's stray key is kept and ignored, as VaultGemma's attention is always causal
        assertTrue(HookedAutoConfig.fromJsonText(
                "{\"model_type\": \"vaultgemma\", \"use_bidirectional_attention\": true}").architecture().inputNorms());
        Architecture a = c.architecture();
        assertTrue(a.inputNorms() && a.tiedEmbeddings());
        assertFalse(a.outputNorms());
        assertEquals(Architecture.Norm.RMS_NORM_PLUS_ONE, a.norm());
        assertEquals(50.0, a.attentionSoftcap());
        assertEquals(30.0, a.logitSoftcap());
        assertEquals(256.0, a.attentionScalar());
        assertEquals(4096, a.attentionWindow(0), "every other layer slides, from the first");
        assertEquals(0, a.attentionWindow(1));
        // tied 256000 x 2304 embedding; per layer q and o 2304 x 2048, k and v 2304 x 1024, the gated MLP
        // 3 x 2304 x 9216, two norms; the final norm
        assertEquals(256000L * 2304 + 26L * (2L * 2304 * 2048 + 2L * 2304 * 1024 + 3L * 2304 * 9216 + 2 * 2304) + 2304,
                c.parameterCount());
        assertEquals(2_614_341_888L - 26L * 2 * 2304, c.parameterCount(), "Gemma 2 2B less its two output norms");
    }

    @Test
    void theMlpsInputNormIsPreFeedforwardLayernorm() {
        Set<String> names = TinyConfigs.of("vaultgemma").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.input_layernorm.weight",
                "model.layers.0.pre_feedforward_layernorm.weight")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("post_attention_layernorm")
                || n.contains("post_feedforward_layernorm")), names.toString());
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FlexOlmo's defaults, {@code FlexOlmoConfig}'s, and its checkpoint's names. Its forward pass is checked against
 * {@link FlexOlmoReference} (OLMo 2's output norms and query and key norms, OLMoE's routing) by
 * {@link ModelParityTest} and every family-generic test.
 */
class FlexOlmoTest {

    @Test
    void defaultsAreFlexOlmoConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("flex_olmo");
        assertEquals("flex-olmo", c.family());
        assertEquals(500000.0, c.ropeTheta());
        assertEquals(1e-6, c.normEps());
        assertEquals(32, c.nKvHeads(), "num_key_value_heads null: every head its own");
        Architecture a = c.architecture();
        assertEquals(Architecture.QkNorm.WHOLE, a.qkNorm());
        assertTrue(a.outputNorms());
        // Olmo2RMSNorm multiplies by its weight before the cast back, and the rotary embedding keeps float32: what
        // the double-precision reference cannot tell apart, the flags that HuggingFaceRoundingTest checks for olmo2
        assertEquals(Architecture.Norm.RMS_NORM_WEIGHT_IN_FLOAT32, a.norm());
        assertEquals(Architecture.RotaryPrecision.FLOAT32, a.rotaryPrecision());
        MixtureOfExperts moe = a.moe();
        assertEquals(7, moe.experts());
        assertEquals(5, moe.topK());
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K_AS_IS, moe.routing(), "norm_topk_prob false");
        assertFalse(moe.float32Weights() || moe.float32Logits() || moe.hasSharedExpert());
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K, HookedAutoConfig.of("flex_olmo")
                .with(Map.of("norm_topk_prob", true)).architecture().moe().routing());
        // untied 100352 x 4096 embedding and head; per layer q, k, v and o 4096 x 4096, the query and key norms of
        // 4096, the router 7 x 4096, seven experts of 3 x 4096 x 11008, the two output norms; the final norm
        assertEquals(2L * 100352 * 4096 + 32L * (4L * 4096 * 4096 + 2 * 4096 + 7 * 4096 + 7 * 3L * 4096 * 11008
                + 2 * 4096) + 4096, c.parameterCount());
    }

    @Test
    void theCheckpointHasOlmo2sNormsAndOlmoesExperts() {
        Set<String> names = TinyConfigs.of("flex-olmo").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.self_attn.q_norm.weight",
                "model.layers.0.post_attention_layernorm.weight", "model.layers.0.post_feedforward_layernorm.weight",
                "model.layers.0.mlp.gate.weight", "model.layers.0.mlp.experts.0.gate_proj.weight")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("input_layernorm")), names.toString());
    }
}

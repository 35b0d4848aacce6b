package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.MixtureOfExperts;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GLM-4.7-Flash's defaults, {@code Glm4MoeLiteConfig}'s, with its published 30B parameters; its dense layers from
 * {@code mlp_layer_types} and the published {@code first_k_dense_replace}; its refusals. Its forward pass is checked
 * against {@link DeepseekV3Reference}'s GLM-4.7-Flash model by {@link ModelParityTest} and every family-generic test.
 */
class Glm4MoeLiteTest {

    @Test
    void defaultsAreGlm4MoeLiteConfigsWithItsPublished30BillionParameters() {
        HookedAutoConfig c = HookedAutoConfig.of("glm4_moe_lite");
        Architecture a = c.architecture();
        assertEquals(new LatentAttention(768, 512, 192, 64, 256, true), a.latentAttention());
        assertEquals(256, c.dHead());
        assertEquals(256, c.dHeadV());
        assertEquals(64, a.rope(0).dim());
        assertEquals(1e-5, a.normEps());
        MixtureOfExperts moe = a.moe();
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 1.8), moe.grouped());
        assertEquals(1536, moe.sharedWidth());
        assertEquals(10240, moe.denseWidth());
        assertFalse(moe.sparse(0));
        assertTrue(moe.sparse(1) && moe.sparse(46));
        long d = 2048;
        long attention = d * 768 + 768 + 768 * 20 * 256 + d * (512 + 64) + 512 + 512 * 20 * (192 + 256)
                + 20 * 256 * d + 2 * d;
        long sparse = 64 * 3 * d * 1536 + 3 * d * 1536 + 64 * d + 64;
        long count = 2 * 154880 * d + 47 * attention + 3 * d * 10240 + 46 * sparse + d;
        assertEquals(count, c.parameterCount());
        assertEquals(30.0, count / 1e9, 0.1, "GLM-4.7-Flash's 30B, its prediction layer left out");
    }

    @Test
    void theDenseLayersAreMlpLayerTypesAndTheFirstKDenseReplaceOfPublishedFilesMustAgree() {
        HookedAutoConfig tiny = TinyConfigs.of("glm4-moe-lite");
        MixtureOfExperts moe = tiny.with("mlp_layer_types", List.of("sparse", "dense")).architecture().moe();
        assertTrue(moe.sparse(0) && !moe.sparse(1));
        assertEquals(tiny.architecture(), tiny.with(Map.of("first_k_dense_replace", 1, "num_nextn_predict_layers", 1,
                "topk_method", "noaux_tc", "partial_rotary_factor", 1.0)).architecture(), "GLM-4.7-Flash's own keys");
        Map<String, Object> refused = Map.of("first_k_dense_replace", 2, "topk_method", "greedy",
                "partial_rotary_factor", 0.5, "mlp_layer_types", List.of("dense", "moe"));
        for (Map.Entry<String, Object> e : refused.entrySet()) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(e.getKey(), e.getValue()).architecture(), e.getKey()).getMessage();
            assertTrue(m.startsWith(e.getKey() + " = "), m);
        }
        assertEquals(List.of("model.layers.2."), tiny.checkpoint().unread(), "the prediction layer after the last");
    }
}

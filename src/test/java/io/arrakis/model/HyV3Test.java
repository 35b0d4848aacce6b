package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hy3's defaults, {@code HYV3Config}'s, its routing, refusals and checkpoint names. Its forward pass is checked against
 * {@link Glm4MoeReference}'s {@code HY_V3} kind by {@link ModelParityTest}.
 */
class HyV3Test {

    @Test
    void defaultsAreHyV3Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("hy_v3");
        assertEquals("hy-v3", c.family());
        Architecture a = c.architecture();
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertEquals(Architecture.Norm.RMS_NORM, a.norm());
        assertEquals(1e-5, a.normEps());
        assertEquals(131072, a.maxPositions());
        assertEquals(64, HookedAutoConfig.of("hy_v3").with("num_local_experts", 64).numExperts(), "an alias");
        assertEquals(11_158_840.0, a.rope(0).theta(), "HYV3Config's default_theta");
        assertFalse(a.tiedEmbeddings() || a.qkvBias() || a.outBias());
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SIGMOID_GROUPED, moe.routing());
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 2.826), moe.grouped());
        assertTrue(moe.float32Logits() && moe.float32Weights(), "the router in float32, its weights kept so");
        assertEquals(List.of(192, 8, 1536), List.of(moe.experts(), moe.topK(), moe.sharedWidth()));
        assertEquals(List.of(false, true, true), moe.sparseLayers().subList(0, 3), "the first layer dense");
        assertEquals(13312, moe.denseWidth());
        // per layer q and o 4096 x 8192, k and v 4096 x 1024, the query and key norms and two norms; layer 0's dense
        // MLP, the other 79 layers' router and bias, 192 experts and a shared one of 3 x 4096 x 1536; embedding, head
        // and final norm
        long attention = 2L * 4096 * 8192 + 2L * 4096 * 1024 + 2 * 128 + 2 * 4096;
        long sparse = 192L * 4096 + 192 + 193L * 3 * 4096 * 1536;
        assertEquals(80 * attention + 3L * 4096 * 13312 + 79 * sparse + 2L * 120832 * 4096 + 4096,
                c.parameterCount());
    }

    @Test
    void denseLayersFollowMlpLayerTypesAndUnimplementedSettingsAreRefused() {
        HookedAutoConfig c = HookedAutoConfig.of("hy_v3").with(Map.of("num_hidden_layers", 3,
                "mlp_layer_types", List.of("sparse", "dense", "sparse")));
        assertEquals(List.of(true, false, true), c.architecture().moe().sparseLayers());
        for (Map.Entry<String, ?> bad : List.<Map.Entry<String, ?>>of(Map.entry("mlp_bias", true),
                Map.entry("num_experts_per_tok", 193), Map.entry("num_shared_experts", 0),
                Map.entry("mlp_layer_types", List.of("dense")))) {
            String m = assertThrows(IllegalArgumentException.class, () -> c.with(bad.getKey(), bad.getValue())
                    .architecture(), bad.toString()).getMessage();
            assertTrue(m.contains(bad.getKey()), m);
        }
        assertEquals(3 * 1536, c.with("num_shared_experts", 3).architecture().moe().sharedWidth());
    }

    @Test
    void theCheckpointHasThePublishedNames() {
        HookedAutoConfig c = TinyConfigs.of("hy-v3").with("num_hidden_layers", 2);
        Set<String> names = c.checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.mlp.gate_proj.weight",
                "model.layers.1.mlp.router.gate.weight", "model.layers.1.mlp.expert_bias",
                "model.layers.1.mlp.experts.0.up_proj.weight",
                "model.layers.1.mlp.shared_mlp.down_proj.weight", "model.layers.1.self_attn.q_norm.weight")),
                names.toString());
        assertTrue(c.checkpoint().unread().contains("model.layers.2."), "the prediction layer after the last");
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * HunYuan-MoE's defaults, {@code HunYuanMoEV1Config}'s, its per-layer {@code moe_topk}, its checkpoint's names, and
 * its router held in float32. Its forward pass is checked against {@link HunYuanMoeReference} (the alpha's base,
 * norms after the rotation, renormalised top-k routing, the shared MLP) by {@link ModelParityTest} and every
 * family-generic test.
 */
class HunYuanMoeTest {

    @Test
    void defaultsAreHunYuanMoEV1Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("hunyuan_v1_moe");
        assertEquals("hunyuan-v1-moe", c.family());
        assertEquals(128, c.dHead(), "head_dim, which the class leaves null, defaults to the published models' 128");
        assertEquals(32, c.nKvHeads());
        Architecture a = c.architecture();
        assertTrue(a.qkNormAfterRotary() && a.qkNorm() == Architecture.QkNorm.PER_HEAD);
        MixtureOfExperts moe = a.moe();
        assertEquals(1, moe.experts());
        assertEquals(1, moe.topK());
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K, moe.routing());
        assertTrue(moe.float32Router() && moe.float32Logits() && moe.float32Weights());
        assertEquals(11008, moe.sharedWidth(), "the shared MLP is intermediate_size wide");
        assertTrue(moe.hasSharedExpert() && !moe.sharedGated());
        // untied 290943 x 4096 embedding and head; per layer q, k, v and o 4096 x 4096, the router 1 x 4096, one
        // expert and the shared MLP of 3 x 4096 x 11008 each, two norms and the query and key norms of 128; the final
        // norm
        assertEquals(2L * 290943 * 4096 + 32L * (4L * 4096 * 4096 + 4096 + 2 * 3L * 4096 * 11008 + 2 * 4096 + 2 * 128)
                + 4096, c.parameterCount());
    }

    @Test
    void moeTopkMayBeOnePerLayerAllTheSame() {
        HookedAutoConfig c = HookedAutoConfig.of("hunyuan_v1_moe").with(Map.of("num_hidden_layers", 3,
                "num_experts", 8, "moe_topk", List.of(2, 2, 2)));
        assertEquals(2, c.architecture().moe().topK());
        assertEquals(2, HookedAutoConfig.of("hunyuan_v1_moe").with(Map.of("num_experts", 8, "num_experts_per_tok", 2))
                .architecture().moe().topK(), "num_experts_per_tok is moe_topk");
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("hunyuan_v1_moe")
                .with(Map.of("num_hidden_layers", 3, "num_experts", 8, "moe_topk", List.of(2, 4, 2))).architecture())
                .getMessage();
        assertTrue(m.contains("moe_topk") && m.contains("differs between layers"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("hunyuan_v1_moe")
                .with(Map.of("num_hidden_layers", 3, "num_experts", 8, "moe_topk", List.of(2, 2))).architecture())
                .getMessage();
        assertTrue(m.contains("moe_topk") && m.contains("an entry for each layer"), m);
        assertEquals(4, HookedAutoConfig.of("hunyuan_v1_moe").with(Map.of("num_experts", 8, "num_hidden_layers", 4,
                "moe_topk", List.of(4, 4, 4, 4, 2, 1))).with("num_hidden_layers", 4).architecture().moe().topK(),
                "entries beyond the last layer are not read, as transformers reads a layer's own");
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("hunyuan_v1_moe")
                .with(Map.of("num_experts", 8, "moe_topk", 9)).architecture()).getMessage();
        assertTrue(m.contains("moe_topk") && m.contains("exceeds num_experts"), m);
        for (Object bad : new Object[] {0, List.of(), List.of(2, "2"), 1.5}) {
            m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("hunyuan_v1_moe")
                    .with("moe_topk", bad)).getMessage();
            assertTrue(m.contains("moe_topk") && m.contains("positive integer"), m);
        }
    }

    @Test
    void theCheckpointNamesTheRouterWgAndTheSharedMlp() {
        Set<String> names = TinyConfigs.of("hunyuan-v1-moe").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.mlp.gate.wg.weight",
                "model.layers.0.mlp.shared_mlp.gate_proj.weight", "model.layers.0.mlp.shared_mlp.up_proj.weight",
                "model.layers.0.mlp.shared_mlp.down_proj.weight", "model.layers.0.mlp.experts.0.gate_proj.weight",
                "model.layers.0.self_attn.query_layernorm.weight", "model.layers.0.self_attn.key_layernorm.weight")),
                names.toString());
    }

    /**
     * In a bfloat16 model the router keeps the float32 values the checkpoint stores, as transformers' float32
     * {@code gate.wg} does, and its logits are the float32 product of the bfloat16 token made float32 and that weight.
     */
    @Test
    void aBfloat16ModelHoldsTheRouterInFloat32() {
        Path dir = DerivedFixtures.of("hunyuan-v1-moe").orElseThrow(); // a float32 checkpoint
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel wide = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU);
             HookedAutoModel narrow = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = narrow.forward(Tensor.of(new long[] {3, 9, 27, 17, 5}, 1, 5), CacheSpec.only(
                     "blocks.1.ln2.hook_normalized", "blocks.1.mlp.hook_router_logits",
                     "blocks.1.mlp.hook_expert_weights"))) {
            Tensor router = narrow.weights().layers.get(1).wrouter();
            assertEquals(DType.FLOAT32, router.dtype());
            assertTrue(router.allclose(wide.weights().layers.get(1).wrouter(), 0, 0),
                    "the stored float32 values, unrounded");
            assertEquals(DType.BFLOAT16, narrow.weights().layers.get(1).wq().dtype());
            float[] x = out.cache().get("blocks.1.ln2.hook_normalized").toFloatArray();
            float[] w = router.contiguous().toFloatArray(); // [d_model, experts]
            Tensor logits = out.cache().get("blocks.1.mlp.hook_router_logits");
            assertEquals(DType.FLOAT32, logits.dtype());
            float[] got = logits.toFloatArray();
            int d = narrow.config().dModel();
            int experts = narrow.config().numExperts();
            for (int t = 0; t < 5; t++) {
                for (int e = 0; e < experts; e++) {
                    double expected = 0;
                    for (int i = 0; i < d; i++) {
                        expected += (double) x[t * d + i] * w[i * experts + e];
                    }
                    assertEquals(expected, got[t * experts + e], 1e-5, "token " + t + ", expert " + e);
                }
            }
            assertEquals(DType.FLOAT32, out.cache().get("blocks.1.mlp.hook_expert_weights").dtype());
        }
        // transformers' gate.wg is float32 in a float64 model too, its logits made in float32
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel double64 = HookedAutoModel.fromPretrained(dir, DType.FLOAT64, Device.CPU);
             ModelOutput out = double64.forward(Tensor.of(new long[] {3, 9, 27}, 1, 3), CacheSpec.only(
                     "blocks.1.mlp.hook_router_logits"))) {
            assertEquals(DType.FLOAT32, double64.weights().layers.get(1).wrouter().dtype());
            assertEquals(DType.FLOAT64, double64.weights().layers.get(1).wq().dtype());
            assertEquals(DType.FLOAT32, out.cache().get("blocks.1.mlp.hook_router_logits").dtype());
        }
    }
}

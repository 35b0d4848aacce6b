package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.QueryTemperature;
import io.arrakis.model.family.Rope;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mistral 4's defaults ({@code Mistral4Config}'s, with its YaRN rope and Llama 4 temperature), its rope refusals and
 * its routing in the model's dtype. Its forward pass is checked against {@link DeepseekV3Reference}'s Mistral 4 model
 * (latent attention, the temperature, grouped softmax routing) by {@link ModelParityTest}, and as Mistral 3's text
 * model by {@link MultimodalCheckpointTest}.
 */
class Mistral4Test {

    @Test
    void defaultsAreMistral4Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("mistral4");
        Architecture a = c.architecture();
        assertEquals(new LatentAttention(1024, 256, 64, 64, 128, true), a.latentAttention());
        Rope rope = a.rope();
        assertEquals(64, rope.dim(), "partial_rotary_factor 64 / 128 of the query heads' 128 features");
        Rope.Yarn yarn = assertInstanceOf(Rope.Yarn.class, rope.scaling());
        assertEquals(128.0, yarn.factor());
        assertEquals(8192, yarn.originalMaxPositions());
        assertEquals(new QueryTemperature(0.1, 8192), a.queryTemperature());
        double mscale = 0.1 * Math.log(128) + 1;
        assertEquals(mscale * mscale, a.attentionMultiplier(), 1e-12, "yarn_apply_mscale's factor on the scores");
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_GROUPED_IN_MODEL_DTYPE, moe.routing());
        assertEquals(128, moe.experts());
        assertEquals(4, moe.topK());
        assertEquals(2048, moe.sharedWidth());
        assertTrue(moe.grouped().normalized());
        assertFalse(moe.float32Logits() || moe.float32Weights());
        assertTrue(moe.sparse(0), "first_k_dense_replace 0: every layer sparse");
    }

    @Test
    void theRopeMustRotateTheRopeFeaturesAndNotBeTheDefaultType() {
        Map<String, Object> yarn = Map.of("rope_type", "yarn", "factor", 2.0, "original_max_position_embeddings", 8,
                "llama_4_scaling_beta", 0.1, "partial_rotary_factor", 1.0);
        String m = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.of("mistral4")
                .with("rope_parameters", yarn).architecture()).getMessage();
        assertTrue(m.contains("partial_rotary_factor") && m.contains("qk_rope_head_dim"), m);
        HookedAutoConfig tiny = TinyConfigs.of("mistral4");
        double fraction = (double) tiny.architecture().latentAttention().ropeDim()
                / tiny.architecture().latentAttention().queryKeyDim();
        m = assertThrows(IllegalArgumentException.class, () -> tiny.with("rope_parameters", Map.of(
                "rope_type", "default", "llama_4_scaling_beta", 0.1, "original_max_position_embeddings", 8,
                "partial_rotary_factor", fraction)).architecture()).getMessage();
        assertTrue(m.contains("rope_type") && m.contains("whole head"), m);
        m = assertThrows(IllegalArgumentException.class, () -> tiny.with("rope_parameters", Map.of(
                "rope_type", "yarn", "factor", 2.0, "partial_rotary_factor", fraction)).architecture()).getMessage();
        assertTrue(m.contains("llama_4_scaling_beta"), m);
    }

    /** The router's logits, scores and weights stay in the model's dtype, as Mistral4TopkRouter computes them. */
    @Test
    void aBfloat16ModelRoutesInBfloat16() {
        HookedAutoConfig config = TinyConfigs.of("mistral4");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {3, 9, 27, 17, 5}, 1, 5), CacheSpec.only(
                     "blocks.1.mlp.hook_router_logits", "blocks.1.mlp.hook_expert_weights"))) {
            assertEquals(DType.BFLOAT16, out.cache().get("blocks.1.mlp.hook_router_logits").dtype());
            Tensor weights = out.cache().get("blocks.1.mlp.hook_expert_weights");
            assertEquals(DType.BFLOAT16, weights.dtype());
            float[] w = weights.toFloatArray();
            for (int t = 0; t < w.length; t += config.expertsPerToken()) {
                double sum = 0;
                for (int j = 0; j < config.expertsPerToken(); j++) {
                    sum += w[t + j];
                }
                assertEquals(1.0, sum, 0.02, "normalised weights times routed_scaling_factor 1");
            }
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepSeek-V3's defaults, {@code DeepseekV3Config}'s, with their published parameter count; its queries taken by
 * {@code q_proj} without biases (against {@link DeepseekV3Reference}), and their per-head weights; the scores' YaRN
 * factor; the per-head weights latent attention has and has not; its refusals. Its forward pass with queries from their
 * latent is checked against {@link DeepseekV3Reference} by {@link ModelParityTest} and every family-generic test.
 */
class DeepseekV3Test {

    @Test
    void defaultsAreDeepseekV3ConfigsWithItsPublished671BillionParameters() {
        HookedAutoConfig c = HookedAutoConfig.of("deepseek_v3");
        Architecture a = c.architecture();
        assertEquals(new LatentAttention(1536, 512, 128, 64, 128, true), a.latentAttention());
        assertEquals(192, c.dHead(), "a query or key head: 128 features without position, 64 rotated");
        assertEquals(128, c.dHeadV());
        assertEquals(128, a.nKvHeads());
        assertEquals(64, a.rope(0).dim());
        assertEquals(10000.0, a.rope(0).theta());
        assertEquals(1.0, a.attentionMultiplier());
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SIGMOID_GROUPED, moe.routing());
        assertEquals(new MixtureOfExperts.Grouped(8, 4, true, 2.5), moe.grouped());
        assertEquals(2048, moe.sharedWidth());
        assertEquals(18432, moe.denseWidth());
        assertFalse(moe.sparse(2));
        assertTrue(moe.sparse(3) && moe.sparse(60));
        long d = 7168;
        long attention = d * 1536 + 1536 + 1536 * 128 * 192 + d * (512 + 64) + 512 + 512 * 128 * (128 + 128)
                + 128 * 128 * d + 2 * d;
        long sparse = 256 * 3 * d * 2048 + 3 * d * 2048 + 256 * d + 256;
        long count = 2 * 129280 * d + 61 * attention + 3 * 3 * d * 18432 + 58 * sparse + d;
        assertEquals(count, c.parameterCount());
        assertEquals(671.0, count / 1e9, 0.05, "DeepSeek-V3's 671B, its prediction layer left out");
    }

    @Test
    void queriesByQProjMatchTheReference(@TempDir Path dir) throws Exception {
        DeepseekV3Reference.write(dir, DeepseekV3Reference.Kind.DIRECT_QUERIES);
        ModelParityTest.assertParity(dir, "deepseek-v3 with q_proj", 3 * 9 + 2);
    }

    @Test
    void aYarnScalingMultipliesTheScoresByItsMscaleSquared() {
        Map<String, Object> yarn = Map.of("rope_type", "yarn", "factor", 40.0, "mscale", 0.8, "mscale_all_dim", 0.6,
                "original_max_position_embeddings", 16, "beta_fast", 32, "beta_slow", 1);
        HookedAutoConfig config = TinyConfigs.of("deepseek-v3").with("rope_scaling", yarn);
        double mscale = 0.1 * 0.6 * Math.log(40) + 1; // mscale_all_dim's
        assertEquals(mscale * mscale, config.architecture().attentionMultiplier(), 1e-12);
        assertEquals(1.0, config.with("rope_scaling", Map.of("rope_type", "yarn", "factor", 40.0,
                "original_max_position_embeddings", 16)).architecture().attentionMultiplier(), "no mscale_all_dim");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.FLOAT64, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4, 1, 5, 9}, 1, 6))) {
            Tensor q = out.cache().get("blocks.1.attn.hook_rot_q");
            Tensor k = out.cache().get("blocks.1.attn.hook_rot_k");
            Tensor expected = Tensor.einsum("bqhd,bkhd->bhqk", q, k).mul(mscale * mscale / Math.sqrt(10));
            Tensor scores = out.cache().get("blocks.1.attn.hook_attn_scores");
            for (int i = 0; i < 6; i++) {
                for (int j = 0; j <= i; j++) {
                    Tensor actual = scores.select(2, i).select(2, j);
                    assertTrue(actual.allclose(expected.select(2, i).select(2, j), 1e-12, 1e-12), i + ", " + j);
                }
            }
        }
    }

    @Test
    void queriesByQProjHavePerHeadWeights() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("deepseek-v3").with("q_lora_rank", null),
                     3, DType.FLOAT64, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4}, 1, 3))) {
            Tensor wq = model.W_Q();
            assertArrayEquals(new long[] {2, 4, 32, 10}, wq.shape());
            Tensor expected = Tensor.einsum("bpd,hde->bphe", out.cache().get("blocks.1.ln1.hook_normalized"),
                    wq.select(0, 1));
            assertTrue(out.cache().get("blocks.1.attn.hook_q").allclose(expected, 1e-12, 1e-12));
            assertEquals(0.0, model.b_Q(1).abs().max().item(), "q_proj has no bias");
            assertThrows(UnsupportedOperationException.class, () -> model.W_K(false));
        }
    }

    @Test
    void latentAttentionHasOutputWeightsPerHeadButNoQueryKeyOrValueWeights() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("deepseek-v3"), 3, DType.FLOAT32,
                     Device.CPU)) {
            assertArrayEquals(new long[] {2, 4, 6, 32}, model.W_O().shape(), "value heads of v_head_dim 6");
            assertArrayEquals(new long[] {4, 6, 32}, model.W_O(1).shape());
            Map<String, Supplier<Tensor>> refused = new HashMap<>(Map.of("W_Q", model::W_Q,
                    "W_K", () -> model.W_K(true), "W_V", () -> model.W_V(false), "b_Q", model::b_Q,
                    "b_K", () -> model.b_K(false), "b_V", () -> model.b_V(true), "W_Q(0)", () -> model.W_Q(0)));
            for (Map.Entry<String, Supplier<Tensor>> e : refused.entrySet()) {
                String m = assertThrows(UnsupportedOperationException.class, () -> e.getValue().get(), e.getKey())
                        .getMessage();
                assertTrue(m.contains("multi-head latent attention"), m);
            }
            try (ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4}, 1, 3))) {
                assertArrayEquals(new long[] {1, 3, 4, 10}, out.cache().get("blocks.0.attn.hook_k").shape());
                assertArrayEquals(new long[] {1, 3, 4, 6}, out.cache().get("blocks.0.attn.hook_v").shape());
                assertArrayEquals(new long[] {1, 3, 4, 6}, out.cache().get("blocks.0.attn.hook_z").shape());
            }
        }
    }

    @Test
    void headsThatTheLatentCannotGiveAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("deepseek-v3");
        Map<String, Object> refused = new HashMap<>(Map.of("num_key_value_heads", 2, "qk_rope_head_dim", 3,
                "topk_method", "greedy", "scoring_func", "softmax", "moe_layer_freq", 2));
        refused.put("v_head_dim", null);
        for (Map.Entry<String, Object> e : refused.entrySet()) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(e.getKey(), e.getValue()).architecture(), e.getKey()).getMessage();
            assertTrue(m.startsWith(e.getKey() + " = "), m);
        }
        assertEquals(0, tiny.with("q_lora_rank", null).architecture().latentAttention().queryRank());
        assertTrue(tiny.with("q_lora_rank", null).checkpoint().tensors()
                .containsKey("model.layers.0.self_attn.q_proj.weight"));
        assertFalse(tiny.checkpoint().tensors().containsKey("model.layers.0.self_attn.q_proj.weight"));
        assertEquals(List.of("model.layers.2."), tiny.checkpoint().unread(), "the prediction layer after the last");
        Map<String, Object> nulls = new HashMap<>();
        nulls.put("rope_interleave", null);
        nulls.put("norm_topk_prob", null);
        Architecture a = tiny.with(nulls).architecture(); // read as false, as transformers' modeling file reads them
        assertFalse(a.latentAttention().ropeInterleaved() || a.moe().grouped().normalized());
        assertEquals(tiny.architecture(), tiny.with(Map.of("topk_method", "noaux_tc", "scoring_func", "sigmoid",
                "moe_layer_freq", 1)).architecture(), "the published routing keys change nothing");
    }

    /**
     * Kimi K2's config names its model {@code kimi_k2}, which transformers reads as {@code deepseek_v3} (Kimi K2.5's
     * config does so for its text model): it loads as this family, here with Kimi K2's shape (384 experts, top 8,
     * one dense layer), about a trillion parameters.
     */
    @Test
    void kimiK2sModelTypeLoadsAsDeepSeekV3() {
        HookedAutoConfig c = HookedAutoConfig.fromJsonText("""
                {"model_type": "kimi_k2", "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168,
                 "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
                 "num_attention_heads": 64, "num_key_value_heads": 64, "n_shared_experts": 1,
                 "n_routed_experts": 384, "routed_scaling_factor": 2.827, "kv_lora_rank": 512, "q_lora_rank": 1536,
                 "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 128, "n_group": 1, "topk_group": 1,
                 "num_experts_per_tok": 8, "first_k_dense_replace": 1, "norm_topk_prob": true,
                 "vocab_size": 163840, "max_position_embeddings": 131072, "rope_theta": 50000.0,
                 "rope_scaling": {"type": "yarn", "factor": 32.0, "original_max_position_embeddings": 4096,
                  "beta_fast": 1.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0},
                 "num_nextn_predict_layers": 0, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
                 "tie_word_embeddings": false}""");
        assertEquals("deepseek-v3", c.family());
        assertEquals(384, c.numExperts());
        assertEquals(8, c.expertsPerToken());
        assertFalse(c.architecture().moe().sparse(0));
        assertTrue(c.parameterCount() > 1.0e12 && c.parameterCount() < 1.1e12, "parameters: " + c.parameterCount());
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepSeek-V2's defaults, {@code DeepseekV2Config}'s (but for the top k it leaves null), DeepSeek-V2-Lite's published
 * config with its 15.7B parameters, its routings and its refusals. Its forward pass is checked against
 * {@link DeepseekV3Reference}'s DeepSeek-V2 model (group-limited routing, the rotated features in pairs) by
 * {@link ModelParityTest} and every family-generic test.
 */
class DeepseekV2Test {

    @Test
    void defaultsAreDeepseekV2Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("deepseek_v2");
        Architecture a = c.architecture();
        assertEquals(new LatentAttention(1536, 512, 128, 64, 128, false), a.latentAttention());
        assertTrue(a.rotaryInterleaved(), "adjacent pairs, as complex numbers");
        assertEquals(Architecture.RotaryPrecision.FLOAT32, a.rotaryPrecision());
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_GROUPED, moe.routing());
        assertEquals(new MixtureOfExperts.Grouped(1, 1, false, 1.0), moe.grouped(), "greedy");
        assertEquals(6, moe.topK());
        assertEquals(2 * 1407, moe.sharedWidth());
        assertTrue(moe.sparse(0), "first_k_dense_replace 0");
        long d = 4096;
        long attention = d * 1536 + 1536 + 1536 * 32 * 192 + d * 576 + 512 + 512 * 32 * 256 + 32 * 128 * d + 2 * d;
        long sparse = 64 * 3 * d * 1407 + 3 * d * 2 * 1407 + 64 * d;
        assertEquals(2 * 102400 * d + 32 * (attention + sparse) + d, c.parameterCount());
    }

    @Test
    void deepSeekV2LitesPublishedConfigHasItsFifteenPointSevenBillionParameters(@TempDir Path dir) throws Exception {
        String json = """
                {"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "vocab_size": 102400,
                 "hidden_size": 2048, "intermediate_size": 10944, "moe_intermediate_size": 1408,
                 "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16,
                 "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
                 "moe_layer_freq": 1, "kv_lora_rank": 512, "q_lora_rank": null, "qk_nope_head_dim": 128,
                 "qk_rope_head_dim": 64, "v_head_dim": 128, "topk_method": "greedy", "n_group": 1, "topk_group": 1,
                 "norm_topk_prob": false, "routed_scaling_factor": 1.0, "scoring_func": "softmax",
                 "aux_loss_alpha": 0.001, "seq_aux": true, "rope_theta": 10000, "rope_scaling": {"type": "yarn",
                 "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
                 "mscale": 0.707, "mscale_all_dim": 0.707}, "max_position_embeddings": 163840, "rms_norm_eps": 1e-06,
                 "tie_word_embeddings": false, "bos_token_id": 100000, "eos_token_id": 100001,
                 "torch_dtype": "bfloat16"}
                """;
        Files.writeString(dir.resolve("config.json"), json);
        HookedAutoConfig c = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        assertEquals(0, c.architecture().latentAttention().queryRank(), "q_proj");
        assertFalse(c.architecture().moe().sparse(0));
        assertEquals(new MixtureOfExperts.Grouped(1, 1, false, 1.0), c.architecture().moe().grouped(),
                "greedy: its n_group and topk_group of 1 unread");
        double mscale = 0.1 * 0.707 * Math.log(40) + 1;
        assertEquals(mscale * mscale, c.architecture().attentionMultiplier(), 1e-12);
        assertEquals(15_706_484_224L, c.parameterCount(), "DeepSeek-V2-Lite's 15.7B");
    }

    @Test
    void aBfloat16ModelsRouterMultipliesInFloat32(@TempDir Path dir) throws Exception {
        // the router's input and weight as the bfloat16 model holds them, multiplied in float32
        HookedAutoConfig config = TinyConfigs.of("deepseek-v2");
        try (TensorScope scope = TensorScope.open()) {
            Fixtures.writeRandomCheckpoint(config, 7, dir);
            try (SafeTensorsFile file = SafeTensorsFile.open(dir.resolve("model.safetensors"));
                 HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
                 ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4, 1, 5, 9}, 1, 6))) {
                Tensor input = out.cache().get("blocks.1.ln2.hook_normalized").to(DType.FLOAT32);
                Tensor weight = file.tensor("model.layers.1.mlp.gate.weight").to(DType.BFLOAT16).to(DType.FLOAT32);
                Tensor expected = input.matmul(weight.transpose(0, 1));
                Tensor logits = out.cache().get("blocks.1.mlp.hook_router_logits");
                assertEquals(DType.FLOAT32, logits.dtype());
                double scale = expected.abs().max().item();
                assertTrue(logits.sub(expected).abs().max().item() <= 1e-5 * scale,
                        "router logits off float32's by " + logits.sub(expected).abs().max().item());
                assertEquals(DType.FLOAT32, out.cache().get("blocks.1.mlp.hook_expert_weights").dtype());
            }
        }
    }

    @Test
    void aRopeInterleaveKeyInTheFileIsNotRead(@TempDir Path dir) throws Exception {
        // transformers' DeepSeek-V2 attention reads none: its rotated features stay in adjacent pairs
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"deepseek_v2\", \"rope_interleave\": true}");
        Architecture a = HookedAutoConfig.fromJson(dir.resolve("config.json")).architecture();
        assertFalse(a.latentAttention().ropeInterleaved());
        assertTrue(a.rotaryInterleaved());
    }

    @Test
    void routingsAndSettingsTransformersDoesNotComputeAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("deepseek-v2");
        MixtureOfExperts grouped = tiny.with(Map.of("topk_method", "group_limited_greedy", "n_group", 2,
                "topk_group", 1)).architecture().moe();
        assertEquals(new MixtureOfExperts.Grouped(2, 1, false, 1.0), grouped.grouped());
        Map<String, Object> refused = new HashMap<>(Map.of("norm_topk_prob", true, "topk_method", "noaux_tc",
                "mlp_bias", true, "scoring_func", "sigmoid", "moe_layer_freq", 2, "hidden_size", 30));
        refused.put("num_experts_per_tok", null);
        for (Map.Entry<String, Object> e : refused.entrySet()) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(e.getKey(), e.getValue()).architecture(), e.getKey()).getMessage();
            assertTrue(m.startsWith(e.getKey() + " = "), m);
        }
        String m = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("topk_method", "group_limited_greedy").architecture()).getMessage();
        assertTrue(m.startsWith("n_group = null"), m);
        assertFalse(tiny.checkpoint().tensors().keySet().stream().anyMatch(n -> n.contains("e_score_correction_bias")));
        assertTrue(tiny.checkpoint().unread().isEmpty(), "no prediction layer");
    }
}

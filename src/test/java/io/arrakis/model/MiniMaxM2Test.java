package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MiniMax-M2's defaults, {@code MiniMaxM2Config}'s, the published {@code config.json} (its {@code rotary_dim}), its
 * layout, the routing's dtypes in a bfloat16 model and its refusals. Its forward pass is checked against
 * {@link MiniMaxM2Reference} by {@link ModelParityTest} and every family-generic test.
 */
class MiniMaxM2Test {

    @Test
    void defaultsAreMiniMaxM2Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("minimax_m2");
        Architecture a = c.architecture();
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SIGMOID_BIASED, moe.routing());
        assertEquals(256, moe.experts());
        assertEquals(8, moe.topK());
        assertTrue(moe.float32Weights());
        assertFalse(moe.hasSharedExpert());
        assertEquals(128, a.rope(0).dim(), "the class reads no rotary_dim: the whole head rotates");
        assertEquals(5_000_000.0, a.rope(0).theta());
        assertEquals(Architecture.QkNorm.WHOLE, a.qkNorm());
        assertFalse(a.qkvBias() || a.outBias() || a.tiedEmbeddings());
        assertEquals(1e-6, c.architecture().normEps());
        long d = 3072;
        long attention = d * 48 * 128 + 2 * d * 8 * 128 + 48 * 128 * d + 48 * 128 + 8 * 128 + 2 * d;
        long sparse = 256 * 3 * d * 1536 + 256 * d + 256;
        assertEquals(2 * 200064 * d + 62 * (attention + sparse) + d, c.parameterCount());
    }

    @Test
    void thePublishedConfigRotatesItsRotaryDim(@TempDir Path dir) throws Exception {
        // MiniMax-M2's config.json as published, less its fp8 quantization_config (as bfloat16 conversions drop it)
        String json = """
                {"architectures": ["MiniMaxM2ForCausalLM"], "attn_type_list": %s,
                 "auto_map": {"AutoConfig": "configuration_minimax_m2.MiniMaxM2Config"}, "head_dim": 128,
                 "hidden_act": "silu", "hidden_size": 3072, "intermediate_size": 1536,
                 "max_position_embeddings": 196608, "model_type": "minimax_m2", "mtp_transformer_layers": 1,
                 "num_attention_heads": 48, "num_experts_per_tok": 8, "num_hidden_layers": 62,
                 "num_key_value_heads": 8, "num_local_experts": 256, "num_mtp_modules": 3, "qk_norm_type": "per_layer",
                 "rms_norm_eps": 1e-06, "rope_theta": 5000000, "rotary_dim": 64, "scoring_func": "sigmoid",
                 "shared_intermediate_size": 0, "tie_word_embeddings": false, "transformers_version": "4.46.1",
                 "use_cache": true, "use_mtp": true, "use_qk_norm": true, "use_routing_bias": true,
                 "vocab_size": 200064, "torch_dtype": "bfloat16"}
                """.formatted(Collections.nCopies(62, 1));
        Files.writeString(dir.resolve("config.json"), json);
        HookedAutoConfig c = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        assertEquals(64, c.architecture().rope(0).dim(), "rotary_dim 64 of head_dim 128");
        assertEquals(5_000_000.0, c.architecture().rope(0).theta());
        assertEquals(HookedAutoConfig.of("minimax_m2").parameterCount(), c.parameterCount());
        assertEquals(64, c.with("rope_parameters", Map.of("rope_theta", 5e6, "partial_rotary_factor", 0.5))
                .architecture().rope(0).dim(), "a factor that agrees");
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("partial_rotary_factor", 1.0)
                .architecture()).getMessage();
        assertTrue(m.startsWith("rotary_dim = 64") && m.contains("partial_rotary_factor = 1.0"), m);
        m = assertThrows(IllegalArgumentException.class, () -> c.with("rotary_dim", 130).architecture()).getMessage();
        assertTrue(m.startsWith("rotary_dim = 130"), m);
    }

    @Test
    void theLayoutIsMixtralsWithQueryAndKeyNormsAndACorrectionBias() {
        HookedAutoConfig tiny = TinyConfigs.of("minimax-m2");
        Map<String, io.arrakis.model.family.CheckpointTensor> tensors = tiny.checkpoint().tensors();
        Set<String> names = tensors.keySet();
        assertTrue(names.containsAll(Set.of("model.layers.1.block_sparse_moe.gate.weight",
                "model.layers.1.block_sparse_moe.e_score_correction_bias",
                "model.layers.1.block_sparse_moe.experts.3.w1.weight", "model.layers.1.self_attn.k_norm.weight",
                "lm_head.weight")), names.toString());
        assertArrayEquals(new long[] {4 * 8}, tensors.get("model.layers.0.self_attn.q_norm.weight").shape(),
                "one weight per feature of all heads");
        assertArrayEquals(new long[] {2 * 8}, tensors.get("model.layers.0.self_attn.k_norm.weight").shape());
        assertArrayEquals(new long[] {4}, tensors.get("model.layers.0.block_sparse_moe.e_score_correction_bias")
                .shape());
    }

    @Test
    void aBfloat16ModelRoutesOnLogitsInItsDtypeAndACorrectionBiasRoundedToIt(@TempDir Path dir) throws Exception {
        // layer 1's logits replaced by 0 and 2^-10 for experts 0 and 1: scores 0.5 and 0.500244; the correction
        // biases 0.30078125 + 0.0005 and 0.30078125 sum to 0.801281 and 0.801025 in float32, but the first rounds to
        // the second in bfloat16, where expert 1 then ranks first
        HookedAutoConfig config = TinyConfigs.of("minimax-m2").with("num_experts_per_tok", 1);
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 6, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            tensors.put("model.layers.1.block_sparse_moe.e_score_correction_bias",
                    Tensor.of(new float[] {0.30128125f, 0.30078125f, 0f, 0f}, 4));
            Fixtures.writeCheckpoint(config, tensors, dir);
            Tensor ids = Tensor.of(new long[] {3, 1, 4, 1, 5}, 1, 5);
            for (DType dtype : List.of(DType.FLOAT32, DType.BFLOAT16)) {
                try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir, dtype, Device.CPU);
                     ModelOutput plain = model.forward(ids);
                     ModelOutput out = model.runWithHooks(ids, CacheSpec.all(), HookedAutoModel.HookSpec.at(
                             "blocks.1.mlp.hook_router_logits", (logits, name) -> Tensor.of(
                                     new float[] {0f, 0x1p-10f, -1f, -1f}, 1, 1, 4).to(logits.dtype())
                                     .expand(logits.shape()).contiguous()))) {
                    assertEquals(dtype, plain.cache().get("blocks.1.mlp.hook_router_logits").dtype(),
                            "the router multiplies in the model's dtype");
                    long expert = dtype == DType.FLOAT32 ? 0 : 1;
                    assertArrayEquals(new long[] {expert, expert, expert, expert, expert},
                            out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray(), dtype.toString());
                    Tensor weights = out.cache().get("blocks.1.mlp.hook_expert_weights");
                    assertEquals(DType.FLOAT32, weights.dtype());
                    for (float weight : weights.toFloatArray()) {
                        assertEquals(1f, weight, "one chosen score over itself");
                    }
                }
            }
        }
    }

    @Test
    void settingsItsModelDoesNotComputeAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("minimax-m2");
        Map<String, Object> refused = Map.of("use_qk_norm", false, "qk_norm_type", "per_head", "scoring_func",
                "softmax", "use_routing_bias", false, "shared_intermediate_size", 48, "sliding_window", 4,
                "attn_type_list", List.of(1, 0));
        for (Map.Entry<String, Object> e : refused.entrySet()) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(e.getKey(), e.getValue()).architecture(), e.getKey()).getMessage();
            assertTrue(m.startsWith(e.getKey() + " = "), m);
        }
        String m = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("attn_type_list", List.of(1)).architecture()).getMessage();
        assertTrue(m.startsWith("attn_type_list = [1]"), m);
        assertEquals(tiny.architecture(), tiny.with("attn_type_list", List.of(1, 1, 0)).architecture(),
                "the published list of more layers than a shortened config keeps");
        Map<String, Object> published = Map.of("use_qk_norm", true, "qk_norm_type", "per_layer", "scoring_func",
                "sigmoid", "use_routing_bias", true, "shared_intermediate_size", 0, "attn_type_list", List.of(1, 1));
        assertEquals(tiny.architecture(), tiny.with(published).architecture(), "the published values change nothing");
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GLM-4.5's defaults, {@code Glm4MoeConfig}'s, its dense and sparse layers' layouts, what it leaves unread, its float32
 * routing in a bfloat16 model and its refusals. Its forward pass is checked against {@link Glm4MoeReference} by
 * {@link ModelParityTest} and every family-generic test.
 */
class Glm4MoeTest {

    @Test
    void defaultsAreGlm4MoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("glm4_moe");
        Architecture a = c.architecture();
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SIGMOID_GROUPED, moe.routing());
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 1.0), moe.grouped());
        assertEquals(128, moe.experts());
        assertEquals(8, moe.topK());
        assertEquals(1408, moe.sharedWidth());
        assertFalse(moe.sharedGated());
        assertEquals(10944, moe.denseWidth());
        assertFalse(moe.sparse(0));
        assertTrue(moe.sparse(1) && moe.sparse(45));
        assertEquals(1408, c.dMlp());
        assertEquals(64, a.rope(0).dim(), "half of head_dim 128 rotates");
        assertEquals(Architecture.QkNorm.NONE, a.qkNorm());
        assertFalse(a.qkvBias() || a.outBias() || a.tiedEmbeddings());
        long d = 4096;
        long attention = d * 96 * 128 + 2 * d * 8 * 128 + 96 * 128 * d + 2 * d;
        long sparse = 128 * 3 * d * 1408 + 3 * d * 1408 + 128 * d + 128;
        assertEquals(2 * 151552 * d + 46 * attention + 3 * d * 10944 + 45 * sparse + d, c.parameterCount());
    }

    @Test
    void denseLayersHoldAGatedMlpAndSparseLayersTheExperts() {
        HookedAutoConfig tiny = TinyConfigs.of("glm4-moe").with("first_k_dense_replace", 1);
        Set<String> names = tiny.checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.gate.weight",
                "model.layers.1.mlp.gate.e_score_correction_bias", "model.layers.1.mlp.experts.3.down_proj.weight",
                "model.layers.1.mlp.shared_experts.up_proj.weight")), names.toString());
        assertFalse(names.contains("model.layers.0.mlp.gate.weight")
                || names.contains("model.layers.1.mlp.up_proj.weight"), names.toString());
        assertArrayEquals(new long[] {48, 32},
                tiny.checkpoint().tensors().get("model.layers.0.mlp.up_proj.weight").shape(), "intermediate_size");
    }

    @Test
    void theMultiTokenPredictionLayerIsNotReadAndAnyOtherStrayTensorIsRefused(@TempDir Path dir) throws Exception {
        HookedAutoConfig config = TinyConfigs.of("glm4-moe");
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 4, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            tensors.put("model.layers.2.eh_proj.weight", Tensor.zeros(new long[] {32, 64}, DType.FLOAT32, Device.CPU));
            tensors.put("model.layers.2.mlp.gate.weight", Tensor.zeros(new long[] {4, 32}, DType.FLOAT32, Device.CPU));
            Fixtures.writeCheckpoint(config, tensors, dir.resolve("mtp"));
            try (HookedAutoModel loaded = HookedAutoModel.fromPretrained(dir.resolve("mtp"));
                 HookedAutoModel created = HookedAutoModel.create(config, 4, DType.FLOAT32, Device.CPU)) {
                Tensor ids = Tensor.of(new long[] {3, 1, 4, 1, 5}, 1, 5);
                assertTrue(loaded.runWithHooks(ids).allclose(created.runWithHooks(ids), 0, 0));
            }
            tensors.put("model.layers.3.eh_proj.weight", Tensor.zeros(new long[] {32, 64}, DType.FLOAT32, Device.CPU));
            Fixtures.writeCheckpoint(config, tensors, dir.resolve("stray"));
            String m = assertThrows(IllegalArgumentException.class,
                    () -> HookedAutoModel.fromPretrained(dir.resolve("stray")).close()).getMessage();
            assertTrue(m.contains("model.layers.3.eh_proj.weight"), m);
        }
    }

    @Test
    void aBfloat16ModelRoutesInFloat32WithAFloat32CorrectionBias(@TempDir Path dir) throws Exception {
        // layer 1's router all zeros, so every score is sigmoid(0) = 0.5; the experts' correction biases 0.1, 0.1 +
        // 1e-5, ... are one bfloat16 number but four float32 ones: only float32 ranks expert 3, then 2
        HookedAutoConfig config = TinyConfigs.of("glm4-moe");
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 6, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            tensors.put("model.layers.1.mlp.gate.weight", Tensor.zeros(new long[] {4, 32}, DType.FLOAT32, Device.CPU));
            tensors.put("model.layers.1.mlp.gate.e_score_correction_bias",
                    Tensor.of(new float[] {0.1f, 0.10001f, 0.10002f, 0.10003f}, 4));
            Fixtures.writeCheckpoint(config, tensors, dir);
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
                 ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4, 1, 5}, 1, 5))) {
                assertEquals(DType.FLOAT32, out.cache().get("blocks.1.mlp.hook_router_logits").dtype());
                assertArrayEquals(new long[] {3, 2, 3, 2, 3, 2, 3, 2, 3, 2},
                        out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray());
                Tensor weights = out.cache().get("blocks.1.mlp.hook_expert_weights");
                assertEquals(DType.FLOAT32, weights.dtype());
                for (float weight : weights.toFloatArray()) {
                    assertEquals(0.5f, weight, "two scores of 0.5 over their sum");
                }
                assertFalse(out.cache().contains("blocks.1.mlp.hook_shared_expert_gate"),
                        "its shared expert is ungated");
                assertFalse(out.cache().contains("blocks.0.mlp.hook_router_logits"), "layer 0 is dense");
                assertTrue(out.cache().contains("blocks.0.mlp.hook_pre_linear"));
            }
        }
    }

    @Test
    void withoutNormTopkProbTheChosenScoresWeightAsTheyAre(@TempDir Path dir) throws Exception {
        Glm4MoeReference.write(dir, Glm4MoeReference.Kind.GLM4_MOE_AS_IS);
        ModelParityTest.assertParity(dir, "glm4-moe without norm_topk_prob", 2 * 3 + 2);
    }

    @Test
    void aBfloat16ModelsRouterMultipliesInFloat32() {
        // the router's input and weight as the bfloat16 model holds them, multiplied in float32
        Path fixture = Fixtures.huggingFace("glm4-moe");
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(fixture.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(fixture, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(fixture))) {
            Tensor input = out.cache().get("blocks.1.ln2.hook_normalized").to(DType.FLOAT32);
            Tensor weight = file.tensor("model.layers.1.mlp.gate.weight").to(DType.BFLOAT16).to(DType.FLOAT32);
            Tensor expected = input.matmul(weight.transpose(0, 1));
            Tensor logits = out.cache().get("blocks.1.mlp.hook_router_logits");
            assertEquals(DType.FLOAT32, logits.dtype());
            double scale = expected.abs().max().item();
            assertTrue(logits.sub(expected).abs().max().item() <= 1e-5 * scale,
                    "router logits off float32's by " + logits.sub(expected).abs().max().item());
        }
    }

    @Test
    void replacedExpertIndicesRouteTheTokens() {
        Path fixture = Fixtures.huggingFace("glm4-moe");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(fixture);
             ModelOutput out = model.runWithHooks(Fixtures.referenceInputIds(fixture), CacheSpec.all(),
                     HookedAutoModel.HookSpec.at("blocks.1.mlp.hook_expert_indices", (indices, name) ->
                             Tensor.of(new long[] {0, 1, 2}, 1, 1, 3).expand(indices.shape()).contiguous()))) {
            long tokens = out.cache().get("blocks.1.mlp.hook_router_logits").numel() / 8;
            for (int e = 0; e < 8; e++) {
                assertEquals(e < 3 ? tokens : 0, out.cache().get("blocks.1.mlp.experts." + e + ".hook_post").size(0),
                        "expert " + e);
            }
        }
    }

    @Test
    void noDenseLayerAndNoPredictionLayerAreAccepted() {
        HookedAutoConfig tiny = TinyConfigs.of("glm4-moe").with(Map.of("first_k_dense_replace", 0,
                "num_nextn_predict_layers", 0));
        assertTrue(tiny.architecture().moe().sparse(0) && tiny.architecture().moe().sparse(1));
        String m = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("first_k_dense_replace", -1).architecture()).getMessage();
        assertTrue(m.startsWith("first_k_dense_replace = -1"), m);
    }

    @Test
    void groupsThatCannotHoldTheChoiceAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("glm4-moe");
        for (Map.Entry<String, Object> e : Map.<String, Object>of("n_group", 3, "topk_group", 8).entrySet()) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(e.getKey(), e.getValue()).architecture(), e.getKey()).getMessage();
            assertTrue(m.startsWith(e.getKey() + " = "), m);
        }
        String m = assertThrows(IllegalArgumentException.class, () -> tiny.with(Map.of("n_group", 2, "topk_group", 1,
                "num_experts_per_tok", 3)).architecture()).getMessage();
        assertTrue(m.startsWith("num_experts_per_tok = 3"), m);
    }
}

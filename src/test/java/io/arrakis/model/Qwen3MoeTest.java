package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen3-MoE on the fixture {@link DerivedFixtures} makes from Hugging Face's qwen3 one (3 experts, each the dense MLP
 * with its units reordered, top 2): the pass equals the dense model's reference while tokens go to different
 * experts; without {@code norm_topk_prob} and with each expert's output scaled apart, the weights are the top-2
 * softmax values as they are, computed here from the router's logits, and the MLP's output is the dense MLP's,
 * computed here from the qwen3 checkpoint, times the weighted scales; in bfloat16 the weights are rounded to it.
 */
class Qwen3MoeTest {

    private static Path moe() {
        return Fixtures.huggingFace("qwen3-moe");
    }

    @Test
    void renormalisedRoutingOverReorderedCopiesOfTheDenseMlpGivesTheDenseModelsLogits() {
        Path dir = moe();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            assertEquals(3, model.config().numExperts());
            assertEquals(24, model.config().dHead(), "the file's head_dim, not hidden_size / heads");
            assertTrue(out.logits().allclose(reference.tensor("logits"), 1e-4, 1e-4));
            for (int layer = 0; layer < 2; layer++) {
                String b = "blocks." + layer + ".mlp.";
                long[] chosen = out.cache().get(b + "hook_expert_indices").toLongArray();
                assertEquals(3, Arrays.stream(chosen).distinct().count(), "every expert chosen by some token");
                float[] w = out.cache().get(b + "hook_expert_weights").toFloatArray();
                for (int t = 0; t < w.length / 2; t++) {
                    assertEquals(1.0, w[2 * t] + w[2 * t + 1], 1e-6, "token " + t);
                }
            }
        }
    }

    /**
     * A token's weights are its two largest softmax values, as they are without {@code norm_topk_prob} (qwen3-moe
     * here) and divided by their sum in qwen3-vl-moe; with expert {@code e}'s output scaled by {@code e + 1} (its
     * {@code down_proj} so), the MLP's output is {@code sum_j w_j (e_j + 1)} times the dense MLP's, which tells the
     * experts apart.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3-moe", "qwen3-vl-moe"})
    void theWeightsAreTheTopSoftmaxValuesAndWeightTheirOwnExperts(String family, @TempDir Path tmp)
            throws IOException {
        boolean fused = family.equals("qwen3-vl-moe");
        Path dir = tmp.resolve(family);
        Fixtures.writeEdited(Fixtures.huggingFace(family), dir, (name, t) -> !name.contains("down_proj") ? t
                : fused ? t.mul(Tensor.of(new float[] {1, 2, 3}, 3, 1, 1))
                : name.contains(".mlp.experts.")
                ? t.mul(1 + Integer.parseInt(name.replaceAll(".*\\.experts\\.(\\d+)\\..*", "$1"))) : t);
        if (!fused) {
            @SuppressWarnings("unchecked")
            Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                    Files.readString(dir.resolve("config.json"))));
            assertEquals(true, config.put("norm_topk_prob", false));
            Files.writeString(dir.resolve("config.json"), Json.write(config));
        }
        Path qwen3 = Fixtures.huggingFace("qwen3");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile dense = SafeTensorsFile.open(qwen3.resolve("model.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(qwen3))) {
            String p = "model.layers.1.";
            float[] logits = out.cache().get("blocks.1.mlp.hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            float[] w = out.cache().get("blocks.1.mlp.hook_expert_weights").toFloatArray();
            int tokens = w.length / 2;
            double[] scale = new double[tokens];
            double[] share = new double[tokens];
            for (int t = 0; t < tokens; t++) {
                double[] softmax = new double[3];
                for (int e = 0; e < 3; e++) {
                    softmax[e] = Math.exp(logits[t * 3 + e]);
                }
                int first = (int) chosen[t * 2];
                int second = (int) chosen[t * 2 + 1];
                int left = 3 - first - second;
                assertTrue(softmax[left] <= Math.min(softmax[first], softmax[second]),
                        "token " + t + " left out its lowest expert");
                double sum = fused ? softmax[first] + softmax[second] : softmax[0] + softmax[1] + softmax[2];
                assertEquals(softmax[first] / sum, w[t * 2], 1e-6, "token " + t);
                assertEquals(softmax[second] / sum, w[t * 2 + 1], 1e-6, "token " + t);
                share[t] = w[t * 2] + w[t * 2 + 1];
                scale[t] = w[t * 2] * (first + 1) + w[t * 2 + 1] * (second + 1);
            }
            if (!fused) {
                assertTrue(Arrays.stream(share).min().orElseThrow() < 0.9, "the expert left out had a share");
            }
            Tensor x = out.cache().get("blocks.1.ln2.hook_normalized").reshape(tokens, -1);
            double[] mlp = x.linear(dense.tensor(p + "mlp.gate_proj.weight"), null).silu()
                    .mul(x.linear(dense.tensor(p + "mlp.up_proj.weight"), null))
                    .linear(dense.tensor(p + "mlp.down_proj.weight"), null).toDoubleArray();
            double[] actual = out.cache().get("blocks.1.hook_mlp_out").toDoubleArray();
            int d = actual.length / tokens;
            for (int i = 0; i < actual.length; i++) {
                assertEquals(scale[i / d] * mlp[i], actual[i], 1e-5 * Math.max(1, Math.abs(actual[i])), "element " + i);
            }
        }
    }

    /**
     * In bfloat16 the routing weights are rounded to bfloat16 before they weight the experts, as transformers'
     * routers return them: each is the float32 routing of the router's logits, rounded.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3-moe", "qwen3-vl-moe"})
    void aBfloat16ModelRoundsItsRoutingWeightsToBfloat16(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            Tensor weights = out.cache().get("blocks.0.mlp.hook_expert_weights");
            assertEquals(DType.BFLOAT16, weights.dtype());
            float[] logits = out.cache().get("blocks.0.mlp.hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get("blocks.0.mlp.hook_expert_indices").toLongArray();
            float[] w = weights.toFloatArray();
            float[] expected = new float[w.length];
            for (int t = 0; t < w.length / 2; t++) {
                double a = Math.exp(logits[t * 3 + (int) chosen[t * 2]]);
                double b = Math.exp(logits[t * 3 + (int) chosen[t * 2 + 1]]);
                expected[t * 2] = (float) (a / (a + b));
                expected[t * 2 + 1] = (float) (b / (a + b));
            }
            float[] rounded = Tensor.of(expected, expected.length).to(DType.BFLOAT16).toFloatArray();
            for (int i = 0; i < w.length; i++) {
                assertEquals(rounded[i], w[i], Math.ulp(rounded[i]) * 65536, "weight " + i + " is a bfloat16 step");
            }
            assertEquals(DType.BFLOAT16, out.cache().get("blocks.0.hook_mlp_out").dtype());
        }
    }

    /**
     * Qwen3-VL-MoE's fused experts as transformers 5 saves them, their last two dimensions swapped: read so as
     * the shapes of the file's expert tensors say, also where gate_up_proj has one shape either way (d_model twice
     * the experts' width) and down_proj tells, whatever version the config names; a file with both layouts is
     * refused.
     */
    @Test
    void qwen3VlMoeReadsExpertsSavedByTransformers5(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("qwen3-vl-moe");
        Path swapped = tmp.resolve("swapped");
        Fixtures.writeEdited(fixture, swapped, (name, t) -> name.contains(".mlp.experts.")
                ? t.transpose(1, 2).contiguous() : t);
        Files.copy(fixture.resolve("reference.safetensors"), swapped.resolve("reference.safetensors"));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(swapped);
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            assertTrue(model.runWithHooks(reference.tensor("input_ids")).allclose(reference.tensor("logits"), 1e-4,
                    1e-4));
        }
        HookedAutoConfig square = TinyConfigs.of("qwen3-vl-moe").with(Map.of("hidden_size", 32,
                "moe_intermediate_size", 16));
        Path published = tmp.resolve("published");
        Path saved = tmp.resolve("saved-by-5");
        try (TensorScope scope = TensorScope.open()) {
            Fixtures.writeRandomCheckpoint(square, 5, published);
            Fixtures.writeEdited(published, saved, (name, t) -> name.contains(".mlp.experts.")
                    ? t.transpose(1, 2).contiguous() : t);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(saved.resolve("config.json"))));
        config.put("transformers_version", "4.57.0");
        Files.writeString(saved.resolve("config.json"), Json.write(config));
        Tensor ids = Tensor.of(new long[] {1, 5, 9, 2, 7, 3}, 1, 6);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel a = HookedAutoModel.fromPretrained(published);
             HookedAutoModel b = HookedAutoModel.fromPretrained(saved)) {
            assertArrayEquals(a.runWithHooks(ids).toFloatArray(), b.runWithHooks(ids).toFloatArray());
        }
        Path mixed = tmp.resolve("mixed");
        try (TensorScope scope = TensorScope.open()) {
            Fixtures.writeEdited(published, mixed, (name, t) -> name.equals("model.layers.1.mlp.experts.down_proj")
                    ? t.transpose(1, 2).contiguous() : t);
        }
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(mixed))
                .getMessage();
        assertTrue(m.contains("some fused expert tensors as published and others"), m);
    }

    /** Qwen3-30B-A3B's config.json as published (transformers 4.51). */
    private static final String QWEN3_30B_A3B = """
            {"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
             "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
             "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
             "model_type": "qwen3_moe", "moe_intermediate_size": 768, "norm_topk_prob": true,
             "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
             "num_key_value_heads": 4, "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_scaling": null,
             "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": null,
             "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
             "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}
            """;

    @Test
    void qwen3ThirtyBConfigurationAndItsRefusals() {
        HookedAutoConfig c = HookedAutoConfig.fromJsonText(QWEN3_30B_A3B);
        assertEquals(128, c.numExperts());
        assertEquals(8, c.expertsPerToken());
        assertEquals(128, c.dHead());
        assertEquals(768, c.dMlp(), "the experts' width");
        assertEquals(1e6, c.ropeTheta());
        assertTrue(c.slidingWindow().isEmpty());
        // embeddings and head 2 x 151936 x 2048; per layer attention 18,874,368, q/k norms 256, norms 4096, router
        // 262,144, experts 128 x 3 x 2048 x 768; the final norm: Qwen's "30.5B in total"
        assertEquals(30_532_122_624L, c.parameterCount());

        HookedAutoConfig windowed = TinyConfigs.of("qwen3-moe").with(Map.of("use_sliding_window", true,
                "sliding_window", 4));
        assertEquals(4, windowed.slidingWindow().getAsInt());
        assertTrue(windowed.isSlidingWindowLayer(0) && windowed.isSlidingWindowLayer(1), "every layer");

        HookedAutoConfig tiny = TinyConfigs.of("qwen3-moe");
        assertEquals(4, tiny.with("num_experts", 4).raw().get("num_local_experts"));
        assertEquals(2, tiny.with("mlp_only_layers", List.of(7)).nLayers(), "a layer the model lacks is no layer");
        for (Map<String, Object> dense : List.<Map<String, Object>>of(Map.of("decoder_sparse_step", 2),
                Map.of("decoder_sparse_step", 0), Map.of("mlp_only_layers", List.of(1)))) {
            String key = dense.keySet().iterator().next();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tiny.with(dense).dModel());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        }
        IllegalArgumentException tooMany = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("num_experts_per_tok", 5).dModel());
        assertTrue(tooMany.getMessage().contains("num_experts_per_tok = 5"), tooMany.getMessage());
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.testing.Bfloat16;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.QueryTemperature;
import io.arrakis.model.family.Rope;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
        assertEquals(new QueryTemperature(0.1, 8192, 0, false, false), a.queryTemperature());
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

    /**
     * A rope object without {@code partial_rotary_factor} rotates {@code qk_rope_head_dim}, as Mistral4Config fills
     * it in; an older {@code rope_scaling} object takes the top-level key, and without one rotates the whole head,
     * which transformers' attention fails on.
     */
    @Test
    void theRotatingShareDefaultsAsMistral4ConfigFillsItIn() {
        HookedAutoConfig tiny = TinyConfigs.of("mistral4");
        int rope = tiny.architecture().latentAttention().ropeDim();
        Map<String, Object> yarn = Map.of("rope_type", "yarn", "factor", 2.0, "original_max_position_embeddings", 8,
                "llama_4_scaling_beta", 0.1);
        assertEquals(rope, tiny.with("rope_parameters", yarn).architecture().rope().dim());
        String json = tiny.toJson().replaceFirst("\\{", "{\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 2.0,"
                + " \"original_max_position_embeddings\": 8, \"llama_4_scaling_beta\": 0.1}, ");
        double share = (double) rope / tiny.architecture().latentAttention().queryKeyDim();
        HookedAutoConfig scaled = HookedAutoConfig.fromJsonText(json.replaceFirst("\\{",
                "{\"partial_rotary_factor\": " + share + ", "));
        assertEquals(rope, scaled.architecture().rope().dim());
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText(json)
                .architecture()).getMessage();
        assertTrue(m.contains("partial_rotary_factor"), m);
    }

    /** The experts as transformers stores them, {@code gate_up_proj [experts, 2 d_mlp, d_model]}: the same logits. */
    @Test
    void expertsSavedByTransformersLoad(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("mistral4");
        Path saved = tmp.resolve("saved");
        Fixtures.writeEdited(fixture, saved, (name, t) -> name.contains(".mlp.experts.")
                ? t.transpose(1, 2).contiguous() : t);
        Files.copy(fixture.resolve("reference.safetensors"), saved.resolve("reference.safetensors"));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(saved);
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            assertArrayEquals(new long[] {8, 2 * 16, 32}, SafeTensorsFile.open(saved.resolve("model.safetensors"))
                    .info("model.layers.1.mlp.experts.gate_up_proj").shape(), "transformers' [experts, 2 I, d]");
            assertTrue(model.runWithHooks(reference.tensor("input_ids")).allclose(reference.tensor("logits"), 1e-4,
                    1e-4));
        }
    }

    /**
     * In bfloat16 each token's experts and weights are those of Mistral4TopkRouter worked out here from the router's
     * logits, rounding to bfloat16 where it does: the softmax, the groups' two-best sums, the weights' sum and
     * quotient. Tokens whose choice ties (equal group sums or scores at the edge of the choice) are left out: which
     * of equal values libtorch's unsorted top-k keeps is its own.
     */
    @Test
    void groupedRoutingRoundsAsMistral4TopkRouterInBfloat16() {
        int experts = 8;
        int groups = 4;
        int topGroups = 2;
        int k = 3;
        HookedAutoConfig config = TinyConfigs.of("mistral4").with(Map.of("n_routed_experts", experts,
                "n_group", groups, "topk_group", topGroups, "num_experts_per_tok", k, "initializer_range", 0.5));
        long[] ids = new long[4 * 16]; // four prompts of the tiny model's 16 positions
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (13L * i + 5) % config.vocabSize();
        }
        String b = "blocks.1.mlp.";
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 9, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(ids, 4, 16), CacheSpec.only(b + "hook_router_logits",
                     b + "hook_expert_indices", b + "hook_expert_weights"))) {
            float[] logits = out.cache().get(b + "hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get(b + "hook_expert_indices").toLongArray();
            float[] weights = out.cache().get(b + "hook_expert_weights").toFloatArray();
            int checked = 0;
            for (int t = 0; t < ids.length; t++) {
                float[] score = new float[experts];
                double max = Double.NEGATIVE_INFINITY;
                for (int e = 0; e < experts; e++) {
                    max = Math.max(max, logits[t * experts + e]);
                }
                double total = 0;
                for (int e = 0; e < experts; e++) {
                    total += Math.exp(logits[t * experts + e] - max);
                }
                for (int e = 0; e < experts; e++) {
                    score[e] = Bfloat16.round((float) (Math.exp(logits[t * experts + e] - max) / total));
                }
                float[] group = new float[groups];
                for (int g = 0; g < groups; g++) {
                    group[g] = Bfloat16.round(score[2 * g] + score[2 * g + 1]); // two experts a group: both best
                }
                Integer[] order = {0, 1, 2, 3};
                java.util.Arrays.sort(order, (x, y) -> Float.compare(group[y], group[x]));
                if (group[order[topGroups - 1]] == group[order[topGroups]]) {
                    continue;
                }
                java.util.List<Integer> allowed = new java.util.ArrayList<>();
                for (int j = 0; j < topGroups; j++) {
                    allowed.add(2 * order[j]);
                    allowed.add(2 * order[j] + 1);
                }
                allowed.sort((x, y) -> Float.compare(score[y], score[x]));
                if (score[allowed.get(k - 1)] == score[allowed.get(k)]) {
                    continue;
                }
                float sum = Bfloat16.round(score[allowed.get(0)] + score[allowed.get(1)] + score[allowed.get(2)]);
                java.util.Map<Long, Float> expected = new java.util.HashMap<>();
                for (int j = 0; j < k; j++) {
                    expected.put((long) allowed.get(j), Bfloat16.round(score[allowed.get(j)] / sum));
                }
                for (int j = 0; j < k; j++) {
                    Float w = expected.get(chosen[t * k + j]);
                    assertTrue(w != null, "token " + t + " chose expert " + chosen[t * k + j] + ", not one of "
                            + expected.keySet());
                    assertEquals(w, weights[t * k + j], 0, "token " + t + " expert "
                            + chosen[t * k + j]);
                }
                checked++;
            }
            assertTrue(checked > ids.length / 2, checked + " of " + ids.length + " tokens without a tie");
        }
    }
}

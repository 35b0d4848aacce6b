package io.arrakis.model;

import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * gpt-oss on its Hugging Face fixture (4 experts, top 2; a sliding and a full layer; YaRN): the attention sinks, the
 * top-k-then-softmax routing and the interleaved, clamped experts against values recomputed in plain Java from the
 * hooks and the checkpoint's own tensors; the configuration's keys; and the quantized checkpoints it refuses.
 */
class GptOssTest {

    private static Path gptOss() {
        return Fixtures.huggingFace("gpt_oss");
    }

    /** Each pattern entry is exp(score) / (sum of exp(score) over visible keys + exp(sink of the head)). */
    @Test
    void theSinkTakesItsShareOfEveryRowOfThePattern() {
        Path dir = gptOss();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            assertTrue(model.config().attentionSinks());
            for (int layer = 0; layer < 2; layer++) {
                float[] sinks = weights.tensor("model.layers." + layer + ".self_attn.sinks").toFloatArray();
                float[] scores = out.cache().get("blocks." + layer + ".attn.hook_attn_scores").toFloatArray();
                float[] pattern = out.cache().get("blocks." + layer + ".attn.hook_pattern").toFloatArray();
                assertEquals(2 * 4 * 10 * 10, pattern.length);
                double smallestShare = 1;
                for (int row = 0; row < 2 * 4 * 10; row++) {
                    int head = row / 10 % 4;
                    double total = Math.exp(sinks[head]);
                    for (int k = 0; k < 10; k++) {
                        total += Math.exp(scores[row * 10 + k]); // exp(-inf) = 0 where masked
                    }
                    double rowSum = 0;
                    for (int k = 0; k < 10; k++) {
                        assertEquals(Math.exp(scores[row * 10 + k]) / total, pattern[row * 10 + k], 1e-6);
                        rowSum += pattern[row * 10 + k];
                    }
                    assertEquals(1 - Math.exp(sinks[head]) / total, rowSum, 1e-6);
                    smallestShare = Math.min(smallestShare, Math.exp(sinks[head]) / total);
                }
                assertTrue(smallestShare > 0, "every row gives the sink a share");
            }
        }
    }

    @Test
    void gptOssRoutesEachTokenBySoftmaxOverItsTopLogits() {
        Path dir = gptOss();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            for (int layer = 0; layer < 2; layer++) {
                String b = "blocks." + layer + ".mlp.";
                float[] l = out.cache().get(b + "hook_router_logits").toFloatArray();
                long[] chosen = out.cache().get(b + "hook_expert_indices").toLongArray();
                float[] w = out.cache().get(b + "hook_expert_weights").toFloatArray();
                for (int t = 0; t < 20; t++) {
                    int best = 0;
                    for (int e = 1; e < 4; e++) {
                        best = l[t * 4 + e] > l[t * 4 + best] ? e : best;
                    }
                    int second = best == 0 ? 1 : 0;
                    for (int e = 0; e < 4; e++) {
                        second = e != best && l[t * 4 + e] > l[t * 4 + second] ? e : second;
                    }
                    assertEquals(best, chosen[t * 2], "token " + t);
                    assertEquals(second, chosen[t * 2 + 1], "token " + t);
                    double first = 1 / (1 + Math.exp(l[t * 4 + second] - l[t * 4 + best]));
                    assertEquals(first, w[t * 2], 1e-6);
                    assertEquals(1 - first, w[t * 2 + 1], 1e-6);
                }
            }
        }
    }

    /**
     * An expert's gate takes the even columns of the fused {@code gate_up_proj} (and its bias), its up projection the
     * odd ones: each expert's hook_pre and hook_pre_linear rows, recomputed from the checkpoint tensors for the tokens
     * routed to it.
     */
    @Test
    void gateAndUpAreTheInterleavedColumnsOfTheFusedProjection() {
        Path dir = gptOss();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            String p = "model.layers.0.";
            Tensor x = out.cache().get("blocks.0.hook_resid_mid")
                    .rmsNorm(weights.tensor(p + "post_attention_layernorm.weight"), model.config().normEps())
                    .reshape(20, 64);
            long[] chosen = out.cache().get("blocks.0.mlp.hook_expert_indices").toLongArray();
            for (int e = 0; e < 4; e++) {
                Tensor w = weights.tensor(p + "mlp.experts.gate_up_proj").select(0, e);      // [d_model, 2 d_mlp]
                Tensor bias = weights.tensor(p + "mlp.experts.gate_up_proj_bias").select(0, e);
                float[] gate = x.matmul(w.slice(1, 0, 256, 2)).add(bias.slice(0, 0, 256, 2)).toFloatArray();
                float[] up = x.matmul(w.slice(1, 1, 256, 2)).add(bias.slice(0, 1, 256, 2)).toFloatArray();
                float[] hookedGate = out.cache().get("blocks.0.mlp.experts." + e + ".hook_pre").toFloatArray();
                float[] hookedUp = out.cache().get("blocks.0.mlp.experts." + e + ".hook_pre_linear").toFloatArray();
                int row = 0;
                for (int t = 0; t < 20; t++) {
                    if (chosen[t * 2] != e && chosen[t * 2 + 1] != e) {
                        continue;
                    }
                    for (int i = 0; i < 128; i++) {
                        assertEquals(gate[t * 128 + i], hookedGate[row * 128 + i], 1e-5, "expert " + e + " token " + t);
                        assertEquals(up[t * 128 + i], hookedUp[row * 128 + i], 1e-5, "expert " + e + " token " + t);
                    }
                    row++;
                }
                assertEquals(row * 128, hookedGate.length, "expert " + e + " saw exactly its tokens");
            }
        }
    }

    /**
     * The experts' activation {@code (clamp(up, -7, 7) + 1) * g * sigmoid(1.702 g)}, {@code g = clamp(gate, max 7)}:
     * gate and up replaced through their hooks by values from -10 to 10, beyond both clamps.
     */
    @Test
    void theExpertActivationIsTheClampedSwiglu() {
        Path dir = gptOss();
        Hook ramp = (a, name) -> {
            float[] v = new float[(int) a.numel()];
            for (int i = 0; i < v.length; i++) {
                v[i] = -10f + 20f * i / Math.max(1, v.length - 1);
            }
            return Tensor.of(name.endsWith("hook_pre") ? v : reversed(v), a.shape());
        };
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.runWithHooks(Fixtures.referenceInputIds(dir), CacheSpec.all(), HookedAutoModel.HookSpec.matching(
                     n -> n.matches("blocks\\.1\\.mlp\\.experts\\.\\d\\.hook_pre(_linear)?"), ramp))) {
            int checked = 0;
            for (int e = 0; e < 4; e++) {
                String b = "blocks.1.mlp.experts." + e + ".";
                float[] gate = out.cache().get(b + "hook_pre").toFloatArray();
                float[] up = out.cache().get(b + "hook_pre_linear").toFloatArray();
                float[] post = out.cache().get(b + "hook_post").toFloatArray();
                for (int i = 0; i < post.length; i++) {
                    double g = Math.min(gate[i], 7);
                    double u = Math.max(-7, Math.min(up[i], 7));
                    assertEquals((u + 1) * g / (1 + Math.exp(-1.702 * g)), post[i], 1e-5, "expert " + e + " at " + i);
                }
                checked += post.length;
            }
            assertEquals(20 * 2 * 128, checked, "every token's two experts");
        }
    }

    private static float[] reversed(float[] v) {
        float[] r = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            r[i] = v[v.length - 1 - i];
        }
        return r;
    }

    @Test
    void gptOssConfigurationKeys() {
        HookedAutoConfig defaults = HookedAutoConfig.of("gpt-oss");
        assertEquals(defaults, HookedAutoConfig.of("gpt_oss"));
        assertEquals(128, defaults.numExperts());
        assertEquals(4, defaults.expertsPerToken());
        assertEquals(64, defaults.dHead());
        assertEquals(8, defaults.nKvHeads());
        assertTrue(defaults.attentionSinks() && defaults.qkvBias() && defaults.outBias());
        assertEquals(128, defaults.slidingWindow().getAsInt());
        for (int layer = 0; layer < 36; layer++) {
            assertEquals(layer % 2 == 0, defaults.isSlidingWindowLayer(layer), "layer " + layer);
        }
        // without rotary settings, GptOssConfig's YaRN: factor 32 over 4096 positions, base 150000
        assertEquals(150000.0, defaults.ropeTheta());
        assertEquals(new Rope.Yarn(32.0, 0.1 * Math.log(32.0) + 1, 32.0, 1.0, 4096, false),
                defaults.architecture().rope().scaling());
        assertEquals(defaults.architecture().rope(), defaults.with("rope_scaling", Map.of()).architecture().rope(),
                "an empty rope_scaling leaves the default (rope_scaling or rope_parameters)");
        // the published sizes: gpt-oss-120b are the defaults, gpt-oss-20b has 24 layers of 32 experts
        assertEquals(116_829_156_672L, defaults.parameterCount());
        assertEquals(20_914_757_184L, defaults.with(Map.of("num_hidden_layers", 24, "num_local_experts", 32))
                .parameterCount());

        HookedAutoConfig fixture = HookedAutoConfig.fromJson(gptOss().resolve("config.json"));
        assertEquals(4, fixture.numExperts());
        assertEquals(4, fixture.slidingWindow().getAsInt());
        assertTrue(fixture.isSlidingWindowLayer(0) && !fixture.isSlidingWindowLayer(1));
        assertTrue(fixture.architecture().rope().scaling() instanceof Rope.Yarn);
        // a transformers 4 file gives the same settings as rope_scaling and a top-level rope_theta
        HookedAutoConfig legacy = defaults.with(Map.of("rope_theta", 1e4, "rope_scaling", Map.of("rope_type", "yarn",
                "factor", 8.0, "original_max_position_embeddings", 2048)));
        assertEquals(1e4, legacy.ropeTheta());
        assertEquals(8.0, ((Rope.Yarn) legacy.architecture().rope().scaling()).factor());
        // the modeling file never reads hidden_act
        assertEquals("tanh", defaults.with("hidden_act", "tanh").activation());
        HookedAutoConfig unbiased = defaults.with("attention_bias", false);
        assertTrue(!unbiased.qkvBias() && !unbiased.outBias());
        assertTrue(unbiased.parameterCount() < defaults.parameterCount());

        String m = assertThrows(IllegalArgumentException.class, () -> defaults.with("sliding_window", null)).getMessage();
        assertTrue(m.contains("sliding_window = null") && m.contains("sliding_attention"), m);
        Map<String, Object> allFull = new LinkedHashMap<>();
        allFull.put("sliding_window", null);
        allFull.put("layer_types", java.util.Collections.nCopies(36, "full_attention"));
        assertTrue(defaults.with(allFull).slidingWindow().isEmpty(), "without sliding layers no window is needed");
        m = assertThrows(IllegalArgumentException.class, () -> defaults.with("layer_types", List.of("full_attention")))
                .getMessage();
        assertTrue(m.contains("layer_types") && m.contains("num_hidden_layers = 36"), m);
        m = assertThrows(IllegalArgumentException.class, () -> defaults.with(Map.of("num_hidden_layers", 1,
                "layer_types", List.of("chunked_attention")))).getMessage();
        assertTrue(m.contains("layer_types") && m.contains("chunked_attention"), m);
        m = assertThrows(IllegalArgumentException.class, () -> defaults.with("num_experts_per_tok", 129)).getMessage();
        assertTrue(m.contains("num_experts_per_tok = 129") && m.contains("num_local_experts = 128"), m);
        // the published files' activation constants are the experts' own; others describe a different model
        assertEquals(defaults.architecture(), defaults.with(Map.of("swiglu_limit", 7.0, "swiglu_alpha", 1.702))
                .architecture());
        m = assertThrows(IllegalArgumentException.class, () -> defaults.with("swiglu_limit", 10.0)).getMessage();
        assertTrue(m.contains("swiglu_limit = 10.0") && m.contains("7.0"), m);
        m = assertThrows(IllegalArgumentException.class, () -> defaults.with("swiglu_alpha", 1.0)).getMessage();
        assertTrue(m.contains("swiglu_alpha = 1.0") && m.contains("1.702"), m);
    }

    /** The published checkpoints store the experts in MXFP4 ({@code _blocks}, {@code _scales}); they are refused by name. */
    @Test
    void quantizedExpertsAreRefusedNamingTheTensor(@TempDir Path dir) throws Exception {
        HookedAutoConfig config = TinyConfigs.of("gpt-oss").with(Map.of("num_local_experts", 4, "num_experts_per_tok", 2));
        String quantized = "model.layers.0.mlp.experts.gate_up_proj";
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 1, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                if (!name.equals(quantized)) {
                    tensors.put(name, source.load(name));
                }
            }
            // 32 values per block: [experts, 2 d_mlp, d_model / 32, 16 bytes] and one scale per block
            tensors.put(quantized + "_blocks", Tensor.zeros(new long[] {4, 96, 1, 16}, DType.UINT8, Device.CPU));
            tensors.put(quantized + "_scales", Tensor.zeros(new long[] {4, 96, 1}, DType.UINT8, Device.CPU));
            Fixtures.writeCheckpoint(config, tensors, dir);
            String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(dir))
                    .getMessage();
            assertTrue(m.contains("'" + quantized + "'") && m.contains("MXFP4") && m.contains("_blocks"), m);
        }
    }

    @Test
    void aTinyGptOssRunsWithEveryExpertHookShaped() {
        HookedAutoConfig config = TinyConfigs.of("gpt-oss").with(Map.of("num_local_experts", 3, "num_experts_per_tok", 2));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {1, 2, 3, 4, 5, 6}, 2, 3))) {
            assertArrayEquals(new long[] {2, 3, 3}, out.cache().get("blocks.0.mlp.hook_router_logits").shape());
            long routed = 0;
            for (int e = 0; e < 3; e++) {
                long[] shape = out.cache().get("blocks.0.mlp.experts." + e + ".hook_post").shape();
                assertEquals(48, shape[1]);
                routed += shape[0];
            }
            assertEquals(2 * 3 * 2, routed, "each of the 6 tokens went to 2 experts");
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * qwen3, olmo2, gemma2 and gemma3: their configuration classes' defaults ({@code transformers} 5.17), their fixture
 * configs, the values they refuse, and the hooks of their query/key norms, output norms and soft-capping. Parity with
 * Hugging Face is {@link ModelParityTest}'s.
 */
class QkNormAndSoftcapFamiliesTest {

    // --------------------------------------------------------------------------------------- defaults

    @Test
    void qwen3Defaults() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3");
        assertEquals("qwen3", c.family());
        assertEquals(151936, c.vocabSize());
        assertEquals(4096, c.dModel());
        assertEquals(22016, c.dMlp());
        assertEquals(32, c.nLayers());
        assertEquals(32, c.nHeads());
        assertEquals(32, c.nKvHeads());
        assertEquals(128, c.dHead());
        assertEquals(32768, c.maxPositions());
        assertEquals(1e-6, c.normEps());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(128, c.rotaryDim());
        assertEquals(28, c.raw().get("max_window_layers"));
        assertEquals(4096, c.raw().get("sliding_window"));
        assertEquals(OptionalInt.empty(), c.slidingWindow(), "use_sliding_window is false");
        assertFalse(c.tiedEmbeddings() || c.qkvBias() || c.outBias() || c.mlpBias());
        assertNull(c.raw().get("bos_token_id"));
        assertEquals(Architecture.QkNorm.PER_HEAD, c.architecture().qkNorm());
        HookedAutoConfig biased = c.with("attention_bias", true);
        assertTrue(biased.qkvBias() && biased.outBias());
        long d = 4096;
        long perLayer = 4 * d * d + 2 * 128 + 3 * d * 22016 + 2 * d; // q, k, v, o; q_norm, k_norm; MLP; two norms
        assertEquals(32 * perLayer + 2 * 151936 * d + d, c.parameterCount());
    }

    @Test
    void olmo2Defaults() {
        HookedAutoConfig c = HookedAutoConfig.of("olmo2");
        assertEquals(50304, c.vocabSize());
        assertEquals(4096, c.dModel());
        assertEquals(11008, c.dMlp());
        assertEquals(32, c.nLayers());
        assertNull(c.raw().get("num_key_value_heads"));
        assertEquals(32, c.nKvHeads(), "None means num_attention_heads");
        assertEquals(128, c.dHead());
        assertEquals(2048, c.maxPositions());
        assertEquals(1e-5, c.normEps());
        assertEquals(1, c.raw().get("pad_token_id"));
        assertEquals(50279, c.raw().get("eos_token_id"));
        assertFalse(c.tiedEmbeddings());
        Architecture a = c.architecture();
        assertEquals(Architecture.QkNorm.WHOLE, a.qkNorm());
        assertFalse(a.inputNorms());
        assertTrue(a.outputNorms());
        long d = 4096;
        long perLayer = 4 * d * d + 2 * d + 3 * d * 11008 + 2 * d; // q, k, v, o; q_norm, k_norm over d; MLP; post-norms
        assertEquals(32 * perLayer + 2 * 50304 * d + d, c.parameterCount());
    }

    @Test
    void gemma2Defaults() {
        HookedAutoConfig c = HookedAutoConfig.of("gemma2");
        assertEquals(256000, c.vocabSize());
        assertEquals(2304, c.dModel());
        assertEquals(9216, c.dMlp());
        assertEquals(26, c.nLayers());
        assertEquals(8, c.nHeads());
        assertEquals(4, c.nKvHeads());
        assertEquals(256, c.dHead());
        assertEquals("gelu_pytorch_tanh", c.activation());
        assertEquals(8192, c.maxPositions());
        assertTrue(c.normAddsOne());
        assertEquals(48.0, c.embeddingScale(), "sqrt(2304)");
        assertTrue(c.tiedEmbeddings());
        assertEquals(OptionalInt.of(4096), c.slidingWindow());
        assertTrue(c.isSlidingWindowLayer(0), "layer_types None: every other layer slides, from the first");
        assertFalse(c.isSlidingWindowLayer(1));
        assertTrue(c.isSlidingWindowLayer(24));
        assertFalse(c.isSlidingWindowLayer(25));
        Architecture a = c.architecture();
        assertEquals(256.0, a.attentionScalar());
        assertEquals(50.0, a.attentionSoftcap());
        assertEquals(30.0, a.logitSoftcap());
        assertTrue(a.inputNorms() && a.outputNorms());
        assertEquals(Architecture.QkNorm.NONE, a.qkNorm());
        assertEquals(2_614_341_888L, c.parameterCount(), "google/gemma-2-2b");
    }

    @Test
    void gemma3Defaults() {
        HookedAutoConfig c = HookedAutoConfig.of("gemma3");
        assertEquals(c, HookedAutoConfig.of("gemma3_text"), "the model_type spelling");
        assertEquals(262208, c.vocabSize());
        assertEquals(2304, c.dModel());
        assertEquals(26, c.nLayers());
        assertEquals(256, c.dHead());
        assertEquals(131072, c.maxPositions());
        assertEquals(1e6, c.ropeTheta(), "full-attention layers");
        for (int i = 0; i < 26; i++) {
            assertEquals((i + 1) % 6 != 0, c.isSlidingWindowLayer(i), "sliding_window_pattern 6, layer " + i);
            assertEquals(c.isSlidingWindowLayer(i) ? 1e4 : 1e6, c.architecture().rope(i).theta(), "layer " + i);
        }
        Architecture a = c.architecture();
        assertEquals(0.0, a.attentionSoftcap());
        assertEquals(0.0, a.logitSoftcap());
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        long d = 2304;
        long perLayer = d * 2048 + 2 * d * 1024 + 2048 * d + 2 * 256 + 3 * d * 9216 + 4 * d;
        assertEquals(26 * perLayer + 262208 * d + d, c.parameterCount());
    }

    // --------------------------------------------------------------------------------------- fixture configs

    @Test
    void fixtureConfigsAreRead() {
        HookedAutoConfig qwen3 = HookedAutoConfig.fromJson(Fixtures.huggingFace("qwen3").resolve("config.json"));
        assertEquals(24, qwen3.dHead(), "head_dim 24, not hidden_size / heads = 16");
        assertEquals(2, qwen3.nKvHeads());
        assertTrue(qwen3.tiedEmbeddings());
        HookedAutoConfig olmo2 = HookedAutoConfig.fromJson(Fixtures.huggingFace("olmo2").resolve("config.json"));
        assertEquals(16, olmo2.dHead());
        assertEquals(1e-5, olmo2.normEps());
        HookedAutoConfig gemma2 = HookedAutoConfig.fromJson(Fixtures.huggingFace("gemma2").resolve("config.json"));
        assertEquals(20.0, gemma2.architecture().attentionScalar());
        assertEquals(2.0, gemma2.architecture().attentionSoftcap());
        assertEquals(3.0, gemma2.architecture().logitSoftcap());
        assertEquals(OptionalInt.of(4), gemma2.slidingWindow());
        assertTrue(gemma2.isSlidingWindowLayer(0) && !gemma2.isSlidingWindowLayer(1));
        HookedAutoConfig gemma3 = HookedAutoConfig.fromJson(Fixtures.huggingFace("gemma3").resolve("config.json"));
        assertEquals("gemma3", gemma3.family());
        assertEquals(1e4, gemma3.architecture().rope(0).theta(), "rope_parameters.sliding_attention");
        assertEquals(1e6, gemma3.architecture().rope(1).theta(), "rope_parameters.full_attention");
        assertEquals(0.0, gemma3.architecture().logitSoftcap(), "final_logit_softcapping null");
    }

    /** transformers 4 files give the sliding layers' base as rope_local_base_freq and the pattern as an int. */
    @Test
    void gemma3OlderKeysGiveTheRotaryBasesAndPattern() {
        HookedAutoConfig c = HookedAutoConfig.of("gemma3").with(Map.of("num_hidden_layers", 4,
                "sliding_window_pattern", 2, "rope_theta", 5e5, "rope_local_base_freq", 2e4));
        assertEquals(List.of(2e4, 5e5, 2e4, 5e5), List.of(c.architecture().rope(0).theta(),
                c.architecture().rope(1).theta(), c.architecture().rope(2).theta(), c.architecture().rope(3).theta()));
        assertEquals(5e5, c.ropeTheta());
        HookedAutoConfig nested = c.with("rope_parameters", Map.of("sliding_attention", Map.of("rope_type", "default",
                "rope_theta", 3e3)));
        assertEquals(3e3, nested.architecture().rope(0).theta(), "rope_parameters wins");
        assertEquals(5e5, nested.architecture().rope(1).theta(), "full layers fall back to rope_theta");
    }

    /**
     * Gemma 3 4B and larger scale the full layers' rotary embedding linearly ({@code rope_scaling}, which
     * {@code transformers} merges into the full layers' object); the sliding layers keep theirs unscaled.
     */
    @Test
    void gemma3ScalesOnlyTheFullLayersRotary() {
        HookedAutoConfig older = HookedAutoConfig.of("gemma3").with(Map.of("num_hidden_layers", 2,
                "sliding_window_pattern", 2, "rope_scaling", Map.of("rope_type", "linear", "factor", 8.0)));
        assertEquals(new Rope(256, 1e4, new Rope.Unscaled()), older.architecture().rope(0));
        assertEquals(new Rope(256, 1e6, new Rope.Linear(8.0)), older.architecture().rope(1));
        HookedAutoConfig v5 = HookedAutoConfig.of("gemma3").with(Map.of("num_hidden_layers", 2,
                "sliding_window_pattern", 2, "rope_parameters", Map.of(
                        "full_attention", Map.of("rope_type", "linear", "factor", 8.0, "rope_theta", 1e6),
                        "sliding_attention", Map.of("rope_type", "default", "rope_theta", 1e4))));
        assertEquals(older.architecture().rope(0), v5.architecture().rope(0));
        assertEquals(older.architecture().rope(1), v5.architecture().rope(1));
    }

    /**
     * transformers' YaRN reads {@code truncate} from the top level of {@code rope_parameters}, which per-layer-type
     * parameters never have there, so it truncates whatever a layer type's object says: false is refused.
     */
    @Test
    void gemma3RefusesATruncateItsModelWouldNotRead() {
        Map<String, Object> yarn = Map.of("rope_type", "yarn", "factor", 8.0, "rope_theta", 1e6);
        HookedAutoConfig base = HookedAutoConfig.of("gemma3").with(Map.of("num_hidden_layers", 2, "sliding_window_pattern", 2));
        Map<String, Object> truncating = new java.util.HashMap<>(yarn);
        truncating.put("truncate", true);
        assertEquals(((Rope.Yarn) base.with("rope_parameters", Map.of("full_attention", yarn)).architecture().rope(1)
                .scaling()), base.with("rope_parameters", Map.of("full_attention", truncating)).architecture().rope(1)
                .scaling());
        truncating.put("truncate", false);
        String m = assertThrows(IllegalArgumentException.class,
                () -> base.with("rope_parameters", Map.of("full_attention", truncating))).getMessage();
        assertTrue(m.contains("rope_parameters.full_attention.truncate = false") && m.contains("refused"), m);
    }

    // --------------------------------------------------------------------------------------- refused values

    /** A map of alternating keys and values that may be null (which Map.of refuses). */
    private static Map<String, Object> nullable(Object... keysAndValues) {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            m.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return m;
    }

    private static void assertRefused(HookedAutoConfig base, Map<String, ?> overrides, String... inMessage) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> base.with(overrides));
        for (String s : inMessage) {
            assertTrue(e.getMessage().contains(s), e.getMessage() + " should name " + s);
        }
    }

    @Test
    void valuesThatAreNotImplementedOrInvalidAreRefusedByName() {
        HookedAutoConfig qwen3 = HookedAutoConfig.of("qwen3");
        assertFalse(qwen3.with(nullable("use_sliding_window", true, "sliding_window", null)).isSlidingWindowLayer(0),
                "no window: every layer attends in full, as transformers' Qwen3Config has it");
        assertRefused(qwen3, Map.of("num_hidden_layers", 2, "layer_types", List.of("full_attention")), "layer_types");
        assertRefused(qwen3, Map.of("num_hidden_layers", 1, "layer_types", List.of("chunked_attention")),
                "layer_types", "chunked_attention");

        // Gemma's attention is non-causal where use_bidirectional_attention is true (transformers 5.x)
        assertRefused(HookedAutoConfig.of("gemma"), Map.of("use_bidirectional_attention", true),
                "use_bidirectional_attention", "true");

        HookedAutoConfig gemma2 = HookedAutoConfig.of("gemma2");
        assertRefused(gemma2, Map.of("hidden_size", 2300), "hidden_size", "2300", "num_attention_heads");
        assertRefused(gemma2, Map.of("use_bidirectional_attention", true), "use_bidirectional_attention", "true");
        assertRefused(gemma2, Map.of("attn_logit_softcapping", -1.0), "attn_logit_softcapping", "-1.0");
        assertRefused(gemma2, Map.of("final_logit_softcapping", 0.0), "final_logit_softcapping", "0.0");
        assertRefused(gemma2, Map.of("query_pre_attn_scalar", 0), "query_pre_attn_scalar");
        assertRefused(gemma2, nullable("sliding_window", null), "sliding_window", "null");
        assertFalse(gemma2.with(nullable("sliding_window", null, "layer_types", java.util.Collections.nCopies(26,
                "full_attention"))).slidingWindow().isPresent(), "no window is needed without sliding layers");

        HookedAutoConfig gemma3 = HookedAutoConfig.of("gemma3");
        assertRefused(gemma3, Map.of("rope_scaling", Map.of("rope_type", "proportional", "factor", 8.0)),
                "rope_scaling.rope_type", "proportional");
        assertRefused(gemma3, Map.of("rope_parameters", Map.of("full_attention", Map.of("rope_type", "proportional",
                "factor", 2.0))), "rope_parameters.full_attention.rope_type", "proportional");
        assertRefused(gemma3, Map.of("rope_parameters", Map.of("sliding_attention", Map.of("rope_type", "linear",
                "factor", 2.0, "partial_rotary_factor", 0.5))), "rope_parameters.sliding_attention.partial_rotary_factor");
        assertRefused(gemma3, Map.of("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e4)),
                "rope_parameters", "per layer type");
        assertRefused(gemma3, Map.of("rope_parameters", Map.of("sliding_attention", Map.of("rope_theta", 0.0))),
                "rope_parameters.sliding_attention.rope_theta", "0.0");
        assertRefused(gemma3, Map.of("use_bidirectional_attention", true), "use_bidirectional_attention");
    }

    /**
     * A config.json of the multimodal Gemma3ForConditionalGeneration (model_type gemma3) gives its text model's, on
     * Gemma3TextConfig's defaults (MultimodalCheckpointTest loads such checkpoints).
     */
    @Test
    void gemma3MultimodalConfigGivesItsTextModels(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path json = dir.resolve("config.json");
        Files.writeString(json, "{\"model_type\": \"gemma3\", \"text_config\": {\"hidden_size\": 64}}");
        HookedAutoConfig c = HookedAutoConfig.fromJson(json);
        assertEquals("gemma3", c.family());
        assertEquals(64, c.dModel());
        assertEquals(26, c.nLayers());
    }

    // --------------------------------------------------------------------------------------- hooks

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "olmo2", "gemma3"})
    void queryAndKeyNormsHaveHookPoints(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            List<String> names = List.copyOf(model.hookNames());
            int q = names.indexOf("blocks.1.attn.hook_q");
            int qNormed = names.indexOf("blocks.1.attn.hook_q_normed");
            int kNormed = names.indexOf("blocks.1.attn.hook_k_normed");
            int rotQ = names.indexOf("blocks.1.attn.hook_rot_q");
            assertTrue(q < qNormed && qNormed < kNormed && kNormed < rotQ, names.toString());
            // with the norm weights divided out, each normalised group has a mean square of ms / (ms + eps) ~ 1
            Tensor normed = out.cache().get("blocks.1.attn.hook_q_normed");
            Tensor scales = model.queryNormWeights().select(0, 1);             // [head, d_head]
            Tensor unit = normed.div(scales);
            Tensor meanSquare = family.equals("olmo2")
                    ? unit.reshape(normed.size(0), normed.size(1), -1).pow(2).mean(-1, false)
                    : unit.pow(2).mean(-1, false);
            for (double ms : meanSquare.toDoubleArray()) {
                assertEquals(1.0, ms, 1e-3);
            }
        }
        try (HookedAutoModel gemma2 = HookedAutoModel.fromPretrained(Fixtures.huggingFace("gemma2"))) {
            assertFalse(gemma2.hookNames().contains("blocks.0.attn.hook_q_normed"), "gemma2 has no q/k norms");
            assertNull(gemma2.queryNormWeights());
        }
    }

    /**
     * Zero queries after the norm give every visible key the same score (0, whatever the scale or soft-cap), so the
     * pattern is uniform over them: 1 / (q + 1) in a full layer, 1 / min(q + 1, window) in a sliding one.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "gemma3"})
    void replacingTheNormalisedQueriesChangesThePattern(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            Tensor ids = Tensor.of(new long[] {3, 14, 15, 92, 65, 35, 89, 79}, 1, 8);
            int window = model.config().isSlidingWindowLayer(0) ? model.config().slidingWindow().getAsInt() : 8;
            try (ModelOutput out = model.runWithHooks(ids, CacheSpec.only("blocks.0.attn.hook_pattern"),
                    HookedAutoModel.HookSpec.at("blocks.0.attn.hook_q_normed", (q, n) -> q.mul(0.0)))) {
                float[] pattern = out.cache().get("blocks.0.attn.hook_pattern").toFloatArray(); // [1, head, 8, 8]
                int heads = model.config().nHeads();
                for (int h = 0; h < heads; h++) {
                    for (int qi = 0; qi < 8; qi++) {
                        for (int k = 0; k < 8; k++) {
                            boolean visible = k <= qi && qi - k < window;
                            assertEquals(visible ? 1.0 / Math.min(qi + 1, window) : 0.0, pattern[(h * 8 + qi) * 8 + k],
                                    1e-6, family + " head " + h + " query " + qi + " key " + k);
                        }
                    }
                }
            }
        }
    }

    /** The soft-caps bound what they cap: |scores| < attn_logit_softcapping, |logits| < final_logit_softcapping. */
    @Test
    void softCapsBoundScoresAndLogits() {
        Path dir = Fixtures.huggingFace("gemma2");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            double maxLogit = 0;
            for (float v : out.logits().toFloatArray()) {
                maxLogit = Math.max(maxLogit, Math.abs(v));
            }
            assertTrue(maxLogit < 3.0 && maxLogit > 1.0, "final_logit_softcapping 3: " + maxLogit);
            for (float v : out.cache().get("blocks.1.attn.hook_attn_scores").toFloatArray()) {
                assertTrue(Float.isInfinite(v) || Math.abs(v) < 2.0, "attn_logit_softcapping 2: " + v);
            }
        }
    }

    /**
     * Gemma3Attention keeps {@code attn_logit_softcapping} but passes no soft-cap to its attention, so a value changes
     * nothing, where gemma2's caps the scores. Was: gemma3's scores were capped.
     */
    @Test
    void gemma3LeavesItsAttentionScoresUncappedAsTransformersDoes() {
        Tensor ids = Tensor.of(new long[] {1, 2, 3, 4, 5}, 1, 5);
        for (String family : List.of("gemma2", "gemma3")) {
            HookedAutoConfig plain = TinyConfigs.of(family).with("attn_logit_softcapping", null);
            try (TensorScope scope = TensorScope.open();
                 HookedAutoModel uncapped = HookedAutoModel.create(plain, 3, DType.FLOAT32, Device.CPU);
                 HookedAutoModel capped = HookedAutoModel.create(plain.with("attn_logit_softcapping", 0.05), 3,
                         DType.FLOAT32, Device.CPU);
                 ModelOutput a = uncapped.forward(ids, CacheSpec.only("logits", "blocks.0.attn.hook_attn_scores"));
                 ModelOutput b = capped.forward(ids, CacheSpec.only("logits", "blocks.0.attn.hook_attn_scores"))) {
                boolean same = a.cache().get("blocks.0.attn.hook_attn_scores").allclose(
                        b.cache().get("blocks.0.attn.hook_attn_scores"), 0, 0) && a.logits().allclose(b.logits(), 0, 0);
                assertEquals(family.equals("gemma3"), same, family);
            }
        }
    }

    /** With output norms, hook_attn_out is what joins the residual stream: resid_mid = resid_pre + attn_out. */
    @ParameterizedTest
    @ValueSource(strings = {"olmo2", "gemma2"})
    void attentionOutputIsHookedAfterItsNorm(String family) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace(family));
             ModelOutput out = model.runWithHooks(Tensor.of(new long[] {1, 2, 3, 4, 5}, 1, 5), CacheSpec.all(),
                     HookedAutoModel.HookSpec.at("blocks.0.hook_attn_out", (a, n) -> a.mul(0.0)))) {
            float[] pre = out.cache().get("blocks.0.hook_resid_pre").toFloatArray();
            float[] mid = out.cache().get("blocks.0.hook_resid_mid").toFloatArray();
            for (int i = 0; i < pre.length; i++) {
                assertEquals(pre[i], mid[i], 0.0f, "a zeroed attention output adds nothing");
            }
        }
    }

    /** A random model of each family starts with identity norms: (1 + 0) for gemma3's, 1 for the others. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "olmo2", "gemma2", "gemma3"})
    void randomModelsStartWithIdentityNorms(String family) {
        HookedAutoConfig c = TinyConfigs.of(family);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(c, 5, DType.FLOAT32, Device.CPU)) {
            Tensor q = model.queryNormWeights();
            Tensor out = model.attentionOutNormWeights();
            if (q != null) {
                for (float v : q.toFloatArray()) {
                    assertEquals(1.0f, v);
                }
            }
            if (out != null) {
                for (float v : out.toFloatArray()) {
                    assertEquals(1.0f, v);
                }
            }
            assertTrue(q != null || out != null, family + " has q/k norms or output norms");
        }
    }
}

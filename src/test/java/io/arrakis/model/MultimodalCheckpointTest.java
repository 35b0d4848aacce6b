package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.testing.Close;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Multimodal checkpoints (Gemma 3's, LLaVA's, Mistral 3's, Kimi K2.5's: the config holds the text model's in
 * {@code text_config}, the tensors sit beside a vision tower) load as their language model, which text alone reaches:
 * made here from text fixtures of {@code transformers}, whose results (and gemma3's reference) they must give, or saved
 * by {@code transformers} with its own logits ({@code fixtures-hf-multimodal}).
 */
class MultimodalCheckpointTest {
    private static final Path GEMMA3 = Fixtures.HF_MORE.resolve("gemma3");

    @TempDir
    Path dir;

    /** As published ({@code language_model.model.*}, the tied head stored too) and as transformers saves it now. */
    @ParameterizedTest
    @ValueSource(strings = {"language_model.model.", "model.language_model."})
    void theLanguageModelOfAMultimodalGemma3RunsAsTheTextModel(String prefix) throws IOException {
        Path folder = multimodal(GEMMA3, "gemma3", prefix, Map.of());
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(GEMMA3.resolve("reference.safetensors"));
             HookedAutoModel text = HookedAutoModel.fromPretrained(GEMMA3);
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals("gemma3", model.config().family());
            assertEquals(text.config().parameterCount(), model.config().parameterCount());
            Tensor ids = reference.tensor("input_ids");
            float[] logits = model.runWithHooks(ids).toFloatArray();
            assertArrayEquals(text.runWithHooks(ids).toFloatArray(), logits);
            double[] expected = reference.tensor("logits").toDoubleArray();
            assertEquals(expected.length, logits.length);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
            }
        }
    }

    /**
     * LLaVA's and Mistral 3's language models (Llama, Mistral, Ministral 3; untied heads, stored as
     * {@code language_model.lm_head.} or {@code lm_head.}) give what the text models' own checkpoints give.
     */
    @ParameterizedTest
    @CsvSource({"llava, llama, language_model.model.", "llava, llama, model.language_model.",
            "mistral3, mistral, language_model.model.", "mistral3, mistral, model.language_model.",
            "mistral3, ministral3, model.language_model.", "mistral3, mistral4, model.language_model."})
    void theLanguageModelsOfLlavaAndMistral3RunAsTheirTextModels(String type, String family, String prefix)
            throws IOException {
        Path textFolder = Fixtures.huggingFace(family);
        Path folder = multimodal(textFolder, type, prefix, Map.of());
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel text = HookedAutoModel.fromPretrained(textFolder);
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals(family, model.config().family());
            Tensor ids = Tensor.of(new long[] {1, 5, 9, 2, 7, 3}, 1, 6);
            assertArrayEquals(text.runWithHooks(ids).toFloatArray(), model.runWithHooks(ids).toFloatArray());
        }
    }

    /**
     * LLaVA-NeXT's, LLaVA-OneVision's, InternVL's, Aya Vision's and Command A Vision's language models, named as
     * published or as transformers saves them, give what the text models' own checkpoints give; Aya Vision's and
     * Command A Vision's plain heads leave out the Cohere text model's {@code logit_scale}.
     */
    @ParameterizedTest
    @CsvSource({"llava_next, llama, language_model.model.", "llava_next, mistral, model.language_model.",
            "llava_onevision, qwen2, language_model.model.", "internvl, qwen2, language_model.model.",
            "internvl, qwen3, model.language_model.", "aya_vision, cohere2, language_model.model.",
            "aya_vision, cohere, model.language_model.", "cohere2_vision, cohere2, model.language_model."})
    void theLanguageModelsOfMoreVisionModelsRunAsTheirTextModels(String type, String family, String prefix)
            throws IOException {
        Path textFolder = Fixtures.huggingFace(family);
        Map<String, Object> text = config(textFolder);
        // the head is untied as the text fixture's is, whatever the whole model's default
        Path folder = multimodal(textFolder, type, prefix, Map.of("tie_word_embeddings",
                text.getOrDefault("tie_word_embeddings", false)));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel textModel = HookedAutoModel.fromPretrained(textFolder);
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals(family, model.config().family());
            Tensor ids = Tensor.of(new long[] {1, 5, 9, 2, 7, 3}, 1, 6);
            double scale = family.startsWith("cohere") ? textModel.config().architecture().logitScale() : 1.0;
            assertTrue(scale != 1.0 || !family.startsWith("cohere"), "the Cohere fixtures scale their logits");
            float[] expected = textModel.runWithHooks(ids).toFloatArray();
            float[] actual = model.runWithHooks(ids).toFloatArray();
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i] / scale, actual[i], 1e-5 * Math.max(1, Math.abs(expected[i] / scale)),
                        "logit " + i);
            }
        }
    }

    /**
     * The same models as transformers saves them (their names, their tied or untied heads, Aya Vision's and Command A
     * Vision's unscaled logits over a Cohere 2 that scales them) give transformers' own logits for text alone.
     */
    @ParameterizedTest
    @CsvSource({"llava_next, llama", "llava_onevision, qwen2", "internvl, qwen2", "aya_vision, cohere2",
            "cohere2_vision, cohere2", "glm4v_moe, glm4-moe", "glm4v, glm4"})
    void visionModelsSavedByTransformersGiveItsLogitsForText(String type, String family) {
        Path folder = Fixtures.HF_MULTIMODAL.resolve(type);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(folder.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals(family, model.config().family());
            Close.assertAllClose(reference.tensor("logits").toDoubleArray(),
                    model.runWithHooks(reference.tensor("input_ids")).toDoubleArray(), 1e-5, 1e-5, type);
        }
    }

    /**
     * GLM-4.5V's and GLM-4.1V's text configs take their config classes' defaults where they differ from GLM-4.5's
     * and GLM-4's: GLM-4.5V's heads {@code hidden_size / num_attention_heads} wide where the file gives no
     * {@code head_dim}, as its attention falls back, and no query and key norms whatever {@code use_qk_norm} says;
     * GLM-4.1V's 4096 / 32 heads rotated whole, its norms' epsilon and positions.
     */
    @Test
    void glmVisionTextConfigsHaveTheirOwnDefaults() {
        String rope = "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0,"
                + " \"mrope_section\": [8, 12, 12]";
        HookedAutoConfig c = HookedAutoConfig.fromJsonText("{\"model_type\": \"glm4v_moe\", \"text_config\":"
                + " {\"num_hidden_layers\": 2, \"hidden_size\": 1024, \"num_attention_heads\": 16,"
                + " \"use_qk_norm\": true, " + rope + ", \"partial_rotary_factor\": 0.5}}}");
        assertEquals("glm4-moe", c.family());
        assertEquals(List.of(151_424, 65_536, 64), List.of(c.vocabSize(), c.maxPositions(), c.dHead()));
        assertTrue(c.architecture().qkvBias());
        assertEquals(Architecture.QkNorm.NONE, c.architecture().qkNorm());
        HookedAutoConfig v = HookedAutoConfig.fromJsonText("{\"model_type\": \"glm4v\", \"text_config\":"
                + " {\"num_hidden_layers\": 2, " + rope + "}}}");
        assertEquals("glm4", v.family());
        assertEquals(List.of(4096, 128, 128, 32_768), List.of(v.dModel(), v.dHead(), v.architecture().rope().dim(),
                v.maxPositions()));
        assertEquals(1e-5, v.architecture().normEps());
    }

    /**
     * GLM-4.1V's rotary embedding turns as many features of each head as transformers' does (its
     * {@code Glm4vTextRotaryEmbedding} on the same config): all unless a fraction is given, in its rotary object (as
     * {@code rope_parameters} or 4.x's {@code rope_scaling}) or at the text config's top level, which transformers
     * moves into it; of a {@code head_dim} the file gives, which its attention does not read, its heads
     * {@code hidden_size / num_attention_heads} wide whatever.
     */
    @Test
    void glm41vsRotaryTurnsWhatTransformersTurns() {
        String rope = "{\"rope_type\": \"default\", \"rope_theta\": 10000.0, \"mrope_section\": [8, 12, 12]";
        Map<String, Integer> rotated = new LinkedHashMap<>();
        rotated.put("\"rope_parameters\": " + rope + "}", 128);
        rotated.put("\"rope_parameters\": " + rope + ", \"partial_rotary_factor\": 0.5}", 64);
        rotated.put("\"rope_scaling\": " + rope + ", \"partial_rotary_factor\": 0.5}", 64);
        rotated.put("\"partial_rotary_factor\": 0.5, \"rope_scaling\": " + rope + "}", 64);
        rotated.put("\"head_dim\": 64, \"rope_parameters\": " + rope + "}", 64);
        rotated.put("\"head_dim\": 64, \"partial_rotary_factor\": 0.5, \"rope_parameters\": " + rope + "}", 32);
        rotated.forEach((keys, dims) -> {
            HookedAutoConfig c = HookedAutoConfig.fromJsonText("{\"model_type\": \"glm4v\", \"text_config\": {"
                    + "\"num_hidden_layers\": 2, \"hidden_size\": 4096, \"num_attention_heads\": 32, " + keys + "}}");
            assertEquals("glm4", c.family());
            assertEquals(128, c.dHead());
            assertEquals(dims, c.architecture().rope().dim(), keys);
        });
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText("{\"model_type\":"
                + " \"glm4v\", \"text_config\": {\"hidden_size\": 4096, \"num_attention_heads\": 32,"
                + " \"head_dim\": 256}}")).getMessage();
        assertTrue(m.contains("rotates 256.0 features of heads of hidden_size / num_attention_heads = 128"), m);
    }

    /**
     * Whose key ties the head, as transformers 5.17 ties it: InternVL's whole model's key, true by default, whatever
     * its text model's says; LLaVA-NeXT's likewise, false by default; LLaVA-OneVision's, GLM-4.1V's and GLM-4.5V's
     * where either key says so.
     */
    @Test
    void theVisionModelsHeadsAreTiedByTheKeysTransformersReads() throws IOException {
        Path qwen2 = Fixtures.huggingFace("qwen2");
        Path llama = Fixtures.huggingFace("llama");
        Map<String, Object> untied = Map.of("tie_word_embeddings", false);
        assertTrue(tied(multimodal(qwen2, "internvl", "model.language_model.", Map.of(), untied, "lm_head.weight")));
        assertFalse(tied(multimodal(qwen2, "internvl", "model.language_model.", untied, Map.of("tie_word_embeddings",
                true), "")));
        assertFalse(tied(multimodal(llama, "llava_next", "model.language_model.", Map.of(), Map.of(), "")));
        assertTrue(tied(multimodal(llama, "llava_next", "model.language_model.", Map.of("tie_word_embeddings", true),
                untied, "lm_head.weight")));
        assertTrue(tied(multimodal(qwen2, "llava_onevision", "model.language_model.", Map.of("tie_word_embeddings",
                true), untied, "lm_head.weight")));
        assertTrue(tied(multimodal(qwen2, "llava_onevision", "model.language_model.", untied, Map.of(
                "tie_word_embeddings", true), "lm_head.weight")));
        assertFalse(tied(multimodal(qwen2, "llava_onevision", "model.language_model.", untied, untied, "")));
        // GLM-4.1V's and GLM-4.5V's likewise
        for (String type : List.of("glm4v", "glm4v_moe")) {
            for (boolean top : new boolean[] {false, true}) {
                for (boolean text : new boolean[] {false, true}) {
                    HookedAutoConfig c = HookedAutoConfig.fromJsonText("{\"model_type\": \"" + type + "\","
                            + " \"tie_word_embeddings\": " + top + ", \"text_config\": {\"num_hidden_layers\": 2,"
                            + " \"head_dim\": 128, \"tie_word_embeddings\": " + text + "}}");
                    assertEquals(top || text, c.tiedEmbeddings(), type + ", " + top + ", " + text);
                }
            }
        }
    }

    private static boolean tied(Path folder) {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            return model.config().tiedEmbeddings();
        }
    }

    /**
     * Gemma3ForConditionalGeneration's head never soft-caps: a text_config that sets final_logit_softcapping (as one
     * carried over from Gemma 2 may) still gives the reference's logits, which were computed without it.
     */
    @Test
    void theMultimodalGemma3HeadDoesNotSoftCap() throws IOException {
        Path folder = multimodal(GEMMA3, "gemma3", "model.language_model.", Map.of(),
                Map.of("final_logit_softcapping", 1.0), "");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel text = HookedAutoModel.fromPretrained(GEMMA3);
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            Tensor ids = Tensor.of(new long[] {2, 5, 9, 17, 33}, 1, 5);
            assertArrayEquals(text.runWithHooks(ids).toFloatArray(), model.runWithHooks(ids).toFloatArray());
        }
    }

    /** LLaVA's language model may be a family with a plain head (Qwen 2 here); one with more to its head is refused. */
    @Test
    void llavaTakesTheTextModelsWhoseHeadIsPlain() throws IOException {
        Path qwen2 = Fixtures.huggingFace("qwen2");
        Path folder = multimodal(qwen2, "llava", "language_model.model.", Map.of(), Map.of("model_type", "qwen2"), "");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel text = HookedAutoModel.fromPretrained(qwen2);
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            Tensor ids = Tensor.of(new long[] {1, 5, 9, 2}, 1, 4);
            assertArrayEquals(text.runWithHooks(ids).toFloatArray(), model.runWithHooks(ids).toFloatArray());
        }
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText(
                "{\"model_type\": \"llava\", \"text_config\": {\"model_type\": \"gemma2\"}}")).getMessage();
        assertTrue(m.contains("its language model is read here where it is llama, mistral, qwen2"), m);
    }

    /** Refusals name the tensors as the file stores them, and a file of both layouts is refused as such. */
    @Test
    void refusalsNameTheStoredTensors() throws IOException {
        Path missing = multimodal(GEMMA3, "gemma3", "language_model.model.", Map.of(), Map.of(), "model.norm.weight");
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(missing))
                .getMessage();
        assertTrue(m.contains("the checkpoint has no tensor 'language_model.model.norm.weight'"), m);
        Path both = multimodal(GEMMA3, "gemma3", "language_model.model.", Map.of());
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(both.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(name, weights.tensor(name).copy());
            }
            tensors.put("model.language_model.norm.weight", weights.tensor("language_model.model.norm.weight").copy());
            SafeTensorsWriter.write(both.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(both)).getMessage();
        assertTrue(m.contains("holds a language model under both language_model.model. and model.language_model."), m);
    }

    /**
     * Qwen2-VL's and Qwen2.5-VL's text model is Qwen 2 with M-RoPE, which for text is Qwen 2's rotary: the config as
     * transformers 4 wrote it (text keys at the top, {@code rope_scaling} of type mrope, tensors under the text model's
     * own names beside {@code visual.}) and as transformers 5 saves it ({@code text_config}, {@code rope_parameters}
     * with {@code mrope_section}, tensors under {@code model.language_model.}) give what the qwen2 fixture gives with
     * the same rotary base, 1e6 here (the VL text configs' default, which a config without one gets; Qwen 2's is 1e4).
     */
    @ParameterizedTest
    @CsvSource({"qwen2_vl, false, true", "qwen2_5_vl, false, true", "qwen2_5_vl, true, true",
            "qwen2_5_vl, false, false", "qwen2_5_vl, true, false"})
    void qwenVlRunsAsItsQwen2TextModel(String type, boolean savedByTransformers5, boolean givesTheta)
            throws IOException {
        Path qwen2 = Fixtures.huggingFace("qwen2");
        Path reference = Files.createTempDirectory(dir, "qwen2-theta-1e6");
        for (Path file : io.arrakis.io.HubCacheLayout.filesOf(qwen2)) {
            Files.copy(file, reference.resolve(file.getFileName()));
        }
        Map<String, Object> textConfig = config(qwen2);
        textConfig.put("rope_parameters", Map.of("rope_type", "default", "rope_theta", 1e6));
        textConfig.put("rms_norm_eps", 1e-5);
        Files.writeString(reference.resolve("config.json"), Json.write(textConfig));
        Path folder = qwenVl(qwen2, type, savedByTransformers5, givesTheta, List.of(2L, 1L, 1L));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel text = HookedAutoModel.fromPretrained(reference);
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals("qwen2", model.config().family());
            Tensor ids = Tensor.of(new long[] {1, 5, 9, 2, 7, 3, 11}, 1, 7);
            assertArrayEquals(text.runWithHooks(ids).toFloatArray(), model.runWithHooks(ids).toFloatArray());
        }
        for (List<Long> sections : List.of(List.of(2L, 2L, 2L), List.of(6L, -1L, -1L))) {
            Path wrong = qwenVl(qwen2, type, savedByTransformers5, givesTheta, sections);
            String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromPretrained(wrong))
                    .getMessage();
            assertTrue(m.contains("mrope_section"), m);
        }
    }

    /**
     * Qwen3-VL's text model is Qwen3 with interleaved M-RoPE, which for text is Qwen3's rotary: the qwen3 fixture as
     * a Qwen3-VL checkpoint (its config's {@code text_config} as Qwen3-VL-8B's is written, tensors under
     * {@code model.language_model.} beside {@code model.visual.}) gives the fixture's Hugging Face logits.
     */
    @Test
    @SuppressWarnings("unchecked")
    void qwen3VlRunsAsItsQwen3TextModel() throws IOException {
        Path qwen3 = Fixtures.huggingFace("qwen3");
        Path folder = qwen3Vl(qwen3, List.of(4L, 4L, 4L), true);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(qwen3.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals("qwen3", model.config().family());
            assertEquals(24, model.config().dHead());
            double[] expected = reference.tensor("logits").toDoubleArray();
            float[] logits = model.runWithHooks(reference.tensor("input_ids")).toFloatArray();
            assertEquals(expected.length, logits.length);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
            }
        }
        // interleaved sections need not cover a head's rotary half; the base defaults to Qwen3VLTextConfig's
        HookedAutoConfig unset = HookedAutoConfig.fromPretrained(qwen3Vl(qwen3, List.of(1L, 1L, 1L), false));
        assertEquals(500_000.0, unset.ropeTheta());
        for (List<Long> sections : List.of(List.of(4L, -1L, 4L), List.of(6L, 6L))) {
            Path wrong = qwen3Vl(qwen3, sections, true);
            String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromPretrained(wrong))
                    .getMessage();
            assertTrue(m.contains("mrope_section"), m);
        }
        // Qwen3-VL's attention has no sliding window, whatever Qwen3 keys its text config carries
        Map<String, Object> windowed = config(folder);
        Map<String, Object> text = new LinkedHashMap<>((Map<String, Object>) windowed.get("text_config"));
        text.putAll(Map.of("use_sliding_window", true, "sliding_window", 2, "max_window_layers", 0));
        windowed.put("text_config", text);
        Files.writeString(folder.resolve("config.json"), Json.write(windowed));
        assertTrue(HookedAutoConfig.fromPretrained(folder).slidingWindow().isEmpty());
    }

    /**
     * Qwen3-VL-MoE's text model is the qwen3-vl-moe family: its derived fixture (qwen3's MLPs as fused experts that
     * each compute it) as a Qwen3-VL-MoE checkpoint gives the qwen3 fixture's Hugging Face logits.
     */
    @Test
    void qwen3VlMoeRunsAsItsTextModel() throws IOException {
        Path moe = Fixtures.huggingFace("qwen3-vl-moe");
        Path folder = qwen3Vl(moe, List.of(4L, 4L, 4L), true);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(moe.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals("qwen3-vl-moe", model.config().family());
            assertEquals(3, model.config().numExperts());
            double[] expected = reference.tensor("logits").toDoubleArray();
            float[] logits = model.runWithHooks(reference.tensor("input_ids")).toFloatArray();
            assertEquals(expected.length, logits.length);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
            }
        }
        assertEquals(500_000.0, HookedAutoConfig.fromPretrained(qwen3Vl(moe, List.of(4L, 4L, 4L), false))
                .ropeTheta(), "Qwen3VLMoeTextConfig's base");
    }

    /**
     * A text fixture (qwen3's, head_dim 24, or one derived from it) as a Qwen3-VL or, from qwen3-vl-moe's, a
     * Qwen3-VL-MoE checkpoint with M-RoPE {@code sections}, its base given or not.
     */
    private Path qwen3Vl(Path source, List<Long> sections, boolean givesTheta) throws IOException {
        Map<String, Object> text = config(source);
        boolean moe = "qwen3_vl_moe_text".equals(text.get("model_type"));
        Path folder = Files.createTempDirectory(dir, moe ? "qwen3_vl_moe" : "qwen3_vl");
        text.remove("architectures");
        text.remove("rope_parameters");
        text.put("model_type", moe ? "qwen3_vl_moe_text" : "qwen3_vl_text");
        text.put("rope_scaling", Map.of("mrope_interleaved", true, "mrope_section", sections, "rope_type", "default"));
        if (givesTheta) {
            text.put("rope_theta", 10000.0);
        }
        Map<String, Object> top = new LinkedHashMap<>(Map.of("architectures", List.of(moe
                ? "Qwen3VLMoeForConditionalGeneration" : "Qwen3VLForConditionalGeneration"), "model_type",
                moe ? "qwen3_vl_moe" : "qwen3_vl", "text_config", text, "vision_config",
                Map.of("depth", 1L, "hidden_size", 8L), "tie_word_embeddings", true));
        Files.writeString(folder.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(source.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(name.startsWith("model.") ? "model.language_model." + name.substring("model.".length())
                        : name, weights.tensor(name));
            }
            tensors.put("model.visual.patch_embed.proj.weight", Tensor.ones(8, 3, 2, 2));
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return folder;
    }

    /**
     * EXAONE 4.5's language model is EXAONE 4: the exaone4 reference model as an EXAONE 4.5 checkpoint, its text
     * config's model_type {@code exaone4_5_text} (the first release's), {@code exaone4} or absent (the default), with
     * multi-token-prediction layers beside it, gives the reference's logits; its head is tied by the whole model's
     * {@code tie_word_embeddings} alone.
     */
    @ParameterizedTest
    @ValueSource(strings = {"exaone4_5_text", "exaone4", ""})
    @SuppressWarnings("unchecked")
    void exaone45RunsAsItsExaone4TextModel(String textType) throws IOException {
        Path exaone4 = Fixtures.huggingFace("exaone4");
        Path folder = Files.createTempDirectory(dir, "exaone4_5");
        Map<String, Object> text = config(exaone4);
        text.remove("architectures");
        text.remove("model_type");
        if (!textType.isEmpty()) {
            text.put("model_type", textType);
        }
        Files.writeString(folder.resolve("config.json"), Json.write(Map.of("architectures",
                List.of("Exaone4_5_ForConditionalGeneration"), "model_type", "exaone4_5", "text_config", text,
                "vision_config", Map.of("depth", 1L, "hidden_size", 8L), "tie_word_embeddings", false)));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(exaone4.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(name.startsWith("model.") ? "model.language_model." + name.substring("model.".length())
                        : name, weights.tensor(name));
            }
            tensors.put("model.visual.patch_embed.proj.weight", Tensor.ones(8, 3, 2, 2));
            tensors.put("mtp.fc.weight", Tensor.ones(4, 4));
            tensors.put("mtp.layers.0.post_attention_layernorm.weight", Tensor.ones(4));
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        Map<String, Object> tiedInText = config(folder);
        Map<String, Object> textTied = new LinkedHashMap<>((Map<String, Object>) tiedInText.get("text_config"));
        textTied.put("tie_word_embeddings", true);
        tiedInText.put("text_config", textTied);
        assertFalse(HookedAutoConfig.fromJsonText(Json.write(tiedInText)).architecture().tiedEmbeddings(),
                "text_config's tie_word_embeddings is not what ties the whole model's head");
        tiedInText.put("tie_word_embeddings", true);
        assertTrue(HookedAutoConfig.fromJsonText(Json.write(tiedInText)).architecture().tiedEmbeddings());
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(exaone4.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals("exaone4", model.config().family());
            double[] expected = reference.tensor("logits").toDoubleArray();
            float[] logits = model.runWithHooks(reference.tensor("input_ids")).toFloatArray();
            assertEquals(expected.length, logits.length);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
            }
        }
    }

    /**
     * Kimi K2.5's language model is DeepSeek-V3: the deepseek-v3 reference model as a Kimi K2.5 checkpoint as published
     * ({@code language_model.model.}, {@code language_model.lm_head.}, a vision tower and an {@code mm_projector}
     * beside it) or as transformers saves it ({@code model.language_model.}, {@code lm_head.},
     * {@code model.vision_tower.}, {@code model.mm_projector.}), its text config's model_type {@code kimi_k2} or
     * {@code deepseek_v3}, gives the reference's logits; its head is tied by the whole model's
     * {@code tie_word_embeddings} alone, true where the key is absent, as Kimi_K25Config's default.
     */
    @ParameterizedTest
    @CsvSource({"kimi_k2, true", "deepseek_v3, true", "kimi_k2, false"})
    void kimiK25RunsAsItsDeepseekV3TextModel(String textType, boolean published) throws IOException {
        Path deepseek = Fixtures.huggingFace("deepseek-v3");
        Map<String, Object> top = kimiK25Config(deepseek, textType);
        assertTrue(HookedAutoConfig.fromJsonText(Json.write(top)).architecture().tiedEmbeddings(),
                "Kimi_K25Config ties the head by default");
        top.put("tie_word_embeddings", false);
        Path folder = kimiK25(deepseek, top, published);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(deepseek.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals("deepseek-v3", model.config().family());
            double[] expected = reference.tensor("logits").toDoubleArray();
            float[] logits = model.runWithHooks(reference.tensor("input_ids")).toFloatArray();
            assertEquals(expected.length, logits.length);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
            }
        }
    }

    /**
     * Kimi K2.5's model embeds its media placeholders, {@code image_token_id} and {@code video_token_id} (by default
     * the vocabulary's size, past its last token), as token 0 in every pass: so does a pass here, where the text model
     * alone embeds them as the tokens they are.
     */
    @Test
    void kimiK25EmbedsItsMediaPlaceholdersAsTokenZero() throws IOException {
        Path deepseek = Fixtures.huggingFace("deepseek-v3");
        Map<String, Object> top = kimiK25Config(deepseek, "kimi_k2");
        top.put("tie_word_embeddings", false);
        top.put("image_token_id", 7L);
        long vocab = ((Number) config(deepseek).get("vocab_size")).longValue();
        top.put("video_token_id", vocab);
        Path folder = kimiK25(deepseek, top, true);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel kimi = HookedAutoModel.fromPretrained(folder);
             HookedAutoModel text = HookedAutoModel.fromPretrained(deepseek)) {
            Tensor withPlaceholders = Tensor.of(new long[] {3, 7, 5, vocab, 9, 7}, 1, 6);
            Tensor withZeros = Tensor.of(new long[] {3, 0, 5, 0, 9, 0}, 1, 6);
            float[] expected = text.runWithHooks(withZeros).toFloatArray();
            assertArrayEquals(expected, kimi.runWithHooks(withPlaceholders).toFloatArray());
            assertFalse(java.util.Arrays.equals(expected, text.runWithHooks(Tensor.of(new long[] {3, 7, 5, 0, 9, 7},
                    1, 6)).toFloatArray()), "token 7 is not token 0 to the text model");
        }
    }

    /** A Kimi K2.5 config whose text config is {@code deepseek}'s, of model_type {@code textType}. */
    private static Map<String, Object> kimiK25Config(Path deepseek, String textType) throws IOException {
        Map<String, Object> text = config(deepseek);
        text.remove("architectures");
        text.put("model_type", textType);
        text.put("tie_word_embeddings", true); // not what ties the whole model's head
        return new LinkedHashMap<>(Map.of("architectures", List.of("KimiK25ForConditionalGeneration"), "model_type",
                "kimi_k25", "text_config", text, "vision_config", Map.of("depth", 1L, "hidden_size", 8L)));
    }

    /**
     * A Kimi K2.5 checkpoint of config {@code top} holding {@code deepseek}'s tensors as published or as transformers
     * saves them, beside a vision tower and a projector.
     */
    private Path kimiK25(Path deepseek, Map<String, Object> top, boolean published) throws IOException {
        Path folder = Files.createTempDirectory(dir, "kimi_k25");
        Files.writeString(folder.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(deepseek.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            String model = published ? "language_model.model." : "model.language_model.";
            for (String name : weights.names()) {
                tensors.put(name.startsWith("model.") ? model + name.substring("model.".length())
                        : published ? "language_model." + name : name, weights.tensor(name));
            }
            String outside = published ? "" : "model.";
            tensors.put(outside + "vision_tower.patch_embed.proj.weight", Tensor.ones(8, 3, 2, 2));
            tensors.put(outside + "mm_projector.proj.0.weight", Tensor.ones(4, 4));
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return folder;
    }

    /** A text model's config with a stray image tensor in its checkpoint is still refused as the wrong config. */
    @Test
    void aTextModelsCheckpointWithAnImageTensorIsRefused() throws IOException {
        Path qwen2 = Fixtures.huggingFace("qwen2");
        Path folder = Files.createTempDirectory(dir, "qwen2-stray");
        Files.copy(qwen2.resolve("config.json"), folder.resolve("config.json"));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(qwen2.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(name, weights.tensor(name));
            }
            tensors.put("visual.patch_embed.proj.weight", Tensor.ones(8, 3, 2, 2));
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(folder))
                .getMessage();
        assertTrue(m.contains("does not use, e.g. visual.patch_embed.proj.weight"), m);
    }

    /** The config.json of {@code folder}, as an editable map. */
    private static Map<String, Object> config(Path folder) throws IOException {
        Map<String, Object> config = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(folder.resolve("config.json"))))
                .forEach((k, v) -> config.put((String) k, v));
        return config;
    }

    /**
     * The qwen2 fixture (head_dim 8) as a checkpoint of {@code type} in either layout, with M-RoPE {@code sections},
     * and a rotary base of 1e6 given or left to the default.
     */
    private Path qwenVl(Path qwen2, String type, boolean savedByTransformers5, boolean givesTheta,
                        List<Long> sections) throws IOException {
        Path folder = Files.createTempDirectory(dir, type);
        Map<String, Object> text = config(qwen2);
        text.remove("architectures");
        text.remove("rope_parameters");
        text.remove("rms_norm_eps"); // the VL text configs' default, 1e-5
        Map<String, Object> top = new LinkedHashMap<>();
        top.put("architectures", List.of("ForConditionalGeneration"));
        Map<String, Object> rope = new LinkedHashMap<>(Map.of("mrope_section", sections));
        if (givesTheta) {
            rope.put("rope_theta", 1e6);
        }
        if (savedByTransformers5) {
            text.put("model_type", type + "_text");
            rope.put("rope_type", "default");
            text.put("rope_parameters", rope);
            top.put("model_type", type);
            top.put("text_config", text);
        } else {
            top.putAll(text);
            top.put("model_type", type);
            rope.remove("rope_theta");
            if (givesTheta) {
                top.put("rope_theta", 1e6);
            }
            rope.put("type", "mrope");
            top.put("rope_scaling", rope);
        }
        top.put("vision_config", Map.of("depth", 1L, "hidden_size", 8L));
        Files.writeString(folder.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(qwen2.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(savedByTransformers5 && name.startsWith("model.")
                        ? "model.language_model." + name.substring("model.".length()) : name, weights.tensor(name));
            }
            tensors.put((savedByTransformers5 ? "model." : "") + "visual.patch_embed.proj.weight",
                    Tensor.ones(8, 3, 2, 2));
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return folder;
    }

    /** The whole model's settings that concern the text model still count: a quantized one is refused as such. */
    @Test
    void theWholeModelsQuantizationIsRefused() throws IOException {
        Path folder = multimodal(GEMMA3, "gemma3", "language_model.model.", Map.of("quantization_config",
                Map.of("quant_method", "bitsandbytes", "load_in_4bit", true)));
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromPretrained(folder))
                .getMessage();
        assertTrue(m.contains("quantization_config") && m.contains("is not implemented"), m);
    }

    @Test
    void aTextConfigOfAnotherModelIsRefused() {
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText(
                "{\"model_type\": \"gemma3\", \"text_config\": {\"model_type\": \"llama\"}}")).getMessage();
        assertTrue(m.contains("text_config of a gemma3 config has model_type \"llama\"")
                && m.contains("its language model is read here where it is gemma3_text"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText(
                "{\"model_type\": \"gemma3\"}")).getMessage();
        assertTrue(m.contains("a multimodal model's holds its text model's in text_config"), m);
    }

    /**
     * The text model in {@code textFolder} as a multimodal checkpoint of {@code type}: its tensors under
     * {@code prefix}, an image part beside them.
     */
    private Path multimodal(Path textFolder, String type, String prefix, Map<String, Object> more) throws IOException {
        return multimodal(textFolder, type, prefix, more, Map.of(), "");
    }

    /** ... with {@code textKeys} set in its text_config, and without the tensor {@code dropped} ("" for none). */
    private Path multimodal(Path textFolder, String type, String prefix, Map<String, Object> more,
                            Map<String, Object> textKeys, String dropped) throws IOException {
        Path folder = Files.createTempDirectory(dir, type + "-" + prefix.replace('.', '-'));
        Map<String, Object> text = config(textFolder);
        text.remove("architectures");
        text.putAll(textKeys);
        Map<String, Object> top = new LinkedHashMap<>(more);
        top.put("architectures", List.of("ForConditionalGeneration"));
        top.put("model_type", type);
        top.put("text_config", text);
        top.put("vision_config", Map.of("model_type", "siglip_vision_model", "hidden_size", 8L));
        top.put("mm_tokens_per_image", 4L);
        Files.writeString(folder.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(textFolder.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            String head = prefix.startsWith("language_model.") ? "language_model.lm_head." : "lm_head.";
            for (String name : weights.names()) {
                if (name.equals(dropped)) {
                    continue;
                }
                tensors.put(name.startsWith("lm_head.") ? head + name.substring("lm_head.".length())
                        : prefix + name.substring("model.".length()), weights.tensor(name));
            }
            String image = prefix.startsWith("model.") ? "model." : "";
            tensors.put(image + "vision_tower.vision_model.embeddings.patch_embedding.weight", Tensor.ones(8, 3, 2, 2));
            tensors.put(image + "multi_modal_projector.mm_input_projection_weight", Tensor.ones(8, 64));
            if (type.equals("llava_next") || type.equals("llava_onevision")) {
                tensors.put(image + "image_newline", Tensor.ones(8));
            }
            if (prefix.startsWith("language_model.") && !weights.names().contains("lm_head.weight")) {
                tensors.put("language_model.lm_head.weight", weights.tensor("model.embed_tokens.weight").copy());
            }
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return folder;
    }
}

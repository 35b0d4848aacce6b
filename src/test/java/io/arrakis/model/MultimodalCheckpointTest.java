package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Multimodal checkpoints (Gemma 3's, LLaVA's, Mistral 3's: the config holds the text model's in {@code text_config},
 * the tensors sit beside a vision tower) load as their language model, which text alone reaches: made here from text
 * fixtures of {@code transformers}, whose results (and gemma3's reference) they must give.
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
     * LLaVA's and Mistral 3's language models (Llama, Mistral; untied heads, stored as {@code language_model.lm_head.}
     * or {@code lm_head.}) give what the text models' own checkpoints give.
     */
    @ParameterizedTest
    @CsvSource({"llava, llama, language_model.model.", "llava, llama, model.language_model.",
            "mistral3, mistral, language_model.model.", "mistral3, mistral, model.language_model."})
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
                && m.contains("where gemma3_text is its text model"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText(
                "{\"model_type\": \"gemma3\"}")).getMessage();
        assertTrue(m.contains("a multimodal model's holds its text model's in text_config"), m);
    }

    /**
     * The text model in {@code textFolder} as a multimodal checkpoint of {@code type}: its tensors under
     * {@code prefix}, an image part beside them.
     */
    private Path multimodal(Path textFolder, String type, String prefix, Map<String, Object> more) throws IOException {
        Path folder = Files.createDirectories(dir.resolve(type + "-" + prefix.replace('.', '-')));
        Map<String, Object> text = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(textFolder.resolve("config.json"))))
                .forEach((k, v) -> text.put((String) k, v));
        text.remove("architectures");
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
                tensors.put(name.startsWith("lm_head.") ? head + name.substring("lm_head.".length())
                        : prefix + name.substring("model.".length()), weights.tensor(name));
            }
            String image = prefix.startsWith("model.") ? "model." : "";
            tensors.put(image + "vision_tower.vision_model.embeddings.patch_embedding.weight", Tensor.ones(8, 3, 2, 2));
            tensors.put(image + "multi_modal_projector.mm_input_projection_weight", Tensor.ones(8, 64));
            if (prefix.startsWith("language_model.") && !weights.names().contains("lm_head.weight")) {
                tensors.put("language_model.lm_head.weight", weights.tensor("model.embed_tokens.weight").copy());
            }
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return folder;
    }
}

package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
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
 * Gemma 3's multimodal checkpoints (Gemma3ForConditionalGeneration: its config holds the text model's in
 * {@code text_config}, its tensors sit beside a vision tower) load as their language model, which text alone reaches:
 * made here from the gemma3 fixture of {@code transformers}, whose reference the result must match.
 */
class MultimodalCheckpointTest {
    private static final Path GEMMA3 = Fixtures.HF_MORE.resolve("gemma3");

    @TempDir
    Path dir;

    /** As published ({@code language_model.model.*}, the tied head stored too) and as transformers saves it now. */
    @ParameterizedTest
    @ValueSource(strings = {"language_model.model.", "model.language_model."})
    void theLanguageModelOfAMultimodalGemma3RunsAsTheTextModel(String prefix) throws IOException {
        Path folder = multimodal(prefix, Map.of());
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

    /** The whole model's settings that concern the text model still count: a quantized one is refused as such. */
    @Test
    void theWholeModelsQuantizationIsRefused() throws IOException {
        Path folder = multimodal("language_model.model.", Map.of("quantization_config",
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

    /** The gemma3 fixture as a multimodal checkpoint: its tensors under {@code prefix}, an image part beside them. */
    private Path multimodal(String prefix, Map<String, Object> more) throws IOException {
        Path folder = Files.createDirectories(dir.resolve(prefix.replace('.', '-')));
        Map<String, Object> text = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(GEMMA3.resolve("config.json"))))
                .forEach((k, v) -> text.put((String) k, v));
        text.remove("architectures");
        Map<String, Object> top = new LinkedHashMap<>(more);
        top.put("architectures", List.of("Gemma3ForConditionalGeneration"));
        top.put("model_type", "gemma3");
        top.put("text_config", text);
        top.put("vision_config", Map.of("model_type", "siglip_vision_model", "hidden_size", 8L));
        top.put("mm_tokens_per_image", 4L);
        Files.writeString(folder.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(GEMMA3.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(prefix + name.substring("model.".length()), weights.tensor(name));
            }
            String image = prefix.startsWith("model.") ? "model." : "";
            tensors.put(image + "vision_tower.vision_model.embeddings.patch_embedding.weight", Tensor.ones(8, 3, 2, 2));
            tensors.put(image + "multi_modal_projector.mm_input_projection_weight", Tensor.ones(8, 64));
            if (prefix.startsWith("language_model.")) {
                tensors.put("language_model.lm_head.weight", weights.tensor("model.embed_tokens.weight").copy());
            }
            SafeTensorsWriter.write(folder.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return folder;
    }
}

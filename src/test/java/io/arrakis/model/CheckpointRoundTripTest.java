package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint written by the test in the Hugging Face names and layout of each family (config.json +
 * model.safetensors), loaded back with fromPretrained, gives the model create() builds from the same random tensors.
 */
class CheckpointRoundTripTest {

    private static HookedAutoConfig tiny(String family) {
        HookedAutoConfig base = HookedAutoConfig.of(family);
        Map<String, Object> o = new LinkedHashMap<>();
        switch (family) {
            case "gpt2" -> o.putAll(Map.of("n_embd", 32, "n_layer", 2, "n_head", 4, "n_positions", 16));
            case "gpt-neo" -> o.putAll(Map.of("hidden_size", 32, "num_layers", 2, "num_heads", 4,
                    "max_position_embeddings", 16, "attention_types", java.util.List.of(java.util.List.of(
                            java.util.List.of("global", "local"), 1)), "window_size", 4));
            default -> o.putAll(Map.of("hidden_size", 32, "num_hidden_layers", 2, "num_attention_heads", 4,
                    "intermediate_size", 48, "max_position_embeddings", 16));
        }
        if (family.equals("gemma")) {
            o.put("head_dim", 8);
            o.put("num_key_value_heads", 1);
        }
        if (family.equals("llama") || family.equals("mistral") || family.equals("qwen2") || family.equals("phi3")
                || family.equals("stable-lm")) {
            o.put("num_key_value_heads", 2);
        }
        o.put("vocab_size", 64);
        return base.with(o);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "gpt-neo", "gpt-neox", "llama", "gemma", "phi3", "qwen2", "mistral", "stable-lm"})
    void aCheckpointInHuggingFaceNamesLoadsBackAsTheSameModel(String family, @TempDir Path dir) throws Exception {
        HookedAutoConfig config = tiny(family);
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 11, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            Files.writeString(dir.resolve("config.json"), config.toJson());
            Tensor ids = Tensor.of(new long[] {3, 1, 4, 1, 5, 9, 2, 6}, 1, 8);
            try (HookedAutoModel loaded = HookedAutoModel.fromPretrained(dir);
                 HookedAutoModel created = HookedAutoModel.create(config, 11, DType.FLOAT32, Device.CPU)) {
                Tensor a = loaded.runWithHooks(ids);
                Tensor b = created.runWithHooks(ids);
                assertTrue(a.allclose(b, 0, 0), family + ": the loaded checkpoint differs from the model it was written from");
                assertTrue(loaded.W_Q().allclose(created.W_Q(), 0, 0));
            }
        }
    }
}

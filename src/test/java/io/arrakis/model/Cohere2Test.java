package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.TensorScope;
import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cohere 2's layers: its defaults and {@code sliding_window_pattern}, and on the cohere fixture made Cohere 2
 * ({@link DerivedFixtures}) with layer 1 full, layer 0 still gives Hugging Face's residual stream and layer 1's pattern
 * is the causal softmax of its unrotated queries and keys, computed here from its hooks.
 */
class Cohere2Test {

    @Test
    void defaultsAreCohere2ConfigsEveryFourthLayerFullAndUnrotated() {
        HookedAutoConfig c = HookedAutoConfig.of("cohere2");
        assertEquals(10000.0, c.ropeTheta(), "Cohere2Config has no default_theta of its own");
        for (int layer = 0; layer < 8; layer++) {
            boolean full = layer % 4 == 3;
            assertEquals(full ? 0 : 4096, c.architecture().attentionWindow(layer), "layer " + layer);
            assertEquals(!full, c.rotates(layer), "layer " + layer);
        }
        // tied 256000 x 8192 embedding; per layer q, k, v and o 8192 x 8192, the gated MLP 3 x 8192 x 22528, one
        // LayerNorm without bias; the final norm
        assertEquals(256000L * 8192 + 40L * (4L * 8192 * 8192 + 3L * 8192 * 22528 + 8192) + 8192, c.parameterCount());
        assertEquals(34_980_831_232L, c.parameterCount());
    }

    @Test
    void theLayersFollowTheirKeys() {
        HookedAutoConfig c = TinyConfigs.of("cohere2").with("num_hidden_layers", 4).with("sliding_window_pattern", 2);
        assertEquals(List.of(true, false, true, false),
                List.of(c.rotates(0), c.rotates(1), c.rotates(2), c.rotates(3)));
        HookedAutoConfig allFull = TinyConfigs.of("cohere2").with("layer_types",
                List.of("full_attention", "full_attention"));
        assertFalse(allFull.rotates(0) || allFull.rotates(1), "full layers never rotate");
        Map<String, Object> fullWithoutWindow = new HashMap<>();
        fullWithoutWindow.put("sliding_window", null);
        fullWithoutWindow.put("layer_types", List.of("full_attention", "full_attention"));
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("cohere2").with(fullWithoutWindow)).getMessage();
        assertTrue(m.contains("sliding_window = null") && m.contains("must be set"), m);
    }

    @Test
    void aFullLayerAttendsWithUnrotatedQueriesAndKeys(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("cohere2");
        Path dir = tmp.resolve("full");
        Files.createDirectories(dir);
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(fixture.resolve("config.json"))));
        config.put("layer_types", List.of("sliding_attention", "full_attention"));
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"));
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            assertTrue(model.hookNames().contains("blocks.0.attn.hook_rot_q"));
            assertFalse(model.hookNames().contains("blocks.1.attn.hook_rot_q"), "a full layer has no rotation");
            assertTrue(out.cache().get("blocks.1.hook_resid_pre").allclose(reference.tensor("blocks.1.hook_resid_pre"),
                    1e-4, 1e-4), "the sliding layer 0 is Cohere's");
            assertFalse(out.logits().allclose(reference.tensor("logits"), 1e-3, 1e-3), "layer 1 differs from Cohere's");
            Tensor q = out.cache().get("blocks.1.attn.hook_q");
            WindowedCausalSoftmax.assertPattern(q, out.cache().get("blocks.1.attn.hook_k"),
                    out.cache().get("blocks.1.attn.hook_pattern"), Integer.MAX_VALUE, 1e-5);
        }
    }
}

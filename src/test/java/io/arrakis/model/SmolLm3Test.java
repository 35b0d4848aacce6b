package io.arrakis.model;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * SmolLM3's NoPE layers on the llama fixture made SmolLM3 ({@link DerivedFixtures}): with layer 1 a NoPE layer that
 * slides, layer 0 still gives Hugging Face's residual stream, layer 1's pattern is the windowed causal softmax of its
 * unrotated queries and keys, computed here from its hooks, and the tools that rotate as the pass does leave layer 1's
 * queries as they are; the configuration's defaults and refusals.
 */
class SmolLm3Test {

    private static final int WINDOW = 3;

    @Test
    void aNoPeLayerAttendsWithUnrotatedQueriesAndKeys(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("smollm3");
        Path dir = tmp.resolve("nope");
        Files.createDirectories(dir);
        @SuppressWarnings("unchecked")
        Map<String, Object> config = (Map<String, Object>) Json.parse(Files.readString(
                fixture.resolve("config.json")));
        Map<String, Object> edited = new java.util.LinkedHashMap<>(config);
        edited.putAll(Map.of("no_rope_layers", List.of(1, 0, 1), "use_sliding_window", true, "sliding_window",
                WINDOW)); // a list longer than the layers is read for its first ones, as transformers reads it
        Files.writeString(dir.resolve("config.json"), Json.write(edited));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"));
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            assertTrue(model.config().rotates(0));
            assertFalse(model.config().rotates(1));
            assertTrue(model.hookNames().contains("blocks.0.attn.hook_rot_q"));
            assertFalse(model.hookNames().contains("blocks.1.attn.hook_rot_q"), "a NoPE layer has no rotation");
            String m = assertThrows(IllegalArgumentException.class, () -> model.forward(reference.tensor("input_ids"),
                    CacheSpec.only("blocks.1.attn.hook_rot_k"))).getMessage();
            assertTrue(m.contains("layer 1 applies no rotary embedding: a NoPE layer"), m);
            assertTrue(out.cache().get("blocks.1.hook_resid_pre").allclose(reference.tensor("blocks.1.hook_resid_pre"),
                    1e-4, 1e-4), "the rotating layer 0 is Llama's");
            assertFalse(out.logits().allclose(reference.tensor("logits"), 1e-3, 1e-3), "layer 1 differs from Llama's");
            assertTrue(model.config().isSlidingWindowLayer(1) && !model.config().isSlidingWindowLayer(0));

            Tensor q = out.cache().get("blocks.1.attn.hook_q");
            WindowedCausalSoftmax.assertPattern(q, out.cache().get("blocks.1.attn.hook_k"),
                    out.cache().get("blocks.1.attn.hook_pattern"), WINDOW, 1e-5);
            assertArrayEquals(q.toFloatArray(), model.rotate(1, q).toFloatArray(),
                    "a NoPE layer's rotation leaves queries be");
            assertFalse(q.allclose(model.rotate(0, q), 1e-3, 1e-3));
            Head head = Head.of(1, 1);
            assertTrue(new AttentionComposer(model).attentionPathPatching(reference.tensor("input_ids"), head, head)
                    .allclose(out.logits(), 1e-5, 1e-5), "recomputing a NoPE head as the pass does changes nothing");
        }
    }

    @Test
    void smolLm3ConfigurationAndItsRefusals() {
        HookedAutoConfig defaults = HookedAutoConfig.of("smollm3");
        assertEquals(2_000_000.0, defaults.ropeTheta());
        for (int layer = 0; layer < 36; layer++) {
            assertEquals((layer + 1) % 4 != 0, defaults.rotates(layer), "layer " + layer);
        }
        assertTrue(defaults.slidingWindow().isEmpty());
        // SmolLM3-3B: tied embeddings 128256 x 2048; per layer attention 2 x 2048^2 + 2 x 2048 x 512, the gated MLP
        // 3 x 2048 x 11008, two norms; the final norm
        assertEquals(3_075_098_624L, defaults.parameterCount());

        HookedAutoConfig tiny = TinyConfigs.of("smollm3").with(Map.of("num_hidden_layers", 4,
                "no_rope_layer_interval", 2, "use_sliding_window", true, "sliding_window", 3));
        assertArrayEquals(new boolean[] {true, false, true, false}, new boolean[] {tiny.rotates(0), tiny.rotates(1),
                tiny.rotates(2), tiny.rotates(3)});
        assertArrayEquals(new boolean[] {false, true, false, true}, new boolean[] {tiny.isSlidingWindowLayer(0),
                tiny.isSlidingWindowLayer(1), tiny.isSlidingWindowLayer(2), tiny.isSlidingWindowLayer(3)},
                "by default the NoPE layers slide");

        assertTrue(TinyConfigs.of("smollm3").with("attention_bias", true).checkpoint().tensors()
                .containsKey("model.layers.0.self_attn.o_proj.bias"), "attention_bias biases o_proj too, as Llama's");

        HookedAutoConfig base = TinyConfigs.of("smollm3");
        for (Map<String, Object> wrong : List.<Map<String, Object>>of(Map.of("no_rope_layers", List.of(1)),
                Map.of("no_rope_layers", List.of(1, 2)), Map.of("layer_types", List.of("full_attention",
                        "sliding_attention")))) {
            String key = wrong.keySet().iterator().next();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> base.with(wrong).dModel());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        }
    }
}

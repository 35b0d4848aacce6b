package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.safetensors.SafeTensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bamba: its Mamba-2 and half-rotating attention layers against the fixture transformers made
 * ({@code scripts/make-hf-mamba2-fixtures.py}), Bamba-9B's config with the parameters transformers counts for it, and
 * the refusals.
 */
class BambaTest {
    private static final Path FIXTURE = Fixtures.huggingFace("bamba");

    @TempDir
    Path dir;

    /**
     * Every hook as transformers computes it (four groups of B and C, chunks of 3 over 11 positions, the attention
     * layer's queries, keys, values and pattern), and every tensor of the checkpoint counted.
     */
    @Test
    void everyHookIsTransformers() {
        ModelParityTest.assertParity(FIXTURE, "bamba", 23);
        try (SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"))) {
            assertEquals(weights.names().stream().mapToLong(n -> weights.info(n).numel()).sum(),
                    HookedAutoConfig.fromJson(FIXTURE.resolve("config.json")).parameterCount());
        }
    }

    @Test
    void theBfloat16PassIsTransformers() {
        double[] d = Fixtures.bfloat16Distances(FIXTURE, "logits");
        assertTrue(d[0] <= d[1] / 1000, "mean distance " + d[0] + ", float32's " + d[1]);
    }

    /**
     * Bamba-9B's shape: attention in layers 9, 18 and 27, rotating 64 of each head's 128 features, and the
     * 9,780,235,392 parameters transformers 5.17 counts for it on the meta device.
     */
    @Test
    void bamba9bLoadsWithTransformersCount() throws IOException {
        Map<String, Object> file = new LinkedHashMap<>(Map.of("model_type", "bamba", "hidden_size", 4096,
                "num_hidden_layers", 32, "num_attention_heads", 32, "num_key_value_heads", 8, "intermediate_size",
                14336, "vocab_size", 128256, "mamba_n_heads", 128, "mamba_d_head", 64, "mamba_d_state", 128));
        file.putAll(Map.of("mamba_n_groups", 1, "mamba_chunk_size", 256, "attn_layer_indices", List.of(9, 18, 27),
                "rope_theta", 10000.0, "num_logits_to_keep", 1, "attn_rotary_emb", 64));
        Files.writeString(dir.resolve("config.json"), Json.write(file));
        HookedAutoConfig c = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        assertEquals(9_780_235_392L, c.parameterCount());
        assertEquals(List.of(9, 18, 27), java.util.stream.IntStream.range(0, 32).filter(c::attentionHeads).boxed()
                .toList());
        Architecture a = c.architecture();
        assertEquals(64, a.rope(9).dim());
        assertNull(a.rope(0));
        assertEquals(Architecture.Mixer.MAMBA2, c.mixer(0));
    }

    /**
     * What transformers refuses (layer types it cannot set, groups that do not divide the heads), and what it would
     * silently not do (attention layers outside the model, a top-level rotary fraction it replaces by 0.5, 4.x's rotary
     * width it no longer reads), is refused, naming the key.
     */
    @Test
    void unreadOrImpossibleSettingsAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("bamba");
        Map<Map<String, Object>, String> refused = new LinkedHashMap<>();
        refused.put(Map.of("layers_block_type", List.of("mamba", "attention")), "layers_block_type");
        refused.put(Map.of("layer_types", List.of("mamba", "attention")), "layers_block_type");
        refused.put(Map.of("attn_layer_indices", List.of(2)), "attn_layer_indices");
        refused.put(Map.of("partial_rotary_factor", 1.0), "partial_rotary_factor");
        refused.put(Map.of("attn_rotary_emb", 8), "attn_rotary_emb"); // 4.x's width: 5.17 rotates 4 of 8
        refused.put(Map.of("mamba_n_groups", 3), "mamba_n_groups");
        refused.forEach((settings, key) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(settings).architecture(), settings.toString());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        });
        assertEquals(List.of(true, true), tiny.with("attn_layer_indices", null).architecture().mamba2().layers());
    }

    /**
     * The rotary embedding reads {@code rope_parameters}' own {@code partial_rotary_factor} where it has one (1 and
     * 0.25 of each 8-feature head), as transformers' does; without one, 0.5.
     */
    @Test
    void rotaryParametersOwnFractionIsRead() {
        HookedAutoConfig tiny = TinyConfigs.of("bamba");
        assertEquals(4, tiny.architecture().rope(1).dim());
        for (double fraction : new double[] {1.0, 0.25}) {
            Architecture a = tiny.with("rope_parameters", Map.of("rope_type", "default", "rope_theta", 10000.0,
                    "partial_rotary_factor", fraction)).architecture();
            assertEquals((int) (8 * fraction), a.rope(1).dim(), "fraction " + fraction);
        }
    }
}

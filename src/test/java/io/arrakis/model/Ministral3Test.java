package io.arrakis.model;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.json.Json;
import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ministral 3 beyond the mistral fixture made Ministral 3 ({@link DerivedFixtures}, whose forward pass
 * {@link ModelParityTest} checks against Hugging Face's): with an interval shorter than the reference's tokens, each
 * query is multiplied by {@code 1 + beta · ln(1 + floor(p / interval))} (Ministral3Attention's
 * {@code get_llama_4_attn_scale}, worked out here) before its scores, on both attention routes and in the tools that
 * recompute a head; the defaults and refusals.
 */
class Ministral3Test {

    private static final int INTERVAL = 4;
    private static final double BETA = 0.1;

    @Test
    void queriesBeyondTheIntervalAreScaled(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("ministral3");
        Map<String, Object> config = config(fixture);
        @SuppressWarnings("unchecked")
        Map<String, Object> rotary = new LinkedHashMap<>((Map<String, Object>) config.get("rope_parameters"));
        rotary.put("original_max_position_embeddings", INTERVAL);
        config.put("rope_parameters", rotary);
        Path dir = tmp.resolve("interval");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            Tensor ids = reference.tensor("input_ids");
            int pos = (int) ids.size(1);
            assertTrue(pos > 2 * INTERVAL, "the reference reaches the third interval");
            for (int length : new int[] {INTERVAL, INTERVAL + 1}) { // none scaled, then the last query alone
                try (ModelOutput out = model.forward(ids.narrow(1, 0, length))) {
                    assertTemperedPatterns(model, out, length);
                }
            }
            try (ModelOutput out = model.forward(ids)) {
                assertTemperedPatterns(model, out, pos);
                assertFalse(out.cache().get("blocks.1.hook_resid_pre").allclose(
                        reference.tensor("blocks.1.hook_resid_pre"), 1e-4, 1e-4),
                        "the temperature changes what layer 0 writes");
                try (ModelOutput fused = model.forward(ids, CacheSpec.only("logits"))) {
                    assertTrue(fused.logits().allclose(out.logits(), 1e-5, 1e-5), "the fused route scales alike");
                }
                Head head = Head.of(1, 1);
                assertTrue(new AttentionComposer(model).attentionPathPatching(ids, head, head)
                        .allclose(out.logits(), 1e-5, 1e-5), "recomputing a head as the pass does changes nothing");
            }
        }
    }

    /** Each layer's pattern is the windowed softmax of its rotated queries, times their temperature, and keys. */
    private static void assertTemperedPatterns(HookedAutoModel model, ModelOutput out, int pos) {
        double[] factors = new double[pos];
        for (int p = 0; p < pos; p++) {
            factors[p] = 1 + BETA * Math.log(1 + p / INTERVAL);
        }
        Tensor temperature = Tensor.of(factors, 1, pos, 1, 1).to(io.arrakis.torch.DType.FLOAT32);
        for (int layer = 0; layer < model.config().nLayers(); layer++) {
            String b = "blocks." + layer + ".attn.";
            WindowedCausalSoftmax.assertPattern(out.cache().get(b + "hook_rot_q").mul(temperature),
                    out.cache().get(b + "hook_rot_k"), out.cache().get(b + "hook_pattern"),
                    model.config().slidingWindow().orElseThrow(), 1e-5);
        }
    }

    /**
     * The temperature's settings come from where the rotary ones do: rope_scaling over rope_parameters (an empty one
     * is none), a top-level original_max_position_embeddings over both for the rope types that read it.
     */
    @Test
    void theTemperatureIsReadWhereTheRotarySettingsAre() {
        Map<String, Object> parameters = Map.of("rope_type", "default", "llama_4_scaling_beta", 0.1,
                "original_max_position_embeddings", 8);
        HookedAutoConfig scaled = tiny(parameters).with("rope_scaling", Map.of("rope_type", "linear", "factor", 2.0,
                "llama_4_scaling_beta", 0.3, "original_max_position_embeddings", 16));
        assertEquals(new io.arrakis.model.family.QueryTemperature(0.3, 16, 0, false, false),
                scaled.architecture().queryTemperature());
        assertEquals(new Rope.Linear(2.0), scaled.architecture().rope().scaling());
        assertEquals(new io.arrakis.model.family.QueryTemperature(0.1, 8, 0, false, false),
                tiny(parameters).with("rope_scaling", Map.of()).architecture().queryTemperature());
        HookedAutoConfig topLevel = HookedAutoConfig.fromJsonText("{\"model_type\": \"ministral3\","
                + " \"num_hidden_layers\": 2, \"original_max_position_embeddings\": 8192}");
        assertEquals(8192, topLevel.architecture().queryTemperature().interval());
        assertEquals(8192, ((Rope.Yarn) topLevel.architecture().rope().scaling()).originalMaxPositions());
    }

    @Test
    void defaultsAreMinistral3EightB() {
        HookedAutoConfig defaults = HookedAutoConfig.of("ministral3");
        Rope rope = defaults.architecture().rope();
        assertEquals(1_000_000.0, rope.theta());
        assertEquals(new Rope.Yarn(16.0, 1.0, 32.0, 1.0, 16384, true), rope.scaling());
        assertEquals(new io.arrakis.model.family.QueryTemperature(0.1, 16384, 0, false, false),
                defaults.architecture().queryTemperature());
        assertTrue(defaults.slidingWindow().isEmpty());
        // untied 131072 x 4096 embedding and unembedding; per layer q and o 2 x 4096², k and v 2 x 4096 x 1024, the
        // gated MLP 3 x 4096 x 14336, two norms; the final norm
        assertEquals(2L * 131072 * 4096 + 34L * (2L * 4096 * 4096 + 2L * 4096 * 1024 + 3L * 4096 * 14336 + 2 * 4096)
                + 4096, defaults.parameterCount());
    }

    @Test
    void refusals() {
        assertRefused(() -> tiny(Map.of("rope_type", "yarn", "factor", 2.0)), "llama_4_scaling_beta",
                "must be a number");
        assertRefused(() -> tiny(Map.of("rope_type", "default", "llama_4_scaling_beta", 0.1)),
                "original_max_position_embeddings", "must be a positive integer");
        Map<String, Object> nullType = new LinkedHashMap<>();
        nullType.put("rope_type", null);
        nullType.put("llama_4_scaling_beta", 0.1);
        assertRefused(() -> tiny(nullType), "rope_parameters.rope_type", "must be a rope type's name");
        HookedAutoConfig yarn = tiny(Map.of("rope_type", "yarn", "factor", 2.0, "llama_4_scaling_beta", 0.1));
        assertEquals(64, yarn.architecture().queryTemperature().interval(),
                "yarn's original_max_position_embeddings defaults to max_position_embeddings");
        HookedAutoConfig plain = tiny(Map.of("rope_type", "default", "llama_4_scaling_beta", 0.1,
                "original_max_position_embeddings", 8));
        assertEquals(8, plain.architecture().queryTemperature().interval());
        assertEquals(new Rope.Unscaled(), plain.architecture().rope().scaling(), "read by the temperature only");
    }

    private static void assertRefused(Supplier<HookedAutoConfig> config, String key, String says) {
        String m = assertThrows(IllegalArgumentException.class, config::get).getMessage();
        assertTrue(m.contains(key) && m.contains(says), m);
    }

    private static HookedAutoConfig tiny(Map<String, Object> rotary) {
        return HookedAutoConfig.of("ministral3").with(Map.of("hidden_size", 64, "num_hidden_layers", 2,
                "num_attention_heads", 4, "num_key_value_heads", 2, "head_dim", 16, "intermediate_size", 32,
                "vocab_size", 16, "max_position_embeddings", 64, "rope_parameters", rotary));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> config(Path fixture) throws IOException {
        return new LinkedHashMap<>((Map<String, Object>) Json.parse(Files.readString(fixture.resolve("config.json"))));
    }
}

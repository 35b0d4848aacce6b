package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * OLMo 3 beyond the olmo2 fixture made OLMo 3 ({@link DerivedFixtures}, whose forward pass {@link ModelParityTest}
 * checks against Hugging Face's): a sliding layer's pattern is the windowed causal softmax of its rotated queries and
 * keys, computed here from its hooks; YaRN scales the full layers' rotary embedding and not the sliding layers', as
 * transformers' {@code _compute_yarn_parameters}, transcribed here, computes it; the defaults and refusals.
 */
class Olmo3Test {

    private static final int WINDOW = 3;

    @Test
    void aSlidingLayerSeesItsWindow(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("olmo3");
        Map<String, Object> config = config(fixture);
        config.put("sliding_window", WINDOW);
        Path dir = tmp.resolve("window");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"));
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            assertTrue(model.config().isSlidingWindowLayer(0) && !model.config().isSlidingWindowLayer(1));
            WindowedCausalSoftmax.assertPattern(out.cache().get("blocks.0.attn.hook_rot_q"),
                    out.cache().get("blocks.0.attn.hook_rot_k"), out.cache().get("blocks.0.attn.hook_pattern"),
                    WINDOW, 1e-5);
            assertFalse(out.cache().get("blocks.1.hook_resid_pre").allclose(
                    reference.tensor("blocks.1.hook_resid_pre"), 1e-3, 1e-3), "layer 0 sees fewer tokens");
        }
    }

    /** Olmo-3-7B's {@code rope_scaling} and {@code rope_theta} (transformers 4.57's form) on a tiny model. */
    @Test
    void yarnScalesTheFullLayersOnly() {
        Map<String, Object> yarn = Map.of("rope_type", "yarn", "factor", 8.0, "original_max_position_embeddings", 8192,
                "attention_factor", 1.2079441541679836, "beta_fast", 32, "beta_slow", 1);
        HookedAutoConfig config = tiny().with(Map.of("rope_theta", 500000, "rope_scaling", yarn,
                "max_position_embeddings", 65536));
        int dim = config.dHead();
        Rope sliding = config.architecture().rope(0);
        Rope full = config.architecture().rope(3);
        assertTrue(config.isSlidingWindowLayer(0) && !config.isSlidingWindowLayer(3));
        assertEquals(1.0, sliding.attentionFactor());
        assertEquals(1.2079441541679836, full.attentionFactor(), 1e-12);
        float[] slidingFrequencies = sliding.inverseFrequencies();
        float[] fullFrequencies = full.inverseFrequencies();
        double[] scaled = yarnInverseFrequencies(500000, dim, 8.0, 32, 1, 8192);
        int interpolated = 0;
        for (int i = 0; i < dim / 2; i++) {
            double unscaled = 1 / Math.pow(500000, 2.0 * i / dim);
            assertEquals(unscaled, slidingFrequencies[i], 1e-6 * unscaled, "sliding, frequency " + i);
            assertEquals(scaled[i], fullFrequencies[i], 1e-6 * scaled[i], "full, frequency " + i);
            interpolated += scaled[i] < unscaled * 0.99 ? 1 : 0;
        }
        assertTrue(interpolated > 0 && interpolated < dim / 2, "the ramp mixes both kinds: " + interpolated);
    }

    /**
     * transformers 5.17's {@code _compute_yarn_parameters} with {@code truncate} (its default): frequencies
     * between the correction range's bounds ramp from extrapolated to interpolated.
     */
    private static double[] yarnInverseFrequencies(double base, int dim, double factor, double betaFast,
                                                   double betaSlow, int originalMaxPositions) {
        double low = Math.max(Math.floor(correctionDim(betaFast, dim, base, originalMaxPositions)), 0);
        double high = Math.min(Math.ceil(correctionDim(betaSlow, dim, base, originalMaxPositions)), dim - 1);
        if (low == high) {
            high += 0.001;
        }
        double[] inv = new double[dim / 2];
        for (int i = 0; i < dim / 2; i++) {
            double posFreq = Math.pow(base, 2.0 * i / dim);
            double extrapolationFactor = 1 - Math.min(Math.max((i - low) / (high - low), 0), 1);
            inv[i] = 1 / (factor * posFreq) * (1 - extrapolationFactor) + 1 / posFreq * extrapolationFactor;
        }
        return inv;
    }

    private static double correctionDim(double rotations, int dim, double base, int maxPositions) {
        return dim * Math.log(maxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    @Test
    void defaultsAndOlmo3SevenB() {
        HookedAutoConfig defaults = HookedAutoConfig.of("olmo3");
        for (int layer = 0; layer < 32; layer++) {
            assertEquals((layer + 1) % 4 != 0, defaults.isSlidingWindowLayer(layer), "layer " + layer);
        }
        assertEquals(4096, defaults.slidingWindow().orElseThrow());
        assertEquals(500000.0, defaults.ropeTheta());
        // Olmo-3-7B as its config.json gives it (reconstructed from public sources): untied 100278 x 4096
        // embedding and unembedding; per layer q/k/v/o 4 x 4096², q and k norms 2 x 4096, gate/up/down
        // 3 x 4096 x 11008, two norms; the final norm
        HookedAutoConfig sevenB = defaults.with(Map.of("vocab_size", 100278, "max_position_embeddings", 65536,
                "rms_norm_eps", 1e-6, "pad_token_id", 100277, "eos_token_id", 100257, "num_key_value_heads", 32,
                "rope_scaling", Map.of("rope_type", "yarn", "factor", 8.0, "original_max_position_embeddings", 8192,
                        "attention_factor", 1.2079441541679836, "beta_fast", 32, "beta_slow", 1)));
        assertEquals(2L * 100278 * 4096 + 32L * (4L * 4096 * 4096 + 2 * 4096 + 3L * 4096 * 11008 + 2 * 4096) + 4096,
                sevenB.parameterCount());
        assertEquals(7_298_011_136L, sevenB.parameterCount());
    }

    /**
     * Olmo3Config.convert_rope_params_to_dict merges rope_scaling over the full layers' object, and gives the sliding
     * layers without a base of their own 500000, whatever the full layers' base.
     */
    @Test
    void rotaryObjectsResolveAsOlmo3ConfigMergesThem() {
        HookedAutoConfig merged = tiny().with(Map.of("rope_parameters", Map.of("full_attention", Map.of("rope_type",
                "default", "rope_theta", 10000)), "rope_scaling", Map.of("rope_type", "linear", "factor", 2.0)));
        assertEquals(new Rope.Linear(2.0), merged.architecture().rope(3).scaling(), "rope_scaling wins");
        assertEquals(10000.0, merged.architecture().rope(3).theta());
        assertEquals(500000.0, merged.architecture().rope(0).theta(), "the sliding layers' default");
        assertEquals(new Rope.Unscaled(), merged.architecture().rope(0).scaling());
        for (String family : List.of("olmo3", "gemma3")) {
            assertRefused(() -> HookedAutoConfig.of(family).with("rope_scaling", Map.of("type", "linear", "factor",
                    2.0)), "rope_scaling.type", "older key");
        }
    }

    @Test
    void refusals() {
        assertRefused(() -> tiny().with("rope_theta", 10000), "rope_theta",
                "rotates them with 500000.0 (4.57 with rope_theta)");
        HookedAutoConfig ownBase = tiny().with(Map.of("rope_theta", 10000, "rope_parameters", Map.of(
                "sliding_attention", Map.of("rope_type", "default", "rope_theta", 10000))));
        assertEquals(10000.0, ownBase.architecture().rope(0).theta(), "the sliding layers' own base");
        assertEquals(10000.0, ownBase.architecture().rope(3).theta(), "rope_theta for the full layers");
        assertEquals(10000.0, tiny().with(Map.of("rope_theta", 10000, "layer_types",
                java.util.Collections.nCopies(4, "full_attention"))).architecture().rope(0).theta(),
                "without sliding layers rope_theta is every layer's base");
        assertRefused(() -> tiny().with("rope_parameters", Map.of("rope_type", "default", "rope_theta", 10000.0)),
                "rope_parameters", "must hold one object per layer type");
        assertRefused(() -> tiny().with("sliding_window", null), "sliding_window", "must be set");
        assertRefused(() -> tiny().with("layer_types", List.of("full_attention")), "layer_types", "has 1 entries");
    }

    private static void assertRefused(Supplier<HookedAutoConfig> config, String key, String says) {
        String m = assertThrows(IllegalArgumentException.class, config::get).getMessage();
        assertTrue(m.contains(key) && m.contains(says), m);
    }

    private static HookedAutoConfig tiny() {
        return HookedAutoConfig.of("olmo3").with(Map.of("hidden_size", 64, "num_hidden_layers", 4,
                "num_attention_heads", 4, "intermediate_size", 32, "vocab_size", 16));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> config(Path fixture) throws IOException {
        return new LinkedHashMap<>((Map<String, Object>) Json.parse(Files.readString(fixture.resolve("config.json"))));
    }
}

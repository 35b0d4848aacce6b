package io.arrakis.model;

import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code "longrope"} rotary scaling of Phi-3's long-context models, as {@code _compute_longrope_parameters} and
 * {@code longrope_frequency_update} of transformers 5.17 define it: frequency i is {@code 1 / (factor_i ·
 * theta^(2i / dim))} with the short factors for a pass of at most {@code original_max_position_embeddings} positions
 * and the long ones for a longer pass, and cos and sin are scaled by {@code attention_factor}, by default
 * {@code sqrt(1 + ln(factor) / ln(original))} with the factor {@code max_position_embeddings / original}.
 */
class LongRopeTest {
    private static final List<Double> SHORT = List.of(1.0, 1.1, 1.3, 1.7, 2.4, 3.9);
    private static final List<Double> LONG = List.of(1.0, 1.9, 4.2, 9.5, 17.0, 31.0);
    private static final int ORIGINAL = 8;

    /** A Phi-3 whose heads of 16 rotate 12 features (partial_rotary_factor 0.75, as Phi-4-mini's). */
    private static HookedAutoConfig phi3(Map<String, Object> rope) {
        return HookedAutoConfig.of("phi3").with(Map.of("hidden_size", 64, "num_attention_heads", 4,
                "num_key_value_heads", 2, "num_hidden_layers", 1, "intermediate_size", 32,
                "max_position_embeddings", 64, "original_max_position_embeddings", ORIGINAL,
                "partial_rotary_factor", 0.75, "rope_scaling", rope));
    }

    private static Map<String, Object> longRope(Object... more) {
        Map<String, Object> rope = new HashMap<>(Map.of("type", "longrope", "short_factor", SHORT, "long_factor",
                LONG));
        for (int i = 0; i < more.length; i += 2) {
            rope.put((String) more[i], more[i + 1]);
        }
        return rope;
    }

    @Test
    void aPassRotatesByTheShortFactorsUpToTheOriginalContextAndByTheLongOnesBeyond() {
        HookedAutoConfig config = phi3(longRope());
        Rope rope = config.architecture().rope();
        Rope.LongRope scaling = assertInstanceOf(Rope.LongRope.class, rope.scaling());
        assertEquals(ORIGINAL, scaling.originalMaxPositions(), "the top-level original_max_position_embeddings");
        double attention = Math.sqrt(1 + Math.log(64.0 / ORIGINAL) / Math.log(ORIGINAL));
        assertEquals(attention, rope.attentionFactor(), 1e-12);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.FLOAT32, Device.CPU)) {
            for (int pos : new int[] {ORIGINAL - 2, ORIGINAL, ORIGINAL + 4}) {
                Tensor x = Tensor.normal(new Generator(pos), new long[] {1, pos, 4, 16}, 0.0, 1.0, DType.FLOAT32,
                        Device.CPU);
                float[] in = x.toFloatArray();
                float[] got = model.rotate(0, x).toFloatArray();
                List<Double> factors = pos > ORIGINAL ? LONG : SHORT;
                for (int p = 0; p < pos; p++) {
                    for (int h = 0; h < 4; h++) {
                        int at = (p * 4 + h) * 16;
                        for (int i = 0; i < 16; i++) {
                            double want = in[at + i]; // features 12..15 pass through
                            if (i < 12) {
                                int f = i % 6;
                                double angle = p / (factors.get(f) * Math.pow(10000.0, 2.0 * f / 12));
                                double partner = i < 6 ? -in[at + i + 6] : in[at + i - 6]; // rotate_half
                                want = (in[at + i] * Math.cos(angle) + partner * Math.sin(angle)) * attention;
                            }
                            assertEquals(want, got[at + i], 2e-5, pos + " positions: position " + p + ", head " + h
                                    + ", feature " + i);
                        }
                    }
                }
            }
        }
    }

    /**
     * Each frequency in transformers' float32 steps: {@code base ** (arange(0, dim, 2).float() / dim)} rounded to
     * float32, times the factor as float32, and 1 over that in float32.
     */
    @Test
    void theFrequenciesAreTransformersFloat32Steps() {
        Rope rope = phi3(longRope()).architecture().rope();
        for (int pos : new int[] {ORIGINAL, ORIGINAL + 1}) {
            List<Double> factors = pos > ORIGINAL ? LONG : SHORT;
            float[] inverse = rope.inverseFrequencies(pos);
            for (int i = 0; i < 6; i++) {
                float power = (float) Math.pow(10000.0, (float) (2 * i) / 12);
                assertEquals(1.0f / (factors.get(i).floatValue() * power), inverse[i], 0f, pos + ": frequency " + i);
            }
        }
    }

    @Test
    void explicitFactorsAndTheOlderNamesAreRead() {
        assertEquals(1.25, phi3(longRope("attention_factor", 1.25)).architecture().rope().attentionFactor());
        assertEquals(Math.sqrt(1 + Math.log(2.0) / Math.log(ORIGINAL)), phi3(longRope("factor", 2.0)).architecture()
                .rope().attentionFactor(), 1e-12, "a factor given wins over max / original");
        assertEquals(1.0, phi3(longRope("factor", 1.0)).architecture().rope().attentionFactor());
        assertEquals(1.0, phi3(longRope("factor", 0.5)).architecture().rope().attentionFactor(), "at most 1: 1");
        // Phi3Config reads both as longrope, su only with the original context in the object, where it moves none
        assertEquals(phi3(longRope()).architecture().rope(), phi3(longRope("type", "yarn")).architecture().rope());
        assertEquals(phi3(longRope()).architecture().rope(), phi3(longRope("type", "su",
                "original_max_position_embeddings", 4096)).architecture().rope(), "the top-level one wins");
        String m = assertThrows(IllegalArgumentException.class, () -> phi3(longRope("type", "su")).architecture())
                .getMessage();
        assertTrue(m.contains("rope_scaling.type") && m.contains("original_max_position_embeddings"), m);
        // transformers reads longrope for every family, from the rotary object's own original context
        Rope llama = HookedAutoConfig.of("llama").with(Map.of("head_dim", 12, "max_position_embeddings", 64,
                "rope_parameters", longRope("original_max_position_embeddings", 16))).architecture().rope();
        double expected = Math.sqrt(1 + Math.log(4.0) / Math.log(16));
        assertEquals(new Rope.LongRope(SHORT, LONG, 16, expected, expected), llama.scaling());
    }

    @Test
    void factorsOfAnotherLengthOrNotPositiveNumbersAreRefused() {
        String m = assertThrows(IllegalArgumentException.class, () -> phi3(longRope("short_factor",
                List.of(1.0, 2.0))).architecture()).getMessage();
        assertTrue(m.contains("short_factor has 2 entries") && m.contains("6"), m);
        m = assertThrows(IllegalArgumentException.class, () -> phi3(longRope("long_factor",
                Collections.nCopies(7, 1.0))).architecture()).getMessage();
        assertTrue(m.contains("long_factor has 7 entries"), m);
        for (Object bad : List.of(List.of(1.0, 1.0, 1.0, 1.0, 1.0, 0.0), List.of(1.0, 1.0, 1.0, 1.0, 1.0, "2"), 2.0)) {
            m = assertThrows(IllegalArgumentException.class, () -> phi3(longRope("long_factor", bad)).architecture())
                    .getMessage();
            assertTrue(m.contains("rope_scaling.long_factor") && m.contains("positive numbers"), m);
        }
        m = assertThrows(IllegalArgumentException.class, () -> phi3(Map.of("type", "longrope", "short_factor", SHORT))
                .architecture()).getMessage();
        assertTrue(m.contains("long_factor") && m.contains("requires"), m);
        m = assertThrows(IllegalArgumentException.class, () -> phi3(longRope("attention_factor", -1.0))
                .architecture()).getMessage();
        assertTrue(m.contains("attention_factor") && m.contains("positive"), m);
    }

    /**
     * The Hugging Face Phi-3 fixture, its rope made longrope with factors of 1 for the length its reference ran at and
     * an attention factor of 1, still matches its reference; with those factors on the other side of the original
     * context, it does not.
     */
    @Test
    void theFixtureMatchesWhereTheFactorsForItsLengthAreOne(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("phi3");
        HookedAutoConfig base = HookedAutoConfig.fromJson(fixture.resolve("config.json"));
        long pos;
        try (SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            pos = reference.info("input_ids").shape()[1];
        }
        List<Double> ones = Collections.nCopies(base.dHead() / 2, 1.0);
        List<Double> others = Collections.nCopies(base.dHead() / 2, 3.0);
        for (boolean longPass : new boolean[] {false, true}) {
            for (boolean onesWhereRead : new boolean[] {true, false}) {
                List<Double> read = onesWhereRead ? ones : others;
                List<Double> unread = onesWhereRead ? others : ones;
                HookedAutoConfig config = base.with(Map.of("original_max_position_embeddings",
                        (int) (longPass ? pos - 1 : pos), "rope_parameters", Map.of("rope_type", "longrope",
                        "rope_theta", 10000.0, "attention_factor", 1.0, "short_factor", longPass ? unread : read,
                        "long_factor", longPass ? read : unread)));
                Path dir = tmp.resolve(longPass + "-" + onesWhereRead);
                Files.createDirectories(dir);
                Files.writeString(dir.resolve("config.json"), config.toJson());
                Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
                Files.copy(fixture.resolve("reference.safetensors"), dir.resolve("reference.safetensors"));
                if (onesWhereRead) {
                    ModelParityTest.assertParity(dir, "phi3 longrope", 20);
                } else {
                    assertThrows(AssertionError.class, () -> ModelParityTest.assertParity(dir, "phi3 longrope", 20));
                }
            }
        }
    }
}

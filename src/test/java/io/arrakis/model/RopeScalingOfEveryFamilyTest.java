package io.arrakis.model;

import io.arrakis.model.family.Rope;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static io.arrakis.model.HookedAutoConfigTest.FIXED_ROTARY;
import static io.arrakis.model.HookedAutoConfigTest.ROTARY_PER_LAYER_TYPE;
import static io.arrakis.model.HookedAutoConfigTest.LONGROPE_ONLY;
import static io.arrakis.model.HookedAutoConfigTest.rotaryObject;
import static io.arrakis.model.HookedAutoConfigTest.rotaryObjectKey;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every registered rotary family reads {@code rope_parameters} through the same rotary-scaling machinery, on the
 * configuration of its own Hugging Face fixture: a rope type the forward pass does not compute ({@code proportional})
 * is refused by name, and linear scaling by 2 halves every rotation angle, so the scaled model rotates a vector at
 * position 2p exactly as the unscaled one rotates it at position p, and its {@code hook_rot_q} differs from the
 * unscaled model's wherever the position is not 0; a family whose modeling file applies no scaling refuses it by name.
 */
class RopeScalingOfEveryFamilyTest {
    private static final String KEY = "rope_parameters";

    static List<String> rotaryFamilies() {
        return HookedAutoConfigTest.rotaryFamilies();
    }

    @ParameterizedTest
    @MethodSource("rotaryFamilies")
    void unimplementedTypesAreRefusedAndLinearScalingHalvesTheAngles(String family) {
        Path dir = Fixtures.huggingFace(family);
        HookedAutoConfig read = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        // granitemoehybrid's fixture is Granite 4.0-H's shape, whose attention does not rotate
        HookedAutoConfig fixture = family.equals("granitemoehybrid") ? read.with("position_embedding_type", "rope")
                : read;
        String at = rotaryObjectKey(family, KEY);

        if (!family.equals("gemma4")) { // its full layers' own type (Gemma4Test)
            String proportional = refusal(fixture, family, entries(fixture, family, "rope_type", "proportional",
                    "factor", 2.0));
            assertTrue(proportional.contains(at + ".rope_type") && proportional.contains("\"proportional\""),
                    proportional);
        }
        Map<String, Object> linear = entries(fixture, family, "rope_type", "linear", "factor", 2.0);
        if (FIXED_ROTARY.contains(family) || LONGROPE_ONLY.contains(family)) {
            String m = refusal(fixture, family, linear);
            assertTrue(m.contains(at + ".rope_type") && m.contains("\"linear\""), m);
            return;
        }
        // mistral4's default rope spans the whole head in transformers, which its attention cannot use: linear scaling
        // by 1 rotates as the default rope would
        HookedAutoConfig unscaled = fixture.with(KEY, rotary(fixture, family, family.equals("mistral4")
                ? entries(fixture, family, "rope_type", "linear", "factor", 1.0)
                : entries(fixture, family, "rope_type", "default")));
        HookedAutoConfig scaled = fixture.with(KEY, rotary(fixture, family, linear));
        int layer = IntStream.range(0, scaled.nLayers())
                .filter(l -> scaled.architecture().rope(l) != null
                        && scaled.architecture().rope(l).scaling() instanceof Rope.Linear).findFirst().orElseThrow();
        int pos = 6;
        long[] ids = IntStream.range(0, pos).mapToLong(i -> (7L * i + 3) % fixture.vocabSize()).toArray();
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel plain = HookedAutoModel.create(unscaled, 11, DType.FLOAT32, Device.CPU);
             HookedAutoModel stretched = HookedAutoModel.create(scaled, 11, DType.FLOAT32, Device.CPU);
             ModelOutput a = plain.forward(Tensor.of(ids, 1, pos));
             ModelOutput b = stretched.forward(Tensor.of(ids, 1, pos))) {
            String rotQ = "blocks." + layer + ".attn.hook_rot_q";
            assertTrue(a.cache().get("blocks." + layer + ".attn.hook_q")
                    .allclose(b.cache().get("blocks." + layer + ".attn.hook_q"), 0, 0), "same weights, same queries");
            assertTrue(a.cache().get(rotQ).select(1, 0).allclose(b.cache().get(rotQ).select(1, 0), 0, 1e-6),
                    "position 0 is not rotated");
            for (int p = 1; p < pos; p++) {
                assertFalse(a.cache().get(rotQ).select(1, p).allclose(b.cache().get(rotQ).select(1, p), 1e-3, 1e-3),
                        family + ": hook_rot_q at position " + p + " is unchanged by linear scaling");
            }

            int heads = fixture.nHeads();
            Tensor one = Tensor.normal(new Generator(5), new long[] {1, 1, heads, fixture.dHead(layer)}, 0.0, 1.0,
                    DType.FLOAT32, Device.CPU);
            Tensor same = one.expand(1, 2 * pos, heads, fixture.dHead(layer)).contiguous(); // one vector everywhere
            Tensor byPlain = plain.rotate(layer, same);
            Tensor byStretched = stretched.rotate(layer, same);
            for (int p = 0; p < pos; p++) {
                assertTrue(byStretched.select(1, 2 * p).allclose(byPlain.select(1, p), 1e-5, 1e-5),
                        family + ": scaled rotation at position " + 2 * p + " vs unscaled at " + p);
            }
        }
    }

    private static String refusal(HookedAutoConfig fixture, String family, Map<String, Object> object) {
        return assertThrows(IllegalArgumentException.class,
                () -> fixture.with(KEY, rotary(fixture, family, object))).getMessage();
    }

    /**
     * {@code object} as the fixture's rotary object, or as its full layers' where it has one per layer type, the other
     * types' objects kept (mellum's sliding layers need theirs).
     */
    private static Map<String, ?> rotary(HookedAutoConfig fixture, String family, Map<String, Object> object) {
        Map<String, ?> value = rotaryObject(family, KEY, object);
        if (ROTARY_PER_LAYER_TYPE.contains(family) && fixture.raw().get(KEY) instanceof Map<?, ?> perType) {
            Map<String, Object> merged = new LinkedHashMap<>();
            perType.forEach((type, own) -> merged.put((String) type, own));
            merged.putAll(value);
            return merged;
        }
        return value;
    }

    /**
     * The fixture's own base and rotary fraction (from its rotary object, the full layers' where there is one per
     * layer type), with these entries: only the scaling differs from the fixture.
     */
    private static Map<String, Object> entries(HookedAutoConfig fixture, String family, Object... keysAndValues) {
        Object own = fixture.raw().get(KEY);
        if (own instanceof Map<?, ?> perType && ROTARY_PER_LAYER_TYPE.contains(family)) {
            own = perType.get("full_attention");
        }
        Map<String, Object> entries = new LinkedHashMap<>();
        if (own instanceof Map<?, ?> m && !FIXED_ROTARY.contains(family)) {
            for (String kept : List.of("rope_theta", "partial_rotary_factor")) {
                // gemma4's fraction is its proportional rope's, which no other type takes per layer type
                if (m.containsKey(kept) && !(family.equals("gemma4") && kept.equals("partial_rotary_factor"))) {
                    entries.put(kept, m.get(kept));
                }
            }
        }
        for (int i = 0; i < keysAndValues.length; i += 2) {
            entries.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return entries;
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Rope;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * HunYuan's dense defaults, {@code HunYuanDenseV1Config}'s, its attention norms' names, and its dynamic rope with an
 * {@code alpha}. Its forward pass is checked against {@link HunYuanDenseReference} (norms after the rotation, the
 * alpha's base) by {@link ModelParityTest} and every family-generic test.
 */
class HunYuanDenseTest {
    private static final Map<String, Object> ALPHA_ROPE = Map.of("type", "dynamic", "alpha", 1000.0, "factor", 1.0,
            "beta_fast", 32, "beta_slow", 1, "mscale", 1.0, "mscale_all_dim", 1.0);

    @Test
    void defaultsAreHunYuanDenseV1Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("hunyuan_v1_dense");
        assertEquals("hunyuan-v1-dense", c.family());
        assertEquals(128, c.dHead(), "head_dim, which the class leaves null, defaults to the published models' 128");
        assertEquals(32, c.nKvHeads(), "num_key_value_heads null: every head its own");
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-5, c.normEps());
        assertEquals(2048, c.maxPositions());
        Architecture a = c.architecture();
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertTrue(a.qkNormAfterRotary() && a.normParameters() && a.gatedMlp());
        assertFalse(a.rotaryReversed() || a.qkvBias() || a.outBias() || a.tiedEmbeddings());
        assertEquals(new Rope.Unscaled(), a.rope().scaling());
        // untied 290943 x 4096 embedding and head; per layer q, k, v and o 4096 x 4096, the gated MLP 3 x 4096 x
        // 11008, two norms and the query and key norms of 128; the final norm
        assertEquals(2L * 290943 * 4096 + 32L * (4L * 4096 * 4096 + 3L * 4096 * 11008 + 2 * 4096 + 2 * 128) + 4096,
                c.parameterCount());
    }

    @Test
    void theAttentionNormsAreQueryAndKeyLayernorm() {
        Set<String> names = TinyConfigs.of("hunyuan-v1-dense").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.self_attn.query_layernorm.weight",
                "model.layers.0.self_attn.key_layernorm.weight")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("q_norm") || n.contains("k_norm")), names.toString());
    }

    /** The base is rope_theta · alpha^(head_dim / (head_dim - 2)); the type's other entries are not read. */
    @Test
    void aDynamicRopeWithAnAlphaRaisesTheBase() {
        HookedAutoConfig c = HookedAutoConfig.of("hunyuan_v1_dense").with(Map.of("head_dim", 128,
                "rope_scaling", ALPHA_ROPE, "max_position_embeddings", 32768));
        Rope rope = c.architecture().rope();
        assertEquals(new Rope.NtkAlpha(1000.0), rope.scaling());
        // HunYuanDenseV1RotaryEmbedding: base = rope_theta * alpha ** (dim / (dim - 2)), 1 / base ** (arange(0, dim, 2)
        // / dim) in float32, within a float32 unit of this double computation
        double base = 10000.0 * Math.pow(1000.0, 128.0 / 126);
        float[] inverse = rope.inverseFrequencies();
        assertEquals(64, inverse.length);
        for (int i = 0; i < inverse.length; i++) {
            double expected = 1 / Math.pow(base, 2.0 * i / 128);
            assertEquals(expected, inverse[i], Math.ulp((float) expected), "frequency " + i);
        }
        assertEquals(1.0, rope.attentionFactor());
    }

    @Test
    void aNullHeadDimAnAlphaWithoutFactorAndOtherDynamicRopesAreRefused() {
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("hunyuan_v1_dense")
                .with("head_dim", null)).getMessage();
        assertTrue(m.contains("head_dim"), "transformers' attention fails on a null head_dim: " + m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("hunyuan_v1_dense")
                .with("rope_scaling", Map.of("type", "dynamic", "alpha", 1000.0)).architecture()).getMessage();
        assertTrue(m.contains("factor"), "transformers' validation of a dynamic rope requires a factor: " + m);
        // without an alpha, transformers' dynamic NTK scaling, as for every family
        assertEquals(new Rope.DynamicNtk(2.0, 2048), HookedAutoConfig.of("hunyuan_v1_dense").with(Map.of("head_dim",
                128, "rope_scaling", Map.of("type", "dynamic", "factor", 2.0))).architecture().rope().scaling());
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("llama")
                .with("rope_scaling", Map.of("type", "dynamic", "alpha", 1000.0, "factor", 2.0)).architecture())
                .getMessage();
        assertTrue(m.contains("alpha") && m.contains("does not take"), "only HunYuan reads an alpha: " + m);
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.Rope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Mellum's defaults, {@code MellumConfig}'s, its rotary bases per layer type, dense layers, refusals and checkpoint
 * names. Its forward pass is checked against {@link MellumReference} by {@link ModelParityTest} (MellumConfig's
 * routing, no biases) and here (unnormalised routing, attention biases).
 */
class MellumTest {

    @Test
    void defaultsAreMellumConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("mellum");
        assertEquals("mellum", c.family());
        Architecture a = c.architecture();
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertEquals(128, a.dHead());
        assertEquals(1e-6, a.normEps());
        assertFalse(a.tiedEmbeddings() || a.qkvBias() || a.outBias());
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K, moe.routing());
        assertEquals(64, moe.experts());
        assertEquals(8, moe.topK());
        assertFalse(moe.float32Weights() || moe.hasSharedExpert());
        for (int i = 0; i < 28; i++) { // every layer full, sparse, rotating with base 500000
            assertEquals(LayerAttention.FULL, a.layerAttention().get(i));
            assertTrue(moe.sparse(i));
            assertEquals(500_000.0, a.rope(i).theta());
            assertEquals(128, a.rope(i).dim());
        }
        // 98304 x 2304 embedding and head; per layer q and o 2304 x 4096, k and v 2304 x 512, the query and key norms
        // (128 each), two norms, the router 64 x 2304 and 64 experts of 3 x 2304 x 896; the final norm
        long perLayer = 2L * 2304 * 4096 + 2L * 2304 * 512 + 2 * 128 + 2 * 2304 + 64L * 2304 + 64 * 3L * 2304 * 896;
        assertEquals(2L * 98304 * 2304 + 28 * perLayer + 2304, c.parameterCount());
    }

    @Test
    void eachLayerTypeRotatesWithItsOwnBaseAndDenseLayersHaveTheDenseWidth() {
        HookedAutoConfig c = HookedAutoConfig.of("mellum").with(Map.of("num_hidden_layers", 3,
                "layer_types", List.of("sliding_attention", "full_attention", "sliding_attention"),
                "mlp_layer_types", List.of("dense", "sparse", "sparse")));
        Architecture a = c.architecture();
        assertEquals(List.of(LayerAttention.SLIDING, LayerAttention.FULL, LayerAttention.SLIDING), a.layerAttention());
        assertEquals(1024, a.attentionWindow(0));
        assertEquals(0, a.attentionWindow(1));
        // MellumConfig's rope_parameters when none is given: 10000 on sliding layers, 500000 on full ones
        assertEquals(List.of(10_000.0, 500_000.0, 10_000.0), List.of(a.rope(0).theta(), a.rope(1).theta(),
                a.rope(2).theta()));
        assertEquals(List.of(false, true, true), a.moe().sparseLayers());
        assertEquals(7168, a.moe().denseWidth());
        assertEquals(896, a.dMlp());
        HookedAutoConfig scaled = c.with("rope_parameters", Map.of(
                "full_attention", Map.of("rope_type", "linear", "rope_theta", 250_000.0, "factor", 4.0),
                "sliding_attention", Map.of("rope_type", "default", "rope_theta", 1000)));
        Architecture s = scaled.architecture();
        assertEquals(1000.0, s.rope(0).theta());
        assertEquals(250_000.0, s.rope(1).theta());
        assertEquals(new Rope.Linear(4.0), s.rope(1).scaling(), "the full layers' linear");
        assertTrue(s.rope(0).scaling() instanceof Rope.Unscaled);
        // an object without rope_type is default, or the older key's type, as MellumConfig's validation fills it in;
        // a partial_rotary_factor of 1 is the whole head
        Architecture older = c.with("rope_parameters", Map.of(
                "full_attention", Map.of("type", "linear", "rope_theta", 250_000.0, "factor", 2.0),
                "sliding_attention", Map.of("rope_theta", 1000, "partial_rotary_factor", 1.0))).architecture();
        assertEquals(new Rope.Linear(2.0), older.rope(1).scaling());
        assertEquals(new Rope(128, 1000.0, new Rope.Unscaled()), older.rope(0));
    }

    /**
     * A rope_scaling key takes the place of rope_parameters, as transformers' setter puts it there whatever
     * rope_parameters holds.
     */
    @Test
    void ropeScalingTakesThePlaceOfRopeParameters() {
        Map<String, Object> objects = Map.of(
                "full_attention", Map.of("rope_type", "linear", "rope_theta", 500_000.0, "factor", 4.0),
                "sliding_attention", Map.of("rope_type", "default", "rope_theta", 1000.0));
        HookedAutoConfig c = HookedAutoConfig.of("mellum").with(Map.of("num_hidden_layers", 2,
                "layer_types", List.of("sliding_attention", "full_attention"), "rope_scaling", objects,
                "rope_parameters", Map.of("full_attention", Map.of("rope_type", "default", "rope_theta", 7.0),
                        "sliding_attention", Map.of("rope_type", "default", "rope_theta", 7.0))));
        Architecture a = c.architecture();
        assertEquals(1000.0, a.rope(0).theta());
        assertEquals(new Rope.Linear(4.0), a.rope(1).scaling());
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("rope_scaling",
                Map.of("rope_type", "linear", "factor", 4.0)).architecture()).getMessage();
        assertTrue(m.startsWith("rope_scaling"), m);
    }

    @Test
    void rotaryObjectsItsModelCannotReadAreRefused() {
        HookedAutoConfig slidingAndFull = HookedAutoConfig.of("mellum").with(Map.of("num_hidden_layers", 2,
                "layer_types", List.of("sliding_attention", "full_attention")));
        Map<String, Object> flat = Map.of("rope_type", "default", "rope_theta", 10_000.0);
        Map<String, Object> fullOnly = Map.of("full_attention", flat);
        Map<String, Object> noTheta = Map.of("full_attention", flat, "sliding_attention", Map.of("rope_type",
                "default"));
        Map<String, Object> partial = Map.of("full_attention", Map.of("rope_type", "default", "rope_theta", 1e4,
                "partial_rotary_factor", 0.5), "sliding_attention", flat);
        List<Map<String, Object>> withoutContext = List.of(
                Map.of("rope_type", "yarn", "rope_theta", 1e4, "factor", 4.0),
                Map.of("type", "yarn", "rope_theta", 1e4, "factor", 4.0),
                Map.of("rope_type", "llama3", "rope_theta", 1e4, "factor", 8.0, "low_freq_factor", 1.0,
                        "high_freq_factor", 4.0),
                Map.of("rope_type", "longrope", "rope_theta", 1e4, "short_factor", java.util.Collections.nCopies(64,
                        1.0), "long_factor", java.util.Collections.nCopies(64, 1.0)));
        for (Map<String, Object> rp : List.of(flat, fullOnly, noTheta, partial)) {
            String m = assertThrows(IllegalArgumentException.class, () -> slidingAndFull.with("rope_parameters", rp)
                    .architecture(), rp.toString()).getMessage();
            assertTrue(m.contains("rope_parameters"), m);
        }
        for (Map<String, Object> full : withoutContext) {
            String m = assertThrows(IllegalArgumentException.class, () -> slidingAndFull.with("rope_parameters",
                    Map.of("full_attention", full, "sliding_attention", flat)).architecture(), full.toString())
                    .getMessage();
            assertTrue(m.startsWith("rope_parameters.full_attention") && m.contains("original_max_position_embeddings"),
                    m);
        }
        // a model of full layers alone needs no sliding layers' object
        assertEquals(10_000.0, HookedAutoConfig.of("mellum").with(Map.of("rope_parameters", fullOnly))
                .architecture().rope(0).theta());
        Map<String, Object> nullWindow = new HashMap<>();
        nullWindow.put("sliding_window", null);
        assertTrue(HookedAutoConfig.of("mellum").with(nullWindow).architecture().layerAttention().stream()
                .allMatch(t -> t == LayerAttention.FULL), "full layers alone need no window");
        String m = assertThrows(IllegalArgumentException.class, () -> slidingAndFull.with(nullWindow).architecture())
                .getMessage();
        assertTrue(m.contains("sliding_window"), m);
        for (Object types : List.of(List.of("dense"), List.of("dense", "moe"))) {
            m = assertThrows(IllegalArgumentException.class, () -> slidingAndFull.with("mlp_layer_types", types)
                    .architecture()).getMessage();
            assertTrue(m.contains("mlp_layer_types"), m);
        }
    }

    @Test
    void theCheckpointHasQueryAndKeyNormsAndDenseTensorsOnlyOnDenseLayers() {
        HookedAutoConfig c = TinyConfigs.of("mellum").with(Map.of("num_hidden_layers", 2,
                "mlp_layer_types", List.of("dense", "sparse")));
        Set<String> names = c.checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.self_attn.q_norm.weight",
                "model.layers.0.self_attn.k_norm.weight", "model.layers.0.mlp.gate_proj.weight",
                "model.layers.1.mlp.gate.weight", "model.layers.1.mlp.experts.0.down_proj.weight", "lm_head.weight")),
                names.toString());
        assertTrue(names.stream().noneMatch(n -> n.startsWith("model.layers.0.mlp.experts")
                || n.equals("model.layers.1.mlp.gate_proj.weight") || n.contains("shared")), names.toString());
    }

    @Test
    void unnormalisedRoutingWithAttentionBiasesMatchesItsReference(@TempDir Path dir) throws Exception {
        MellumReference.write(dir, MellumReference.Kind.AS_IS_WITH_BIASES);
        Architecture a = HookedAutoConfig.fromJson(dir.resolve("config.json")).architecture();
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K_AS_IS, a.moe().routing());
        assertTrue(a.qkvBias() && a.outBias());
        ModelParityTest.assertParity(dir, "mellum, unnormalised, biases", 3 * 3 + 2);
    }
}

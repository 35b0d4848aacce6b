package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.MixtureOfExperts;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cohere2-MoE's defaults, {@code Cohere2MoeConfig}'s, its layer types and rotating layers as the class fills them in,
 * its norm, its refusals and its checkpoint's names. Its forward pass is checked against {@link Cohere2MoeReference}
 * by {@link ModelParityTest} (softmax routing, the shared expert averaged) and here (sigmoid routing normalised, the
 * shared expert summed).
 */
class Cohere2MoeTest {

    @Test
    void defaultsAreCohere2MoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("cohere2_moe");
        assertEquals("cohere2-moe", c.family());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.LAYER_NORM, a.norm());
        assertTrue(a.parallelResidual() && a.sharedNorm() && a.rotaryInterleaved() && a.tiedEmbeddings());
        assertEquals(0.0625, a.logitScale());
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.TOP_K_THEN_FLOAT32_SOFTMAX, moe.routing());
        assertEquals(8, moe.experts());
        assertEquals(2, moe.topK());
        assertFalse(moe.float32Weights() || moe.hasSharedExpert());
        for (int i = 0; i < 40; i++) { // every fourth layer full and unrotated
            boolean full = (i + 1) % 4 == 0;
            assertEquals(full ? LayerAttention.FULL : LayerAttention.SLIDING, a.layerAttention().get(i), "layer " + i);
            assertEquals(!full, c.rotates(i), "layer " + i);
        }
        // tied 256000 x 8192 embedding; per layer q, k, v and o 8192 x 8192, one LayerNorm weight, the router
        // 8 x 8192 and 8 experts of 3 x 8192 x 22528; the final norm
        assertEquals(256000L * 8192 + 40L * (4L * 8192 * 8192 + 8192 + 8 * 8192 + 8 * 3L * 8192 * 22528) + 8192,
                c.parameterCount());
    }

    @Test
    void denseLayersComeFirstRotateAndHaveTheirOwnWidth() {
        HookedAutoConfig c = HookedAutoConfig.of("cohere2_moe").with(Map.of("num_hidden_layers", 6,
                "first_k_dense_replace", 2, "prefix_dense_intermediate_size", 1024, "sliding_window_pattern", 2));
        Architecture a = c.architecture();
        assertEquals(List.of(false, false, true, true, true, true), a.moe().sparseLayers());
        assertEquals(1024, a.moe().denseWidth());
        // prefix_dense_sliding_window_pattern 1: the dense layers full but rotating; then sliding, full, ...
        assertEquals(List.of(LayerAttention.FULL, LayerAttention.FULL, LayerAttention.SLIDING, LayerAttention.FULL,
                LayerAttention.SLIDING, LayerAttention.FULL), a.layerAttention());
        assertEquals(List.of(true, true, true, false, true, false),
                IntStream.range(0, 6).mapToObj(c::rotates).toList());
        HookedAutoConfig prefix2 = HookedAutoConfig.of("cohere2_moe").with(Map.of("num_hidden_layers", 4,
                "first_k_dense_replace", 2, "prefix_dense_sliding_window_pattern", 2, "sliding_window_pattern", 2));
        assertEquals(List.of(LayerAttention.SLIDING, LayerAttention.FULL, LayerAttention.SLIDING, LayerAttention.FULL),
                prefix2.architecture().layerAttention());
        assertEquals(List.of(true, false, true, false), IntStream.range(0, 4).mapToObj(prefix2::rotates).toList(),
                "a dense full layer rotates only where the prefix pattern is 1");
        assertEquals(Architecture.Norm.RMS_NORM, HookedAutoConfig.of("cohere2_moe").with("rms_norm_eps", 1e-6)
                .architecture().norm(), "an RMSNorm where rms_norm_eps is set");
    }

    @Test
    void unknownStrategiesAndANullWindowAreRefused() {
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("cohere2_moe")
                .with(Map.of("num_shared_experts", 1, "shared_expert_combination_strategy", "max")).architecture())
                .getMessage();
        assertTrue(m.contains("shared_expert_combination_strategy"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("cohere2_moe")
                .with("expert_selection_fn", "relu").architecture()).getMessage();
        assertTrue(m.contains("expert_selection_fn"), m);
        Map<String, Object> nullWindow = new java.util.HashMap<>();
        nullWindow.put("sliding_window", null);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("cohere2_moe").with(nullWindow)
                .architecture()).getMessage();
        assertTrue(m.contains("sliding_window"), m);
        for (int firstDense : new int[] {-1, 41}) {
            m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("cohere2_moe")
                    .with("first_k_dense_replace", firstDense).architecture()).getMessage();
            assertTrue(m.contains("first_k_dense_replace"), m);
        }
    }

    @Test
    void theCheckpointHasOneNormPerBlockAndSharedExpertsWhereThereAreSome() {
        HookedAutoConfig c = TinyConfigs.of("cohere2-moe").with(Map.of("num_shared_experts", 2));
        Set<String> names = c.checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.input_layernorm.weight", "model.layers.0.mlp.gate.weight",
                "model.layers.0.mlp.experts.0.gate_proj.weight", "model.layers.0.mlp.shared_experts.up_proj.weight")),
                names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("post_attention_layernorm") || n.endsWith("norm.bias")),
                names.toString());
        assertEquals(2 * c.dMlp(), c.architecture().moe().sharedWidth());
    }

    @Test
    void sigmoidRoutingWithTheSharedExpertSummedMatchesItsReference(@TempDir Path dir) throws Exception {
        for (Cohere2MoeReference.Kind kind : List.of(Cohere2MoeReference.Kind.SIGMOID_SUMMED,
                Cohere2MoeReference.Kind.SIGMOID_AS_IS)) {
            Path at = dir.resolve(kind.name());
            Cohere2MoeReference.write(at, kind);
            MixtureOfExperts.Routing routing = kind == Cohere2MoeReference.Kind.SIGMOID_SUMMED
                    ? MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID_NORMALIZED
                    : MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID;
            assertEquals(routing, HookedAutoConfig.fromJson(at.resolve("config.json")).architecture().moe().routing());
            ModelParityTest.assertParity(at, "cohere2-moe, " + kind, 2 * 3 + 2);
        }
    }
}

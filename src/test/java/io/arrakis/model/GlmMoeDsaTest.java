package io.arrakis.model;

import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.SparseAttention;
import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GLM-5's defaults, {@code GlmMoeDsaConfig}'s, which layers have an indexer of their own (and so its parameters), and
 * the refusals. Its forward pass is checked by {@link ModelParityTest} on the deepseek-v3 reference model with
 * indexers on its first and last layers that keep every key ({@link DerivedFixtures}).
 */
class GlmMoeDsaTest {

    @Test
    void defaultsAreGlmMoeDsaConfigsWithAnIndexerOnEveryLayer() {
        HookedAutoConfig c = HookedAutoConfig.of("glm_moe_dsa");
        assertEquals("glm-moe-dsa", c.family());
        SparseAttention indexer = c.architecture().sparseAttention();
        assertEquals(new SparseAttention(2048, 32, 128, Collections.nCopies(78, true)), indexer);
        assertEquals(2048, c.longestPass());
        assertEquals(1e-5, c.architecture().normEps());
        assertEquals(202752, c.maxPositions());
        MixtureOfExperts moe = c.architecture().moe();
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 2.5), moe.grouped());
        assertEquals(List.of(256, 8), List.of(moe.experts(), moe.topK()));
        assertEquals(List.of(false, false, false, true), moe.sparseLayers().subList(0, 4));
        // the same blocks with every indexer's parameters: wq_b 32 x 128 x 2048, wk 128 x 6144, k_norm 2 x 128,
        // weights_proj 32 x 6144, on each of the 78 layers
        long perIndexer = 32L * 128 * 2048 + 128L * 6144 + 2 * 128 + 32L * 6144;
        assertEquals(perIndexer, indexer.parameters(6144, 2048));
        assertEquals(744.0, c.parameterCount() / 1e9, 0.5, "GLM-5's published 744B");
        HookedAutoConfig half = c.with("index_topk_pattern", "FS".repeat(39));
        assertEquals(c.parameterCount() - 39 * perIndexer, half.parameterCount(), "a shared layer has no indexer");
        assertTrue(half.checkpoint().unread().contains("model.layers.78."), "the prediction layer after the last");
        assertTrue(half.checkpoint().unread().contains("model.layers.0.self_attn.indexer.")
                && !half.checkpoint().unread().contains("model.layers.1.self_attn.indexer."));
    }

    @Test
    void indexerTypesAreReadOrFilledInAsTheConfigClassDoes() {
        HookedAutoConfig c = HookedAutoConfig.of("glm_moe_dsa").with("num_hidden_layers", 5);
        assertEquals(List.of(true, false, true, true, false), c.with("indexer_types",
                List.of("full", "shared", "full", "full", "shared")).architecture().sparseAttention().indexed());
        assertEquals(List.of(true, true, false, false, true), c.with("index_topk_pattern", "FFSSF").architecture()
                .sparseAttention().indexed());
        // full where max(i - offset + 1, 0) is a multiple of the frequency (at least 1), the offset 2 by default
        assertEquals(List.of(true, true, false, true, false), c.with(Map.of("index_topk_freq", 2,
                "index_skip_topk_offset", 2)).architecture().sparseAttention().indexed());
        assertEquals(List.of(true, true, false, true, false), c.with("index_topk_freq", 2).architecture()
                .sparseAttention().indexed());
        assertEquals(List.of(true, false, true, false, true), c.with(Map.of("index_topk_freq", 2,
                "index_skip_topk_offset", 1)).architecture().sparseAttention().indexed());
        assertEquals(Collections.nCopies(5, true), c.with("index_topk_freq", 0).architecture().sparseAttention()
                .indexed());
        for (Map.Entry<String, ?> bad : List.<Map.Entry<String, ?>>of(
                Map.entry("indexer_types", List.of("shared", "full", "full", "full", "full")),
                Map.entry("indexer_types", List.of("full", "full")),
                Map.entry("index_topk_pattern", "FXFFF"))) {
            String m = assertThrows(IllegalArgumentException.class, () -> c.with(bad.getKey(), bad.getValue())
                    .architecture(), bad.toString()).getMessage();
            assertTrue(m.contains(bad.getKey()), m);
        }
        String m = assertThrows(IllegalArgumentException.class, () -> c.with(Map.of("index_topk_freq", 2,
                "index_skip_topk_offset", 0)).architecture()).getMessage();
        assertTrue(m.contains("index_skip_topk_offset") && m.contains("first layer"), m);
    }
}

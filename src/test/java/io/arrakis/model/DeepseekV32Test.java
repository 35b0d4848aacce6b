package io.arrakis.model;

import io.arrakis.composer.HeadDetectors;
import io.arrakis.model.family.Architecture;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepSeek-V3.2's defaults, {@code DeepseekV32Config}'s, its indexer's parameters in the count, the passes it takes
 * (at most {@code index_topk} positions, where its attention is dense) and its refusals. Its forward pass is checked
 * by {@link ModelParityTest} on the deepseek-v3 reference model with an indexer that keeps every key
 * ({@link DerivedFixtures}).
 */
class DeepseekV32Test {

    @Test
    void defaultsAreDeepseekV32ConfigsAndTheIndexerCountsInTheParameters() {
        HookedAutoConfig c = HookedAutoConfig.of("deepseek_v32");
        assertEquals("deepseek-v32", c.family());
        Architecture a = c.architecture();
        assertTrue(a.latentAttention().ropeInterleaved(), "the rotated features are always stored in adjacent pairs");
        assertEquals(1536, a.latentAttention().queryRank());
        assertEquals(2048, c.longestPass(), "index_topk");
        assertEquals(163840, c.maxPositions());
        // DeepSeek-V3's blocks with V3.2's defaults, and per layer the indexer: wq_b 64 x 128 x 1536, wk 128 x 7168,
        // k_norm's weight and bias of 128, weights_proj 64 x 7168
        HookedAutoConfig v3 = HookedAutoConfig.of("deepseek_v3").with("max_position_embeddings", 163840);
        long indexer = 64L * 128 * 1536 + 128L * 7168 + 2 * 128 + 64L * 7168;
        assertEquals(v3.parameterCount() + 61 * indexer, c.parameterCount());
        assertEquals(671.9, c.parameterCount() / 1e9, 0.05, "the published 685B less the 14B prediction layer");
        assertEquals(List.of(false, false, false, true), a.moe().sparseLayers().subList(0, 4));
        assertTrue(c.checkpoint().unread().contains("model.layers.61."), "the prediction layer after the last");
        assertEquals(1000, c.with("max_position_embeddings", 1000).longestPass(), "the context, where shorter");
    }

    @Test
    void passesLongerThanTheIndexersTopKAreRefused() {
        HookedAutoConfig c = TinyConfigs.of("deepseek-v32").with("index_topk", 4);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(c, 3, DType.FLOAT32, Device.CPU)) {
            assertEquals(4, model.runWithHooks(Tensor.of(LongStream.range(1, 5).toArray(), 1, 4)).size(1));
            String m = assertThrows(IllegalArgumentException.class, () -> model.runWithHooks(
                    Tensor.of(LongStream.range(1, 6).toArray(), 1, 5))).getMessage();
            assertTrue(m.contains("5 positions") && m.contains("index_topk") && m.contains("not implemented"), m);
            m = assertThrows(IllegalArgumentException.class, () -> model.capture(1, 5, CacheSpec.none()))
                    .getMessage();
            assertTrue(m.contains("at most 4"), m);
            // the head detectors size their repeated sequences by the passes the model takes
            m = assertThrows(IllegalArgumentException.class, () -> HeadDetectors.detect(model, 3, 1, 7)).getMessage();
            assertTrue(m.contains("use seqLen <= 2"), m);
        }
    }

    @Test
    void layerTypesDenseLayersAndTheIndexersWidthFollowTransformers() {
        HookedAutoConfig c = HookedAutoConfig.of("deepseek_v32").with(Map.of("num_hidden_layers", 3,
                "mlp_layer_types", List.of("sparse", "dense", "sparse")));
        assertEquals(List.of(true, false, true), c.architecture().moe().sparseLayers());
        for (Object types : List.of(List.of("full_attention", "full_attention", "full_attention"),
                List.of("deepseek_sparse_attention"))) {
            String m = assertThrows(IllegalArgumentException.class, () -> c.with("layer_types", types)
                    .architecture()).getMessage();
            assertTrue(m.contains("layer_types"), m);
        }
        c.with("layer_types", List.of("deepseek_sparse_attention", "deepseek_sparse_attention",
                "deepseek_sparse_attention")).architecture();
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("index_head_dim", 32).architecture())
                .getMessage();
        assertTrue(m.contains("index_head_dim") && m.contains("qk_rope_head_dim"), m);
        c.with("index_head_dim", 64).architecture(); // every feature rotated
        for (Map.Entry<String, ?> routing : List.<Map.Entry<String, ?>>of(Map.entry("topk_method", "greedy"),
                Map.entry("scoring_func", "softmax"), Map.entry("moe_layer_freq", 2))) {
            m = assertThrows(IllegalArgumentException.class, () -> c.with(routing.getKey(), routing.getValue())
                    .architecture()).getMessage();
            assertTrue(m.contains(routing.getKey()), m);
        }
        Map<String, Object> noQueryLatent = new java.util.HashMap<>();
        noQueryLatent.put("q_lora_rank", null);
        m = assertThrows(IllegalArgumentException.class, () -> c.with(noQueryLatent).architecture()).getMessage();
        assertTrue(m.contains("q_lora_rank"), m);
    }
}

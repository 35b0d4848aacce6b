package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Falcon: FalconConfig's defaults, the settings the forward pass refuses, random models of each decoder layout, and
 * the per-head weights cut from the fused query_key_value rows (the forward pass itself is checked against Hugging
 * Face by {@link ModelParityTest}).
 */
class FalconTest {

    @Test
    void defaultsAreFalcon7B() {
        HookedAutoConfig c = HookedAutoConfig.of("falcon");
        assertEquals(1, c.nKvHeads(), "multi_query");
        assertEquals(64, c.dHead());
        assertEquals(4 * 4544, c.dMlp(), "ffn_hidden_size None means 4 * hidden_size");
        assertEquals("gelu", c.activation());
        assertTrue(c.parallelResidual() && c.architecture().sharedNorm() && c.tiedEmbeddings());
        assertFalse(c.qkvBias() || c.outBias() || c.mlpBias());
        // tied 65024 x 4544 embedding; per layer query_key_value 4544 x (4544 + 2 x 64), dense 4544², the MLP
        // 2 x 4544 x 18176, input_layernorm 2 x 4544; ln_f 2 x 4544
        assertEquals(65024L * 4544 + 32L * (4544L * (4544 + 128) + 4544L * 4544 + 2L * 4544 * 18176 + 9088) + 9088,
                c.parameterCount());
        assertEquals(6_921_720_704L, c.parameterCount());
        assertEquals(568, c.with("n_embed", 568).dModel(), "FalconConfig's n_embed");
    }

    @Test
    void unsupportedSettingsAreRefusedNamingKeyAndValue() {
        HookedAutoConfig c = HookedAutoConfig.of("falcon");
        assertRefused(c, Map.of("alibi", true), "alibi", "true");
        assertRefused(c, Map.of("new_decoder_architecture", true, "parallel_attn", false), "parallel_attn", "false");
        assertRefused(c, Map.of("new_decoder_architecture", true, "num_ln_in_parallel_attn", 3),
                "num_ln_in_parallel_attn", "3");
        assertRefused(c, Map.of("num_ln_in_parallel_attn", 2), "num_ln_in_parallel_attn", "2");
        assertRefused(c, Map.of("multi_query", false, "num_kv_heads", 1), "num_kv_heads", "1");
    }

    private static void assertRefused(HookedAutoConfig c, Map<String, Object> overrides, String key, String value) {
        String m = assertThrows(IllegalArgumentException.class, () -> c.with(overrides)).getMessage();
        assertTrue(m.contains(key + " = " + value), m);
    }

    static Stream<Arguments> layouts() {
        return Stream.of(
                Arguments.of("new, ln_attn and ln_mlp", Map.of("new_decoder_architecture", true, "num_kv_heads", 2), 2),
                Arguments.of("new, one norm, biases", Map.of("new_decoder_architecture", true, "num_kv_heads", 1,
                        "num_ln_in_parallel_attn", 1, "bias", true), 1),
                Arguments.of("multi-query, parallel", Map.of(), 1),
                Arguments.of("multi-query, sequential", Map.of("parallel_attn", false), 1),
                Arguments.of("a key/value head per head, sequential, biases", Map.of("multi_query", false,
                        "parallel_attn", false, "bias", true), 4));
    }

    /** Each layout's checkpoint builds a model whose forward pass runs, with the key/value heads it implies. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("layouts")
    void everyLayoutRuns(String name, Map<String, Object> layout, int kvHeads) {
        Map<String, Object> overrides = new HashMap<>(Map.of("hidden_size", 32, "num_hidden_layers", 2,
                "num_attention_heads", 4, "vocab_size", 64, "max_position_embeddings", 16));
        overrides.putAll(layout);
        HookedAutoConfig config = HookedAutoConfig.of("falcon").with(overrides);
        assertEquals(kvHeads, config.nKvHeads());
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(config, 5, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {1, 2, 3, 4, 5, 6}, 2, 3))) {
            for (float v : out.logits().toFloatArray()) {
                assertTrue(Float.isFinite(v), name);
            }
            assertEquals(!config.parallelResidual(), out.cache().contains("blocks.0.hook_resid_mid"), name);
        }
    }

    /**
     * In the new decoder architecture the fused rows hold, per key/value head g, its query heads then k then v:
     * query head h = g · rep + j is rows (g · (rep + 2) + j) · d_head onwards, and key/value head g is at j = rep
     * and rep + 1.
     */
    @Test
    void perHeadWeightsAreCutFromTheGroupedFusedRows() {
        Path dir = Fixtures.huggingFace("falcon");
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            HookedAutoConfig c = model.config();
            int dh = c.dHead();
            int rep = c.nHeads() / c.nKvHeads();
            assertEquals(2, rep);
            Tensor fused = file.tensor("transformer.h.1.self_attention.query_key_value.weight"); // [rows, d_model]
            for (int h = 0; h < c.nHeads(); h++) {
                int row = (h / rep * (rep + 2) + h % rep) * dh;
                assertRows(fused, row, model.W_Q(1).select(0, h), "W_Q head " + h);
            }
            for (int g = 0; g < c.nKvHeads(); g++) {
                assertRows(fused, (g * (rep + 2) + rep) * dh, model.W_K(1, false).select(0, g), "W_K head " + g);
                assertRows(fused, (g * (rep + 2) + rep + 1) * dh, model.W_V(1, false).select(0, g), "W_V head " + g);
            }
            assertArrayEquals(new long[] {c.nHeads(), c.dModel(), dh}, model.W_K(1, true).shape());
        }
    }

    /** {@code perHead [d_model, d_head]} is the transpose of rows {@code row .. row + d_head} of the fused weight. */
    private static void assertRows(Tensor fused, int row, Tensor perHead, String what) {
        Tensor rows = fused.narrow(0, row, perHead.size(1)).transpose(0, 1).contiguous();
        assertArrayEquals(rows.toFloatArray(), perHead.toFloatArray(), what);
    }
}

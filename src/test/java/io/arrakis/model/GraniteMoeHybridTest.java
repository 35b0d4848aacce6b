package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Mamba2;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Granite 4.0 ({@code granitemoehybrid}): its Mamba-2 layers, attention layers and MLPs against the two fixtures
 * transformers made ({@code scripts/make-hf-mamba2-fixtures.py}), published configs with the parameters
 * transformers counts for them, the refusals, and what the tools make of a Mamba layer's heads.
 */
class GraniteMoeHybridTest {
    private static final Path HYBRID = Fixtures.HF.resolve("granitemoehybrid");
    private static final Path DENSE = Fixtures.HF.resolve("granitemoehybrid-dense");

    @TempDir
    Path dir;

    /**
     * Every hook of both fixtures as transformers computes it (x, B, C, the time steps, the state space's output,
     * the gate, the normed output of each Mamba layer; queries, keys, values and patterns of each attention layer;
     * every residual stream), and every tensor of their checkpoints counted.
     */
    @Test
    void everyHookIsTransformers() {
        ModelParityTest.assertParity(HYBRID, "granitemoehybrid", 35);
        ModelParityTest.assertParity(DENSE, "granitemoehybrid-dense", 23);
        for (Path fixture : new Path[] {HYBRID, DENSE}) {
            try (SafeTensorsFile weights = SafeTensorsFile.open(fixture.resolve("model.safetensors"))) {
                assertEquals(weights.names().stream().mapToLong(n -> weights.info(n).numel()).sum(),
                        HookedAutoConfig.fromJson(fixture.resolve("config.json")).parameterCount(), fixture.toString());
            }
        }
    }

    /** The bfloat16 pass rounds where transformers' does: its logits are transformers' bfloat16 logits. */
    @Test
    void theBfloat16PassIsTransformers() {
        for (Path fixture : new Path[] {HYBRID, DENSE}) {
            double[] d = Fixtures.bfloat16Distances(fixture, "logits");
            assertTrue(d[0] <= d[1] / 1000, fixture + ": mean distance " + d[0] + ", float32's " + d[1]);
        }
    }

    /** The fixtures' settings as read: the time-step limits, groups, biases, chunks, rotary and experts. */
    @Test
    void theFixturesSettingsAreRead() {
        Architecture hybrid = HookedAutoConfig.fromJson(HYBRID.resolve("config.json")).architecture();
        Mamba2 m = hybrid.mamba2();
        assertEquals(List.of(true, false, true, true), m.layers());
        assertEquals(List.of(8, 8, 2, 8, 4, 4), List.of(m.heads(), m.headDim(), m.groups(), m.stateSize(),
                m.convKernel(), m.chunk()));
        assertEquals(0.9, m.dtMax());
        assertTrue(m.convBias() && m.projectionBias());
        assertNull(hybrid.layerRopes().get(1), "nope: the attention layer does not rotate");
        assertEquals(40, hybrid.moe().sharedWidth());
        Architecture dense = HookedAutoConfig.fromJson(DENSE.resolve("config.json")).architecture();
        // transformers 5 writes the default limit's infinity as {"__float__": "Infinity"}
        assertEquals(Double.POSITIVE_INFINITY, dense.mamba2().dtMax());
        assertNull(dense.moe());
        assertEquals(48, dense.dMlp());
        assertTrue(dense.layerRopes().get(0) != null && dense.layerRopes().get(1) == null);
    }

    /**
     * The state space is the same whatever its chunk: chunks of 1 (every position a step of the recurrence), 3, 5, 6
     * (the last padded), 11 and 256 (one chunk) give transformers' logits of chunks of 4.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 3, 5, 6, 11, 256})
    void theChunkDoesNotChangeThePass(int chunk) throws IOException {
        Path copy = copyWith(HYBRID, Map.of("mamba_chunk_size", chunk));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(HYBRID.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(copy)) {
            io.arrakis.testing.Close.assertAllClose(reference.tensor("logits").toDoubleArray(),
                    model.runWithHooks(reference.tensor("input_ids")).toDoubleArray(), 1e-5, 1e-5, "chunk " + chunk);
        }
    }

    /**
     * Granite 4.0-H-Tiny's config.json and Granite 4.0-H-350M's (dense, no experts), in 4.x's form: the legacy layer
     * type names under {@code layer_types}, {@code rope_theta}, keys transformers does not read. Each layer's mixer as
     * listed, and the parameters transformers 5.17 counts for them on the meta device (6,939,037,248, the published
     * 7B; 340,332,224, the published 340M). The {@code layers_block_type} alias names the same layers.
     */
    @Test
    void publishedConfigsLoadWithTransformersCounts() throws IOException {
        List<String> tinyTypes = new ArrayList<>();
        for (int attention : new int[] {5, 15, 25, 35, 40}) {
            tinyTypes.addAll(Collections.nCopies(attention - tinyTypes.size(), "mamba"));
            if (attention < 40) {
                tinyTypes.add("attention");
            }
        }
        Map<String, Object> tiny = published(1536, 40, 512, 1024, 64, 6, 64);
        tiny.put("layer_types", tinyTypes);
        HookedAutoConfig c = read(tiny);
        assertEquals(6_939_037_248L, c.parameterCount());
        assertEquals(List.of(5, 15, 25, 35), java.util.stream.IntStream.range(0, 40).filter(c::attentionHeads).boxed()
                .toList());
        assertEquals(Architecture.Mixer.MAMBA2, c.mixer(0));
        assertEquals(6, c.expertsPerToken());
        tiny.remove("layer_types");
        tiny.put("layers_block_type", tinyTypes.stream().map(t -> t.equals("mamba") ? "linear_attention"
                : "full_attention").toList());
        assertEquals(c.architecture().mamba2().layers(), read(tiny).architecture().mamba2().layers());

        List<String> smallTypes = new ArrayList<>(Collections.nCopies(32, "mamba"));
        for (int attention : new int[] {10, 13, 17, 27}) {
            smallTypes.set(attention, "attention");
        }
        Map<String, Object> small = published(768, 32, 2048, 2048, 0, 0, 32);
        small.put("layer_types", smallTypes);
        c = read(small);
        assertEquals(340_332_224L, c.parameterCount());
        assertNull(c.architecture().moe());
        assertEquals(List.of(10, 13, 17, 27), java.util.stream.IntStream.range(0, 32).filter(c::attentionHeads)
                .boxed().toList());
    }

    private static Map<String, Object> published(int width, int layers, int mlp, int shared, int experts, int topK,
                                                 int headDim) {
        Map<String, Object> file = new LinkedHashMap<>(Map.of("model_type", "granitemoehybrid", "hidden_size", width,
                "num_hidden_layers", layers, "num_attention_heads", 12, "num_key_value_heads", 4,
                "intermediate_size", mlp, "shared_intermediate_size", shared, "num_local_experts", experts,
                "num_experts_per_tok", topK, "vocab_size", 100352));
        file.putAll(Map.of("tie_word_embeddings", true, "mamba_d_state", 128, "mamba_n_groups", 1, "mamba_n_heads", 48,
                "mamba_d_head", headDim, "mamba_expand", 2, "mamba_d_conv", 4, "mamba_chunk_size", 256,
                "position_embedding_type", "nope", "rope_theta", 10000));
        file.putAll(Map.of("max_position_embeddings", 131072, "embedding_multiplier", 12, "attention_multiplier",
                0.0078125, "residual_multiplier", 0.22, "logits_scaling", 6, "normalization_function", "rmsnorm",
                "init_method", "mup", "mamba_conv_bias", true, "mamba_proj_bias", false));
        return file;
    }

    private HookedAutoConfig read(Map<String, Object> file) throws IOException {
        Files.writeString(dir.resolve("config.json"), Json.write(file));
        return HookedAutoConfig.fromJson(dir.resolve("config.json"));
    }

    /** What transformers could not compute, or would compute otherwise, is refused by name. */
    @Test
    void unimplementedOrInconsistentSettingsAreRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("granitemoehybrid");
        Map<Map<String, Object>, String> refused = new LinkedHashMap<>();
        refused.put(Map.of("position_embedding_type", "alibi"), "position_embedding_type");
        refused.put(Map.of("layer_types", List.of("mamba", "sliding_attention")), "layer_types");
        refused.put(Map.of("layer_types", List.of("mamba")), "layer_types");
        refused.put(Map.of("mamba_d_head", 7), "mamba_d_head");
        refused.put(Map.of("mamba_n_heads", 7), "mamba_n_heads");
        refused.put(Map.of("mamba_n_groups", 3), "mamba_n_groups");
        refused.put(Map.of("time_step_limit", List.of(1.0, 0.5)), "time_step_limit");
        refused.put(Map.of("time_step_limit", List.of(0.0, Map.of("__float__", "NaN"))), "time_step_limit");
        refused.put(Collections.singletonMap("time_step_limit", null), "time_step_limit"); // transformers' pass fails
        refused.put(Map.of("num_experts_per_tok", 0), "num_experts_per_tok");
        refused.put(Map.of("num_local_experts", -1), "num_local_experts");
        refused.forEach((settings, key) -> {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(settings).architecture(), settings.toString());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        });
        // the dense form and the legacy names are read
        assertNull(tiny.with(Map.of("num_local_experts", 0, "num_experts_per_tok", 0)).architecture().moe());
        assertEquals(List.of(false, true), tiny.with(Map.of("layer_types", List.of("full_attention",
                "linear_attention"))).architecture().mamba2().layers());
    }

    /**
     * A Mamba layer has no per-head query, key or value maps; its heads' {@code W_O} are their rows of
     * {@code out_proj}, and with its bias they sum to the layer's output before the residual multiplier.
     */
    @Test
    void aMambaLayersHeadsWriteThroughTheirRowsOfOutProj() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(HYBRID.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(HYBRID.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(HYBRID);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            String m = assertThrows(UnsupportedOperationException.class, () -> model.W_Q(0)).getMessage();
            assertTrue(m.contains("Mamba-2") && m.contains("mamba.hook_x") && m.contains("[1]"), m);
            Tensor wo = model.W_O(2);
            assertArrayEquals(new long[] {8, 8, 32}, wo.shape());
            Tensor outProj = weights.tensor("model.layers.2.mamba.out_proj.weight"); // [d_model, heads · head_dim]
            assertTrue(wo.select(0, 3).allclose(outProj.narrow(1, 24, 8).transpose(0, 1), 0, 0));
            assertTrue(model.b_O(2).allclose(weights.tensor("model.layers.2.mamba.out_proj.bias"), 0, 0));
            Tensor z = out.cache().get("blocks.2.mamba.hook_z"); // [batch, pos, heads, head_dim]
            Tensor sum = z.unsqueeze(-1).mul(wo).sum(-2, false).sum(2, false).add(model.b_O(2));
            io.arrakis.testing.Close.assertAllClose(out.cache().get("blocks.2.hook_attn_out").toDoubleArray(),
                    sum.mul(0.5).toDoubleArray(), 1e-5, 1e-5, "heads of layer 2");
        }
    }

    private Path copyWith(Path fixture, Map<String, Object> settings) throws IOException {
        Path copy = Files.createDirectories(dir.resolve("copy"));
        for (String name : new String[] {"model.safetensors", "reference.safetensors"}) {
            Files.copy(fixture.resolve(name), copy.resolve(name));
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(fixture.resolve("config.json"))));
        config.putAll(settings);
        Files.writeString(copy.resolve("config.json"), Json.write(config));
        return copy;
    }
}

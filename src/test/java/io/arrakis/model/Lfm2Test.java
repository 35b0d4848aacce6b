package io.arrakis.model;

import io.arrakis.bench.Plots;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.ShortConvolution;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LFM2: {@code Lfm2Config}'s defaults and keyword arguments, the MLP width it derives, its layer types and refusals,
 * the bfloat16 pass against transformers', and what the tools make of its convolution layers. Every float32 hook of
 * its Hugging Face fixture (convolution layers 0 and 2, attention layers 1 and 3) is checked by
 * {@link ModelParityTest}.
 */
class Lfm2Test {
    private static final Path FIXTURE = Fixtures.huggingFace("lfm2");

    @TempDir
    Path dir;

    @Test
    void defaultsAreLfm2Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("lfm2");
        Architecture a = c.architecture();
        assertEquals(List.of(2560, 32, 32, 8, 80, 65536), List.of(a.dModel(), a.nLayers(), a.nHeads(), a.nKvHeads(),
                a.dHead(), a.vocabSize()));
        // two thirds of 12288, times 1.0, rounded up to a multiple of 256
        assertEquals(8192, a.dMlp());
        assertTrue(a.tiedEmbeddings() && a.gatedMlp());
        assertEquals(Architecture.Norm.RMS_NORM, a.norm());
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertEquals(1_000_000.0, a.rope().theta());
        // full_attn_idxs null: Lfm2Config makes every layer attend
        assertEquals(Collections.nCopies(32, false), a.shortConvolution().layers());
        assertEquals(new ShortConvolution(3, false, Collections.nCopies(32, false)), a.shortConvolution());
    }

    /**
     * A {@code config.json} in the form LFM2-1.2B's takes: attention layers by {@code full_attn_idxs}, the MLP by
     * {@code block_ff_dim}, tied embeddings by {@code tie_embedding}, and keys transformers does not read. Its
     * parameters, counted by hand from {@code Lfm2ForCausalLM}'s modules, are the published 1.17 billion.
     */
    @Test
    void aPublishedConfigsKeywordArgumentsAreRead() throws Exception {
        Map<String, Object> file = new LinkedHashMap<>();
        file.putAll(Map.of("model_type", "lfm2", "hidden_size", 2048, "num_hidden_layers", 16, "num_attention_heads",
                32, "num_key_value_heads", 8, "block_ff_dim", 12288, "tie_embedding", true, "full_attn_idxs",
                List.of(2, 5, 8, 10, 12, 14), "rope_theta", 1_000_000.0, "block_use_swiglu", true));
        file.putAll(Map.of("conv_dim", 2048, "tie_word_embeddings", false, "eos_token_id", 7));
        Files.writeString(dir.resolve("config.json"), Json.write(file));
        HookedAutoConfig c = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        Architecture a = c.architecture();
        assertEquals(8192, a.dMlp());
        assertTrue(a.tiedEmbeddings());
        List<Integer> attention = java.util.stream.IntStream.range(0, 16).filter(c::attentionHeads).boxed().toList();
        assertEquals(List.of(2, 5, 8, 10, 12, 14), attention);
        assertEquals(Architecture.Mixer.SHORT_CONVOLUTION, c.mixer(0));
        long d = 2048;
        long conv = 3 * d * d + d * 3 + d * d;
        long attn = 2 * d * d + 2 * d * 512 + 2 * 64;
        long block = 2 * d + 3 * d * 8192;
        assertEquals(65536 * d + 10 * conv + 6 * attn + 16 * block + d, c.parameterCount());
    }

    @Test
    void theMlpWidthIsAdjustedAsLfm2MlpMakesIt() {
        HookedAutoConfig c = HookedAutoConfig.of("lfm2");
        // int(2 * 1000 / 3) = 666, int(1.5 * 666) = 999, rounded up to 1024
        assertEquals(1024, c.with(Map.of("intermediate_size", 1000, "block_ffn_dim_multiplier", 1.5))
                .architecture().dMlp());
        assertEquals(1000, c.with(Map.of("intermediate_size", 1000, "block_auto_adjust_ff_dim", false))
                .architecture().dMlp());
        // block_ff_dim, where given, in place of intermediate_size: int(2 * 9000 / 3) = 6000, rounded up to 6144
        assertEquals(6144, c.with(Map.of("intermediate_size", 1000, "block_ff_dim", 9000)).architecture().dMlp());
        Map<String, Object> noMultiplier = new LinkedHashMap<>();
        noMultiplier.put("block_ffn_dim_multiplier", null);
        assertThrows(IllegalArgumentException.class, () -> c.with(noMultiplier), "transformers refuses it too");
    }

    /** A {@code head_dim} other than {@code hidden_size / num_attention_heads}, which Lfm2Attention reads. */
    @Test
    void headDimIsRead() {
        Architecture a = HookedAutoConfig.of("lfm2").with(Map.of("hidden_size", 32, "num_attention_heads", 4,
                "num_key_value_heads", 2, "head_dim", 16)).architecture();
        assertEquals(16, a.dHead());
        assertEquals(8, HookedAutoConfig.of("lfm2").with(Map.of("hidden_size", 32, "num_attention_heads", 4,
                "num_key_value_heads", 2))
                .architecture().dHead());
    }

    /**
     * The convolution over {@code conv_L_cache} positions, written out: each channel of B · x at a position and the
     * three before it (kernel 4), times the kernel's weights, plus its bias, zeros before the first position.
     */
    @Test
    void theConvolutionReadsItsKernelsPositions() throws Exception {
        HookedAutoConfig config = TinyConfigs.of("lfm2").with(Map.of("conv_L_cache", 4, "conv_bias", true));
        Fixtures.writeRandomCheckpoint(config, 4, dir);
        int kernel = 4;
        int d = 32;
        int pos = 7;
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4, 1, 5, 9, 2}, 1, pos))) {
            double[] w = weights.tensor("model.layers.0.conv.conv.weight").toDoubleArray(); // [d, 1, kernel]
            double[] bias = weights.tensor("model.layers.0.conv.conv.bias").toDoubleArray();
            double[] b = out.cache().get("blocks.0.conv.hook_b").toDoubleArray(); // [1, pos, d]
            double[] x = out.cache().get("blocks.0.conv.hook_x").toDoubleArray();
            double[] conv = out.cache().get("blocks.0.conv.hook_conv").toDoubleArray();
            for (int t = 0; t < pos; t++) {
                for (int ch = 0; ch < d; ch++) {
                    double expected = bias[ch];
                    for (int j = 0; j < kernel; j++) {
                        int at = t - (kernel - 1) + j;
                        expected += at < 0 ? 0 : w[ch * kernel + j] * b[at * d + ch] * x[at * d + ch];
                    }
                    assertEquals(expected, conv[t * d + ch], 1e-5, "position " + t + ", channel " + ch);
                }
            }
        }
    }

    /** A model every layer of which is a convolution has no heads to compose: refused, saying so. */
    @Test
    void compositionRefusesAModelWithoutAttentionLayers() {
        HookedAutoConfig conv = TinyConfigs.of("lfm2").with("layer_types", List.of("conv", "conv"));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(conv, 1, DType.FLOAT32, Device.CPU)) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> CompositionScores.allPairs(model, CompositionScores.Mode.Q)).getMessage();
            assertTrue(m.contains("no layer") && m.contains("short convolution"), m);
        }
    }

    @Test
    void layerTypesAreReadAndBadOnesRefused() {
        HookedAutoConfig c = HookedAutoConfig.of("lfm2").with("num_hidden_layers", 3);
        assertEquals(List.of(true, false, true), c.with("layer_types", List.of("conv", "full_attention", "conv"))
                .architecture().shortConvolution().layers());
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("layer_types", List.of("conv",
                "sliding_attention", "conv"))).getMessage();
        assertTrue(m.contains("layer_types") && m.contains("sliding_attention"), m);
        m = assertThrows(IllegalArgumentException.class, () -> c.with("layer_types", List.of("conv"))).getMessage();
        assertTrue(m.contains("1 entries") && m.contains("num_hidden_layers = 3"), m);
        m = assertThrows(IllegalArgumentException.class, () -> c.with("full_attn_idxs", List.of(0, 3))).getMessage();
        assertTrue(m.contains("full_attn_idxs") && m.contains("0 to 2"), m);
    }

    /**
     * In bfloat16 its logits lie on average at most a tenth as far from transformers' as transformers' float32 ones.
     */
    @Test
    void theBfloat16PassIsTransformers() {
        double[] d = Fixtures.bfloat16Distances(FIXTURE, "logits");
        assertTrue(d[0] <= d[1] / 10, "mean distance " + d[0] + ", float32's " + d[1]);
    }

    /**
     * A convolution layer has no heads: its per-head query maps and pattern plots are refused, naming it; its
     * {@code W_O} is its {@code out_proj} as one head, which {@code stackHeadResults} counts; composition scores leave
     * its heads NaN and path patching reaches across it.
     */
    @Test
    void theToolsTreatAConvolutionLayerAsHavingNoHeads() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            String m = assertThrows(UnsupportedOperationException.class, () -> model.W_Q(0)).getMessage();
            assertTrue(m.contains("layer 0") && m.contains("short convolution") && m.contains("[1, 3]"), m);
            m = assertThrows(IllegalArgumentException.class, () -> Head.of(2, 1).checkIn(model.config(), "sender"))
                    .getMessage();
            assertTrue(m.contains("L2H1") && m.contains("short convolution"), m);
            Tensor ids = reference.tensor("input_ids").narrow(0, 0, 1).narrow(1, 0, 12);
            m = assertThrows(IllegalArgumentException.class, () -> Plots.attentionPatterns(model, ids, new int[] {2},
                    new int[] {0}, null, dir, 400, 400)).getMessage();
            assertTrue(m.contains("layer 2") && m.contains("short convolution"), m);

            Tensor wo = model.W_O(2);
            assertArrayEquals(new long[] {1, 32, 32}, wo.shape());
            assertTrue(wo.select(0, 0).allclose(weights.tensor("model.layers.2.conv.out_proj.weight").transpose(0, 1),
                    0, 0));

            double[] q = CompositionScores.allPairs(model, CompositionScores.Mode.Q).toDoubleArray();
            for (int i = 0; i < q.length; i++) {
                int l1 = i / 64;
                int l2 = i / 4 % 4;
                boolean scored = l1 % 2 == 1 && l2 % 2 == 1;
                assertEquals(!scored, Double.isNaN(q[i]), "entry " + i);
                assertTrue(!scored || (l1 < l2 ? q[i] > 0 : q[i] == 0), "entry " + i + ": " + q[i]);
            }

            // the page names what mixes each headless layer's tokens
            Map<?, ?> about = (Map<?, ?>) io.arrakis.view.AttentionView.of(model, ids,
                    io.arrakis.view.AttentionView.Options.defaults().withDetectors(4, 1, 0)).data().get("model");
            assertEquals(java.util.Arrays.asList("short convolution", null, "short convolution", null),
                    about.get("mixers"));

            Tensor corrupted = ids.copy();
            corrupted.narrow(1, 11, 1).copyFrom(Tensor.of(new long[] {42}, 1, 1));
            double[] effects = PathPatching.patchAllSenders(model, ids, corrupted, Head.of(3, 0),
                    PathPatching.Route.V, PathPatching.Metric.logitDiff(5, 9), PathPatching.Mode.PATH).toDoubleArray();
            for (int i = 0; i < effects.length; i++) {
                assertEquals(i / 4 != 1, Double.isNaN(effects[i]), "sender L" + i / 4 + "H" + i % 4);
            }
        }
    }

    /** The convolution layer's one head is its whole mixer: the heads and the remainder sum to the last stream. */
    @Test
    void stackHeadResultsCountsAConvolutionLayerAsOneHead() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE);
             ModelOutput out = model.forward(reference.tensor("input_ids").narrow(1, 0, 10))) {
            ResidualStream.Components heads = new ResidualStream(model, out.cache()).stackHeadResults(false, false);
            assertEquals(List.of("L0H0", "L1H0", "L1H1", "L1H2", "L1H3", "L2H0", "L3H0", "L3H1", "L3H2", "L3H3"),
                    heads.labels());
            // the convolution layer's head is its output less out_proj's bias
            Tensor bias = model.b_O(0);
            assertTrue(heads.stack().select(0, 0).allclose(out.cache().get("blocks.0.hook_attn_out").sub(bias), 1e-5,
                    1e-5));
            assertFalse(bias.abs().max().item() == 0, "the fixture's convolutions have biases");
        }
    }

    /**
     * An LFM2-VL checkpoint ({@code lfm2_vl}: the text model's tensors under {@code model.language_model.}, a vision
     * tower and a projector beside them) runs as its text model, its head tied by the whole model's
     * {@code tie_word_embeddings} alone, true by default (as transformers' Lfm2VlForConditionalGeneration ties it).
     */
    @Test
    void theMultimodalCheckpointRunsAsItsTextModel() throws Exception {
        Map<String, Object> text = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(FIXTURE.resolve("config.json"))))
                .forEach((k, v) -> text.put((String) k, v));
        text.remove("architectures");
        text.put("tie_word_embeddings", false); // the whole model's key decides
        Map<String, Object> top = new LinkedHashMap<>(Map.of("architectures", List.of("Lfm2VlForConditionalGeneration"),
                "model_type", "lfm2_vl", "text_config", text, "vision_config", Map.of("model_type",
                        "siglip2_vision_model", "hidden_size", 16L)));
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put("model.language_model." + name.substring("model.".length()), weights.tensor(name));
            }
            tensors.put("model.vision_tower.embeddings.patch_embedding.weight", Tensor.ones(16, 48));
            tensors.put("model.multi_modal_projector.linear_1.weight", Tensor.ones(16, 64));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertEquals("lfm2", model.config().family());
                assertTrue(model.config().tiedEmbeddings());
                assertTrue(model.runWithHooks(reference.tensor("input_ids")).allclose(reference.tensor("logits"),
                        1e-4, 1e-4));
            }
            top.put("tie_word_embeddings", false);
            Files.writeString(dir.resolve("config.json"), Json.write(top));
            assertFalse(HookedAutoConfig.fromPretrained(dir).tiedEmbeddings());
        }
    }
}

package io.arrakis.model;

import io.arrakis.bench.Plots;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.composer.PathPatching;
import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LinearAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen3.5's text models, dense and mixture of experts, and Qwen3-Next: {@code Qwen3_5TextConfig}'s,
 * {@code Qwen3_5MoeTextConfig}'s and {@code Qwen3NextConfig}'s defaults, layer types, dense layers and refusals, the
 * multimodal checkpoints, the bfloat16 passes against transformers', and what the tools that read heads make of
 * linear-attention layers. Every float32 hook of
 * their Hugging Face fixtures is checked by {@link ModelParityTest}, the chunked delta rule against its recurrence by
 * {@link GatedDeltaRuleTest}.
 */
class Qwen35Test {
    private static final Path FIXTURE = Fixtures.huggingFace("qwen3-5");

    @TempDir
    Path dir;

    @Test
    void defaultsAreQwen35TextConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_5_text");
        assertEquals("qwen3-5", c.family());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.RMS_NORM_PLUS_ONE, a.norm());
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertTrue(a.attentionOutputGate() && a.gatedMlp());
        assertEquals(List.of(4096, 32, 16, 4, 256, 12288, 248320), List.of(a.dModel(), a.nLayers(), a.nHeads(),
                a.nKvHeads(), a.dHead(), a.dMlp(), a.vocabSize()));
        assertEquals(1e-6, a.normEps());
        LinearAttention m = a.linearAttention();
        assertEquals(List.of(16, 32, 128, 128, 4), List.of(m.keyHeads(), m.valueHeads(), m.keyDim(), m.valueDim(),
                m.convKernel()));
        for (int l = 0; l < 32; l++) { // every fourth layer attends by softmax, and only those rotate
            assertEquals(l % 4 != 3 ? Architecture.Mixer.LINEAR_ATTENTION : Architecture.Mixer.SOFTMAX_ATTENTION,
                    c.mixer(l), "layer " + l);
            assertEquals(l % 4 == 3, c.rotates(l), "layer " + l);
        }
        assertEquals(10000.0, a.rope(3).theta());
        assertEquals(64, a.rope(3).dim(), "a quarter of each head");
        assertFalse(a.tiedEmbeddings());
        // a softmax layer: q_proj (queries and gates) 4096 x 8192, k and v 4096 x 1024, o 4096 x 4096, two head
        // norms; a linear one: in_proj_qkv 4096 x 8192, in_proj_z 4096 x 4096, in_proj_b and _a 4096 x 32, the
        // convolution 8192 x 4, dt_bias and A_log, the norm of 128, out_proj 4096 x 4096; each: two norms and an MLP
        long softmax = 4096L * 8192 + 2L * 4096 * 1024 + 4096L * 4096 + 2 * 256;
        long linear = 4096L * 8192 + 4096L * 4096 + 2L * 4096 * 32 + 8192L * 4 + 2 * 32 + 128 + 4096L * 4096;
        long block = 2 * 4096 + 3L * 4096 * 12288;
        assertEquals(8 * softmax + 24 * linear + 32 * block + 2L * 248320 * 4096 + 4096, c.parameterCount());
    }

    @Test
    void theMixtureOfExpertsDefaultsAreQwen35MoeTextConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_5_moe_text");
        assertEquals("qwen3-5-moe", c.family());
        Architecture a = c.architecture();
        assertEquals(List.of(2048, 40, 16, 2, 256, 512), List.of(a.dModel(), a.nLayers(), a.nHeads(), a.nKvHeads(),
                a.dHead(), a.dMlp()));
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K, moe.routing(), "the top k over their sum");
        assertEquals(List.of(256, 8, 512), List.of(moe.experts(), moe.topK(), moe.sharedWidth()));
        assertTrue(moe.sharedGated() && !moe.float32Weights(), "the shared expert gated; weights in the model's dtype");
        assertEquals(List.of(true, true, true, false), a.linearAttention().layers().subList(0, 4));
        // per layer: the softmax or linear mixer as Qwen3.5's (2 key/value heads of 256 here), two norms, the router
        // 2048 x 256, 256 experts and a shared one of 3 x 2048 x 512, and the shared expert's gate 2048 x 1
        long softmax = 2048L * 8192 + 2L * 2048 * 512 + 4096L * 2048 + 2 * 256;
        long linear = 2048L * 8192 + 2048L * 4096 + 2L * 2048 * 32 + 8192L * 4 + 2 * 32 + 128 + 4096L * 2048;
        long block = 2 * 2048 + 2048L * 256 + 257L * 3 * 2048 * 512 + 2048;
        assertEquals(10 * softmax + 30 * linear + 40 * block + 2L * 248320 * 2048 + 2048, c.parameterCount());
        assertTrue(TinyConfigs.of("qwen3-5-moe").checkpoint().tensors().keySet().containsAll(List.of(
                "model.layers.0.mlp.gate.weight", "model.layers.0.mlp.experts.3.down_proj.weight",
                "model.layers.1.mlp.shared_expert.up_proj.weight", "model.layers.1.mlp.shared_expert_gate.weight",
                "model.layers.0.linear_attn.in_proj_qkv.weight", "model.layers.1.self_attn.q_proj.weight")));
    }

    @Test
    void qwen3NextsDefaultsAreQwen3NextConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_next");
        assertEquals("qwen3-next", c.family());
        Architecture a = c.architecture();
        assertEquals(List.of(2048, 48, 16, 2, 256, 512, 151936), List.of(a.dModel(), a.nLayers(), a.nHeads(),
                a.nKvHeads(), a.dHead(), a.dMlp(), a.vocabSize()));
        assertEquals(Architecture.Norm.RMS_NORM_PLUS_ONE, a.norm());
        assertTrue(a.attentionOutputGate());
        assertEquals(List.of(true, true, true, false), a.linearAttention().layers().subList(0, 4));
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K, moe.routing(), "norm_topk_prob is true");
        assertEquals(List.of(512, 10, 512), List.of(moe.experts(), moe.topK(), moe.sharedWidth()));
        assertTrue(moe.sharedGated() && moe.sparseLayers() == null, "every layer's MLP routed");
        // Qwen3-Next-80B-A3B: per softmax layer q_proj 2048 x 8192, k and v 2048 x 512, o 4096 x 2048, two head
        // norms; per linear layer in_proj_qkvz 2048 x 12288, in_proj_ba 2048 x 64, the convolution 8192 x 4, dt_bias
        // and A_log, the norm of 128, out_proj 4096 x 2048; per layer two norms, the router, 513 experts' MLPs of 512
        // and the shared expert's gate
        long softmax = 2048L * 8192 + 2L * 2048 * 512 + 4096L * 2048 + 2 * 256;
        long linear = 2048L * 12288 + 2048L * 64 + 8192L * 4 + 2 * 32 + 128 + 4096L * 2048;
        long block = 2 * 2048 + 2048L * 512 + 513L * 3 * 2048 * 512 + 2048;
        assertEquals(12 * softmax + 36 * linear + 48 * block + 2L * 151936 * 2048 + 2048, c.parameterCount());
        assertEquals(80, Math.round(c.parameterCount() / 1e9), "80B");
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K_AS_IS,
                c.with("norm_topk_prob", false).architecture().moe().routing());
        assertTrue(TinyConfigs.of("qwen3-next").checkpoint().tensors().keySet().containsAll(List.of(
                "model.layers.0.linear_attn.in_proj_qkvz.weight", "model.layers.0.linear_attn.in_proj_ba.weight",
                "model.layers.0.mlp.experts.1.up_proj.weight", "model.layers.1.mlp.shared_expert_gate.weight")));
    }

    /** Qwen3-Next's dense layers: those mlp_only_layers names, and all but every decoder_sparse_step-th. */
    @Test
    void qwen3NextsDenseLayersAreAsItsConfigSays() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_next").with("num_hidden_layers", 4);
        assertEquals(List.of(false, true, true, false), c.with("mlp_only_layers", List.of(0, 3, 7)).architecture()
                .moe().sparseLayers());
        MixtureOfExperts everyOther = c.with("decoder_sparse_step", 2).architecture().moe();
        assertEquals(List.of(false, true, false, true), everyOther.sparseLayers());
        assertEquals(5632, everyOther.denseWidth(), "intermediate_size");
        for (Map.Entry<String, ?> bad : List.<Map.Entry<String, ?>>of(Map.entry("decoder_sparse_step", 0),
                Map.entry("mlp_only_layers", List.of("0")))) {
            String m = assertThrows(IllegalArgumentException.class, () -> c.with(bad.getKey(), bad.getValue())
                    .architecture()).getMessage();
            assertTrue(m.contains(bad.getKey()), m);
        }
    }

    @Test
    void layerTypesAreReadAsTransformersReadsThem() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_5_text").with("num_hidden_layers", 4);
        assertEquals(List.of(true, false, true, false),
                c.with("full_attention_interval", 2).architecture().linearAttention().layers());
        // the older names transformers maps
        assertEquals(List.of(true, false, true, true), c.with("layer_types", List.of("mamba", "attention", "conv",
                "linear_attention")).architecture().linearAttention().layers());
        for (Object bad : List.of(List.of("sliding_attention", "full_attention", "full_attention", "full_attention"),
                List.of("full_attention"))) {
            String m = assertThrows(IllegalArgumentException.class, () -> c.with("layer_types", bad).architecture())
                    .getMessage();
            assertTrue(m.contains("layer_types"), m);
        }
    }

    @Test
    void unimplementedSettingsAreRefused() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_5_text");
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("attention_bias", true).architecture())
                .getMessage();
        assertTrue(m.contains("attention_bias") && m.contains("gate"), m);
        m = assertThrows(IllegalArgumentException.class, () -> c.with("linear_num_value_heads", 24).architecture())
                .getMessage();
        assertTrue(m.contains("linear_num_value_heads") && m.contains("linear_num_key_heads"), m);
    }

    @Test
    void multimodalRotarySectionsAreThePlainRotaryForText() {
        HookedAutoConfig c = HookedAutoConfig.of("qwen3_5_text");
        Map<String, Object> plain = Map.of("rope_type", "default", "rope_theta", 1e7, "partial_rotary_factor", 0.25);
        Map<String, Object> sections = new LinkedHashMap<>(plain);
        sections.putAll(Map.of("mrope_section", List.of(11, 11, 10), "mrope_interleaved", true));
        assertEquals(c.with("rope_parameters", plain).architecture(),
                c.with("rope_parameters", sections).architecture());
        sections.put("mrope_section", List.of(16, 16));
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("rope_parameters", sections)
                .architecture()).getMessage();
        assertTrue(m.contains("rope_parameters.mrope_section"), m);
    }

    /**
     * A Qwen3.5 checkpoint ({@code Qwen3_5ForConditionalGeneration}: the text model under
     * {@code model.language_model.}, a vision tower and multi-token-prediction layers beside it) runs as its text
     * model: the fixture so laid out gives transformers' logits.
     */
    @ParameterizedTest
    @CsvSource({"qwen3-5, qwen3_5", "qwen3-5-moe, qwen3_5_moe"})
    void theMultimodalCheckpointRunsAsItsTextModel(String family, String modelType) throws IOException {
        Path fixture = Fixtures.huggingFace(family);
        Map<String, Object> text = config(fixture);
        text.remove("architectures");
        Map<String, Object> top = Map.of("architectures", List.of("Qwen3_5ForConditionalGeneration"), "model_type",
                modelType, "text_config", text, "vision_config", Map.of("depth", 1L, "hidden_size", 8L),
                "tie_word_embeddings", false);
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(fixture.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                tensors.put(name.startsWith("model.") ? "model.language_model." + name.substring("model.".length())
                        : name, weights.tensor(name));
            }
            tensors.put("model.visual.patch_embed.proj.weight", Tensor.ones(8, 3, 2, 2));
            tensors.put("mtp.fc.weight", Tensor.ones(32, 64));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertEquals(family, model.config().family());
                double[] expected = reference.tensor("logits").toDoubleArray();
                float[] logits = model.runWithHooks(reference.tensor("input_ids")).toFloatArray();
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], logits[i], 1e-4 * Math.max(1, Math.abs(expected[i])), "logit " + i);
                }
            }
        }
    }

    /**
     * A Qwen3.5 checkpoint's head is tied by the whole model's {@code tie_word_embeddings} alone, as
     * {@code Qwen3_5Config} reads it: a top-level true ties a head the file does not store whatever
     * {@code text_config} says, and a top-level false (the default) reads the stored head.
     */
    @ParameterizedTest
    @CsvSource({"qwen3-5, qwen3_5", "qwen3-5-moe, qwen3_5_moe"})
    void theMultimodalHeadIsTiedByTheWholeModelsKey(String family, String modelType) throws IOException {
        Map<String, Object> text = config(Fixtures.huggingFace(family));
        text.put("tie_word_embeddings", false);
        Map<String, Object> top = new LinkedHashMap<>(Map.of("model_type", modelType, "text_config", text,
                "tie_word_embeddings", true));
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        assertTrue(HookedAutoConfig.fromPretrained(dir).tiedEmbeddings());
        top.remove("tie_word_embeddings");
        text.put("tie_word_embeddings", true);
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        assertFalse(HookedAutoConfig.fromPretrained(dir).tiedEmbeddings(), "Qwen3_5Config's default");
    }

    /**
     * The published Qwen3.5 mixtures store each layer's experts fused, {@code mlp.experts.gate_up_proj
     * [experts, 2 · d_mlp, d_model]} and {@code mlp.experts.down_proj [experts, d_model, d_mlp]}, as transformers 5
     * lays them out, where {@code save_pretrained} writes one tensor per expert: the fixture's experts so fused load as
     * they are, in a text model's checkpoint and a multimodal one.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void fusedExpertsLoadAsPublished(boolean multimodal) throws IOException {
        Path fixture = Fixtures.huggingFace("qwen3-5-moe");
        Map<String, Object> text = config(fixture);
        Files.writeString(dir.resolve("config.json"), Json.write(multimodal ? Map.of("model_type", "qwen3_5_moe",
                "text_config", text) : text));
        String prefix = multimodal ? "model.language_model." : "model.";
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(fixture.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                if (!name.contains(".mlp.experts.")) {
                    tensors.put(name.startsWith("model.") ? prefix + name.substring("model.".length()) : name,
                            weights.tensor(name));
                }
            }
            for (int l = 0; l < 4; l++) {
                String experts = "model.layers." + l + ".mlp.experts.";
                List<Tensor> gateUp = new java.util.ArrayList<>();
                List<Tensor> down = new java.util.ArrayList<>();
                for (int e = 0; e < 4; e++) {
                    gateUp.add(Tensor.cat(List.of(weights.tensor(experts + e + ".gate_proj.weight"),
                            weights.tensor(experts + e + ".up_proj.weight")), 0));
                    down.add(weights.tensor(experts + e + ".down_proj.weight"));
                }
                String fused = prefix + "layers." + l + ".mlp.experts.";
                tensors.put(fused + "gate_up_proj", Tensor.stack(gateUp, 0));
                tensors.put(fused + "down_proj", Tensor.stack(down, 0));
            }
            assertArrayEquals(new long[] {4, 32, 32},
                    tensors.get(prefix + "layers.0.mlp.experts.gate_up_proj").shape());
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertTrue(model.runWithHooks(reference.tensor("input_ids")).allclose(reference.tensor("logits"), 1e-4,
                        1e-4));
            }
        }
    }

    /** A text model's checkpoint with its multi-token-prediction layer loads, the layer unread, as in transformers. */
    @Test
    void aTextCheckpointsPredictionLayerIsNotRead() throws IOException {
        Files.copy(FIXTURE.resolve("config.json"), dir.resolve("config.json"));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            weights.names().forEach(name -> tensors.put(name, weights.tensor(name)));
            tensors.put("mtp.fc.weight", Tensor.ones(32, 64));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertTrue(model.runWithHooks(reference.tensor("input_ids")).allclose(reference.tensor("logits"), 1e-4,
                        1e-4));
            }
        }
    }

    /**
     * In bfloat16 the pass rounds where transformers' does (the convolution and projections in bfloat16, the decay
     * and the delta rule in float32, the gated norm's two roundings; a mixture's weights rounded to bfloat16): its
     * logits lie on average at most a tenth as far from transformers' bfloat16 pass as transformers' float32 pass does.
     * Not to the bit: a float32 rounding that differs from transformers' (libtorch's softplus, the delta rule's
     * products in another order) may round one activation to the neighbouring bfloat16 value, and in a mixture tip a
     * near tie between experts. On this machine the dense fixture's logits are transformers' to the bit, and the
     * mixture's lie a seventieth as far, its first such tip at the 55th position.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3-5", "qwen3-5-moe", "qwen3-next"})
    void theBfloat16PassIsTransformers(String family) {
        Path fixture = Fixtures.huggingFace(family);
        double[] d = Fixtures.bfloat16Distances(fixture, "logits");
        assertTrue(d[0] <= d[1] / 10, "mean distance " + d[0] + ", float32's " + d[1]);
    }

    @Test
    void linearAttentionLayersHaveNoQueryMapsButTheirValueHeadsOutputWeights() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            String m = assertThrows(UnsupportedOperationException.class, () -> model.W_Q(0)).getMessage();
            assertTrue(m.contains("layer 0") && m.contains("linear attention") && m.contains("[3]"), m);
            assertThrows(UnsupportedOperationException.class, () -> model.W_K(true));
            assertArrayEquals(new long[] {4, 32, 16}, model.W_Q(3).shape());
            // out_proj [d_model, value_heads · value_dim]: value head h's rows of W_O are its columns h·8 ..
            Tensor outProj = weights.tensor("model.layers.0.linear_attn.out_proj.weight");
            Tensor wo = model.W_O(0);
            assertArrayEquals(new long[] {4, 8, 32}, wo.shape());
            assertTrue(wo.select(0, 2).allclose(outProj.narrow(1, 16, 8).transpose(0, 1), 0, 0));
        }
    }

    /** The convolution's activation is the model's ({@code hidden_act}), as transformers applies it. */
    @Test
    void theConvolutionsActivationIsHiddenAct() {
        HookedAutoConfig relu = TinyConfigs.of("qwen3-5").with("hidden_act", "relu");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(relu, 5, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4, 1, 5, 9, 2, 6}, 1, 8))) {
            for (String h : List.of("hook_q", "hook_k", "hook_v")) {
                Tensor x = out.cache().get("blocks.0.linear_attn." + h);
                assertEquals(0.0, x.min().item(), h + ": a ReLU's output, whose least value is 0");
            }
        }
    }

    @Test
    void perLayerAttentionToolsRefuseALinearLayer() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            Tensor q = Tensor.zeros(new long[] {1, 2, 4, 16}, DType.FLOAT32, Device.CPU);
            Tensor k = Tensor.zeros(new long[] {1, 2, 2, 16}, DType.FLOAT32, Device.CPU);
            for (org.junit.jupiter.api.function.Executable call : List.<org.junit.jupiter.api.function.Executable>of(
                    () -> model.normalizeQueries(0, q), () -> model.normalizeKeys(1, k),
                    () -> model.attentionScores(2, q, k), () -> model.attentionMask(0, 2), model::queryNormWeights,
                    () -> model.keyNormWeights(true))) {
                String m = assertThrows(UnsupportedOperationException.class, call).getMessage();
                assertTrue(m.contains("linear attention"), m);
            }
            assertArrayEquals(new long[] {2, 2}, model.attentionMask(3, 2).shape(), "the softmax layer's");
        }
    }

    /** A hook that replaces a linear-attention activation changes what follows it. */
    @Test
    void hooksReplaceLinearAttentionActivations() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            Tensor ids = reference.tensor("input_ids");
            // no correction of the state leaves it zero: the layer adds nothing to the residual stream
            ModelOutput out = model.runWithHooks(ids, CacheSpec.only("blocks.1.hook_attn_out", "blocks.1.linear_attn"
                    + ".hook_core"), HookedAutoModel.HookSpec.matching(n -> n.equals("blocks.1.linear_attn.hook_beta"),
                    (t, n) -> Tensor.zeros(t.shape(), t.dtype(), t.device())));
            assertEquals(0.0, out.cache().get("blocks.1.linear_attn.hook_core").abs().max().item());
            assertEquals(0.0, out.cache().get("blocks.1.hook_attn_out").abs().max().item());
            assertFalse(out.logits().allclose(reference.tensor("logits"), 1e-3, 1e-3));
        }
    }

    @Test
    void theToolsScoreTheSoftmaxLayerAndRefuseTheLinearOnes() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE);
             HeadDetectors.Scores s = HeadDetectors.detect(model, 8, 2, 1)) {
            for (Tensor scores : List.of(s.previousToken(), s.induction(), s.duplicateToken())) {
                assertArrayEquals(new long[] {4, 4}, scores.shape());
                double[] v = scores.toDoubleArray();
                for (int i = 0; i < v.length; i++) {
                    assertEquals(i < 12, Double.isNaN(v[i]), "layer " + i / 4 + ", head " + i % 4);
                }
            }
            // one softmax layer: no pair of heads to compose, nor a sender for its heads
            double[] scores = CompositionScores.allPairs(model, CompositionScores.Mode.Q).toDoubleArray();
            for (int i = 0; i < scores.length; i++) {
                boolean lastToLast = i / 64 == 3 && i / 4 % 4 == 3;
                assertEquals(lastToLast ? 0.0 : Double.NaN, scores[i], "entry " + i);
            }
            Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4);
            String m = assertThrows(IllegalArgumentException.class, () -> PathPatching.patchAllSenders(model, ids, ids,
                    Head.of(3, 0), PathPatching.Route.Q, logits -> 0.0, PathPatching.Mode.PATH)).getMessage();
            assertTrue(m.contains("no head sends") && m.contains("linear attention"), m);
            m = assertThrows(IllegalArgumentException.class, () -> Head.of(1, 0).checkIn(model.config(), "sender"))
                    .getMessage();
            assertTrue(m.contains("L1H0") && m.contains("linear attention"), m);
            m = assertThrows(IllegalArgumentException.class, () -> Plots.attentionPatterns(model, ids, new int[] {0},
                    new int[] {0}, null, dir, 400, 400)).getMessage();
            assertTrue(m.contains("layer 0") && m.contains("no attention pattern"), m);
        }
    }

    /** The fixture's {@code config.json} as a map to change. */
    private static Map<String, Object> config(Path fixture) throws IOException {
        Map<String, Object> config = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(fixture.resolve("config.json"))))
                .forEach((k, v) -> config.put((String) k, v));
        return config;
    }
}

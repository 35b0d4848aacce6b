package io.arrakis.model;

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
 * Qwen3.5's text models, dense and mixture of experts: {@code Qwen3_5TextConfig}'s and
 * {@code Qwen3_5MoeTextConfig}'s defaults, layer types, refusals, their multimodal checkpoints, their bfloat16 passes
 * against transformers', and what the tools that read heads make of linear-attention layers. Every float32 hook of
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
            assertEquals(l % 4 != 3, c.linearAttention(l), "layer " + l);
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
        Map<String, Object> text = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(fixture.resolve("config.json"))))
                .forEach((k, v) -> text.put((String) k, v));
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
     * In bfloat16 the pass rounds where transformers' does (the convolution and projections in bfloat16, the decay
     * and the delta rule in float32, the gated norm's two roundings): its logits lie within one bfloat16 step of
     * transformers' own bfloat16 pass, where the float32 pass lies tens of steps away.
     */
    @Test
    void theBfloat16PassIsTransformers() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE, DType.BFLOAT16, Device.CPU)) {
            double[] expected = reference.tensor("bfloat16.logits").toDoubleArray();
            double[] float32 = reference.tensor("logits").toDoubleArray();
            double[] logits = model.runWithHooks(reference.tensor("input_ids")).to(DType.FLOAT64).toDoubleArray();
            double farthest = 0;
            for (int i = 0; i < expected.length; i++) {
                double step = Math.ulp((float) expected[i]) * 65536; // bfloat16 keeps float32's top 16 bits
                assertTrue(Math.abs(logits[i] - expected[i]) <= step, "logit " + i + ": " + logits[i] + " vs "
                        + expected[i]);
                farthest = Math.max(farthest, Math.abs(float32[i] - expected[i]) / step);
            }
            assertTrue(farthest > 10, "the float32 logits lie " + farthest + " steps away");
        }
    }

    /**
     * The mixture's bfloat16 pass too, where a float32 rounding that differs from transformers' (the delta rule's
     * products run in another order) may round one activation to the neighbouring bfloat16 value and so tip a near tie
     * between two experts: its logits lie on average at most a tenth as far from transformers' bfloat16 ones as
     * transformers' float32 ones do (on this machine the first such tip comes at the 55th position, and the distance is
     * a seventieth).
     */
    @Test
    void theMixturesBfloat16PassIsTransformersButForNearTies() {
        Path fixture = Fixtures.huggingFace("qwen3-5-moe");
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(fixture, DType.BFLOAT16, Device.CPU)) {
            double[] expected = reference.tensor("bfloat16.logits").toDoubleArray();
            double[] float32 = reference.tensor("logits").toDoubleArray();
            double[] logits = model.runWithHooks(reference.tensor("input_ids")).to(DType.FLOAT64).toDoubleArray();
            double ours = 0;
            double theirs = 0;
            for (int i = 0; i < expected.length; i++) {
                ours += Math.abs(logits[i] - expected[i]);
                theirs += Math.abs(float32[i] - expected[i]);
            }
            assertTrue(ours <= theirs / 10, "mean distance " + ours / expected.length + ", float32's "
                    + theirs / expected.length);
        }
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
    void headDetectorsScoreTheSoftmaxLayersAndTheToolsThatReadEveryLayerRefuse() {
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
            String m = assertThrows(UnsupportedOperationException.class,
                    () -> CompositionScores.allPairs(model, CompositionScores.Mode.Q)).getMessage();
            assertTrue(m.contains("composition") && m.contains("[0, 1, 2]"), m);
            Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4);
            m = assertThrows(UnsupportedOperationException.class, () -> PathPatching.patch(model, ids, ids,
                    Head.of(0, 0), Head.of(3, 0), PathPatching.Route.Q, logits -> 0.0)).getMessage();
            assertTrue(m.contains("path patching"), m);
            m = assertThrows(IllegalArgumentException.class, () -> Head.of(1, 0).checkIn(model.config(), "sender"))
                    .getMessage();
            assertTrue(m.contains("L1H0") && m.contains("linear attention"), m);
        }
    }
}

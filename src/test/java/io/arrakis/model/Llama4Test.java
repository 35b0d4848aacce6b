package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.QueryTemperature;
import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.testing.Close;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
 * Llama 4's text model against the {@code llama4} fixture ({@code scripts/make-hf-llama4-fixtures.py}: chunks, the
 * NoPE layer's temperature and llama3 rotary scaling all at work within its 13 positions), whose every hook
 * {@link ModelParityTest} compares too; the parameter counts of {@code Llama4TextConfig}'s defaults (Scout's text
 * model) and of Maverick's shape as transformers counts them on the meta device; the multimodal checkpoint; the
 * refusals.
 */
class Llama4Test {
    private static final Path FIXTURE = Fixtures.huggingFace("llama4");

    @TempDir
    Path dir;

    /**
     * The fixture's layers as its config describes them: three that rotate, chunked, with their queries and keys
     * normalised, and a NoPE layer with full attention and a temperature; experts on the odd layers.
     */
    @Test
    void theLayersAreWhatTheConfigSays() {
        ModelParityTest.assertParity(FIXTURE, "llama4", 60);
        HookedAutoConfig c = HookedAutoConfig.fromJson(FIXTURE.resolve("config.json"));
        Architecture a = c.architecture();
        assertEquals(List.of(LayerAttention.CHUNKED, LayerAttention.CHUNKED, LayerAttention.CHUNKED,
                LayerAttention.FULL), a.layerAttention());
        assertEquals(List.of(5, 5, 5, 0), List.of(a.attentionChunk(0), a.attentionChunk(1), a.attentionChunk(2),
                a.attentionChunk(3)));
        assertEquals(List.of(QkNorm.ROTATED_UNWEIGHTED, QkNorm.NONE), List.of(a.qkNorm(2), a.qkNorm(3)));
        assertEquals(new QueryTemperature(0.5, 4, 1, true, true), a.queryTemperature());
        MixtureOfExperts moe = a.moe();
        assertEquals(List.of(false, true, false, true), List.of(moe.sparse(0), moe.sparse(1), moe.sparse(2),
                moe.sparse(3)));
        assertEquals(List.of(4, 2, 12, 12, 48), List.of(moe.experts(), moe.topK(), moe.sharedWidth(), a.dMlp(),
                moe.denseWidth()));
        try (SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            assertEquals(weights.names().stream().mapToLong(n -> weights.info(n).numel()).sum(), c.parameterCount());
            assertTrue(model.hookNames().containsAll(List.of("blocks.2.attn.hook_q_normed",
                    "blocks.2.attn.hook_rot_k", "blocks.1.mlp.experts.3.hook_post",
                    "blocks.1.mlp.shared_expert.hook_pre", "blocks.0.mlp.hook_pre")));
            for (String none : List.of("blocks.3.attn.hook_q_normed", "blocks.3.attn.hook_rot_q",
                    "blocks.1.mlp.hook_shared_expert_gate")) {
                assertFalse(model.hookNames().contains(none), none);
            }
        }
    }

    /** The pass without a cache (fused attention where it pays, with the chunks' mask) gives transformers' logits. */
    @Test
    void thePassWithoutACacheIsTransformers() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            Close.assertAllClose(reference.tensor("logits").toDoubleArray(),
                    model.runWithHooks(reference.tensor("input_ids")).toDoubleArray(), 1e-4, 1e-4, "logits");
        }
    }

    /** transformers 5.17's model loaded in bfloat16, against ours: as it rounds, so that they meet. */
    @Test
    void theBfloat16PassIsTransformers() {
        double[] d = Fixtures.bfloat16Distances(FIXTURE, "logits");
        assertTrue(d[0] <= d[1] / 1000, "mean distance " + d[0] + ", float32's " + d[1]);
    }

    /**
     * The defaults are Scout's text model, 107,769,861,120 parameters as transformers counts them on the meta device;
     * Maverick's shape (128 experts on every other layer, no query and key norm) 400,711,848,960.
     */
    @Test
    void theDefaultsAreScoutsTextModel() {
        HookedAutoConfig scout = HookedAutoConfig.of("llama4");
        assertEquals(107_769_861_120L, scout.parameterCount());
        Architecture a = scout.architecture();
        assertEquals(List.of(5120, 48, 40, 8, 128), List.of(a.dModel(), a.nLayers(), a.nHeads(), a.nKvHeads(),
                a.dHead()));
        assertTrue(a.rope(2) != null && a.rope(3) == null && a.rope(47) == null);
        assertEquals(8192, a.attentionChunk(0));
        HookedAutoConfig maverick = scout.with(Map.of("num_local_experts", 128, "interleave_moe_layer_step", 2,
                "use_qk_norm", false));
        assertEquals(400_711_848_960L, maverick.parameterCount());
        assertEquals(QkNorm.NONE, maverick.architecture().qkNorm(0));
        MixtureOfExperts moe = maverick.architecture().moe(); // the last layer of each step of two
        assertEquals(List.of(false, true, false, true), List.of(moe.sparse(0), moe.sparse(1), moe.sparse(2),
                moe.sparse(47)));
        // an empty list is transformers' default: every fourth layer does not rotate
        Architecture empty = scout.with(Map.of("no_rope_layers", List.of())).architecture();
        assertTrue(empty.rope(2) != null && empty.rope(3) == null);
    }

    /**
     * Scout as published (Llama4ForConditionalGeneration's config, written by transformers 4.51): its text model's
     * llama3 rotary scaling has equal low and high frequency factors, which transformers takes (no frequency lies
     * between the bands, so none is smoothed); its empty {@code no_rope_layers} is the default.
     */
    @Test
    void scoutsPublishedConfigLoads() throws Exception {
        Map<String, Object> text = new LinkedHashMap<>();
        text.putAll(Map.of("attention_bias", false, "attention_chunk_size", 8192, "attention_dropout", 0.0,
                "bos_token_id", 200_000, "eos_token_id", List.of(200_001, 200_007, 200_008), "for_llm_compressor",
                false, "head_dim", 128, "hidden_act", "silu", "hidden_size", 5120, "initializer_range", 0.02));
        text.putAll(Map.of("interleave_moe_layer_step", 1, "intermediate_size", 8192, "intermediate_size_mlp", 16_384,
                "max_position_embeddings", 262_144, "model_type", "llama4_text", "no_rope_layers", List.of(),
                "num_attention_heads", 40, "num_experts_per_tok", 1, "num_hidden_layers", 48,
                "num_key_value_heads", 8));
        text.putAll(Map.of("num_local_experts", 16, "output_router_logits", false, "pad_token_id", 200_018,
                "rms_norm_eps", 1e-5, "rope_scaling", Map.of("factor", 16.0, "high_freq_factor", 1.0,
                        "low_freq_factor", 1.0, "original_max_position_embeddings", 8192, "rope_type", "llama3"),
                "rope_theta", 500_000.0, "router_aux_loss_coef", 0.001, "router_jitter_noise", 0.0,
                "torch_dtype", "bfloat16", "use_qk_norm", true));
        text.put("vocab_size", 202_048);
        Map<String, Object> top = new LinkedHashMap<>(Map.of("architectures", List.of("Llama4ForConditionalGeneration"),
                "model_type", "llama4", "text_config", text, "vision_config", Map.of("model_type",
                        "llama4_vision_model", "hidden_size", 1408), "image_token_index", 200_092,
                "tie_word_embeddings", false, "transformers_version", "4.51.0.dev0"));
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        HookedAutoConfig scout = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        assertEquals(107_769_861_120L, scout.parameterCount());
        Architecture a = scout.architecture();
        assertEquals(new Rope.Llama3(16.0, 1.0, 1.0, 8192), a.rope(0).scaling());
        assertTrue(a.rope(2) != null && a.rope(3) == null, "every fourth layer is NoPE");
        float[] inv = a.rope(0).inverseFrequencies();
        for (int i = 0; i < inv.length; i++) { // unsmoothed: each frequency as it is or divided by the factor
            float unscaled = (float) (1 / Math.pow(500_000.0, (float) (2 * i) / 128));
            float expected = (float) (2 * Math.PI) / unscaled > 8192 ? unscaled / 16 : unscaled;
            assertEquals(expected, inv[i], Math.ulp(expected) * 2, "frequency " + i);
        }
    }

    @Test
    void unimplementedOrImpossibleSettingsAreRefused() {
        HookedAutoConfig tiny = HookedAutoConfig.fromJson(FIXTURE.resolve("config.json"));
        Map<Map<String, Object>, String> cases = new LinkedHashMap<>();
        Map<String, Object> noChunk = new LinkedHashMap<>();
        noChunk.put("attention_chunk_size", null);
        cases.put(noChunk, "attention_chunk_size");
        cases.put(Map.of("moe_layers", List.of(1, "3")), "moe_layers");
        cases.put(Map.of("num_experts_per_tok", 5), "num_experts_per_tok");
        cases.put(Map.of("layer_types", List.of("chunked_attention", "sliding_attention", "full_attention",
                "full_attention")), "layer_types");
        cases.put(Map.of("no_rope_layers", List.of(1, 1, 2, 0)), "no_rope_layers");
        cases.forEach((change, key) -> {
            String m = assertThrows(IllegalArgumentException.class, () -> tiny.with(change).architecture())
                    .getMessage();
            assertTrue(m.contains(key), change + ": " + m);
        });
        Map<String, Object> stepped = new LinkedHashMap<>();
        stepped.put("moe_layers", null);
        stepped.put("interleave_moe_layer_step", 0);
        String m = assertThrows(IllegalArgumentException.class, () -> tiny.with(stepped).architecture()).getMessage();
        assertTrue(m.contains("interleave_moe_layer_step"), m);
    }

    /** Scout and Maverick as published: Llama4ForConditionalGeneration, the text model beside a vision model. */
    @Test
    void theMultimodalCheckpointRunsAsItsTextModel() throws Exception {
        @SuppressWarnings("unchecked")
        Map<String, Object> text = (Map<String, Object>) Json.parse(Files.readString(FIXTURE.resolve("config.json")));
        Map<String, Object> top = new LinkedHashMap<>(Map.of("model_type", "llama4", "text_config", text,
                "vision_config", Map.of("model_type", "llama4_vision_model", "hidden_size", 16),
                "image_token_index", 95));
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"))) {
            for (String name : weights.names()) {
                tensors.put("language_model." + name, weights.tensor(name));
            }
            tensors.put("vision_model.class_embedding", Tensor.zeros(new long[] {2}, DType.FLOAT32, Device.CPU));
            tensors.put("multi_modal_projector.linear_1.weight", Tensor.zeros(new long[] {2}, DType.FLOAT32,
                    Device.CPU));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of());
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertEquals("llama4", model.config().family());
                assertArrayEquals(reference.tensor("logits").toFloatArray(),
                        model.runWithHooks(reference.tensor("input_ids")).toFloatArray(), 1e-4f);
            }
        }
    }
}

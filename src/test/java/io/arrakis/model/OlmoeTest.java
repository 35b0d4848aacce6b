package io.arrakis.model;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.json.Json;
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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * OLMoE's routing weights with and without {@code norm_topk_prob} and in bfloat16, and its configuration: the
 * published OLMoE-1B-7B's, its size, and the settings refused. Its forward pass is checked against
 * {@link OlmoeReference} by the tests that run every family's fixture.
 */
class OlmoeTest {

    /** OLMoE-1B-7B-0924's config.json as published. */
    private static final String OLMOE_1B_7B = """
            {"architectures": ["OlmoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "clip_qkv": null, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
             "initializer_range": 0.02, "intermediate_size": 1024, "max_position_embeddings": 4096,
             "model_type": "olmoe", "norm_topk_prob": false, "num_attention_heads": 16, "num_experts": 64,
             "num_experts_per_tok": 8, "num_hidden_layers": 16, "num_key_value_heads": 16,
             "output_router_logits": false, "pad_token_id": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
             "rope_theta": 10000.0, "router_aux_loss_coef": 0.01, "tie_word_embeddings": false,
             "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 50304}
            """;

    /**
     * The routing weights on the derived fixture: the top two softmax values as they are, or divided by their sum with
     * {@code norm_topk_prob}; in bfloat16 rounded to it, as the router returns them.
     */
    @ParameterizedTest
    @CsvSource({"false, FLOAT32", "true, FLOAT32", "false, BFLOAT16"})
    void routingWeightsAreTheTopSoftmaxValues(boolean normTopkProb, DType dtype, @TempDir Path tmp)
            throws IOException {
        Path fixture = Fixtures.huggingFace("olmoe");
        Path dir = tmp.resolve("olmoe");
        Fixtures.writeEdited(fixture, dir, (name, t) -> t);
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(dir.resolve("config.json"))));
        config.put("norm_topk_prob", normTopkProb);
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, dtype, Device.CPU);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(fixture))) {
            int experts = model.config().numExperts();
            Tensor weights = out.cache().get("blocks.1.mlp.hook_expert_weights");
            assertEquals(dtype, weights.dtype());
            float[] logits = out.cache().get("blocks.1.mlp.hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            float[] w = weights.toFloatArray();
            float[] expected = new float[w.length];
            for (int t = 0; t < w.length / 2; t++) {
                double all = 0;
                for (int e = 0; e < experts; e++) {
                    all += Math.exp(logits[t * experts + e]);
                }
                double a = Math.exp(logits[t * experts + (int) chosen[t * 2]]);
                double b = Math.exp(logits[t * experts + (int) chosen[t * 2 + 1]]);
                double sum = normTopkProb ? a + b : all;
                expected[t * 2] = (float) (a / sum);
                expected[t * 2 + 1] = (float) (b / sum);
            }
            float[] rounded = Tensor.of(expected, expected.length).to(dtype).toFloatArray();
            for (int i = 0; i < w.length; i++) {
                assertEquals(rounded[i], w[i], dtype == DType.FLOAT32 ? 1e-6 : Math.ulp(rounded[i]) * 65536,
                        "weight " + i);
            }
        }
    }

    /** As olmo2's, its query norm spans every head, so one head's query has no normalised value of its own. */
    @Test
    void singleHeadOperationsAreRefusedAsOlmo2s() {
        Path fixture = Fixtures.huggingFace("olmoe");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(fixture)) {
            Head head = Head.of(1, 0);
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> new AttentionComposer(model).attentionPathPatching(Fixtures.referenceInputIds(fixture), head,
                            head));
            assertTrue(e.getMessage().contains("normalises the queries of all"), e.getMessage());
        }
    }

    @Test
    void olmoe1b7bConfigurationAndItsRefusals() {
        HookedAutoConfig c = HookedAutoConfig.fromJsonText(OLMOE_1B_7B);
        assertEquals(64, c.numExperts());
        assertEquals(8, c.expertsPerToken());
        assertEquals(1024, c.dMlp());
        assertEquals(128, c.dHead());
        // embeddings and head 2 x 50304 x 2048; per layer attention 4 x 2048^2, q/k norms 2 x 2048, norms 2 x 2048,
        // router 64 x 2048, experts 64 x 3 x 2048 x 1024; the final norm: "6.9B total parameters"
        assertEquals(6_919_161_856L, c.parameterCount());
        HookedAutoConfig aliased = HookedAutoConfig.of("olmoe").with("num_local_experts", 32);
        assertEquals(32, aliased.numExperts());
        assertEquals(32, aliased.raw().get("num_experts"), "written as OlmoeConfig's own key, which 4.x files read");

        HookedAutoConfig tiny = TinyConfigs.of("olmoe");
        for (Map<String, Object> wrong : java.util.List.<Map<String, Object>>of(Map.of("clip_qkv", 8.0),
                Map.of("head_dim", 4))) {
            String key = wrong.keySet().iterator().next();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tiny.with(wrong).dModel());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        }
    }
}

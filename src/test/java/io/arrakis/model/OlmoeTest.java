package io.arrakis.model;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * OLMoE's configuration: the published OLMoE-1B-7B's, its size, and the settings refused. Its forward pass is checked
 * against {@link OlmoeReference} by the tests that run every family's fixture.
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
        assertEquals(64, HookedAutoConfig.of("olmoe").with("num_local_experts", 64).numExperts());

        HookedAutoConfig tiny = TinyConfigs.of("olmoe");
        for (Map<String, Object> wrong : java.util.List.<Map<String, Object>>of(Map.of("clip_qkv", 8.0),
                Map.of("head_dim", 4))) {
            String key = wrong.keySet().iterator().next();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tiny.with(wrong).dModel());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        }
    }
}

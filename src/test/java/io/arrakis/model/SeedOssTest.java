package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Seed-OSS's defaults, {@code SeedOssConfig}'s, and its two attention bias keys. Its forward pass is checked against
 * {@link SeedOssReference} by {@link ModelParityTest} and every family-generic test.
 */
class SeedOssTest {

    @Test
    void defaultsAreSeedOssConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("seed-oss");
        assertEquals(128, c.dHead(), "head_dim, not hidden_size / heads");
        assertEquals(8, c.nKvHeads());
        assertEquals(10000.0, c.ropeTheta(), "SeedOssConfig.default_theta, Llama's");
        assertEquals(1e-6, c.normEps());
        assertEquals(524288, c.maxPositions());
        Architecture a = c.architecture();
        assertTrue(a.qkvBias(), "attention_bias defaults to true");
        assertFalse(a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        assertEquals(Architecture.Norm.RMS_NORM, a.norm(), "Llama's RMSNorm, rounded before its weight");
        assertEquals(Architecture.RotaryPrecision.MODEL_DTYPE, a.rotaryPrecision());
        // untied 155136 x 4096 embedding and head; per layer q and o 4096 x 10240 with q's bias, k and v 4096 x 1024
        // with theirs, the gated MLP 3 x 4096 x 27648, two norms; the final norm
        assertEquals(2L * 155136 * 4096 + 64L * (2L * 4096 * 10240 + 10240 + 2L * (4096 * 1024 + 1024)
                + 3L * 4096 * 27648 + 2 * 4096) + 4096, c.parameterCount());
        assertEquals(28_921_040_896L, c.parameterCount());
    }

    /** Seed-OSS-36B's config.json as transformers 4.55 wrote it: its rotary keys in the 4.x form. */
    @Test
    void theThirtySixBillionParameterModelsConfigLoads() {
        HookedAutoConfig c = HookedAutoConfig.fromJsonText("""
                {"architectures": ["SeedOssForCausalLM"], "attention_bias": true, "attention_dropout": 0.1,
                 "attention_out_bias": false, "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2,
                 "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
                 "intermediate_size": 27648, "max_position_embeddings": 524288, "mlp_bias": false,
                 "model_type": "seed_oss", "num_attention_heads": 80, "num_hidden_layers": 64,
                 "num_key_value_heads": 8, "residual_dropout": 0.1, "rms_norm_eps": 1e-06,
                 "rope_scaling": {"rope_type": "default"}, "rope_theta": 10000000.0, "tie_word_embeddings": false,
                 "torch_dtype": "bfloat16", "transformers_version": "4.55.0", "use_cache": true,
                 "vocab_size": 155136}""");
        assertEquals(1e7, c.ropeTheta());
        assertEquals(128, c.dHead(), "head_dim, not hidden_size / heads (64)");
        // untied 155136 x 5120 embedding and head; per layer q and o 5120 x 10240 with q's bias, k and v 5120 x 1024
        // with theirs, the gated MLP 3 x 5120 x 27648, two norms; the final norm
        assertEquals(2L * 155136 * 5120 + 64L * (2L * 5120 * 10240 + 10240 + 2L * (5120 * 1024 + 1024)
                + 3L * 5120 * 27648 + 2 * 5120) + 5120, c.parameterCount());
        assertEquals(36_151_104_512L, c.parameterCount());
    }

    @Test
    void theOutputProjectionsBiasFollowsItsOwnKey() {
        Set<String> names = TinyConfigs.of("seed-oss").with("attention_bias", false).with("attention_out_bias", true)
                .checkpoint().tensors().keySet();
        assertTrue(names.contains("model.layers.0.self_attn.o_proj.bias"), names.toString());
        assertFalse(names.contains("model.layers.0.self_attn.q_proj.bias"), names.toString());
        assertFalse(names.contains("model.layers.0.self_attn.v_proj.bias"), names.toString());
    }
}

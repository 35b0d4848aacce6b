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
        Architecture a = c.architecture();
        assertTrue(a.qkvBias(), "attention_bias defaults to true");
        assertFalse(a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        // untied 155136 x 4096 embedding and head; per layer q and o 4096 x 10240 with q's bias, k and v 4096 x 1024
        // with theirs, the gated MLP 3 x 4096 x 27648, two norms; the final norm
        assertEquals(2L * 155136 * 4096 + 64L * (2L * 4096 * 10240 + 10240 + 2L * (4096 * 1024 + 1024)
                + 3L * 4096 * 27648 + 2 * 4096) + 4096, c.parameterCount());
        assertEquals(28_921_040_896L, c.parameterCount());
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

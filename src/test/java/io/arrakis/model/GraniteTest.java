package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Granite: GraniteConfig's defaults, the multipliers read from the fixture's config.json, and where the residual
 * multiplier acts (the forward pass itself is checked against Hugging Face by {@link ModelParityTest}).
 */
class GraniteTest {

    @Test
    void defaultsAreGraniteConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("granite");
        assertEquals(1.0, c.raw().get("embedding_multiplier"));
        assertEquals(1.0, c.raw().get("logits_scaling"));
        assertEquals(1.0, c.raw().get("residual_multiplier"));
        assertEquals(1.0, c.raw().get("attention_multiplier"));
        assertEquals(32, c.nKvHeads(), "num_key_value_heads None means one per query head");
        assertFalse(c.scaleAttention(), "attention_multiplier replaces 1/sqrt(d_head)");
        assertEquals(1.0, c.architecture().attentionMultiplier());
        // the Llama 2 7B shape: GraniteConfig's sizes are LlamaConfig's
        assertEquals(6_738_415_616L, c.parameterCount());
    }

    @Test
    void theFixturesMultipliersReachTheArchitecture() {
        Architecture a = HookedAutoConfig.fromJson(Fixtures.huggingFace("granite").resolve("config.json")).architecture();
        assertEquals(2.0, a.embeddingScale());
        assertEquals(0.3, a.attentionMultiplier());
        assertEquals(0.5, a.residualMultiplier());
        assertEquals(0.25, a.logitScale(), "logits are divided by logits_scaling = 4");
    }

    @Test
    void aZeroLogitsScalingIsRefused() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> HookedAutoConfig.of("granite").with("logits_scaling", 0.0)).getMessage();
        assertTrue(m.contains("logits_scaling") && m.contains("0.0"), m);
    }

    /** hook_attn_out is the attention output times residual_multiplier: what the block adds to the residual. */
    @Test
    void theResidualMultiplierScalesWhatTheBlockAdds() {
        Path dir = Fixtures.huggingFace("granite");
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            HookedAutoConfig c = model.config();
            ActivationCache cache = out.cache();
            Tensor z = cache.get("blocks.0.attn.hook_z");
            Tensor oProj = z.reshape(z.size(0), z.size(1), (long) c.nHeads() * c.dHead())
                    .matmul(model.W_O(0).reshape((long) c.nHeads() * c.dHead(), c.dModel()));
            assertTrue(oProj.mul(0.5).allclose(cache.get("blocks.0.hook_attn_out"), 1e-5, 1e-6));
            Tensor sum = cache.get("blocks.0.hook_resid_pre").add(cache.get("blocks.0.hook_attn_out"))
                    .add(cache.get("blocks.0.hook_mlp_out"));
            assertTrue(sum.allclose(reference.tensor("blocks.1.hook_resid_pre"), 1e-5, 1e-5));
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * HyperCLOVA X's defaults, {@code HyperCLOVAXConfig}'s, its output norms and its refusal. Its forward pass is checked
 * against {@link HyperClovaxReference} by {@link ModelParityTest} and every family-generic test.
 */
class HyperClovaxTest {

    @Test
    void defaultsAreHyperClovaxConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("hyperclovax");
        Architecture a = c.architecture();
        assertTrue(a.inputNorms() && a.outputNorms(), "use_post_norm: Peri-Layer Normalization");
        assertEquals(Architecture.Norm.RMS_NORM, a.norm());
        assertEquals(1 / Math.sqrt(128), a.attentionMultiplier(), "a null attention_multiplier: head_dim^-1/2");
        assertEquals(1.0, a.logitScale());
        assertEquals(0.25, c.with("logits_scaling", 0.25).architecture().logitScale(), "multiplied, not divided");
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-6, c.normEps());
        assertEquals(2048, c.maxPositions());
        assertEquals(1, c.raw().get("bos_token_id"));
        assertEquals(2, c.raw().get("eos_token_id"));
        assertEquals(1.0, a.embeddingScale(io.arrakis.torch.DType.FLOAT32));
        assertEquals(1.0, a.residualMultiplier());
        assertEquals(Math.pow(12, -0.5), TinyConfigs.of("hyperclovax").with("head_dim", 12).architecture()
                .attentionMultiplier(), 1e-15, "a null attention_multiplier: the resolved head_dim's ^-1/2");
        assertFalse(a.tiedEmbeddings());
        // untied 32000 x 4096 embedding and head; per layer q, k, v and o 4096 x 4096, the gated MLP 3 x 4096 x 11008,
        // four norms; the final norm
        assertEquals(2L * 32000 * 4096 + 32L * (4L * 4096 * 4096 + 3L * 4096 * 11008 + 4 * 4096) + 4096,
                c.parameterCount());
        assertEquals(6_738_677_760L, c.parameterCount());
    }

    @Test
    void theOutputNormsFollowUsePostNorm() {
        Set<String> with = TinyConfigs.of("hyperclovax").checkpoint().tensors().keySet();
        assertTrue(with.containsAll(Set.of("model.layers.0.post_norm1.weight", "model.layers.0.post_norm2.weight",
                "model.layers.0.post_attention_layernorm.weight")), with.toString());
        Set<String> without = TinyConfigs.of("hyperclovax").with("use_post_norm", false).checkpoint().tensors()
                .keySet();
        assertTrue(without.stream().noneMatch(n -> n.contains("post_norm")), without.toString());
        assertTrue(without.contains("model.layers.0.post_attention_layernorm.weight"), without.toString());
    }

    @Test
    void headsMustDivideTheWidthEvenWithAHeadDim() {
        String m = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.of("hyperclovax")
                .with("head_dim", 8).with("num_attention_heads", 6).with("num_key_value_heads", 2).architecture())
                .getMessage();
        assertTrue(m.contains("hidden_size = 32") && m.contains("num_attention_heads = 6"), m);
    }
}

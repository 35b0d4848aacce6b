package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Jais 2's defaults, {@code Jais2Config}'s, its layout and its refusal. Its forward pass is checked against
 * {@link Jais2Reference} by {@link ModelParityTest} and every family-generic test.
 */
class Jais2Test {

    @Test
    void defaultsAreJais2Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("jais2");
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.LAYER_NORM, a.norm());
        assertEquals(Architecture.RotaryPrecision.MODEL_DTYPE, a.rotaryPrecision());
        assertEquals(Architecture.Activation.RELU2, a.activationFunction());
        assertTrue(a.qkvBias() && a.outBias() && a.mlpBias());
        assertFalse(a.gatedMlp() || a.tiedEmbeddings());
        assertEquals(128, c.dHead());
        assertEquals(26, c.nKvHeads());
        assertEquals(10000.0, c.ropeTheta(), "LlamaConfig's default_theta");
        assertEquals(1e-5, c.normEps());
        assertEquals(8192, c.maxPositions());
        assertEquals(0, c.raw().get("bos_token_id"));
        assertEquals(150024, c.raw().get("eos_token_id"));
        // untied 150272 x 3328 embedding and head; per layer q, k, v and o 3328 x 3328 with their biases, up and down
        // 3328 x 26624 with theirs, two LayerNorms with bias; the final one
        assertEquals(2L * 150272 * 3328 + 32L * (4L * 3328 * 3328 + 4 * 3328 + 2L * 3328 * 26624 + 26624 + 3328
                + 4 * 3328) + 2 * 3328, c.parameterCount());
        assertEquals(8_090_401_280L, c.parameterCount());
    }

    @Test
    void theLayoutHasLayerNormBiasesAndNoGate() {
        Set<String> names = TinyConfigs.of("jais2").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.input_layernorm.bias", "model.norm.bias",
                "model.layers.0.mlp.up_proj.bias", "model.layers.0.self_attn.o_proj.bias")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("gate_proj")), names.toString());
    }

    @Test
    void headsMustDivideTheWidthEvenWithAHeadDim() {
        String m = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.of("jais2").with("head_dim", 8)
                .with("num_attention_heads", 6).with("num_key_value_heads", 2).architecture()).getMessage();
        assertTrue(m.contains("hidden_size = 32") && m.contains("num_attention_heads = 6"), m);
    }
}

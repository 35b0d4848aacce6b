package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Arcee's defaults, {@code ArceeConfig}'s, its MLP without a gate, and the {@code relu2} activation ({@code
 * relu(x)^2}, {@code transformers}' {@code ReLUSquaredActivation}: {@code relu} then {@code torch.square}, which
 * rounds once in bfloat16). Its forward pass is checked against {@link ArceeReference} by {@link ModelParityTest} and
 * every family-generic test.
 */
class ArceeTest {

    @Test
    void defaultsAreArceeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("arcee");
        assertEquals(80, c.dHead(), "hidden_size / heads");
        assertEquals(32, c.nKvHeads(), "num_key_value_heads null: every head its own");
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-5, c.normEps());
        assertEquals(4096, c.maxPositions());
        Architecture a = c.architecture();
        assertEquals(Architecture.Activation.RELU2, a.activationFunction());
        assertFalse(a.gatedMlp() || a.qkvBias() || a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        assertEquals(Architecture.Norm.RMS_NORM, a.norm(), "Llama's RMSNorm, rounded before its weight");
        assertEquals(Architecture.RotaryPrecision.MODEL_DTYPE, a.rotaryPrecision());
        // untied 32000 x 2560 embedding and head; per layer q, k, v and o 2560 x 2560, up and down 2560 x 18432, two
        // norms; the final norm
        assertEquals(2L * 32000 * 2560 + 32L * (4L * 2560 * 2560 + 2L * 2560 * 18432 + 2 * 2560) + 2560,
                c.parameterCount());
        assertEquals(4_022_766_080L, c.parameterCount());
    }

    @Test
    void theMlpHasNoGateAndTheBiasesFollowTheirKeys() {
        Set<String> names = TinyConfigs.of("arcee").with("mlp_bias", true).checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.bias",
                "model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.down_proj.bias")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("gate_proj")), names.toString());
        Set<String> biased = TinyConfigs.of("arcee").with("attention_bias", true).checkpoint().tensors().keySet();
        assertTrue(biased.containsAll(Set.of("model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.self_attn.o_proj.bias")), "attention_bias biases all four projections: " + biased);
    }

    @Test
    void headsMustDivideTheWidthEvenWithAHeadDim() {
        String m = assertThrows(IllegalArgumentException.class, () -> TinyConfigs.of("arcee").with("head_dim", 8)
                .with("num_attention_heads", 6).with("num_key_value_heads", 2).architecture()).getMessage();
        assertTrue(m.contains("hidden_size = 32") && m.contains("num_attention_heads = 6"), m);
    }

    @Test
    void relu2SquaresTheReluRoundingOnceInBfloat16() {
        HookedAutoConfig config = TinyConfigs.of("arcee");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(config),
                     CacheSpec.only("blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post"))) {
            float[] pre = out.cache().get("blocks.0.mlp.hook_pre").toFloatArray();
            float[] post = out.cache().get("blocks.0.mlp.hook_post").toFloatArray();
            int positive = 0;
            for (int i = 0; i < pre.length; i++) {
                float relu = Math.max(pre[i], 0);
                assertEquals(Bfloat16.round(relu * relu), post[i], 0, "element " + i + " of " + pre[i]);
                positive += pre[i] > 0 ? 1 : 0;
            }
            assertTrue(positive > pre.length / 4 && positive < pre.length * 3 / 4, positive + " of " + pre.length);
        }
    }

    @Test
    void aGatedMlpAppliesRelu2ToItsGate() {
        HookedAutoConfig config = TinyConfigs.of("llama").with("hidden_act", "relu2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(ids(config), CacheSpec.only("blocks.0.mlp.hook_pre",
                     "blocks.0.mlp.hook_pre_linear", "blocks.0.mlp.hook_post"))) {
            float[] gate = out.cache().get("blocks.0.mlp.hook_pre").toFloatArray();
            float[] up = out.cache().get("blocks.0.mlp.hook_pre_linear").toFloatArray();
            float[] post = out.cache().get("blocks.0.mlp.hook_post").toFloatArray();
            for (int i = 0; i < gate.length; i++) {
                double relu = Math.max(gate[i], 0);
                assertEquals(relu * relu * up[i], post[i], 1e-6 * (1 + Math.abs(post[i])), "element " + i);
            }
        }
    }

    private static Tensor ids(HookedAutoConfig config) {
        long[] ids = new long[12];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (7L * i + 3) % config.vocabSize();
        }
        return Tensor.of(ids, 1, ids.length);
    }
}

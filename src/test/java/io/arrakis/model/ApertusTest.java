package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Apertus's defaults, {@code ApertusConfig}'s (Apertus-8B's shape), its layout, xIELU in bfloat16 op by op, and the
 * refusal of xIELU elsewhere. Its forward pass is checked against {@link ApertusReference} by {@link ModelParityTest}
 * and every family-generic test.
 */
class ApertusTest {

    @Test
    void defaultsAreApertusConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("apertus");
        Architecture a = c.architecture();
        assertEquals(Architecture.Activation.XIELU, a.activationFunction());
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertFalse(a.gatedMlp() || a.qkvBias() || a.tiedEmbeddings());
        Rope rope = a.rope(0);
        assertEquals(12_000_000.0, rope.theta());
        assertEquals(new Rope.Llama3(8.0, 1.0, 4.0, 8192), rope.scaling());
        assertEquals(3, a.paddingIndex());
        // untied 131072 x 4096 embedding and head; per layer q, k, v, o 4096 x 4096, q/k norms of 128, up and down
        // 4096 x 14336, two norms and the four xIELU parameters (alpha_p, alpha_n, beta, eps); the final norm
        assertEquals(2L * 131072 * 4096 + 32L * (4L * 4096 * 4096 + 2 * 128 + 2L * 4096 * 14336 + 2 * 4096 + 4)
                + 4096, c.parameterCount());
    }

    @Test
    void theLayoutHasItsOwnNormNamesAndEachLayersXieluParameters() {
        Set<String> names = TinyConfigs.of("apertus").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.attention_layernorm.weight",
                "model.layers.0.feedforward_layernorm.weight", "model.layers.1.self_attn.q_norm.weight",
                "model.layers.1.mlp.act_fn.alpha_p", "model.layers.1.mlp.act_fn.eps")), names.toString());
        assertFalse(names.stream().anyMatch(n -> n.contains("gate_proj") || n.contains("input_layernorm")),
                names.toString());
        Set<String> relu = TinyConfigs.of("apertus").with("hidden_act", "relu").checkpoint().tensors().keySet();
        assertTrue(relu.stream().noneMatch(n -> n.contains("act_fn")), "no xIELU, no parameters");
    }

    @Test
    void xieluIsRefusedWhereTheCheckpointHoldsNoParameters() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("llama").with("hidden_act", "xielu").architecture()).getMessage();
        assertTrue(m.startsWith("hidden_act = ") && m.contains("xielu") && m.contains("Apertus"), m);
    }

    /**
     * In bfloat16 each of xIELU's ops rounds, as transformers' Python xIELU computes it: worked out here from the
     * pass's own input to the activation and the checkpoint's parameters, rounding after every step.
     */
    @Test
    void bfloat16XieluRoundsAfterEachStep() {
        Path fixture = Fixtures.huggingFace("apertus");
        DType bf16 = DType.BFLOAT16;
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(fixture.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(fixture, bf16, Device.CPU);
             ModelOutput out = model.runWithHooks(Fixtures.referenceInputIds(fixture), CacheSpec.all(),
                     HookedAutoModel.HookSpec.at("blocks.1.mlp.hook_pre", ApertusTest::withEdgeInputs))) {
            String f = "model.layers.1.mlp.act_fn.";
            double beta = bf16.round(file.tensor(f + "beta").item());
            double eps = bf16.round(file.tensor(f + "eps").item());
            double alphaP = bf16.round(Math.log1p(Math.exp(bf16.round(file.tensor(f + "alpha_p").item()))));
            double alphaN = bf16.round(beta + bf16.round(Math.log1p(Math.exp(bf16.round(
                    file.tensor(f + "alpha_n").item())))));
            float[] pre = out.cache().get("blocks.1.mlp.hook_pre").to(DType.FLOAT32).toFloatArray();
            float[] post = out.cache().get("blocks.1.mlp.hook_post").to(DType.FLOAT32).toFloatArray();
            int negative = 0;
            for (int i = 0; i < pre.length; i++) {
                double x = pre[i];
                double linear = bf16.round(beta * x);
                double expected;
                if (x > 0) {
                    expected = bf16.round(bf16.round(bf16.round(alphaP * x) * x) + linear);
                } else {
                    negative++;
                    double side = bf16.round(bf16.round(Math.expm1(Math.min(x, eps))) - x);
                    expected = bf16.round(bf16.round(side * alphaN) + linear);
                }
                assertEquals(expected, post[i], 0.0, "x = " + x);
            }
            assertTrue(negative > 0 && negative < pre.length, "both sides were reached");
        }
    }

    /** {@code pre} with its first values replaced by 0, -0 and values about {@code eps} (-1e-6) and beyond. */
    private static Tensor withEdgeInputs(Tensor pre, String name) {
        float[] values = pre.to(DType.FLOAT32).toFloatArray();
        float[] edges = {0f, -0f, -5e-7f, -1e-6f, -2e-6f, 1e-7f, -30f, 30f};
        System.arraycopy(edges, 0, values, 0, edges.length);
        return Tensor.of(values, pre.shape()).to(pre.dtype());
    }

    @Test
    void anEmptyRopeScalingKeepsTheFilledInRotaryEmbeddingAndAttentionBiasReachesTheOutput() {
        assertEquals(new Rope.Llama3(8.0, 1.0, 4.0, 8192),
                HookedAutoConfig.of("apertus").with("rope_scaling", Map.of()).architecture().rope(0).scaling());
        Set<String> biased = TinyConfigs.of("apertus").with("attention_bias", true).checkpoint().tensors().keySet();
        assertTrue(biased.containsAll(Set.of("model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.self_attn.o_proj.bias")), biased.toString());
    }
}

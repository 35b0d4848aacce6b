package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen2-MoE's shared expert on the fixture {@link DerivedFixtures} makes from Hugging Face's qwen2 one (three
 * experts of the dense MLP's first half of units, a shared expert of the other half): with a random shared gate,
 * {@code norm_topk_prob} false and expert {@code e}'s output scaled by {@code e + 1}, the MLP's output is
 * {@code sum_j w_j (e_j + 1)} times the first half's MLP plus the gate's sigmoid times the doubled second half's,
 * computed here from the qwen2 checkpoint; the configuration.
 */
class Qwen2MoeTest {

    @Test
    void theSharedExpertAddsItsGatedOutputToTheRoutedOnes(@TempDir Path tmp) throws IOException {
        Path fixture = Fixtures.huggingFace("qwen2-moe");
        Path dir = tmp.resolve("gated");
        Generator g = new Generator(3);
        // a random shared gate, and expert e's output scaled by e + 1, which tells the routed experts apart
        Fixtures.writeEdited(fixture, dir, (name, t) -> name.endsWith("shared_expert_gate.weight")
                ? Tensor.randn(g, t.shape(), DType.FLOAT32, Device.CPU)
                : name.contains(".mlp.experts.") && name.endsWith("down_proj.weight")
                ? t.mul(1 + Integer.parseInt(name.replaceAll(".*\\.experts\\.(\\d+)\\..*", "$1"))) : t);
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(dir.resolve("config.json"))));
        assertEquals(true, config.put("norm_topk_prob", false));
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Path qwen2 = Fixtures.huggingFace("qwen2");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile dense = SafeTensorsFile.open(qwen2.resolve("model.safetensors"));
             SafeTensorsFile edited = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             ModelOutput out = model.forward(Fixtures.referenceInputIds(qwen2))) {
            String p = "model.layers.1.";
            int half = model.config().dMlp();
            float[] w = out.cache().get("blocks.1.mlp.hook_expert_weights").toFloatArray();
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            int tokens = w.length / 2;
            Tensor x = out.cache().get("blocks.1.ln2.hook_normalized").reshape(tokens, -1);
            Tensor gate = dense.tensor(p + "mlp.gate_proj.weight");
            Tensor up = dense.tensor(p + "mlp.up_proj.weight");
            Tensor down = dense.tensor(p + "mlp.down_proj.weight");
            double[] first = halfMlp(x, gate, up, down, 0, half).toDoubleArray();
            double[] second = halfMlp(x, gate, up, down, half, (int) gate.size(0) - half).mul(2.0).toDoubleArray();
            double[] sigmoid = x.linear(edited.tensor(p + "mlp.shared_expert_gate.weight"), null).sigmoid()
                    .toDoubleArray();
            assertArrayEquals(sigmoid, out.cache().get("blocks.1.mlp.hook_shared_expert_gate").toDoubleArray(), 1e-6);
            assertArrayEquals(new long[] {2, tokens / 2, gate.size(0) - half},
                    out.cache().get("blocks.1.mlp.shared_expert.hook_post").shape());
            double[] actual = out.cache().get("blocks.1.hook_mlp_out").toDoubleArray();
            int d = actual.length / tokens;
            double least = 1;
            for (int i = 0; i < actual.length; i++) {
                int t = i / d;
                least = Math.min(least, w[t * 2] + w[t * 2 + 1]);
                double scale = w[t * 2] * (chosen[t * 2] + 1) + w[t * 2 + 1] * (chosen[t * 2 + 1] + 1);
                assertEquals(scale * first[i] + sigmoid[t] * second[i], actual[i], 1e-5 * Math.max(1,
                        Math.abs(actual[i])), "element " + i);
            }
            assertTrue(least < 0.9, "the expert left out had a share");
        }
    }

    /** {@code down[:, units] (silu(gate[units] x) * up[units] x)} over {@code count} units from {@code from}. */
    private static Tensor halfMlp(Tensor x, Tensor gate, Tensor up, Tensor down, int from, int count) {
        return x.linear(gate.narrow(0, from, count), null).silu().mul(x.linear(up.narrow(0, from, count), null))
                .linear(down.narrow(1, from, count).contiguous(), null);
    }

    /** Qwen1.5-MoE-A2.7B's config.json as published. */
    private static final String QWEN15_MOE_A27B = """
            {"architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
             "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
             "intermediate_size": 5632, "max_position_embeddings": 8192, "max_window_layers": 21,
             "model_type": "qwen2_moe", "num_attention_heads": 16, "num_hidden_layers": 24,
             "num_key_value_heads": 16, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
             "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0",
             "use_cache": true, "use_sliding_window": false, "vocab_size": 151936, "decoder_sparse_step": 1,
             "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632, "num_experts_per_tok": 4,
             "num_experts": 60, "norm_topk_prob": false, "output_router_logits": false,
             "router_aux_loss_coef": 0.001}
            """;

    @Test
    void qwen15MoeConfigurationAndItsRefusals() {
        HookedAutoConfig c = HookedAutoConfig.fromJsonText(QWEN15_MOE_A27B);
        assertEquals(60, c.numExperts());
        assertEquals(4, c.expertsPerToken());
        assertEquals(1408, c.dMlp());
        assertEquals(5632, c.architecture().moe().sharedWidth());
        // embeddings and head 2 x 151936 x 2048; per layer attention 4 x 2048^2 and the query, key and value biases,
        // norms, router 60 x 2048, experts 60 x 3 x 2048 x 1408, the shared expert 3 x 2048 x 5632 and its gate;
        // the final norm: "14.3B parameters in total"
        assertEquals(14_315_784_192L, c.parameterCount());

        HookedAutoConfig tiny = TinyConfigs.of("qwen2-moe");
        for (Map<String, Object> wrong : List.<Map<String, Object>>of(Map.of("use_sliding_window", true),
                Map.of("layer_types", List.of("full_attention", "sliding_attention")),
                Map.of("layer_types", List.of("full_attention")),
                Map.of("decoder_sparse_step", 2))) {
            String key = wrong.keySet().iterator().next();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tiny.with(wrong).dModel());
            assertTrue(e.getMessage().contains(key), e.getMessage());
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * OLMo's defaults, {@code OlmoConfig}'s, a config.json of OLMo-1B's sizes, its norms without parameters and
 * {@code clip_qkv}. Its forward pass is checked against {@link OlmoReference} (queries, keys and values clipped) by
 * {@link ModelParityTest} and every family-generic test.
 */
class OlmoTest {

    @Test
    void defaultsAreOlmoConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("olmo");
        assertEquals(128, c.dHead(), "hidden_size / heads");
        assertEquals(32, c.nKvHeads(), "num_key_value_heads null: every head its own");
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(2048, c.maxPositions());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.LAYER_NORM, a.norm());
        assertEquals(1e-5, a.normEps(), "OlmoLayerNorm's eps, which no key sets");
        assertFalse(a.normParameters());
        assertEquals(0.0, a.clipQkv(), "clip_qkv null: no clamp");
        assertEquals(Architecture.RotaryPrecision.FLOAT32, a.rotaryPrecision());
        assertTrue(a.gatedMlp());
        assertFalse(a.qkvBias() || a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        // untied 50304 x 4096 embedding and head; per layer q, k, v and o 4096 x 4096, the gated MLP 3 x 4096 x 11008;
        // no norm has a parameter
        assertEquals(2L * 50304 * 4096 + 32L * (4L * 4096 * 4096 + 3L * 4096 * 11008), c.parameterCount());
        assertEquals(6_888_095_744L, c.parameterCount());
    }

    /** A config.json of OLMo-1B's sizes, with the keys transformers 4.40 wrote for OLMo: tied embeddings. */
    @Test
    void aOneBillionParameterConfigLoads() {
        HookedAutoConfig c = HookedAutoConfig.fromJsonText("""
                {"architectures": ["OlmoForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
                 "clip_qkv": null, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
                 "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 2048,
                 "model_type": "olmo", "num_attention_heads": 16, "num_hidden_layers": 16,
                 "num_key_value_heads": 16, "pad_token_id": 1, "rope_scaling": null, "rope_theta": 10000.0,
                 "tie_word_embeddings": true, "torch_dtype": "float32", "transformers_version": "4.40.0.dev0",
                 "use_cache": true, "vocab_size": 50304}""");
        assertTrue(c.architecture().tiedEmbeddings());
        assertEquals(50304L * 2048 + 16L * (4L * 2048 * 2048 + 3L * 2048 * 8192), c.parameterCount());
        assertEquals(1_176_764_416L, c.parameterCount());
    }

    @Test
    void theCheckpointHasNoNormTensorsAndTheModelNormsWithWeightsOfOne() {
        HookedAutoConfig config = TinyConfigs.of("olmo").with("attention_bias", true);
        Set<String> names = config.checkpoint().tensors().keySet();
        assertTrue(names.stream().noneMatch(n -> n.contains("norm")), names.toString());
        assertTrue(names.containsAll(Set.of("model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.self_attn.o_proj.bias")), "attention_bias biases all four projections: " + names);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU)) {
            Tensor weights = model.normWeights();
            assertEquals(config.nLayers() * (long) config.dModel(), weights.numel());
            assertEquals(1.0, weights.min().item());
            assertEquals(1.0, weights.max().item());
            assertEquals(1.0, model.weights().lnfw.min().item());
            assertEquals(1.0, model.weights().lnfw.max().item());
        }
    }

    @ParameterizedTest
    @ValueSource(doubles = {0.0, -1.0, Double.POSITIVE_INFINITY})
    void aClipThatIsNotPositiveAndFiniteIsRefused(double clip) {
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("olmo").with("clip_qkv", clip).architecture()).getMessage();
        assertTrue(m.contains("clip_qkv") && (m.contains("positive") || m.contains("finite")), m);
    }

    /** The original format's config (ai2-olmo's hf_olmo), whose model_type is olmo too, is refused by its keys. */
    @Test
    void theOriginalFormatIsRefused() {
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText("""
                {"model_type": "olmo", "architectures": ["OLMoForCausalLM"], "d_model": 2048, "n_heads": 16,
                 "n_layers": 16, "mlp_ratio": 8, "vocab_size": 50280}""").architecture()).getMessage();
        assertTrue(m.contains("d_model") && m.contains("OLMo-1B-hf"), m);
    }

    /** The clamp bounds queries, keys and values, as rounded to bfloat16, and leaves the rest as projected. */
    @Test
    void clipQkvBoundsTheProjectionsInBfloat16() {
        double clip = 0.05;
        HookedAutoConfig clipped = TinyConfigs.of("olmo").with("clip_qkv", clip);
        float bound = Bfloat16.round((float) clip);
        String[] hooks = {"blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v"};
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(clipped, 5, DType.BFLOAT16, Device.CPU);
             HookedAutoModel free = HookedAutoModel.create(TinyConfigs.of("olmo"), 5, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(clipped), CacheSpec.only(hooks));
             ModelOutput unclipped = free.forward(ids(clipped), CacheSpec.only(hooks))) {
            for (String hook : hooks) {
                float[] values = out.cache().get(hook).toFloatArray();
                float[] projected = unclipped.cache().get(hook).toFloatArray();
                int atBound = 0;
                for (int i = 0; i < values.length; i++) {
                    assertEquals(Math.max(-bound, Math.min(bound, projected[i])), values[i], 0, hook + " " + i);
                    atBound += Math.abs(values[i]) == bound ? 1 : 0;
                }
                assertTrue(atBound > 0 && atBound < values.length, hook + ": " + atBound + " of " + values.length);
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

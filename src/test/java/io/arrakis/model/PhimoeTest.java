package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.Rope;
import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PhiMoE's defaults, {@code PhimoeConfig}'s, its rotary embedding as {@code PhimoeRotaryEmbedding} reads a longrope
 * object, its refusals and its checkpoint's names. Its forward pass is checked against {@link PhimoeReference}
 * (LayerNorms, biases, the short factors with the long mscale, the sliding window, the sparsemixer) by
 * {@link ModelParityTest} and every family-generic test.
 */
class PhimoeTest {
    private static final List<Double> SHORT = Collections.nCopies(64, 1.0);
    private static final List<Double> LONG = Collections.nCopies(64, 4.0);

    /** The rotary object of Phi-3.5-MoE's config.json, its factors made up (64 of them, for heads of 128). */
    private static Map<String, Object> phi35MoeRope() {
        return new HashMap<>(Map.of("type", "longrope", "short_factor", SHORT, "long_factor", LONG, "short_mscale",
                1.243163121016122, "long_mscale", 1.243163121016122, "original_max_position_embeddings", 4096));
    }

    @Test
    void defaultsArePhimoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("phimoe");
        assertEquals("phimoe", c.family());
        assertEquals(1e6, c.ropeTheta());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.LAYER_NORM, a.norm());
        assertFalse(a.qkvBias() || a.outBias() || a.unembeddingBias() || a.tiedEmbeddings());
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SPARSE_MIXER, moe.routing());
        assertEquals(16, moe.experts());
        assertEquals(2, moe.topK());
        assertEquals(0.01, moe.jitterEps());
        assertFalse(moe.float32Weights() || moe.float32Logits() || moe.hasSharedExpert());
        // untied 32064 x 4096 embedding and head; per layer q and o 4096 x 4096, k and v 1024 x 4096, two LayerNorms
        // with biases, the router 16 x 4096 and 16 experts of 3 x 4096 x 6400; the final LayerNorm
        assertEquals(2L * 32064 * 4096 + 32L * (2L * 4096 * 4096 + 2L * 1024 * 4096 + 4 * 4096 + 16 * 4096
                + 16 * 3L * 4096 * 6400) + 2 * 4096, c.parameterCount());
    }

    @Test
    void phi35MoesLongropeUsesTheShortFactorsAtEveryLengthAndItsMscales() {
        HookedAutoConfig c = HookedAutoConfig.of("phimoe").with(Map.of("rope_scaling", phi35MoeRope(),
                "sliding_window", 131072, "attention_bias", true, "lm_head_bias", true));
        Rope rope = c.architecture().rope();
        Rope.LongRope scaling = assertInstanceOf(Rope.LongRope.class, rope.scaling());
        assertEquals(SHORT, scaling.longFactor(), "PhimoeRotaryEmbedding recomputes its frequencies without the"
                + " length, so with the short factors");
        assertEquals(4096, scaling.originalMaxPositions());
        assertEquals(1.243163121016122, rope.attentionFactor(4096));
        assertEquals(1.243163121016122, rope.attentionFactor(4097));
        HookedAutoConfig apart = HookedAutoConfig.of("phimoe").with("rope_scaling", new HashMap<>(Map.of("type",
                "longrope", "short_factor", SHORT, "long_factor", LONG, "short_mscale", 1.5, "long_mscale", 2.5)));
        Rope byLength = apart.architecture().rope();
        assertEquals(1.5, byLength.attentionFactor(131072), "the original context defaults to max_position_embeddings");
        assertEquals(2.5, byLength.attentionFactor(131073));
        assertEquals(1.0, HookedAutoConfig.of("phimoe").architecture().rope().attentionFactor(1 << 20));
        Architecture a = c.architecture();
        assertTrue(a.qkvBias() && a.outBias() && a.unembeddingBias());
        assertEquals(131072, a.slidingWindow());
        // cos and sin rounded to the model's dtype and the rotation in it, as PhimoeRotaryEmbedding's .to(x.dtype)
        assertEquals(Architecture.RotaryPrecision.MODEL_DTYPE, a.rotaryPrecision());
        // PhimoeConfig copies the object's pretraining context over a top-level one, which it never reads
        assertEquals(4096, originalOf(", \"original_max_position_embeddings\": 4096", 2048));
        assertEquals(131072, originalOf("", 4096), "max_position_embeddings where the object has none");
    }

    /** The pretraining context of a config.json with this top-level one and a rope object with {@code entry}. */
    private static int originalOf(String entry, int topLevel) {
        String factors = String.join(", ", Collections.nCopies(64, "1.0"));
        HookedAutoConfig c = HookedAutoConfig.fromJsonText("{\"model_type\": \"phimoe\", "
                + "\"original_max_position_embeddings\": " + topLevel + ", \"rope_scaling\": {\"type\": \"longrope\", "
                + "\"short_factor\": [" + factors + "], \"long_factor\": [" + factors + "], \"short_mscale\": 1.2, "
                + "\"long_mscale\": 1.2" + entry + "}}");
        return ((Rope.LongRope) c.architecture().rope().scaling()).originalMaxPositions();
    }

    /**
     * In bfloat16 the sparsemixer works in the logits' dtype, step by step as transformers' {@code sparsemixer}:
     * {@code (max - s) / max(|s|, max)} rounded to bfloat16 at each step and compared with {@code 2 · jitter} as
     * bfloat16, the softmax of the kept logits rounded once to bfloat16, the first expert left out of the second
     * choice.
     */
    @Test
    void aBfloat16ModelRoutesInBfloat16AsTheSparsemixerDoes() {
        HookedAutoConfig config = TinyConfigs.of("phimoe").with(Map.of("router_jitter_noise", 0.3,
                "num_local_experts", 6));
        long[] ids = new long[24];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 29 + 7) % config.vocabSize();
        }
        float threshold = Bfloat16.round(0.6f);
        int kept = 0;
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(ids, 2, 12), CacheSpec.only("blocks.1.mlp.hook_router_logits",
                     "blocks.1.mlp.hook_expert_indices", "blocks.1.mlp.hook_expert_weights"))) {
            float[] logits = out.cache().get("blocks.1.mlp.hook_router_logits").toFloatArray();
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            float[] weights = out.cache().get("blocks.1.mlp.hook_expert_weights").toFloatArray();
            for (int t = 0; t < ids.length; t++) {
                float[] s = java.util.Arrays.copyOfRange(logits, t * 6, t * 6 + 6);
                int first = best(s, -1);
                int second = best(s, first);
                assertEquals(first, chosen[2 * t], "token " + t);
                assertEquals(second, chosen[2 * t + 1], "token " + t);
                int[] picks = {first, second};
                for (int j = 0; j < 2; j++) {
                    float top = s[picks[j]];
                    double sum = 0;
                    for (int e = 0; e < 6; e++) {
                        float factor = Math.max(Math.abs(s[e]), top);
                        float ratio = Bfloat16.round(Bfloat16.round(top - s[e]) / factor);
                        if (e != (j == 0 ? -1 : first) && !(ratio > threshold)) {
                            sum += Math.exp((double) s[e] - top);
                            kept += e != picks[j] ? 1 : 0;
                        }
                    }
                    assertEquals(Bfloat16.round((float) (1 / sum)), weights[2 * t + j], 0.0, "token " + t + ", "
                            + (j == 0 ? "first" : "second"));
                }
            }
        }
        assertTrue(kept > 10, "the softmaxes should hold other experts often enough to count: " + kept);
    }

    /** The expert with the largest logit, {@code excluded} left out; the first on ties, as torch.max. */
    private static int best(float[] s, int excluded) {
        int best = -1;
        for (int e = 0; e < s.length; e++) {
            best = e != excluded && (best < 0 || s[e] > s[best]) ? e : best;
        }
        return best;
    }

    @Test
    void otherRopeTypesMissingMscalesOtherTopKAndNegativeJitterAreRefused() {
        for (String type : List.of("linear", "yarn", "llama3")) {
            String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phimoe")
                    .with("rope_scaling", Map.of("type", type, "factor", 2.0)).architecture()).getMessage();
            assertTrue(m.contains("rope_scaling.rope_type") && m.contains("PhiMoE"), m);
        }
        for (String mscale : List.of("short_mscale", "long_mscale")) {
            Map<String, Object> rope = phi35MoeRope();
            rope.remove(mscale);
            String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phimoe")
                    .with("rope_scaling", rope).architecture()).getMessage();
            assertTrue(m.contains(mscale) && m.contains("requires"), m);
        }
        Map<String, Object> extra = phi35MoeRope();
        extra.put("attention_factor_typo", 1.0);
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phimoe")
                .with("rope_scaling", extra).architecture()).getMessage();
        assertTrue(m.contains("attention_factor_typo"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phimoe")
                .with("num_experts_per_tok", 4).architecture()).getMessage();
        assertTrue(m.contains("num_experts_per_tok") && m.contains("two experts"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phimoe")
                .with("router_jitter_noise", -0.1).architecture()).getMessage();
        assertTrue(m.contains("router_jitter_noise"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phimoe")
                .with("num_local_experts", 1).architecture()).getMessage();
        assertTrue(m.contains("num_local_experts"), m);
        String generic = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("phi3")
                .with("rope_scaling", phi35MoeRope()).architecture()).getMessage();
        assertTrue(generic.contains("short_mscale"), "only PhiMoE reads the mscales: " + generic);
    }

    @Test
    void theCheckpointIsMixtralsWithBiases() {
        HookedAutoConfig c = TinyConfigs.of("phimoe").with(Map.of("attention_bias", true, "lm_head_bias", true));
        Set<String> names = c.checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.input_layernorm.bias",
                "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.o_proj.bias",
                "model.layers.0.post_attention_layernorm.bias",
                "model.layers.0.block_sparse_moe.gate.weight", "model.layers.0.block_sparse_moe.experts.1.w3.weight",
                "model.norm.bias", "lm_head.bias")), names.toString());
        assertFalse(TinyConfigs.of("phimoe").checkpoint().tensors().containsKey("lm_head.bias"));
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ERNIE 4.5 MoE's defaults, {@code Ernie4_5_MoeConfig}'s, which layers are sparse, its refusals, its checkpoint's
 * names, and its router and correction bias held in float32. Its forward pass is checked against
 * {@link Ernie45MoeReference} (dense and sparse layers, the biased choice, the division by at least
 * {@code moe_norm_min}, the shared experts) by {@link ModelParityTest} and every family-generic test.
 */
class Ernie45MoeTest {

    @Test
    void defaultsAreErnie45MoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("ernie4_5_moe");
        assertEquals("ernie4_5-moe", c.family());
        assertEquals(128, c.dHead(), "hidden_size / num_attention_heads");
        assertEquals(500000.0, c.ropeTheta());
        Architecture a = c.architecture();
        assertTrue(a.rotaryInterleaved() && a.tiedEmbeddings());
        MixtureOfExperts moe = a.moe();
        assertEquals(64, moe.experts());
        assertEquals(6, moe.topK());
        assertEquals(MixtureOfExperts.Routing.SOFTMAX_BIASED, moe.routing());
        assertEquals(1e-12, moe.normMin());
        assertTrue(moe.float32Router() && moe.float32Logits() && !moe.float32Weights());
        assertEquals(2 * 1536, moe.sharedWidth());
        assertFalse(moe.sharedGated());
        assertEquals(12288, moe.denseWidth());
        List<Boolean> sparse = new ArrayList<>(Collections.nCopies(28, true));
        sparse.set(0, false);
        assertEquals(sparse, moe.sparseLayers(), "moe_layer_start_index 1 to the last layer");
        // tied 103424 x 2560 embedding; per layer q and o 2560 x 2560, k and v 512 x 2560, two norms; layer 0's
        // dense MLP 3 x 2560 x 12288; the 27 others' router 64 x 2560, correction bias 64, 64 experts of
        // 3 x 2560 x 1536 and shared experts of 3 x 2560 x 3072; the final norm
        long attention = 2L * 2560 * 2560 + 2L * 512 * 2560 + 2 * 2560;
        long mixture = 64L * 2560 + 64 + 64L * 3 * 2560 * 1536 + 3L * 2560 * 3072;
        assertEquals(103424L * 2560 + 28 * attention + 3L * 2560 * 12288 + 27 * mixture + 2560,
                c.parameterCount());
    }

    @Test
    void sparseLayersFollowStartEndAndInterval() {
        HookedAutoConfig c = HookedAutoConfig.of("ernie4_5_moe").with(Map.of("num_hidden_layers", 8,
                "moe_layer_start_index", 2, "moe_layer_end_index", 6, "moe_layer_interval", 2));
        // (i + 1) % 2 == 0 and 2 <= i <= 6: layers 3 and 5
        assertEquals(List.of(false, false, false, true, false, true, false, false),
                c.architecture().moe().sparseLayers());
        c = HookedAutoConfig.of("ernie4_5_moe").with(Map.of("num_hidden_layers", 3, "moe_layer_start_index", 0));
        assertEquals(List.of(true, true, true), c.architecture().moe().sparseLayers(), "-1: up to the last layer");
        assertEquals(List.of(false, false, false), c.with("moe_layer_end_index", -2).architecture().moe()
                .sparseLayers(), "only -1 means the last layer: -2 ends before the first");
    }

    @Test
    void nullMixtureKeysBiasesAndImpossibleCountsAreRefused() {
        for (String key : List.of("moe_k", "moe_num_experts", "moe_num_shared_experts", "moe_layer_start_index",
                "moe_layer_end_index", "moe_layer_interval", "moe_norm_min")) {
            Map<String, Object> nulled = new HashMap<>();
            nulled.put(key, null);
            String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("ernie4_5_moe")
                    .with(nulled).architecture()).getMessage();
            assertTrue(m.contains(key) && m.contains("must be set"), m);
        }
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("ernie4_5_moe")
                .with("use_bias", true).architecture()).getMessage();
        assertTrue(m.contains("use_bias") && m.contains("not implemented"), m);
        assertFalse(HookedAutoConfig.of("ernie4_5_moe").with("use_bias", null).architecture().qkvBias(),
                "nn.Linear(bias=None) has no bias");
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("ernie4_5_moe")
                .with(Map.of("moe_num_experts", 4, "moe_k", 5)).architecture()).getMessage();
        assertTrue(m.contains("moe_k") && m.contains("exceeds"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("ernie4_5_moe")
                .with("moe_num_shared_experts", -1).architecture()).getMessage();
        assertTrue(m.contains("moe_num_shared_experts"), m);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("ernie4_5_moe")
                .with("moe_layer_interval", 0)).getMessage();
        assertTrue(m.contains("moe_layer_interval") && m.contains("positive"), m);
    }

    @Test
    void theCheckpointStoresTheCorrectionBiasAsOneRowAndSharedExpertsOnlyWhereThereAreSome() {
        HookedAutoConfig c = TinyConfigs.of("ernie4_5-moe");
        Map<String, io.arrakis.model.family.CheckpointTensor> tensors = c.checkpoint().tensors();
        assertArrayEquals(new long[] {1, c.numExperts()},
                tensors.get("model.layers.1.mlp.moe_statics.e_score_correction_bias").shape());
        assertTrue(tensors.keySet().containsAll(Set.of("model.layers.1.mlp.gate.weight",
                "model.layers.1.mlp.experts.0.gate_proj.weight", "model.layers.1.mlp.shared_experts.up_proj.weight",
                "model.layers.0.mlp.gate_proj.weight")), tensors.keySet().toString());
        assertTrue(c.checkpoint().unread().contains("model.mtp_"), "multi-token prediction layers are not read");
        Set<String> none = c.with("moe_num_shared_experts", 0).checkpoint().tensors().keySet();
        assertTrue(none.stream().noneMatch(n -> n.contains("shared_experts")), none.toString());
        assertFalse(c.with("moe_num_shared_experts", 0).architecture().moe().hasSharedExpert());
    }

    /**
     * In a bfloat16 model the router and the correction bias keep the float32 values the checkpoint stores
     * (transformers keeps them in float32), the logits are float32, and the weights are rounded to bfloat16 before they
     * weight the experts' outputs, as {@code Ernie4_5_MoeTopKRouter} returns them.
     */
    @Test
    void aBfloat16ModelRoutesInFloat32AndWeightsInBfloat16() {
        Path dir = DerivedFixtures.of("ernie4_5-moe").orElseThrow(); // a float32 checkpoint
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel wide = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU);
             HookedAutoModel narrow = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = narrow.forward(Tensor.of(new long[] {3, 9, 27, 17, 5}, 1, 5), CacheSpec.only(
                     "blocks.1.mlp.hook_router_logits", "blocks.1.mlp.hook_expert_weights"))) {
            Weights.Layer layer = narrow.weights().layers.get(1);
            assertEquals(DType.FLOAT32, layer.wrouter().dtype());
            assertTrue(layer.wrouter().allclose(wide.weights().layers.get(1).wrouter(), 0, 0));
            assertEquals(DType.FLOAT32, layer.expertScoreBias().dtype());
            assertTrue(layer.expertScoreBias().allclose(wide.weights().layers.get(1).expertScoreBias(), 0, 0));
            assertEquals(DType.FLOAT32, out.cache().get("blocks.1.mlp.hook_router_logits").dtype());
            assertEquals(DType.BFLOAT16, out.cache().get("blocks.1.mlp.hook_expert_weights").dtype());
        }
    }

    /**
     * In bfloat16 each token's experts and weights are {@code Ernie4_5_MoeTopKRouter}'s, step by step: the float32
     * logits of the bfloat16 token and the float32 router, their softmax, the top two of the softmax plus the float32
     * correction bias, the unbiased scores divided by their sum or 0.4, rounded to bfloat16.
     */
    @Test
    void aBfloat16ModelChoosesAndWeightsAsTheRouterDoes() {
        Path dir = DerivedFixtures.of("ernie4_5-moe").orElseThrow();
        long[] ids = new long[40];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 37 + 11) % 96;
        }
        for (int layer : new int[] {1, 2}) {
            String b = "blocks." + layer + ".";
            String p = "model.layers." + layer + ".mlp.";
            try (TensorScope scope = TensorScope.open();
                 SafeTensorsFile checkpoint = SafeTensorsFile.open(dir.resolve("model.safetensors"));
                 HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
                 ModelOutput out = model.forward(Tensor.of(ids, 2, 20), CacheSpec.only(b + "ln2.hook_normalized",
                         b + "mlp.hook_expert_weights", b + "mlp.hook_expert_indices"))) {
                float[] x = out.cache().get(b + "ln2.hook_normalized").toFloatArray(); // bfloat16 values
                float[] router = checkpoint.tensor(p + "gate.weight").toFloatArray(); // [experts, d], float32
                float[] bias = checkpoint.tensor(p + "moe_statics.e_score_correction_bias").toFloatArray();
                int d = model.config().dModel();
                int experts = bias.length;
                long[] chosen = out.cache().get(b + "mlp.hook_expert_indices").toLongArray();
                float[] weights = out.cache().get(b + "mlp.hook_expert_weights").toFloatArray();
                for (int t = 0; t < ids.length; t++) {
                    double[] probs = new double[experts];
                    double total = 0;
                    for (int e = 0; e < experts; e++) {
                        double logit = 0;
                        for (int i = 0; i < d; i++) {
                            logit += (double) x[t * d + i] * router[e * d + i];
                        }
                        probs[e] = Math.exp(logit);
                        total += probs[e];
                    }
                    int first = -1;
                    int second = -1;
                    for (int e = 0; e < experts; e++) {
                        probs[e] /= total;
                        float choice = (float) probs[e] + bias[e]; // in float32, as the float32 bias adds
                        if (first < 0 || choice > (float) probs[first] + bias[first]) {
                            second = first;
                            first = e;
                        } else if (second < 0 || choice > (float) probs[second] + bias[second]) {
                            second = e;
                        }
                    }
                    assertEquals(first, chosen[2 * t], b + " token " + t);
                    assertEquals(second, chosen[2 * t + 1], b + " token " + t);
                    double sum = Math.max(probs[first] + probs[second], 0.4);
                    assertEquals(Bfloat16.round((float) (probs[first] / sum)), weights[2 * t], 0.0079,
                            b + " token " + t);
                    assertEquals(Bfloat16.round((float) (probs[second] / sum)), weights[2 * t + 1], 0.0079,
                            b + " token " + t);
                }
            }
        }
    }
}

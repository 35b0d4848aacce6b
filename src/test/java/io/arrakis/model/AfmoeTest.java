package io.arrakis.model;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * AFMoE's defaults, {@code AfmoeConfig}'s, its layer types and rotating layers, refusals, checkpoint names and the
 * output gate's weights and hook. Its forward pass is checked against {@link AfmoeReference} by {@link ModelParityTest}
 * (a dense first layer, a shared expert, a route scale) and here (muP, attention biases, every layer sparse).
 */
class AfmoeTest {

    @Test
    void defaultsAreAfmoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("afmoe");
        assertEquals("afmoe", c.family());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.RMS_NORM_WEIGHT_IN_FLOAT32, a.norm());
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertTrue(a.inputNorms() && a.outputNorms() && a.attentionOutputGate() && c.attentionOutputGate());
        assertFalse(a.tiedEmbeddings() || a.qkvBias() || a.outBias());
        assertEquals(1.0, a.embeddingScale(DType.FLOAT32), "mup_enabled is false");
        assertEquals(16, a.nKvHeads(), "num_key_value_heads null: the heads'");
        MixtureOfExperts moe = a.moe();
        assertEquals(MixtureOfExperts.Routing.SIGMOID_BIASED, moe.routing());
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 1.0), moe.grouped());
        assertTrue(moe.float32Weights());
        assertFalse(moe.float32Logits(), "the router's logits are the model's dtype, then widened");
        assertEquals(64, moe.experts());
        assertEquals(6, moe.topK());
        assertEquals(2 * 1408, moe.sharedWidth());
        assertEquals(6144, moe.denseWidth());
        for (int i = 0; i < 32; i++) { // every fourth layer full, and only sliding layers rotate; layer 0 dense
            boolean full = (i + 1) % 4 == 0;
            assertEquals(full ? LayerAttention.FULL : LayerAttention.SLIDING, a.layerAttention().get(i), "layer " + i);
            assertEquals(!full, c.rotates(i), "layer " + i);
            assertEquals(i > 0, moe.sparse(i), "layer " + i);
        }
        // 200192 x 2048 embedding and head; per layer q, gate 2048 x 2048 (16 x 128), k, v 2048 x 2048, o; the query
        // and key norms (128 each) and four norms; layer 0's dense MLP 3 x 2048 x 6144; the other 31 the router and
        // bias (64 x 2049), 64 experts and two shared of 3 x 2048 x 1408; the final norm
        long attention = 5L * 2048 * 2048 + 2 * 128 + 4 * 2048;
        long sparse = 64L * 2049 + 66L * 3 * 2048 * 1408;
        assertEquals(2L * 200192 * 2048 + 32 * attention + 3L * 2048 * 6144 + 31 * sparse + 2048,
                c.parameterCount());
    }

    @Test
    void layerTypesAndDenseLayersFollowTheirKeys() {
        HookedAutoConfig c = HookedAutoConfig.of("afmoe").with(Map.of("num_hidden_layers", 4,
                "global_attn_every_n_layers", 2, "num_dense_layers", 2));
        Architecture a = c.architecture();
        assertEquals(List.of(LayerAttention.SLIDING, LayerAttention.FULL, LayerAttention.SLIDING, LayerAttention.FULL),
                a.layerAttention());
        assertEquals(List.of(true, false, true, false), IntStream.range(0, 4).mapToObj(c::rotates).toList());
        assertEquals(List.of(false, false, true, true), a.moe().sparseLayers());
        HookedAutoConfig given = c.with("layer_types", List.of("full_attention", "full_attention", "sliding_attention",
                "sliding_attention"));
        assertEquals(List.of(false, false, true, true), IntStream.range(0, 4).mapToObj(given::rotates).toList());
        HookedAutoConfig mup = c.with("mup_enabled", true);
        assertEquals(Math.sqrt(2048), mup.architecture().embeddingScale(DType.BFLOAT16),
                "sqrt(hidden_size) as a Python float, not rounded to the model's dtype");
        assertFalse(c.with("num_shared_experts", 0).architecture().moe().hasSharedExpert());
    }

    @Test
    void settingsItsModelCannotRunAreRefused() {
        Map<String, Object> nulls = new HashMap<>();
        nulls.put("global_attn_every_n_layers", null);
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("afmoe").with(nulls)
                .architecture()).getMessage();
        assertTrue(m.contains("global_attn_every_n_layers"), m);
        Map<String, Object> noWindow = new HashMap<>();
        noWindow.put("sliding_window", null);
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("afmoe").with(noWindow)
                .architecture()).getMessage();
        assertTrue(m.contains("sliding_window"), m);
        for (Map.Entry<String, ?> bad : List.<Map.Entry<String, ?>>of(Map.entry("num_dense_layers", -1),
                Map.entry("num_shared_experts", -1), Map.entry("num_experts_per_tok", 65),
                Map.entry("partial_rotary_factor", 0.5))) {
            m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("afmoe")
                    .with(bad.getKey(), bad.getValue()).architecture(), bad.toString()).getMessage();
            assertTrue(m.contains(bad.getKey()), m);
        }
    }

    @Test
    void theCheckpointNamesTheGateTheRouterAndItsBias() {
        HookedAutoConfig c = TinyConfigs.of("afmoe").with(Map.of("num_hidden_layers", 2));
        Set<String> names = c.checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.self_attn.gate_proj.weight",
                "model.layers.0.post_attention_layernorm.weight", "model.layers.0.pre_mlp_layernorm.weight",
                "model.layers.0.post_mlp_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
                "model.layers.1.mlp.router.gate.weight", "model.layers.1.mlp.expert_bias",
                "model.layers.1.mlp.experts.0.up_proj.weight", "model.layers.1.mlp.shared_experts.down_proj.weight")),
                names.toString());
        assertTrue(names.stream().noneMatch(n -> n.startsWith("model.layers.0.mlp.experts")), names.toString());
    }

    @Test
    void hookGateIsTheSigmoidOfTheGateWeightsAndHookZItsProductWithTheAttention() {
        HookedAutoConfig c = TinyConfigs.of("afmoe").with(Map.of("num_hidden_layers", 1));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(c, 5, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {1, 2, 3, 4, 5}, 1, 5);
            ModelOutput out = model.forward(ids);
            Tensor x = out.cache().get("blocks.0.ln1.hook_normalized");
            Tensor gate = out.cache().get("blocks.0.attn.hook_gate");
            Tensor wg = model.W_G(0); // [head, d_model, d_head]
            Tensor expected = Tensor.einsum("bpm,hmd->bphd", x, wg).sigmoid();
            assertArrayEquals(expected.toFloatArray(), gate.toFloatArray(), 1e-6f);
            // hook_z is what o_proj reads: a hook that opens the gate fully leaves the attention's own output
            Tensor z = out.cache().get("blocks.0.attn.hook_z");
            ModelOutput open = model.runWithHooks(ids, CacheSpec.only("blocks.0.attn.hook_z"),
                    HookedAutoModel.HookSpec.at("blocks.0.attn.hook_gate",
                            (g, name) -> Tensor.ones(g.shape(), g.dtype(), g.device())));
            assertArrayEquals(z.toFloatArray(), open.cache().get("blocks.0.attn.hook_z").mul(gate).toFloatArray(),
                    1e-6f);
        }
        try (HookedAutoModel llama = HookedAutoModel.create(TinyConfigs.of("llama"), 5, DType.FLOAT32, Device.CPU)) {
            assertEquals(null, llama.W_G(0), "no output gate");
        }
    }

    /**
     * The composer recomputes a head with its gate: a composite of one head with itself is that head's term of the
     * attention output ({@code hook_z} times its W_O), and a weight swap within a layer gives the destination the
     * source's whole head, gate included, as a run that copies the source's {@code hook_z} there.
     */
    @Test
    void theComposerGatesAHeadAsTheForwardPassDoes() {
        Path dir = Fixtures.huggingFace("afmoe");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Fixtures.referenceInputIds(dir);
            AttentionComposer composer = new AttentionComposer(model);
            String zName = "blocks.1.attn.hook_z";
            Tensor z = model.forward(ids, CacheSpec.only(zName)).cache().get(zName);
            Tensor term = z.select(2, 2).matmul(model.W_O(1).select(0, 2));
            Tensor composed = composer.applyComposedHead(ids, composer.headComposition(new Head(1, 2),
                    new Head(1, 2), 1.0));
            assertTrue(term.allclose(composed, 1e-5, 1e-5), "a composite of head 1.2 with itself");
            Tensor swapped = composer.attentionPathPatching(ids, new Head(1, 0), new Head(1, 1));
            Tensor copied = model.runWithHooks(ids, HookedAutoModel.HookSpec.at(zName, (all, name) -> {
                Tensor source = all.narrow(2, 0, 1);
                return Tensor.cat(List.of(source, source, all.narrow(2, 2, all.size(2) - 2)), 2);
            }));
            assertTrue(copied.allclose(swapped, 1e-4, 1e-4), "head 1.0's weights and gate in head 1.1's place");
        }
    }

    /**
     * In bfloat16 transformers makes the router's logits in the model's dtype and widens them, adds the bias as held
     * in bfloat16 (AfMoE keeps it in float32 only in float16 models), and weights the experts in float32.
     */
    @Test
    void inBfloat16TheRouterLogitsAreTheModelsDtypeAndTheWeightsFloat32(@TempDir Path dir) throws Exception {
        AfmoeReference.write(dir, AfmoeReference.Kind.ROUTE_SCALED);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            Tensor logits = out.cache().get("blocks.1.mlp.hook_router_logits");
            assertEquals(DType.BFLOAT16, logits.dtype());
            Tensor chosenWeights = out.cache().get("blocks.1.mlp.hook_expert_weights");
            assertEquals(DType.FLOAT32, chosenWeights.dtype());
            float[] l = logits.toFloatArray();
            float[] bias = weights.tensor("model.layers.1.mlp.expert_bias").toFloatArray();
            long[] chosen = out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray();
            float[] weight = chosenWeights.toFloatArray();
            int experts = bias.length;
            for (int t = 0; t < chosen.length / 2; t++) {
                float[] score = new float[experts];
                int best = -1;
                int second = -1;
                for (int e = 0; e < experts; e++) {
                    score[e] = (float) (1 / (1 + Math.exp(-l[t * experts + e])));
                    float choice = score[e] + (float) DType.BFLOAT16.round(bias[e]);
                    if (best < 0 || choice > score[best] + (float) DType.BFLOAT16.round(bias[best])) {
                        second = best;
                        best = e;
                    } else if (second < 0 || choice > score[second] + (float) DType.BFLOAT16.round(bias[second])) {
                        second = e;
                    }
                }
                assertArrayEquals(new long[] {best, second}, new long[] {chosen[2 * t], chosen[2 * t + 1]},
                        "token " + t);
                float sum = score[best] + score[second];
                assertEquals(score[best] / sum * (float) AfmoeReference.ROUTE_SCALE, weight[2 * t], 1e-6, "token " + t);
                assertEquals(score[second] / sum * (float) AfmoeReference.ROUTE_SCALE, weight[2 * t + 1], 1e-6);
            }
        }
    }

    @Test
    void muPWithAttentionBiasesAndEverySparseLayerMatchesItsReference(@TempDir Path dir) throws Exception {
        AfmoeReference.write(dir, AfmoeReference.Kind.MUP_BIASED);
        Architecture a = HookedAutoConfig.fromJson(dir.resolve("config.json")).architecture();
        assertTrue(a.qkvBias() && a.outBias() && a.moe().sparse(0) && !a.moe().hasSharedExpert());
        ModelParityTest.assertParity(dir, "afmoe, muP, biases", 3 * 5 + 2);
    }
}

package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LFM2-MoE: {@code Lfm2MoeConfig}'s defaults, its dense and sparse layers, its routing, its refusals and the bfloat16
 * pass against transformers'. Every float32 hook of its Hugging Face fixture (the router's logits and the chosen
 * experts' weights included, the experts picked with drawn biases) is checked by {@link ModelParityTest}.
 */
class Lfm2MoeTest {
    private static final Path FIXTURE = Fixtures.huggingFace("lfm2-moe");

    @TempDir
    Path dir;

    @Test
    void defaultsAreLfm2MoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("lfm2_moe");
        assertEquals("lfm2-moe", c.family());
        Architecture a = c.architecture();
        assertEquals(List.of(2048, 32, 32, 8, 64, 1792, 65536), List.of(a.dModel(), a.nLayers(), a.nHeads(),
                a.nKvHeads(), a.dHead(), a.dMlp(), a.vocabSize()));
        MixtureOfExperts moe = a.moe();
        assertEquals(List.of(32, 4, 7168), List.of(moe.experts(), moe.topK(), moe.denseWidth()));
        assertEquals(MixtureOfExperts.Routing.SIGMOID_BIASED_IN_MODEL_DTYPE, moe.routing());
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 1.0), moe.grouped());
        assertEquals(IntStream.range(0, 32).mapToObj(i -> i >= 2).toList(), moe.sparseLayers(),
                "num_dense_layers 2");
        assertTrue(a.tiedEmbeddings());
        // layer_types null, as Lfm2MoeConfig leaves it: every layer attends
        assertEquals(Collections.nCopies(32, false), a.shortConvolution().layers());
    }

    @Test
    void theFixturesLayersAreReadAndUnimplementedRoutingRefused() throws Exception {
        HookedAutoConfig c = HookedAutoConfig.fromJson(FIXTURE.resolve("config.json"));
        assertEquals(List.of(Architecture.Mixer.SHORT_CONVOLUTION, Architecture.Mixer.SOFTMAX_ATTENTION,
                Architecture.Mixer.SHORT_CONVOLUTION, Architecture.Mixer.SOFTMAX_ATTENTION),
                IntStream.range(0, 4).mapToObj(c::mixer).toList());
        assertEquals(1.5, c.architecture().moe().grouped().routedScale());
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("use_expert_bias", false)).getMessage();
        assertTrue(m.contains("use_expert_bias") && m.contains("not implemented"), m);
        m = assertThrows(IllegalArgumentException.class, () -> c.with("num_experts_per_tok", 9)).getMessage();
        assertTrue(m.contains("num_experts_per_tok") && m.contains("num_experts = 8"), m);
        // LFM2's full_attn_idxs in a file without layer_types: Lfm2MoeConfig would not read it
        Files.writeString(dir.resolve("config.json"), Json.write(Map.of("model_type", "lfm2_moe", "num_hidden_layers",
                4, "full_attn_idxs", List.of(1, 3))));
        m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJson(dir.resolve("config.json")))
                .getMessage();
        assertTrue(m.contains("full_attn_idxs") && m.contains("layer_types"), m);
    }

    /**
     * In bfloat16 the router's sigmoids and the chosen weights are in bfloat16 and the biased choice in float32, as
     * transformers computes them: its logits lie on average at most a tenth as far from transformers' bfloat16 pass as
     * transformers' float32 pass does: a hundredth, where transformers' eager experts, which add a token's four
     * outputs one by one, lie a fifth as far (its default experts, as here, sum them at once).
     */
    @Test
    void theBfloat16PassIsTransformers() {
        double[] d = Fixtures.bfloat16Distances(FIXTURE, "logits");
        assertTrue(d[0] <= d[1] / 100, "mean distance " + d[0] + ", float32's " + d[1]);
    }

    /**
     * The routing weights written out from the router's logits and the checkpoint's expert biases: each token's four
     * experts are those of the largest sigmoid plus bias, best first, weighted by their sigmoids, divided by their sum
     * plus 1e-6 where {@code norm_topk_prob} says, times {@code routed_scaling_factor} (1.5).
     */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void theRoutingWeightsAreTheChosenSigmoidsNormalisedAndScaled(boolean normalised) throws Exception {
        Map<String, Object> config = new LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(FIXTURE.resolve("config.json"))))
                .forEach((k, v) -> config.put((String) k, v));
        config.put("norm_topk_prob", normalised);
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Files.copy(FIXTURE.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Tensor.of(new long[] {5, 17, 3, 60, 42, 8}, 1, 6))) {
            double[] bias = weights.tensor("model.layers.2.feed_forward.expert_bias").toDoubleArray();
            double[] logits = out.cache().get("blocks.2.mlp.hook_router_logits").toDoubleArray(); // [1, 6, 8]
            long[] experts = out.cache().get("blocks.2.mlp.hook_expert_indices").toLongArray(); // [1, 6, 4]
            double[] got = out.cache().get("blocks.2.mlp.hook_expert_weights").toDoubleArray();
            for (int t = 0; t < 6; t++) {
                final int token = t;
                Integer[] order = IntStream.range(0, 8).boxed().toArray(Integer[]::new);
                java.util.Arrays.sort(order, (a, b) -> Double.compare(sigmoid(logits[token * 8 + b]) + bias[b],
                        sigmoid(logits[token * 8 + a]) + bias[a]));
                double sum = 0;
                for (int j = 0; j < 4; j++) {
                    sum += sigmoid(logits[t * 8 + order[j]]);
                }
                for (int j = 0; j < 4; j++) {
                    assertEquals(order[j], (int) experts[t * 4 + j], "token " + t + ", choice " + j);
                    double w = sigmoid(logits[t * 8 + order[j]]) / (normalised ? sum + 1e-6 : 1) * 1.5;
                    assertEquals(w, got[t * 4 + j], 1e-6, "token " + t + ", choice " + j);
                }
            }
        }
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /**
     * The expert bias is added to the bfloat16 sigmoids in float32, as transformers' float32 buffer promotes them:
     * with a zero router every sigmoid is 0.5, and biases 0.1, 0.1 + 1e-5, ... that bfloat16 would round to one
     * number choose experts 3 and 2 only in float32 (rounded, the tie would pick 0 and 1).
     */
    @Test
    void theExpertBiasChoosesInFloat32InABfloat16Model() throws Exception {
        HookedAutoConfig config = TinyConfigs.of("lfm2-moe");
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 6, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            tensors.put("model.layers.1.feed_forward.gate.weight", Tensor.zeros(new long[] {4, 32}, DType.FLOAT32,
                    Device.CPU));
            tensors.put("model.layers.1.feed_forward.expert_bias",
                    Tensor.of(new float[] {0.1f, 0.10001f, 0.10002f, 0.10003f}, 4));
            Fixtures.writeCheckpoint(config, tensors, dir);
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
                 ModelOutput out = model.forward(Tensor.of(new long[] {3, 1, 4, 1, 5}, 1, 5))) {
                assertArrayEquals(new long[] {3, 2, 3, 2, 3, 2, 3, 2, 3, 2},
                        out.cache().get("blocks.1.mlp.hook_expert_indices").toLongArray());
            }
        }
    }

    /**
     * The experts fused as transformers 5 lays them out ({@code save_pretrained(save_original_format=False)}, by its
     * conversion of lfm2_moe's {@code experts.*.w1/w3} into {@code experts.gate_up_proj}, each expert's w1 rows then
     * its w3 rows, and {@code w2} into {@code experts.down_proj}) load as the per-expert tensors they were made from.
     */
    @Test
    void fusedExpertsLoadAsTheirExperts() throws Exception {
        Files.copy(FIXTURE.resolve("config.json"), dir.resolve("config.json"));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : weights.names()) {
                if (!name.contains(".feed_forward.experts.")) {
                    tensors.put(name, weights.tensor(name));
                }
            }
            for (int l = 1; l < 4; l++) {
                String experts = "model.layers." + l + ".feed_forward.experts.";
                List<Tensor> gateUp = new java.util.ArrayList<>();
                List<Tensor> down = new java.util.ArrayList<>();
                for (int e = 0; e < 8; e++) {
                    gateUp.add(Tensor.cat(List.of(weights.tensor(experts + e + ".w1.weight"),
                            weights.tensor(experts + e + ".w3.weight")), 0));
                    down.add(weights.tensor(experts + e + ".w2.weight"));
                }
                tensors.put(experts + "gate_up_proj", Tensor.stack(gateUp, 0));
                tensors.put(experts + "down_proj", Tensor.stack(down, 0));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertTrue(model.runWithHooks(reference.tensor("input_ids")).allclose(reference.tensor("logits"),
                        1e-4, 1e-4));
            }
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.stream.IntStream;

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
    void theFixturesLayersAreReadAndUnimplementedRoutingRefused() {
        HookedAutoConfig c = HookedAutoConfig.fromJson(FIXTURE.resolve("config.json"));
        assertEquals(List.of(Architecture.Mixer.SHORT_CONVOLUTION, Architecture.Mixer.SOFTMAX_ATTENTION,
                Architecture.Mixer.SHORT_CONVOLUTION, Architecture.Mixer.SOFTMAX_ATTENTION),
                IntStream.range(0, 4).mapToObj(c::mixer).toList());
        assertEquals(1.5, c.architecture().moe().grouped().routedScale());
        String m = assertThrows(IllegalArgumentException.class, () -> c.with("use_expert_bias", false)).getMessage();
        assertTrue(m.contains("use_expert_bias") && m.contains("not implemented"), m);
        m = assertThrows(IllegalArgumentException.class, () -> c.with("num_experts_per_tok", 5)).getMessage();
        assertTrue(m.contains("num_experts_per_tok") && m.contains("num_experts = 4"), m);
    }

    /**
     * In bfloat16 the router's sigmoids and the chosen weights are in bfloat16 and the biased choice in float32, as
     * transformers computes them: its logits lie on average at most a tenth as far from transformers' bfloat16 pass as
     * transformers' float32 pass does.
     */
    @Test
    void theBfloat16PassIsTransformers() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE, DType.BFLOAT16, Device.CPU)) {
            double[] expected = reference.tensor("bfloat16.logits").toDoubleArray();
            double[] float32 = reference.tensor("logits").toDoubleArray();
            Tensor ids = reference.tensor("input_ids");
            double[] logits = model.runWithHooks(ids).to(DType.FLOAT64).toDoubleArray();
            double ours = 0;
            double theirs = 0;
            for (int i = 0; i < expected.length; i++) {
                ours += Math.abs(logits[i] - expected[i]);
                theirs += Math.abs(float32[i] - expected[i]);
            }
            assertTrue(ours <= theirs / 10, "mean distance " + ours / expected.length + ", float32's "
                    + theirs / expected.length);
        }
    }
}

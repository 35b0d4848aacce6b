package io.arrakis.composer;

import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The composer on bfloat16 models computes a head as the forward pass does, rounding where it rounds. */
class ReducedPrecisionComposerTest {

    /**
     * A head swapped for itself changes nothing: the logits are the forward pass's, to the bit. Was: the head's
     * projection added its bias as a second op (rounding twice, the forward rounds once), and gpt-oss's sink softmax
     * skipped the forward's max subtraction; its experts then routed differently and logits moved by 0.6.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "gpt2", "stable-lm", "starcoder2", "gpt-oss", "llama", "olmo", "nanochat",
            "hunyuan-v1-dense", "hunyuan-v1-moe", "ernie4_5-moe", "phimoe", "mellum", "afmoe"})
    void aHeadSwappedForItselfGivesTheForwardPassesLogits(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU)) {
            Tensor ids = Fixtures.referenceInputIds(dir);
            AttentionComposer composer = new AttentionComposer(model);
            float[] plain = model.runWithHooks(ids).toFloatArray();
            for (Head h : new Head[] {Head.of(0, 0), Head.of(1, 1)}) {
                assertArrayEquals(plain, composer.attentionPathPatching(ids, h, h).toFloatArray(), family + " " + h);
            }
        }
    }

    /**
     * gemma's norm scales {@code 1 + w} are formed in float32, as its forward pass forms them, so the composition
     * scores of a bfloat16 model are those of the same weights in float32. Was: rounded to bfloat16, off by 0.004 in
     * the scales and 1e-4 in the scores.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "gemma3"})
    void gemmaNormScalesOfABfloat16ModelAreFormedInFloat32(String family) throws Exception {
        Path dir = java.nio.file.Files.createTempDirectory("bf16-" + family);
        Path fixture = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open()) {
            // the fixture's weights rounded to bfloat16, stored as float32: both loads below hold the same values
            java.util.Map<String, Tensor> rounded = new java.util.LinkedHashMap<>();
            try (SafeTensorsFile file = SafeTensorsFile.open(fixture.resolve("model.safetensors"))) {
                for (String name : file.names()) {
                    Tensor t = file.tensor(name);
                    rounded.put(name, t.dtype().isFloatingPoint() ? t.to(DType.BFLOAT16).to(DType.FLOAT32) : t);
                }
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), rounded, java.util.Map.of("format", "pt"));
            java.nio.file.Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
            try (HookedAutoModel exact = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU);
                 HookedAutoModel bf16 = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU)) {
                assertArrayEquals(exact.normWeights().toFloatArray(), bf16.normWeights().toFloatArray());
                assertArrayEquals(exact.attentionOutNormWeights().toFloatArray(),
                        bf16.attentionOutNormWeights().toFloatArray());
                for (CompositionScores.Mode mode : CompositionScores.Mode.values()) {
                    assertEquals(CompositionScores.pair(exact, Head.of(0, 0), Head.of(1, 1), mode),
                            CompositionScores.pair(bf16, Head.of(0, 0), Head.of(1, 1), mode), 1e-12, mode.toString());
                }
            }
        }
    }

    @Test
    void theArgmaxOfFloat64ScoresDoesNotRoundThemToFloat32() {
        try (Tensor scores = Tensor.of(new double[] {0.1, 0.10000000001}, 1, 2)) {
            assertEquals(Head.of(0, 1), HeadDetectors.argmax(scores));
        }
    }
}

package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Models loaded straight onto a GPU against the Hugging Face reference activations: float32 within 1e-3, bfloat16
 * within 5% of the logits' norm. Runs where a CUDA libtorch and a GPU are present; skipped elsewhere.
 */
@Tag("gpu")
class CudaModelTest {
    private static final Device GPU = Device.cuda(0);

    @BeforeEach
    void needsAGpu() {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
    }

    static List<String> families() {
        return HookedAutoConfig.supportedFamilies();
    }

    @ParameterizedTest
    @MethodSource("families")
    void float32OnTheGpuMatchesTheReference(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, GPU);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            int compared = 0;
            for (String name : reference.names()) {
                if (name.equals("input_ids")) {
                    continue;
                }
                Tensor actual = out.cache().get(name);
                assertEquals(GPU, actual.device(), name);
                Tensor expected = reference.tensor(name);
                assertTrue(actual.to(Device.CPU).allclose(expected, 1e-3, 1e-3), family + " " + name + " differs on the GPU");
                compared++;
            }
            assertTrue(compared >= (Fixtures.hasEveryHook(dir) ? 20 : 2 * model.config().nLayers() + 2),
                    compared + " compared");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama"})
    void bfloat16OnTheGpuStaysClose(String family) {
        Path dir = Fixtures.HF.resolve(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, GPU);
             ModelOutput out = model.forward(reference.tensor("input_ids"), CacheSpec.none())) {
            Tensor expected = reference.tensor("logits");
            Tensor actual = out.logits().to(DType.FLOAT32, Device.CPU);
            double relative = actual.sub(expected).norm().item() / expected.norm().item();
            assertTrue(relative < 0.05, family + ": bfloat16 logits are " + relative + " of the norm away");
        }
    }
}

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

    /** Caching every layer's pattern makes every layer take the explicit route. */
    private static CacheSpec patterns() {
        return CacheSpec.matching(name -> name.endsWith("attn.hook_pattern"));
    }

    @ParameterizedTest
    @MethodSource("families")
    void bothAttentionRoutesAgreeOnTheGpuInFloat32(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, GPU)) {
            Tensor ids = Fixtures.referenceInputIds(dir);
            Tensor fused = model.forward(ids, CacheSpec.none()).logits().to(Device.CPU);
            Tensor explicit = model.forward(ids, patterns()).logits().to(Device.CPU);
            double worst = fused.sub(explicit).abs().max().item();
            assertTrue(fused.allclose(explicit, 1e-5, 1e-5), family + ": the routes differ by up to " + worst);
        }
    }

    /**
     * bfloat16 keeps 8 significant bits (a relative step of 2^-8, 0.4%); the explicit route rounds the scores and the
     * pattern to bfloat16 where the fused kernels keep them in float32, so the routes' logits may part by a few such
     * steps over the layers: within 3% of the logits' norm of each other, and each within 5% of the float32 reference.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama"})
    void bothAttentionRoutesStayCloseOnTheGpuInBfloat16(String family) {
        Path dir = Fixtures.HF.resolve(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, GPU)) {
            Tensor ids = reference.tensor("input_ids");
            Tensor expected = reference.tensor("logits");
            Tensor fused = model.forward(ids, CacheSpec.none()).logits().to(DType.FLOAT32, Device.CPU);
            Tensor explicit = model.forward(ids, patterns()).logits().to(DType.FLOAT32, Device.CPU);
            double norm = expected.norm().item();
            assertTrue(fused.sub(explicit).norm().item() / norm < 0.03, family + ": the routes part by more than 3%");
            assertTrue(fused.sub(expected).norm().item() / norm < 0.05, family + ": the fused route is off the reference");
            assertTrue(explicit.sub(expected).norm().item() / norm < 0.05, family + ": the explicit route is off the reference");
        }
    }

    /**
     * A forward pass with host ids queues its work without waiting for the GPU: behind a long queue of unrelated work
     * it returns long before that work is done.
     */
    @org.junit.jupiter.api.Test
    void aForwardPassNeverWaitsForTheGpu() {
        Path dir = Fixtures.HF.resolve("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, GPU)) {
            Tensor ids = Fixtures.referenceInputIds(dir);
            model.forward(ids, CacheSpec.none()).close(); // warm: kernels, tables
            Tensor big = Tensor.ones(new long[] {8192, 8192}, DType.FLOAT32, GPU);
            GpuCheck.sync(big);
            long queued = System.nanoTime();
            Tensor busy = big;
            for (int i = 0; i < 20; i++) {
                busy = busy.matmul(big).mul(1e-4);
            }
            long start = System.nanoTime();
            ModelOutput out = model.forward(ids, CacheSpec.none());
            long forward = System.nanoTime() - start;
            GpuCheck.sync(out.logits());
            long all = System.nanoTime() - queued;
            assertTrue(forward < all / 4, "the forward pass took " + forward / 1e6 + " ms of the " + all / 1e6
                    + " ms the queued work took: it waited for the GPU");
        }
    }
}

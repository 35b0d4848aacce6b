package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint written by the test in the Hugging Face names and layout of each family (config.json +
 * model.safetensors), loaded back with fromPretrained, gives the model create() builds from the same random tensors.
 */
class CheckpointRoundTripTest {

    static List<String> families() {
        return HookedAutoConfig.supportedFamilies();
    }

    @ParameterizedTest
    @MethodSource("families")
    void aCheckpointInHuggingFaceNamesLoadsBackAsTheSameModel(String family, @TempDir Path dir) throws Exception {
        HookedAutoConfig config = TinyConfigs.of(family);
        try (TensorScope scope = TensorScope.open()) {
            Fixtures.writeRandomCheckpoint(config, 11, dir);
            Tensor ids = Tensor.of(new long[] {3, 1, 4, 1, 5, 9, 2, 6}, 1, 8);
            try (HookedAutoModel loaded = HookedAutoModel.fromPretrained(dir);
                 HookedAutoModel created = HookedAutoModel.create(config, 11, DType.FLOAT32, Device.CPU)) {
                Tensor a = loaded.runWithHooks(ids);
                Tensor b = created.runWithHooks(ids);
                assertTrue(a.allclose(b, 0, 0), family + ": the loaded checkpoint differs from the model it was written from");
                // W_O(0) is linear attention's or the convolution's out_proj; gemma4's layers' heads differ in width
                if (!config.attentionHeads(0) || config.architecture().layerShapes() != null) {
                    assertTrue(loaded.W_O(0).allclose(created.W_O(0), 0, 0)
                            && loaded.W_Q(1).allclose(created.W_Q(1), 0, 0));
                    return;
                }
                assertTrue(config.architecture().latentAttention() != null // which has no per-head W_Q
                        ? loaded.W_O().allclose(created.W_O(), 0, 0) : loaded.W_Q().allclose(created.W_Q(), 0, 0));
            }
        }
    }
}

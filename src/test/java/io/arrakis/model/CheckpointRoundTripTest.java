package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 11, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            Files.writeString(dir.resolve("config.json"), config.toJson());
            Tensor ids = Tensor.of(new long[] {3, 1, 4, 1, 5, 9, 2, 6}, 1, 8);
            try (HookedAutoModel loaded = HookedAutoModel.fromPretrained(dir);
                 HookedAutoModel created = HookedAutoModel.create(config, 11, DType.FLOAT32, Device.CPU)) {
                Tensor a = loaded.runWithHooks(ids);
                Tensor b = created.runWithHooks(ids);
                assertTrue(a.allclose(b, 0, 0), family + ": the loaded checkpoint differs from the model it was written from");
                assertTrue(loaded.W_Q().allclose(created.W_Q(), 0, 0));
            }
        }
    }
}

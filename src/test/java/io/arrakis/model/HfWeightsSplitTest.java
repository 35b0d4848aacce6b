package io.arrakis.model;

import io.arrakis.model.family.CheckpointTensor;
import io.arrakis.model.family.Slot;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A fused checkpoint tensor split into its slots, as the loader does it. */
class HfWeightsSplitTest {

    /**
     * Columns {@code [groups = 2][q = 3, k = 1]} of a {@code [2, 8]} tensor: q takes columns 0, 1, 2, 4, 5, 6 and k
     * columns 3 and 7. Was: the fused tensor and each part's intermediate copy stayed alive until the whole model was
     * loaded, about twice the fused weights' memory at the peak.
     */
    @Test
    void thePartsTakeTheirColumnsOfEveryGroupAndTheFusedTensorIsFreed() {
        CheckpointTensor fused = new CheckpointTensor("qk", new long[] {2, 8}, false, 2,
                List.of(new CheckpointTensor.Part(Slot.WQ, 3), new CheckpointTensor.Part(Slot.WK, 1)));
        try (TensorScope scope = TensorScope.open()) {
            Tensor whole = Tensor.arange(0, 16, 1, DType.FLOAT32, Device.CPU).view(2, 8);
            Map<Slot, Tensor> slots = HfWeights.split(fused, whole);
            assertTrue(whole.isClosed(), "the fused tensor is freed once split");
            assertFalse(slots.get(Slot.WQ).isClosed() || slots.get(Slot.WK).isClosed());
            assertArrayEquals(new float[] {0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14}, slots.get(Slot.WQ).toFloatArray());
            assertArrayEquals(new long[] {2, 6}, slots.get(Slot.WQ).shape());
            assertArrayEquals(new float[] {3, 7, 11, 15}, slots.get(Slot.WK).toFloatArray());
        }
    }
}

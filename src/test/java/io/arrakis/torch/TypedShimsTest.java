package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.lang.foreign.SymbolLookup;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which typed shim an op takes on which device; runs without a GPU. */
class TypedShimsTest {

    @Test
    void eachDeviceTakesItsOwnShim() {
        assertEquals(TypedShims.Path.CPU, TypedShims.of(Device.CPU));
        assertEquals(TypedShims.Path.CUDA, TypedShims.of(Device.cuda(0)));
        assertEquals(TypedShims.Path.CUDA, TypedShims.of(Device.parse("cuda:3")));
        assertEquals(TypedShims.Path.CPU, TypedShims.of(Device.CPU, Device.CPU));
        assertEquals(TypedShims.Path.CUDA, TypedShims.of(Device.cuda(1), Device.cuda(1)));
    }

    @Test
    void mixedDevicesTakeTheGenericPath() {
        // a 0-dim CPU tensor meeting a GPU tensor, either way round, and (never accepted by checkBinary) two GPUs
        assertEquals(TypedShims.Path.GENERIC, TypedShims.of(Device.CPU, Device.cuda(0)));
        assertEquals(TypedShims.Path.GENERIC, TypedShims.of(Device.cuda(0), Device.CPU));
        assertEquals(TypedShims.Path.GENERIC, TypedShims.of(Device.cuda(0), Device.cuda(1)));
    }

    @Test
    void cpuTensorsNeverReachACudaShim() {
        LibTorch.Info info = LibTorch.load();
        if (!info.cudaBuild()) {
            // why the choice matters: a CPU libtorch has no CUDA shims to call
            assertTrue(SymbolLookup.loaderLookup().find("aoti_torch_cuda_mul_Tensor").isEmpty());
        }
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = Tensor.of(new float[] {1, 2, 3}, 3);
            Tensor s = Tensor.scalar(2.0).to(DType.FLOAT32);
            assertArrayEquals(new float[] {2, 4, 6}, a.add(a).toFloatArray());
            assertArrayEquals(new float[] {1, 4, 9}, a.mul(a).toFloatArray());
            assertArrayEquals(new float[] {3, 4, 5}, a.add(2.0).toFloatArray());
            assertArrayEquals(new float[] {2, 4, 6}, a.mul(s).toFloatArray());
            assertArrayEquals(new float[] {1, 8, 27}, a.pow(3).toFloatArray());
            assertArrayEquals(new float[] {0.5f, 1, 1.5f}, a.mul(0.5).toFloatArray());
        }
    }
}

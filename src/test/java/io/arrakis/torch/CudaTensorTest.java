package io.arrakis.torch;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The tensor layer on a GPU, against the same computation on the CPU. Runs where a CUDA libtorch is loaded
 * ({@code ARRAKIS_LIBTORCH} pointing at a CUDA PyTorch's torch/lib) and a GPU answers; skipped elsewhere.
 */
@Tag("gpu")
class CudaTensorTest {
    private static final Device GPU = Device.cuda(0);

    @BeforeEach
    void needsAGpu() {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ", CUDA devices: "
                + LibTorch.cudaDeviceCount() + "); set ARRAKIS_LIBTORCH to a CUDA PyTorch's torch/lib on a GPU machine");
    }

    private static void assertSameOnGpu(Tensor cpu, Tensor gpu, double tolerance) {
        assertEquals(GPU, gpu.device());
        assertArrayEquals(cpu.shape(), gpu.shape());
        assertArrayEquals(cpu.toDoubleArray(), gpu.toDoubleArray(), tolerance);
    }

    @Test
    void createsMovesAndReadsBack() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor cpu = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            Tensor gpu = cpu.to(GPU);
            assertEquals("cuda:0", gpu.device().toString());
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, gpu.toFloatArray());
            assertEquals(21.0, gpu.sum().item(), 0);
            assertTrue(gpu.toString().contains("cuda:0"));
            assertArrayEquals(new float[] {0, 0}, Tensor.zeros(new long[] {2}, DType.FLOAT32, GPU).toFloatArray());
            assertArrayEquals(new double[] {7, 7}, Tensor.full(new long[] {2}, 7, DType.BFLOAT16, GPU).toDoubleArray());
            assertEquals(3.0, Tensor.eye(3, DType.FLOAT32, GPU).sum().item(), 0);
            assertArrayEquals(new long[] {0, 1, 2}, Tensor.arange(0, 3, 1, DType.INT64, GPU).toLongArray());
        }
    }

    @Test
    void sameSeedSameNumbersOnEveryDevice() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor cpu = Tensor.randn(new Generator(7), new long[] {64}, DType.FLOAT32, Device.CPU);
            Tensor gpu = Tensor.randn(new Generator(7), new long[] {64}, DType.FLOAT32, GPU);
            assertSameOnGpu(cpu, gpu, 0);
        }
    }

    @Test
    void opsAgreeWithTheCpu() {
        try (TensorScope scope = TensorScope.open()) {
            Generator g = new Generator(11);
            Tensor a = Tensor.randn(g, new long[] {4, 8, 16}, DType.FLOAT32, Device.CPU);
            Tensor b = Tensor.randn(g, new long[] {4, 16, 8}, DType.FLOAT32, Device.CPU);
            Tensor w = Tensor.randn(g, new long[] {16}, DType.FLOAT32, Device.CPU);
            Tensor ga = a.to(GPU);
            Tensor gb = b.to(GPU);
            Tensor gw = w.to(GPU);
            double tol = 1e-3;
            assertSameOnGpu(a.matmul(b), ga.matmul(gb), tol);
            assertSameOnGpu(a.bmm(b), ga.bmm(gb), tol);
            assertSameOnGpu(a.add(a), ga.add(ga), tol);
            assertSameOnGpu(a.sub(1.5), ga.sub(1.5), tol);
            assertSameOnGpu(a.mul(2.5), ga.mul(2.5), tol);
            assertSameOnGpu(a.div(3.0), ga.div(3.0), tol);
            assertSameOnGpu(a.pow(2), ga.pow(2), tol);
            assertSameOnGpu(a.clamp(-0.5, 0.7), ga.clamp(-0.5, 0.7), 0);
            assertSameOnGpu(a.clamp(null, 0.7), ga.clamp(null, 0.7), 0);
            assertSameOnGpu(a.roll(3, -1), ga.roll(3, -1), 0);
            Tensor hostIds = Tensor.of(new long[] {1, 0, 1}, 3); // host ids serve a table on the GPU
            assertSameOnGpu(a.reshape(4, 128).embedding(hostIds), ga.reshape(4, 128).embedding(hostIds), 0);
            assertSameOnGpu(a.softmax(-1), ga.softmax(-1), tol);
            assertSameOnGpu(a.gelu(true), ga.gelu(true), tol);
            assertSameOnGpu(a.layerNorm(w, w, 1e-5), ga.layerNorm(gw, gw, 1e-5), tol);
            assertSameOnGpu(a.rmsNorm(w, 1e-6), ga.rmsNorm(gw, 1e-6), tol);
            assertSameOnGpu(Tensor.einsum("bij,bjk->bik", a, b), Tensor.einsum("bij,bjk->bik", ga, gb), tol);
            Tensor q = a.unsqueeze(0);
            Tensor gq = ga.unsqueeze(0);
            assertSameOnGpu(Tensor.scaledDotProductAttention(q, q, q, null, true, null),
                    Tensor.scaledDotProductAttention(gq, gq, gq, null, true, null), tol);
            List<Tensor> top = a.topk(3, -1, true);
            List<Tensor> gtop = ga.topk(3, -1, true);
            assertSameOnGpu(top.get(0), gtop.get(0), tol);
            assertSameOnGpu(a.transpose(1, 2).contiguous(), ga.transpose(1, 2).contiguous(), 0);
            assertSameOnGpu(a.to(DType.BFLOAT16), ga.to(DType.BFLOAT16), 0);
        }
    }

    @Test
    void embeddingIndicesAreCheckedBeforeTheKernelRuns() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor table = Tensor.ones(new long[] {5, 3}, DType.FLOAT32, GPU);
            Tensor ids = Tensor.of(new long[] {1, 5}, 2).to(GPU);
            assertThrows(IndexOutOfBoundsException.class, () -> table.embedding(ids));
            assertEquals(6.0, table.sum().div(2.5).mul(1).item(), 1e-6); // the GPU still works
        }
    }

    @Test
    void mixingDevicesIsAClearError() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor cpu = Tensor.ones(2, 2);
            Tensor gpu = cpu.to(GPU);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cpu.matmul(gpu));
            assertTrue(e.getMessage().contains("cuda:0") && e.getMessage().contains("cpu"), e.getMessage());
            int count = LibTorch.cudaDeviceCount();
            IllegalStateException missing = assertThrows(IllegalStateException.class,
                    () -> Tensor.zeros(new long[] {1}, DType.FLOAT32, Device.cuda(count)));
            assertTrue(missing.getMessage().contains("only " + count), missing.getMessage());
        }
    }

    @Test
    void typedCudaShimsAndTheMixedDevicePathAgreeWithTheCpu() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = Tensor.randn(new Generator(5), new long[] {3, 7}, DType.FLOAT32, Device.CPU);
            Tensor ga = a.to(GPU);
            Tensor two = Tensor.scalar(2.0).to(DType.FLOAT32);          // a 0-dim CPU tensor: the generic path
            double tol = 1e-5;
            assertSameOnGpu(a.add(a), ga.add(ga), tol);                  // aoti_torch_cuda_add_Tensor
            assertSameOnGpu(a.mul(a), ga.mul(ga), tol);                  // aoti_torch_cuda_mul_Tensor
            assertSameOnGpu(a.add(0.25), ga.add(0.25), tol);             // aoti_torch_cuda_add_Scalar
            assertSameOnGpu(a.mul(-3.0), ga.mul(-3.0), tol);             // aoti_torch_cuda_mul_Scalar
            assertSameOnGpu(a.pow(3), ga.pow(3), 1e-4);                  // aoti_torch_cuda_pow_Tensor_Scalar
            assertSameOnGpu(a.mul(two), ga.mul(two), tol);
            assertSameOnGpu(a.add(two), ga.add(two), tol);
            assertSameOnGpu(a.add(a).to(DType.BFLOAT16), ga.to(DType.BFLOAT16).add(ga.to(DType.BFLOAT16)), 0.1);
        }
    }

    /** Was: integer sums stack their operands, and the stack refused a 0-d CPU operand beside a GPU one. */
    @Test
    void integerSumsTakeA0dCpuOperandAsPyTorchDoes() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor ids = Tensor.of(new long[] {3, 5, 7}, 3);
            Tensor gpuIds = ids.to(GPU);
            Tensor one = Tensor.of(new long[] {1}, 1).reshape(); // 0-d, on the CPU
            assertArrayEquals(new long[] {4, 6, 8}, gpuIds.add(one).to(Device.CPU).toLongArray());
            assertArrayEquals(new long[] {2, 4, 6}, gpuIds.sub(one).to(Device.CPU).toLongArray());
            assertArrayEquals(new long[] {4, 6, 8}, one.add(gpuIds).to(Device.CPU).toLongArray());
            assertEquals(GPU, one.add(gpuIds).device());
        }
    }
}

package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.MemorySegment;

/**
 * The device-specific typed shims ({@code aoti_torch_cpu_*}, {@code aoti_torch_cuda_*}) and which one an op takes.
 *
 * <p>This is the only place that names a {@code aoti_torch_cuda_*} function. The bindings resolve a symbol when its
 * function is first called, and a CPU libtorch has no CUDA shims, so {@link #of(Device)} must never answer
 * {@link Path#CUDA} there; it cannot, because no tensor lives on a GPU without a CUDA libtorch. Operands on different
 * devices (a 0-dim CPU tensor meeting a GPU tensor) take the device-generic path, as the device-specific kernels
 * expect their operands on their own device.
 */
final class TypedShims {

    /** How an elementwise op with a typed shim is called. */
    enum Path {
        /** {@code aoti_torch_cpu_*}. */
        CPU,
        /** {@code aoti_torch_cuda_*}. */
        CUDA,
        /** The device-generic route: {@code aoti_torch_aten_*} or the dispatcher (a 0-dim tensor for a Scalar). */
        GENERIC
    }

    private TypedShims() {
    }

    /** The path of a unary or tensor-scalar op on a tensor on this device. */
    static Path of(Device device) {
        return switch (device.type()) {
            case CPU -> Path.CPU;
            case CUDA -> Path.CUDA;
        };
    }

    /** The path of a binary op: the device's shim when both operands are on that same device, else generic. */
    static Path of(Device a, Device b) {
        return a.equals(b) ? of(a) : Path.GENERIC;
    }

    static int addTensor(Path path, MemorySegment self, MemorySegment other, double alpha, MemorySegment out) {
        return switch (path) {
            case CPU -> arrakis_torch_h.aoti_torch_cpu_add_Tensor(self, other, alpha, out);
            case CUDA -> arrakis_torch_h.aoti_torch_cuda_add_Tensor(self, other, alpha, out);
            // a + alpha*b as a - (-alpha)*b: the device-generic shim takes alpha as a double
            case GENERIC -> arrakis_torch_h.aoti_torch_aten_subtract_Tensor(self, other, -alpha, out);
        };
    }

    static int mulTensor(Path path, MemorySegment self, MemorySegment other, MemorySegment out) {
        return switch (path) {
            case CPU -> arrakis_torch_h.aoti_torch_cpu_mul_Tensor(self, other, out);
            case CUDA -> arrakis_torch_h.aoti_torch_cuda_mul_Tensor(self, other, out);
            case GENERIC -> throw generic("mul.Tensor");
        };
    }

    static int addScalar(Path path, MemorySegment self, double other, double alpha, MemorySegment out) {
        return switch (path) {
            case CPU -> arrakis_torch_h.aoti_torch_cpu_add_Scalar(self, other, alpha, out);
            case CUDA -> arrakis_torch_h.aoti_torch_cuda_add_Scalar(self, other, alpha, out);
            case GENERIC -> throw generic("add.Scalar");
        };
    }

    static int mulScalar(Path path, MemorySegment self, double other, MemorySegment out) {
        return switch (path) {
            case CPU -> arrakis_torch_h.aoti_torch_cpu_mul_Scalar(self, other, out);
            case CUDA -> arrakis_torch_h.aoti_torch_cuda_mul_Scalar(self, other, out);
            case GENERIC -> throw generic("mul.Scalar");
        };
    }

    static int powTensorScalar(Path path, MemorySegment self, double exponent, MemorySegment out) {
        return switch (path) {
            case CPU -> arrakis_torch_h.aoti_torch_cpu_pow_Tensor_Scalar(self, exponent, out);
            case CUDA -> arrakis_torch_h.aoti_torch_cuda_pow_Tensor_Scalar(self, exponent, out);
            case GENERIC -> throw generic("pow.Tensor_Scalar");
        };
    }

    private static IllegalStateException generic(String op) {
        return new IllegalStateException(op + " has no device-generic shim; the caller goes through the dispatcher");
    }
}

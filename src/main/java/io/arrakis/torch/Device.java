package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.util.Locale;

/**
 * Where a tensor lives: {@code cpu} or {@code cuda:N}.
 *
 * @param type the device type
 * @param index the device index (0 for the CPU)
 */
public record Device(Type type, int index) {

    /** Device types this library drives. */
    public enum Type { CPU, CUDA }

    /** The CPU. */
    public static final Device CPU = new Device(Type.CPU, 0);

    public Device {
        if (type == null) {
            throw new IllegalArgumentException("device type must not be null");
        }
        if (index < 0) {
            throw new IllegalArgumentException("device index must be >= 0, got " + index);
        }
        if (type == Type.CPU && index != 0) {
            throw new IllegalArgumentException("the CPU has no device index (got cpu:" + index + ")");
        }
    }

    /** The GPU with this index. */
    public static Device cuda(int index) {
        return new Device(Type.CUDA, index);
    }

    /** Parses "cpu", "cuda", "cuda:1" (case-insensitive). */
    public static Device parse(String text) {
        String s = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) {
            return CPU;
        }
        if (s.equals("cuda")) {
            return cuda(0);
        }
        if (s.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(s.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the message below
            }
        }
        throw new IllegalArgumentException("unknown device '" + text + "'; expected cpu, cuda or cuda:N");
    }

    /** Whether this is the CPU. */
    public boolean isCpu() {
        return type == Type.CPU;
    }

    /** libtorch's device-type code. */
    int typeCode() {
        LibTorch.load();
        return type == Type.CPU ? arrakis_torch_h.aoti_torch_device_type_cpu() : arrakis_torch_h.aoti_torch_device_type_cuda();
    }

    static Device fromCodes(int typeCode, int index) {
        if (typeCode == arrakis_torch_h.aoti_torch_device_type_cpu()) {
            return CPU;
        }
        if (typeCode == arrakis_torch_h.aoti_torch_device_type_cuda()) {
            return cuda(Math.max(index, 0));
        }
        throw new TorchException("libtorch returned a tensor on device type " + typeCode + ", which arrakis-jvm does not drive");
    }

    /**
     * Checks that tensors can be made here.
     *
     * @throws IllegalStateException naming what is missing: a CUDA libtorch, a GPU, or this GPU index
     */
    void checkAvailable() {
        if (isCpu()) {
            return;
        }
        if (!Cuda.cudaBuild()) {
            throw new IllegalStateException("cannot use " + this + ": the loaded libtorch (" + LibTorch.load()
                    + ") is a CPU build. Set " + LibTorch.ENV_FOLDER + " to a CUDA PyTorch's torch/lib.");
        }
        int count = Cuda.deviceCount();
        if (count == 0) {
            String why = Cuda.whyNoDevices();
            throw new IllegalStateException("cannot use " + this + ": the CUDA libtorch is loaded but no GPU answers"
                    + (why.isEmpty() ? " (no driver, or CUDA_VISIBLE_DEVICES hides them)" : ": " + why));
        }
        if (index >= count) {
            throw new IllegalStateException("cannot use " + this + ": only " + count + " GPU(s), cuda:0 to cuda:" + (count - 1));
        }
    }

    @Override
    public String toString() {
        return isCpu() ? "cpu" : "cuda:" + index;
    }
}

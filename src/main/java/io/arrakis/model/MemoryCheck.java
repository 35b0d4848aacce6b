package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.HostMemory;

import java.util.Locale;

/**
 * Refuses, before anything is allocated, a model whose weights cannot fit in the memory this process may use, and a
 * pass whose logits cannot.
 */
final class MemoryCheck {
    private static final double GIB = 1024.0 * 1024 * 1024;

    private MemoryCheck() {
    }

    /**
     * Refuses a CPU pass over {@code tokens} ids whose logits alone, the least a pass holds, exceed the memory
     * available: libtorch's failed allocation would otherwise print its C++ stack trace.
     */
    static void requireLogits(HookedAutoConfig config, long tokens, DType dtype, Device device) {
        if (!device.isCpu()) {
            return;
        }
        double needed = (double) tokens * config.vocabSize() * dtype.byteSize();
        if (needed < HostMemory.usableBytes() / 8.0) {
            return; // far from the limit: spare every pass reading the kernel's figures
        }
        long available = HostMemory.availableBytes();
        if (available >= 0 && needed > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%,d input ids need %.1f GiB for their"
                    + " logits alone (%,d per id in %s), but only %.1f GiB of memory is available to this process; run"
                    + " fewer sequences or positions at once", tokens, needed / GIB, config.vocabSize(), dtype,
                    available / GIB));
        }
    }

    static void require(HookedAutoConfig config, DType dtype, Device device) {
        if (!device.isCpu()) {
            return; // GPU memory is checked by the allocator; a CUDA out-of-memory is a clean TorchException
        }
        long needed = config.weightBytes(dtype.byteSize());
        long available = HostMemory.availableBytes();
        if (available >= 0 && needed > available) {
            String smaller = dtype.byteSize() > 2
                    ? String.format(Locale.ROOT, "load it in bfloat16 (%.1f GiB), or ", config.weightBytes(2) / GIB) : "";
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s with %,d parameters needs %.1f GiB for its weights in %s, but only %.1f GiB of memory is available"
                            + " to this process; %suse fewer layers (e.g. with(\"%s\", %d))",
                    config.family(), config.parameterCount(), needed / GIB, dtype, available / GIB, smaller,
                    config.hfKey("num_hidden_layers"), Math.max(1, config.nLayers() / 4)));
        }
    }
}

package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** Refuses, before anything is allocated, a model whose weights cannot fit in the memory this process may use. */
final class MemoryCheck {
    private static final double GIB = 1024.0 * 1024 * 1024;

    private MemoryCheck() {
    }

    static void require(HookedAutoConfig config, DType dtype, Device device) {
        if (!device.isCpu()) {
            return; // GPU memory is checked by the allocator; a CUDA out-of-memory is a clean TorchException
        }
        long needed = config.weightBytes(dtype.byteSize());
        long available = availableBytes();
        if (available > 0 && needed > available) {
            String smaller = dtype.byteSize() > 2
                    ? String.format(Locale.ROOT, "load it in bfloat16 (%.1f GiB), or ", config.weightBytes(2) / GIB) : "";
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s with %,d parameters needs %.1f GiB for its weights in %s, but only %.1f GiB of memory is available"
                            + " to this process; %suse fewer layers (e.g. with(\"%s\", %d))",
                    config.family(), config.parameterCount(), needed / GIB, dtype, available / GIB, smaller,
                    config.hfKey("num_hidden_layers"), Math.max(1, config.nLayers() / 4)));
        }
    }

    /** MemAvailable, capped by the cgroup's limit when there is one; 0 when unknown. */
    static long availableBytes() {
        long available = meminfo("MemAvailable:");
        long limit = cgroupLimit();
        if (limit > 0) {
            available = available > 0 ? Math.min(available, limit) : limit;
        }
        return available;
    }

    private static long meminfo(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: no check
        }
        return 0;
    }

    private static long cgroupLimit() {
        try {
            Path max = Path.of("/sys/fs/cgroup/memory.max");
            Path current = Path.of("/sys/fs/cgroup/memory.current");
            if (Files.isReadable(max)) {
                String text = Files.readString(max).trim();
                if (!text.equals("max")) {
                    long used = Files.isReadable(current) ? Long.parseLong(Files.readString(current).trim()) : 0;
                    return Long.parseLong(text) - used;
                }
            }
        } catch (IOException | RuntimeException e) {
            // no cgroup v2 limit readable
        }
        return 0;
    }
}

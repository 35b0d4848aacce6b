package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** What the CUDA runtime behind a CUDA libtorch reports; a CPU build has no GPU. */
final class Cuda {
    private static volatile int deviceCount = -1;
    private static boolean cudaBuild;

    private Cuda() {
    }

    static void initialise(boolean isCudaBuild) {
        cudaBuild = isCudaBuild;
    }

    static boolean cudaBuild() {
        LibTorch.load();
        return cudaBuild;
    }

    static int deviceCount() {
        LibTorch.load();
        int count = deviceCount;
        if (count < 0) {
            count = 0;
            if (cudaBuild) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
                    if (arrakis_torch_h.cudaGetDeviceCount(out) == 0) {
                        count = out.get(ValueLayout.JAVA_INT, 0);
                    }
                }
            }
            deviceCount = count;
        }
        return count;
    }
}

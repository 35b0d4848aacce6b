package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** What the CUDA runtime behind a CUDA libtorch reports; a CPU build has no GPU. */
final class Cuda {
    private static volatile int deviceCount = -1;
    private static volatile String noDevices = "";
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
                    int error = arrakis_torch_h.cudaGetDeviceCount(out);
                    if (error == 0) {
                        count = out.get(ValueLayout.JAVA_INT, 0);
                    } else {
                        noDevices = CudaRuntime.errorString(error) + " (CUDA error " + error + ")";
                    }
                }
            }
            deviceCount = count;
        }
        return count;
    }

    /** Why the CUDA runtime reported no device, in its words; empty where it reported a count. */
    static String whyNoDevices() {
        deviceCount();
        return noDevices;
    }
}

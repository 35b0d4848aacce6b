package io.arrakis.torch;

/** Loads libtorch in a fresh JVM and prints what happened, for LibTorchTest. */
public final class LoadProbe {
    private LoadProbe() {
    }

    /**
     * Threads that the JVM did not name (libtorch's OpenMP workers and OpenBLAS's keep the process name "java"), after
     * ops that use every thread they are allowed.
     */
    private static long nativeThreadsAfterWork() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = Tensor.randn(new Generator(0), new long[] {512, 512}, DType.FLOAT32, Device.CPU);
            for (int i = 0; i < 5; i++) {
                a.matmul(a).add(a).tanh();
            }
        }
        try (var tasks = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/task"))) {
            return tasks.filter(t -> {
                try {
                    return java.nio.file.Files.readString(t.resolve("comm")).strip().equals("java");
                } catch (java.io.IOException e) {
                    return false; // the thread ended meanwhile
                }
            }).count();
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    public static void main(String[] args) {
        try {
            LibTorch.Info info = LibTorch.load();
            try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3); Tensor s = t.sum()) {
                System.out.println("LOADED " + info + " sum=" + s.item() + " native-threads=" + nativeThreadsAfterWork());
            }
        } catch (LibTorchException e) {
            System.out.println("FAILED " + e.getMessage());
            if (args.length > 0 && args[0].equals("--retry-bundled")) {
                System.clearProperty(LibTorch.PROPERTY_FOLDER);
                try {
                    System.out.println("RETRY LOADED " + LibTorch.load());
                } catch (LibTorchException again) {
                    System.out.println("RETRY FAILED " + again.getMessage());
                }
            }
        }
    }
}

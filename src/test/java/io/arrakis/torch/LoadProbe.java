package io.arrakis.torch;

/** Loads libtorch in a fresh JVM and prints what happened, for LibTorchTest. */
public final class LoadProbe {
    private LoadProbe() {
    }

    public static void main(String[] args) {
        try {
            LibTorch.Info info = LibTorch.load();
            try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3); Tensor s = t.sum()) {
                System.out.println("LOADED " + info + " sum=" + s.item());
            }
        } catch (LibTorchException e) {
            System.out.println("FAILED " + e.getMessage());
        }
    }
}

package io.arrakis.cli;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/** The {@code scripts/arrakis} command line. */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        String command = args.length == 0 ? "help" : args[0];
        switch (command) {
            case "info" -> System.out.println(LibTorch.load() + "; CUDA devices: " + LibTorch.cudaDeviceCount());
            case "demo" -> demo();
            default -> {
                System.out.println("usage: scripts/arrakis <command>\n"
                        + "  info   which libtorch is loaded, and whether CUDA is available\n"
                        + "  demo   a short tour: zero-copy tensors and one causal attention head, composed with another");
                if (!command.equals("help")) {
                    System.exit(2);
                }
            }
        }
    }

    /** One attention head on a repeated random sequence, and how strongly a second head reads what it writes. */
    private static void demo() {
        System.out.println(LibTorch.load());
        Generator g = new Generator(42);
        int dModel = 64;
        int dHead = 16;
        int seq = 12;
        try (TensorScope scope = TensorScope.open(); Arena arena = Arena.ofConfined()) {
            // Token embeddings written by Java into off-heap memory, then used by libtorch without a copy.
            MemorySegment embeddings = arena.allocate(ValueLayout.JAVA_FLOAT, (long) seq * dModel);
            for (long i = 0; i < seq * (long) dModel; i++) {
                embeddings.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) g.nextGaussian());
            }
            Tensor x = Tensor.fromSegment(embeddings, DType.FLOAT32, seq, dModel);
            System.out.printf("residual stream %s, data at 0x%x = the Java segment at 0x%x%n", x, x.dataAddress(),
                    embeddings.address());

            double init = 1 / Math.sqrt(dModel);
            Tensor wq = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wk = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wv = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wo = Tensor.randn(g, new long[] {dHead, dModel}, DType.FLOAT32, Device.CPU).mul(init);

            Tensor q = x.matmul(wq);
            Tensor k = x.matmul(wk);
            Tensor scores = q.matmul(k.transpose(0, 1)).div(Math.sqrt(dHead));
            Tensor future = Tensor.ones(new long[] {seq, seq}, DType.BOOL, Device.CPU).triu(1);
            Tensor pattern = scores.maskedFill(future, Double.NEGATIVE_INFINITY).softmax(-1);
            Tensor z = pattern.matmul(x.matmul(wv));
            Tensor out = z.matmul(wo);
            System.out.println("attention pattern row 3: " + Arrays.toString(
                    Arrays.copyOf(pattern.select(0, 3).toFloatArray(), 4)) + " (causal: the rest is 0)");
            System.out.println("head output " + out);

            // Q-composition of this head into a second one: |W_OV · W_QK'|_F / (|W_OV|_F |W_QK'|_F).
            Tensor wq2 = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wk2 = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wov = wv.matmul(wo);
            Tensor wqk2 = wq2.matmul(wk2.transpose(0, 1));
            double score = wov.matmul(wqk2).norm().item() / (wov.norm().item() * wqk2.norm().item());
            System.out.printf("Q-composition score of this head into a second random head: %.4f%n", score);
        }
    }
}

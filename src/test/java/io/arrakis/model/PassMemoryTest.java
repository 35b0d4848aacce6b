package io.arrakis.model;

import io.arrakis.testing.ChildJvm;
import io.arrakis.testing.ResidentMemory;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A pass without a cache holds one block's intermediates at a time, as an eager Hugging Face pass does, not every
 * block's until it ends: its peak memory grows with depth by the residual stream alone. In a JVM of its own, whose
 * peak resident set (VmHWM) no other test moves.
 */
class PassMemoryTest {
    private static final long MB = ResidentMemory.MB;

    @Test
    void aPassPeaksAtOneBlocksIntermediatesWhateverItsDepth() {
        String out = ChildJvm.of(Peaks.class).run();
        Matcher m = Pattern.compile("peak rise: 2 layers (\\d+), 12 layers (\\d+)").matcher(out);
        assertTrue(m.find(), out);
        long shallow = Long.parseLong(m.group(1));
        long deep = Long.parseLong(m.group(2));
        // a block makes about 60 MB here ([4096, 256] float32 is 4 MB: norms, Q/K/V, attention, MLP, residual sums),
        // and hands 4 MB on; when every block's work was held to the end, ten more layers added some 550 MB
        assertTrue(deep - shallow < 10 * 30 * MB, "ten more layers raised the peak by " + (deep - shallow) / MB
                + " MB, more than half of each block's work (2 layers: " + shallow / MB + " MB, 12: " + deep / MB
                + " MB):\n" + out);
    }

    /** Prints {@code peak rise: 2 layers <bytes>, 12 layers <bytes>}: VmHWM over one float32 pass, no cache. */
    public static final class Peaks {
        public static void main(String[] args) {
            LibTorch.load();
            long[] rises = new long[2];
            int[] depths = {2, 12};
            for (int d = 0; d < depths.length; d++) {
                HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_layer", depths[d], "n_embd", 256,
                        "n_head", 4, "vocab_size", 1000, "n_positions", 1024));
                try (TensorScope scope = TensorScope.open();
                     HookedAutoModel model = HookedAutoModel.create(config, 1, DType.FLOAT32, Device.CPU)) {
                    Tensor ids = Tensor.randint(new io.arrakis.torch.Generator(3), 0, 1000, new long[] {4, 1024},
                            Device.CPU);
                    // warm-up on a small input (the JIT, libtorch's first calls): memory a large pass freed would
                    // stay with the allocator, and the measured pass would reuse it unseen
                    model.forward(ids.narrow(1, 0, 8), CacheSpec.none()).close();
                    ResidentMemory.resetPeak();
                    long before = ResidentMemory.rss();
                    model.forward(ids, CacheSpec.none()).close();
                    rises[d] = ResidentMemory.peak() - before;
                }
            }
            System.out.println("peak rise: 2 layers " + rises[0] + ", 12 layers " + rises[1]);
        }
    }
}

package io.arrakis.composer;

import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.testing.ChildJvm;
import io.arrakis.testing.ResidentMemory;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.LibTorch;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * All-pairs composition scores hold the sender and receiver factors of every head, and the weights of as many layers
 * as their block size allows while they are made: not every layer's weights converted, repeated and scaled at once.
 * In a JVM of its own, where glibc hands every large block back as it is freed, so that the peak of the resident set
 * is what was live.
 */
class CompositionMemoryTest {
    @Test
    void scoresPeakAtTheirFactorsNotAtCopiesOfEveryLayersWeights() {
        String out = ChildJvm.of(Peak.class)
                .property(LibTorch.PROPERTY_MALLOC, "default")
                .environment("MALLOC_MMAP_THRESHOLD_", "131072")
                .run();
        Matcher m = Pattern.compile("factors (\\d+), peak rise (\\d+)").matcher(out);
        assertTrue(m.find(), out);
        long factors = Long.parseLong(m.group(1));
        long rise = Long.parseLong(m.group(2));
        // the factors, one layer's weights and a block of the product; when every layer's W_Q and W_K (float32, key
        // heads repeated) were made before the factors, the rise was 4.3 times the factors
        assertTrue(rise < 2.5 * factors, "the scores raised the resident set by " + rise / ResidentMemory.MB
                + " MB for " + factors / ResidentMemory.MB + " MB of factors:\n" + out);
    }

    /** Prints {@code factors <bytes>, peak rise <bytes>} for the Q-composition scores of a bfloat16 llama. */
    public static final class Peak {
        public static void main(String[] args) {
            LibTorch.load();
            HookedAutoConfig config = HookedAutoConfig.of("llama").with(Map.of("num_hidden_layers", 4,
                    "hidden_size", 2048, "intermediate_size", 64, "num_attention_heads", 32, "num_key_value_heads", 8,
                    "vocab_size", 64));
            try (HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU)) {
                // a layer's weights are 4 · 32 · 64 · 2048 = 2^24 elements: one at a time, and a [2048, 2048] block
                CompositionScores.Options options = CompositionScores.Options.builder().maxBlockElements(1 << 22).build();
                CompositionScores.compute(model, CompositionScores.Mode.Q, options).close();
                ResidentMemory.resetPeak();
                long before = ResidentMemory.rss();
                CompositionScores.compute(model, CompositionScores.Mode.Q, options).close();
                long factors = 2L * config.nLayers() * config.nHeads() * config.dHead() * config.dModel() * 4;
                System.out.println("factors " + factors + ", peak rise " + (ResidentMemory.peak() - before));
            }
        }
    }
}

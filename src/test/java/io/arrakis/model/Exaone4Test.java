package io.arrakis.model;

import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EXAONE 4's configuration: which layers slide and which rotate, with and without a window, and what
 * Exaone4Config fails on. Its forward pass is checked against {@link Exaone4Reference} by {@link ModelParityTest}.
 */
class Exaone4Test {

    @Test
    void withAWindowTheSlidingLayersRotateAndTheFullOnesDoNot() {
        HookedAutoConfig defaults = HookedAutoConfig.of("exaone4");
        assertEquals(4096, defaults.slidingWindow().orElseThrow());
        for (int layer = 0; layer < 32; layer++) {
            boolean full = (layer + 1) % 4 == 0;
            assertEquals(!full, defaults.isSlidingWindowLayer(layer), "layer " + layer);
            assertEquals(!full, defaults.rotates(layer), "layer " + layer);
        }
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("exaone4"))) {
            assertTrue(model.hookNames().contains("blocks.0.attn.hook_rot_q"));
            assertFalse(model.hookNames().contains("blocks.3.attn.hook_rot_q"), "a full layer has no rotation");
            assertTrue(model.hookNames().contains("blocks.3.attn.hook_q_normed"));
            assertFalse(model.hookNames().stream().anyMatch(n -> n.contains(".ln1.") || n.contains(".ln2.")),
                    "norms after the sublayers only");
        }
    }

    /** EXAONE-4.0-1.2B's form: no window, every layer full and rotating. */
    @Test
    void withoutAWindowEveryLayerIsFullAndRotates() {
        HookedAutoConfig global = HookedAutoConfig.of("exaone4").with(Map.of("num_hidden_layers", 4,
                "layer_types", Collections.nCopies(4, "full_attention"))).with("sliding_window", null);
        for (int layer = 0; layer < 4; layer++) {
            assertFalse(global.isSlidingWindowLayer(layer));
            assertTrue(global.rotates(layer), "layer " + layer);
        }
    }

    @Test
    void refusals() {
        assertRefused(() -> HookedAutoConfig.of("exaone4").with("sliding_window", null), "layer_types",
                "must be given when sliding_window is null");
        assertRefused(() -> HookedAutoConfig.of("exaone4").with("sliding_window_pattern", "LLLG"),
                "sliding_window_pattern", "must be a positive integer where layer_types is not given");
        HookedAutoConfig lettered = HookedAutoConfig.of("exaone4").with(Map.of("num_hidden_layers", 4,
                "sliding_window_pattern", "LLLG", "layer_types", List.of("sliding_attention", "sliding_attention",
                        "sliding_attention", "full_attention")));
        assertTrue(lettered.isSlidingWindowLayer(0) && !lettered.isSlidingWindowLayer(3), "layer_types decide");
        assertRefused(() -> HookedAutoConfig.of("exaone4").with(Map.of("num_hidden_layers", 2, "layer_types",
                List.of("sliding_attention", "full_attention"))).with("sliding_window", null), "layer_types",
                "no window for them");
    }

    private static void assertRefused(Supplier<HookedAutoConfig> config, String key, String says) {
        String m = assertThrows(IllegalArgumentException.class, config::get).getMessage();
        assertTrue(m.contains(key) && m.contains(says), m);
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Rope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CWM's defaults, {@code CwmConfig}'s (CWM-32B's): the layer pattern, the window and the rotary embedding it fills in,
 * and its refusal. Its forward pass is checked on the llama3 fixture as CWM (a sliding layer, Llama 3.1's scaling) by
 * {@link ModelParityTest} and every family-generic test.
 */
class CwmTest {

    @Test
    void defaultsAreCwm32bs() {
        HookedAutoConfig c = HookedAutoConfig.of("cwm");
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.RMS_NORM, a.norm());
        assertEquals(1e-5, c.normEps());
        assertFalse(a.qkvBias() || a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        assertTrue(a.gatedMlp());
        assertEquals(48, c.nHeads());
        assertEquals(8, c.nKvHeads());
        assertEquals(128, c.dHead());
        assertEquals(131072, c.maxPositions());
        for (int layer = 0; layer < 64; layer++) { // full at 0, 4, 8, ...; sliding in 8,192 positions between
            assertEquals(layer % 4 == 0 ? 0 : 8192, a.attentionWindow(layer), "layer " + layer);
        }
        Rope rope = a.rope(0);
        assertEquals(1_000_000.0, rope.theta());
        assertEquals(new Rope.Llama3(16.0, 1.0, 4.0, 8192), rope.scaling());
        assertEquals(rope, a.rope(1), "one rotary embedding for both kinds of layer");
        // untied 128256 x 6144 embedding and head; per layer q and o 6144 x 6144, k and v 6144 x 1024, gate, up and
        // down 6144 x 21504, two norms; the final norm
        assertEquals(2L * 128256 * 6144 + 64L * (2L * 6144 * 6144 + 2L * 6144 * 1024 + 3L * 6144 * 21504 + 2 * 6144)
                + 6144, c.parameterCount());
    }

    @Test
    void aRopeThetaKeyLeavesTheFilledInRotaryEmbeddingAsCwmConfigDoes() {
        // CwmConfig fills rope_parameters in with its base; transformers then sets rope_theta only where it is missing
        assertEquals(1_000_000.0,
                HookedAutoConfig.of("cwm").with("rope_theta", 10000.0).architecture().rope(0).theta());
        Rope given = HookedAutoConfig.of("cwm").with("rope_parameters", Map.of("rope_type", "default",
                "rope_theta", 5000.0)).architecture().rope(0);
        assertEquals(new Rope.Unscaled(), given.scaling());
        assertEquals(5000.0, given.theta());
        assertEquals(new Rope.Llama3(16.0, 1.0, 4.0, 8192),
                HookedAutoConfig.of("cwm").with("rope_scaling", Map.of()).architecture().rope(0).scaling(),
                "an empty rope_scaling leaves CwmConfig's");
    }

    @Test
    void layerTypesChooseTheSlidingLayers() {
        HookedAutoConfig tiny = TinyConfigs.of("cwm").with("layer_types", List.of("sliding_attention",
                "full_attention")).with("sliding_window", 3);
        assertEquals(3, tiny.architecture().attentionWindow(0));
        assertEquals(0, tiny.architecture().attentionWindow(1));
        assertEquals(List.of(LayerAttention.SLIDING, LayerAttention.FULL), tiny.architecture().layerAttention());
    }

    @Test
    void slidingLayersWithoutAWindowAreRefused() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("cwm").with("sliding_window", null).architecture()).getMessage();
        assertTrue(m.startsWith("sliding_window = null"), m);
        assertEquals(0, TinyConfigs.of("cwm").with(Map.of("layer_types", List.of("full_attention", "full_attention")))
                .with("sliding_window", null).architecture().attentionWindow(1), "no sliding layer needs none");
    }
}

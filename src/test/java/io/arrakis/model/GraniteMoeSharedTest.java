package io.arrakis.model;

import io.arrakis.model.family.MixtureOfExperts;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Granite MoE Shared's defaults (no shared MLP: Granite MoE), its shared MLP's layout and hooks, and its refusal. Its
 * forward pass is checked on the granite fixture made a mixture with a shared MLP (see {@link DerivedFixtures}) by
 * {@link ModelParityTest} and every family-generic test.
 */
class GraniteMoeSharedTest {

    @Test
    void withoutASharedMlpItIsGraniteMoe() {
        HookedAutoConfig shared = HookedAutoConfig.of("granitemoeshared");
        assertEquals(0, shared.architecture().moe().sharedWidth());
        assertEquals(HookedAutoConfig.of("granitemoe").parameterCount(), shared.parameterCount());
    }

    @Test
    void theSharedMlpIsStoredFusedAndAddedUngated() {
        HookedAutoConfig tiny = TinyConfigs.of("granitemoeshared");
        MixtureOfExperts moe = tiny.architecture().moe();
        assertEquals(40, moe.sharedWidth());
        assertFalse(moe.sharedGated());
        assertArrayEquals(new long[] {80, 32},
                tiny.checkpoint().tensors().get("model.layers.1.shared_mlp.input_linear.weight").shape());
        assertArrayEquals(new long[] {32, 40},
                tiny.checkpoint().tensors().get("model.layers.1.shared_mlp.output_linear.weight").shape());
        Set<String> hooks = HookedAutoModel.hookNamesOf(tiny);
        assertTrue(hooks.contains("blocks.0.mlp.shared_expert.hook_post"));
        assertFalse(hooks.contains("blocks.0.mlp.hook_shared_expert_gate"));
        String m = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("shared_intermediate_size", -1).architecture()).getMessage();
        assertTrue(m.startsWith("shared_intermediate_size = -1"), m);
    }
}

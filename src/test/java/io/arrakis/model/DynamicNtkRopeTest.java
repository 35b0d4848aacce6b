package io.arrakis.model;

import io.arrakis.model.family.Rope;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code "dynamic"} rotary scaling (dynamic NTK) as {@code _compute_dynamic_ntk_parameters} and
 * {@code dynamic_frequency_update} of transformers 5.17 compute it for a fresh model: unscaled up to
 * {@code max_position_embeddings}, the longest pass a model takes, and beyond it the unscaled frequencies of the base
 * {@code theta · (factor · n / max - (factor - 1))^(dim / (dim - 2))} for a rotation over {@code n} positions.
 */
class DynamicNtkRopeTest {
    private static final int MAX = 16;

    private static HookedAutoConfig llama(Map<String, Object> rope) {
        return TinyConfigs.of("llama").with(Map.of("max_position_embeddings", MAX, "rope_scaling", rope));
    }

    @Test
    void aPassWithinTheContextIsUnscaled() {
        HookedAutoConfig dynamic = llama(Map.of("type", "dynamic", "factor", 2.0));
        assertEquals(new Rope.DynamicNtk(2.0, MAX), dynamic.architecture().rope().scaling());
        HookedAutoConfig plain = llama(Map.of("type", "default"));
        long[] ids = {3, 9, 27, 17, 5, 40, 2, 11, 8, 30, 12, 6, 1, 19, 22, 4};
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel a = HookedAutoModel.create(dynamic, 5, DType.FLOAT32, Device.CPU);
             HookedAutoModel b = HookedAutoModel.create(plain, 5, DType.FLOAT32, Device.CPU);
             ModelOutput x = a.forward(Tensor.of(ids, 1, MAX), CacheSpec.only("blocks.0.attn.hook_rot_q"));
             ModelOutput y = b.forward(Tensor.of(ids, 1, MAX), CacheSpec.only("blocks.0.attn.hook_rot_q"))) {
            assertArrayEquals(y.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    x.cache().get("blocks.0.attn.hook_rot_q").toFloatArray());
        }
        assertArrayEquals(plain.architecture().rope().inverseFrequencies(),
                dynamic.architecture().rope().inverseFrequencies(MAX));
    }

    @Test
    void beyondTheContextTheBaseGrowsWithTheLength() {
        Rope rope = llama(Map.of("type", "dynamic", "factor", 3.0)).architecture().rope();
        int dim = rope.dim();
        for (int n : new int[] {MAX + 1, 3 * MAX}) {
            double base = 10000.0 * Math.pow(3.0 * n / MAX - 2.0, (double) dim / (dim - 2));
            float[] inverse = rope.inverseFrequencies(n);
            for (int i = 0; i < dim / 2; i++) {
                double expected = 1 / Math.pow(base, 2.0 * i / dim);
                assertEquals(expected, inverse[i], 4 * Math.ulp((float) expected), n + " positions: frequency " + i);
            }
            assertTrue(inverse[1] < rope.inverseFrequencies(MAX)[1], "a longer pass turns more slowly");
        }
        String m = assertThrows(IllegalArgumentException.class, () -> llama(Map.of("type", "dynamic"))
                .architecture()).getMessage();
        assertTrue(m.contains("factor") && m.contains("requires"), m);
    }
}

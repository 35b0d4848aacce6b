package io.arrakis.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ExpertRoutesTest {

    /**
     * Three tokens, two choices each, four experts: token 0 chose 2 then 0, token 1 chose 1 then 2, token 2 chose 2
     * then 1; expert 3 serves nobody.
     */
    @Test
    void eachExpertServesItsTokensInTokenOrder() {
        ExpertRoutes r = ExpertRoutes.of(new long[] {2, 0, 1, 2, 2, 1}, 2, 4, "hook");
        assertArrayEquals(new long[] {0}, r.tokens()[0]);
        assertArrayEquals(new long[] {1, 2}, r.tokens()[1]);
        assertArrayEquals(new long[] {0, 1, 2}, r.tokens()[2]);
        assertArrayEquals(new long[0], r.tokens()[3]);
        // slot = token * 2 + choice
        assertArrayEquals(new long[] {1}, r.slots()[0]);
        assertArrayEquals(new long[] {2, 5}, r.slots()[1]);
        assertArrayEquals(new long[] {0, 3, 4}, r.slots()[2]);
        // concatenated outputs: rows 0: e0/t0, 1: e1/t1, 2: e1/t2, 3: e2/t0, 4: e2/t1, 5: e2/t2;
        // each token's experts in expert order: t0 (0, 2), t1 (1, 2), t2 (1, 2)
        assertArrayEquals(new long[] {0, 3, 1, 4, 2, 5}, r.order());
    }

    @Test
    void aTokenMayChooseAnExpertTwiceWhenAHookSaysSo() {
        ExpertRoutes r = ExpertRoutes.of(new long[] {1, 1, 0, 1}, 2, 2, "hook");
        assertArrayEquals(new long[] {1}, r.tokens()[0]);
        assertArrayEquals(new long[] {0, 0, 1}, r.tokens()[1]);
        assertArrayEquals(new long[] {0, 1, 3}, r.slots()[1]);
        assertArrayEquals(new long[] {1, 2, 0, 3}, r.order());
    }

    @Test
    void anExpertOutsideTheLayerIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ExpertRoutes.of(new long[] {0, 4}, 2, 4, "blocks.0.mlp.hook_expert_indices"));
        assertTrue(e.getMessage().contains("blocks.0.mlp.hook_expert_indices holds expert 4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ExpertRoutes.of(new long[] {-1, 0}, 2, 4, "hook"));
    }
}

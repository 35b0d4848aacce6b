package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Shape arithmetic against hand-derived cases (NumPy's and ATen's rules), without libtorch. */
class ShapesTest {
    @Test
    void elementCountsRefuseNegativeSizesAndOverflow() {
        assertEquals(24, Shapes.numel(new long[] {2, 3, 4}, "op"));
        assertEquals(1, Shapes.numel(new long[0], "op"));
        assertEquals(0, Shapes.numel(new long[] {5, 0, 7}, "op"));
        assertThrows(IllegalArgumentException.class, () -> Shapes.numel(new long[] {2, -1}, "op"));
        assertThrows(IllegalArgumentException.class, () -> Shapes.numel(new long[] {1L << 32, 1L << 32}, "op"));
    }

    @Test
    void contiguousStridesAreRowMajor() {
        assertArrayEquals(new long[] {12, 4, 1}, Shapes.contiguousStrides(new long[] {2, 3, 4}));
        assertArrayEquals(new long[] {3, 3, 1}, Shapes.contiguousStrides(new long[] {2, 0, 3})); // a 0 size counts as 1
    }

    @Test
    void broadcastingFollowsNumPy() {
        assertArrayEquals(new long[] {8, 7, 6, 5}, Shapes.broadcast(new long[] {8, 1, 6, 1}, new long[] {7, 1, 5}));
        assertArrayEquals(new long[] {3, 4}, Shapes.broadcast(new long[0], new long[] {3, 4}));
        assertNull(Shapes.broadcast(new long[] {2, 3}, new long[] {4, 3}));
    }

    @Test
    void minusOneTakesWhatIsLeft() {
        assertArrayEquals(new long[] {2, 12}, Shapes.inferSize(new long[] {2, -1}, 24));
        assertArrayEquals(new long[] {0, 0}, Shapes.inferSize(new long[] {0, -1}, 0));
    }

    @Test
    void viewsFollowAtensStrideRules() {
        long[] shape = {2, 3, 4};
        long[] strides = {12, 4, 1};
        assertArrayEquals(new long[] {4, 1}, Shapes.viewStrides(shape, strides, new long[] {6, 4}));
        assertArrayEquals(new long[] {12, 4, 2, 1}, Shapes.viewStrides(shape, strides, new long[] {2, 3, 2, 2}));
        // the transpose of the last two dims: only splits and merges within a contiguous run are views
        long[] transposed = {2, 4, 3};
        long[] tStrides = {12, 1, 4};
        assertNull(Shapes.viewStrides(transposed, tStrides, new long[] {2, 12}));
        assertArrayEquals(new long[] {12, 1, 4, 4}, Shapes.viewStrides(transposed, tStrides, new long[] {2, 4, 3, 1}));
        // a narrowed last dim ([2, 6] of a [2, 9] tensor): its rows split, the rows do not merge
        assertArrayEquals(new long[] {9, 3, 1}, Shapes.viewStrides(new long[] {2, 6}, new long[] {9, 1}, new long[] {2, 2, 3}));
        assertNull(Shapes.viewStrides(new long[] {2, 6}, new long[] {9, 1}, new long[] {12}));
        // a 0-d tensor's views have strides 1; one without elements is laid out anew unless its shape stays
        assertArrayEquals(new long[] {1, 1}, Shapes.viewStrides(new long[0], new long[0], new long[] {1, 1}));
        assertArrayEquals(new long[] {1, 7}, Shapes.viewStrides(new long[] {0, 5}, new long[] {1, 7}, new long[] {0, 5}));
        assertArrayEquals(new long[] {1, 1, 1}, Shapes.viewStrides(new long[] {0, 5}, new long[] {1, 7}, new long[] {5, 0, 1}));
    }

    @Test
    void dimsCountFromTheEndAndAreChecked() {
        assertEquals(2, Shapes.normDim(-1, 3, "op"));
        assertEquals(0, Shapes.normDim(-3, 3, "op"));
        assertEquals(0, Shapes.normDim(-1, 0, "op")); // a 0-d tensor takes 0 and -1
        assertThrows(IllegalArgumentException.class, () -> Shapes.normDim(3, 3, "op"));
        assertThrows(IllegalArgumentException.class, () -> Shapes.normDim(-4, 3, "op"));
    }
}

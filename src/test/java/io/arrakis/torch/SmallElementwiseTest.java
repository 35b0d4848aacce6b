package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BinaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Java path for tiny elementwise ops must be indistinguishable from libtorch's kernels: every result is compared,
 * bit for bit, with what libtorch's own CPU kernel returns for the same operands (called through the raw bindings).
 */
class SmallElementwiseTest {
    private static final Op MUL = Op.of("aten::mul", "Tensor");
    private static final Op DIV = Op.of("aten::div", "Tensor");

    private static final float[] FLOAT_SPECIALS = {0f, -0f, 1f, -1f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL,
        Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 3e-39f, 1e38f, 0.1f};
    private static final double[] DOUBLE_SPECIALS = {0d, -0d, 1d, -1d, Double.MIN_VALUE, -Double.MIN_VALUE,
        Double.MIN_NORMAL, Double.MAX_VALUE, -Double.MAX_VALUE, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY,
        Double.NaN, 1e-310, 1e308, 0.1};
    private static final long[][] SHAPES = {{}, {1}, {4}, {2, 2}, {3, 1, 5}, {8, 16}, {128}, {0}, {2, 0, 3}, {1, 1, 1, 1, 1, 7}};

    @Test
    void everyOpAndDtypeMatchesLibtorchsKernelBitForBit() {
        Random random = new Random(20261127);
        for (SmallElementwise.Op op : SmallElementwise.Op.values()) {
            for (long[] shape : SHAPES) {
                int n = (int) numel(shape);
                try (TensorScope scope = TensorScope.open()) {
                    Tensor a = Tensor.of(floats(random, n), shape);
                    Tensor b = Tensor.of(floats(random, n), shape);
                    assertTrue(SmallElementwise.applies(a.meta(), b.meta()), () -> Arrays.toString(shape));
                    assertSameAsKernel(op, a, b);
                    Tensor c = Tensor.of(doubles(random, n), shape);
                    Tensor d = Tensor.of(doubles(random, n), shape);
                    assertTrue(SmallElementwise.applies(c.meta(), d.meta()));
                    assertSameAsKernel(op, c, d);
                }
            }
        }
    }

    @Test
    void everyPairOfSpecialValues() {
        int k = FLOAT_SPECIALS.length;
        for (int i = 0; i < k; i++) {
            float[] x = new float[k];
            double[] u = new double[k];
            Arrays.fill(x, FLOAT_SPECIALS[i]);
            Arrays.fill(u, DOUBLE_SPECIALS[i]);
            try (TensorScope scope = TensorScope.open()) {
                Tensor a = Tensor.of(x, k); // each special against every special
                Tensor b = Tensor.of(FLOAT_SPECIALS, k);
                Tensor c = Tensor.of(u, k);
                Tensor d = Tensor.of(DOUBLE_SPECIALS, k);
                assertTrue(SmallElementwise.applies(a.meta(), b.meta()));
                for (SmallElementwise.Op op : SmallElementwise.Op.values()) {
                    assertSameAsKernel(op, a, b);
                    assertSameAsKernel(op, c, d);
                }
            }
        }
    }

    @Test
    void valuesMatchJavaArithmeticToo() {
        // an independent check of the wiring (which op is which, operand order): IEEE arithmetic in plain Java
        float[] x = {6f, -1.5f, 1e-40f, 7f};
        float[] y = {3f, 0.25f, 3f, -0f};
        List<BinaryOperator<Float>> java = List.of(Float::sum, (p, q) -> p - q, (p, q) -> p * q, (p, q) -> p / q);
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = Tensor.of(x, 2, 2);
            Tensor b = Tensor.of(y, 2, 2);
            List<float[]> got = List.of(a.add(b).toFloatArray(), a.sub(b).toFloatArray(), a.mul(b).toFloatArray(),
                    a.div(b).toFloatArray());
            for (int o = 0; o < 4; o++) {
                for (int i = 0; i < 4; i++) {
                    assertEquals(Float.floatToRawIntBits(java.get(o).apply(x[i], y[i])), Float.floatToRawIntBits(got.get(o)[i]),
                            "op " + o + " element " + i);
                }
            }
        }
    }

    @Test
    void contiguousViewsWithAnOffsetReadFromTheirOffset() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor big = Tensor.of(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 4, 2);
            Tensor rows = big.narrow(0, 1, 2); // rows 1 and 2: row-major, storage offset 2
            Tensor other = Tensor.of(new float[] {10, 20, 30, 40}, 2, 2);
            assertTrue(SmallElementwise.applies(rows.meta(), other.meta()));
            assertArrayEquals(new float[] {30, 80, 150, 240}, rows.mul(other).toFloatArray());
            assertSameAsKernel(SmallElementwise.Op.SUB, other, rows);
        }
    }

    @Test
    void resultIsAFreshTensorOfItsOwn() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor a = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
            Tensor b = Tensor.of(new float[] {5, 6, 7, 8}, 2, 2);
            Tensor c = a.add(b);
            assertNotEquals(dataPtr(a), dataPtr(c));
            assertNotEquals(dataPtr(b), dataPtr(c));
            c.asSegment().set(ValueLayout.JAVA_FLOAT, 0, -1f);
            assertArrayEquals(new float[] {1, 2, 3, 4}, a.toFloatArray());
            assertArrayEquals(new float[] {5, 6, 7, 8}, b.toFloatArray());
            assertTrue(c.isContiguous());
            assertEquals(DType.FLOAT32, c.dtype());
            assertEquals(Device.CPU, c.device());
        }
    }

    @Test
    void everythingElseTakesLibtorchsKernels() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor f = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2);
            List<Tensor> others = new ArrayList<>(List.of(
                    f.to(DType.FLOAT64),                              // dtypes differ: promotion
                    f.to(DType.BFLOAT16), f.to(DType.FLOAT16),        // rounding to a narrow type
                    f.to(DType.INT64),
                    Tensor.of(new float[] {1, 2}, 2),                 // broadcasting
                    f.transpose(0, 1),                                // not row-major
                    Tensor.of(new float[] {1, 2, 3, 4}, 2, 2, 1).select(2, 0)));
            assertFalse(SmallElementwise.applies(f.meta(), others.get(0).meta()));
            assertFalse(SmallElementwise.applies(others.get(1).meta(), others.get(1).meta()));
            assertFalse(SmallElementwise.applies(others.get(2).meta(), others.get(2).meta()));
            assertFalse(SmallElementwise.applies(others.get(3).meta(), others.get(3).meta()));
            assertFalse(SmallElementwise.applies(f.meta(), others.get(4).meta()));
            assertFalse(SmallElementwise.applies(f.meta(), others.get(5).meta()));
            // a select of the last dim of [2, 2, 1] is [2, 2] with strides [2, 1]: row-major, so it applies
            assertTrue(SmallElementwise.applies(f.meta(), others.get(6).meta()));
            Tensor tooBig = Tensor.zeros(SmallElementwise.MAX_ELEMENTS + 1);
            assertFalse(SmallElementwise.applies(tooBig.meta(), tooBig.meta()));
            long[] manyDims = new long[Native.STACK_SLOTS / 2 + 1]; // more dims than the result's sizes+strides slots
            Arrays.fill(manyDims, 1);
            Tensor deep = Tensor.zeros(manyDims);
            assertFalse(SmallElementwise.applies(deep.meta(), deep.meta()));
            assertArrayEquals(new float[] {2}, Tensor.ones(manyDims).add(Tensor.ones(manyDims)).toFloatArray());
            Tensor justRight = Tensor.zeros(SmallElementwise.MAX_ELEMENTS);
            assertTrue(SmallElementwise.applies(justRight.meta(), justRight.meta()));
            // and the kernels still answer those: transposed operand
            assertArrayEquals(new float[] {1, 6, 6, 16}, f.mul(others.get(5)).toFloatArray());
        }
    }

    @Test
    void closedOperandsAreRefusedBeforeAnyNativeCall() {
        Tensor a = Tensor.of(new float[] {1, 2}, 2);
        Tensor b = Tensor.of(new float[] {3, 4}, 2);
        b.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.mul(b));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> b.add(a));
        a.close();
    }

    @Test
    void tensorsOverAClosedArenaAreRefusedBeforeJavaReadsTheirMemory() {
        // the small path reads operand memory from Java: a freed segment must be caught first, not read
        Tensor a;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1, 2, 3, 4);
            a = Tensor.fromSegment(m, DType.FLOAT32, 2, 2);
            try (Tensor b = Tensor.of(new float[] {1, 1, 1, 1}, 2, 2); Tensor c = a.mul(b)) {
                assertArrayEquals(new float[] {1, 2, 3, 4}, c.toFloatArray());
            }
        }
        try (Tensor b = Tensor.of(new float[] {1, 1, 1, 1}, 2, 2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.mul(b));
            assertTrue(e.getMessage().contains("closed arena"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> b.add(a));
        }
        a.close();
    }

    private static void assertSameAsKernel(SmallElementwise.Op op, Tensor a, Tensor b) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor ours = switch (op) {
                case ADD -> a.add(b);
                case SUB -> a.sub(b);
                case MUL -> a.mul(b);
                case DIV -> a.div(b);
            };
            Tensor theirs = kernel(op, a, b);
            String what = op + " " + a.describe();
            assertArrayEquals(theirs.shape(), ours.shape(), what);
            assertArrayEquals(theirs.strides(), ours.strides(), what);
            assertEquals(theirs.dtype(), ours.dtype(), what);
            if (ours.dtype() == DType.FLOAT32) {
                float[] x = ours.toFloatArray();
                float[] y = theirs.toFloatArray();
                for (int i = 0; i < x.length; i++) {
                    assertEquals(canonical(y[i]), canonical(x[i]), what + " element " + i);
                }
            } else {
                double[] x = ours.toDoubleArray();
                double[] y = theirs.toDoubleArray();
                for (int i = 0; i < x.length; i++) {
                    assertEquals(canonical(y[i]), canonical(x[i]), what + " element " + i);
                }
            }
        }
    }

    /** libtorch's own CPU kernel for the op, bypassing the Java API's choice of path. */
    private static Tensor kernel(SmallElementwise.Op op, Tensor a, Tensor b) {
        MemorySegment out = Native.out();
        return switch (op) {
            case ADD -> {
                try (Tensor.Held x = a.hold(); Tensor.Held y = b.hold()) {
                    Native.check(arrakis_torch_h.aoti_torch_cpu_add_Tensor(a.handle(), b.handle(), 1.0, out), "add");
                }
                yield Tensor.adopt(out.get(ValueLayout.JAVA_LONG, 0));
            }
            case SUB -> {
                try (Tensor.Held x = a.hold(); Tensor.Held y = b.hold()) {
                    Native.check(arrakis_torch_h.aoti_torch_aten_subtract_Tensor(a.handle(), b.handle(), 1.0, out), "sub");
                }
                yield Tensor.adopt(out.get(ValueLayout.JAVA_LONG, 0));
            }
            case MUL -> Call.begin(MUL, a, b).tensor(a).tensor(b).tensorResult();
            case DIV -> Call.begin(DIV, a, b).tensor(a).tensor(b).tensorResult();
        };
    }

    /** Raw bits, with every NaN the same: NaN payloads are the one thing allowed to differ. */
    private static int canonical(float f) {
        return Float.isNaN(f) ? 0x7fc00000 : Float.floatToRawIntBits(f);
    }

    private static long canonical(double d) {
        return Double.isNaN(d) ? 0x7ff8000000000000L : Double.doubleToRawLongBits(d);
    }

    private static long dataPtr(Tensor t) {
        return t.dataAddress();
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        return n;
    }

    /** Normal values over many binades, with a special value now and then. */
    private static float[] floats(Random random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = random.nextInt(8) == 0 ? FLOAT_SPECIALS[random.nextInt(FLOAT_SPECIALS.length)]
                    : (float) (random.nextGaussian() * Math.pow(2, random.nextInt(60) - 30));
        }
        return x;
    }

    private static double[] doubles(Random random, int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = random.nextInt(8) == 0 ? DOUBLE_SPECIALS[random.nextInt(DOUBLE_SPECIALS.length)]
                    : random.nextGaussian() * Math.pow(2, random.nextInt(400) - 200);
        }
        return x;
    }
}

package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Inputs at the edges of what a tensor can be (near int64's range, more elements than a Java array holds, 0-d, huge
 * shifts and shapes), each answered as PyTorch answers it or refused in words, never wrapped around in Java or handed
 * to libtorch to fail on.
 */
class EdgeCasesTest {
    private static <T extends Throwable> String message(Class<T> type, org.junit.jupiter.api.function.Executable call) {
        return assertThrows(type, call).getMessage();
    }

    /** Was: int64 values past 2^63 wrapped to negative ones; PyTorch refuses bounds int64 cannot hold. */
    @Test
    void integerArangeCountsExactlyNearTheEndOfInt64AndRefusesWhatItCannotHold() {
        long start = 1L << 62;
        try (Tensor t = Tensor.arange(start, start + 4096, 1024, DType.INT64, Device.CPU)) {
            assertArrayEquals(new long[] {start, start + 1024, start + 2048, start + 3072}, t.toLongArray());
        }
        String m = message(IllegalArgumentException.class,
                () -> Tensor.arange(9223372036854773760.0, 9223372036854777856.0, 1024, DType.INT64, Device.CPU));
        assertTrue(m.contains("int64"), m);
        m = message(IllegalArgumentException.class, () -> Tensor.arange(0, 3, 1, DType.BOOL, Device.CPU));
        assertTrue(m.contains("bool"), m);
    }

    /**
     * Was: the count of an int64 range was taken in float64, which rounded a span past 2^53 and dropped the last
     * value. PyTorch counts int64 ranges in integers: {@code torch.arange(-1, 2**62, 2**60)} has five values.
     */
    @Test
    void integerArangeCountsSpansPastTwoToThe53InIntegers() {
        long p60 = 1L << 60;
        try (Tensor t = Tensor.arange(-1, 0x1p62, 0x1p60, DType.INT64, Device.CPU)) {
            assertArrayEquals(new long[] {-1, p60 - 1, 2 * p60 - 1, 3 * p60 - 1, 4 * p60 - 1}, t.toLongArray());
        }
        try (Tensor t = Tensor.arange(0x1p62, -1, -0x1p60, DType.INT64, Device.CPU)) {
            assertArrayEquals(new long[] {4 * p60, 3 * p60, 2 * p60, p60, 0}, t.toLongArray());
        }
        try (Tensor t = Tensor.arange(-1, 0x1p62, 0x1p40, DType.INT64, Device.CPU)) {
            assertEquals((1 << 22) + 1, t.numel());
        }
        try (Tensor t = Tensor.arange(-1, 0x1p62, 0x1p60, DType.INT32, Device.CPU)) {
            assertEquals(4, t.numel(), "PyTorch counts the other integer dtypes in float64");
        }
    }

    /**
     * Was: the values were built in a Java array first, so an arange the machine holds failed with an OutOfMemoryError
     * where the heap did not (here 128 MiB of values, a 64 MiB heap).
     */
    @Test
    void anArangeLargerThanTheHeapIsBuiltInNativeMemory() {
        String out = io.arrakis.testing.ChildJvm.of(LargeArange.class).jvmOption("-Xmx64m").run();
        assertTrue(out.contains("16777216 values, last 16777215, float32 last 16777216"), out);
    }

    /** Prints the size and last value of an int64 arange of 2^24 values and of a float32 one. */
    public static final class LargeArange {
        public static void main(String[] args) {
            try (Tensor t = Tensor.arange(1L << 24);
                 Tensor f = Tensor.arange(1, (1 << 24) + 1, 1, DType.FLOAT32, Device.CPU)) {
                System.out.println(t.numel() + " values, last " + (long) t.select(0, -1).item() + ", float32 last "
                        + (long) f.select(0, -1).item());
            }
        }
    }

    /** Was: libtorch's own overflow, a TorchException whose cause was on standard error only. */
    @Test
    void opsWhoseResultsPass2To63AreRefusedInJava() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor huge = Tensor.ones(1).expand(1L << 62);
            String m = message(IllegalArgumentException.class, () -> Tensor.cat(List.of(huge, huge), 0));
            assertTrue(m.contains("cat: the sizes of dim 0 add up past 2^63"), m);
            m = message(IllegalArgumentException.class, () -> Tensor.stack(List.of(huge, huge), 0));
            assertTrue(m.contains("more than 2^63 elements"), m);
            m = message(IllegalArgumentException.class, () -> Tensor.ones(4).repeatInterleave(1L << 61, 0));
            assertTrue(m.contains("more than 2^63 elements"), m);
            try (Tensor cut = Tensor.cat(List.of(huge.narrow(0, 0, 3), huge.narrow(0, 0, 2)), 0)) {
                assertArrayEquals(new float[] {1, 1, 1, 1, 1}, cut.toFloatArray(), "what fits still joins");
            }
        }
    }

    /** Python's {@code t[:, 0:3:huge]} is the first column; libtorch counted a size of -1 for it. */
    @Test
    void aStepPastTheSizeTakesOneElement() {
        try (Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
             Tensor s = t.slice(1, 0, 3, Long.MAX_VALUE);
             Tensor second = t.slice(1, 1, 3, 1L << 62)) {
            assertArrayEquals(new long[] {2, 1}, s.shape());
            assertArrayEquals(new float[] {1, 4}, s.toFloatArray());
            assertArrayEquals(new float[] {2, 5}, second.toFloatArray());
        }
    }

    /** Was: sizes whose sum wrapped around to the dim's size passed, giving overlapping pieces. */
    @Test
    void splitSizesThatOverflowAreRefused() {
        try (Tensor t = Tensor.ones(2, 3)) {
            String m = message(IllegalArgumentException.class,
                    () -> t.split(new long[] {Long.MAX_VALUE, Long.MAX_VALUE, 5}, 1));
            assertTrue(m.contains("more than 2^63"), m);
        }
    }

    /** Was: toString flattened the whole tensor first, which for an expanded view asked for 256 GiB. */
    @Test
    void toStringReadsOnlyTheFirstElementsOfAnyLayout() {
        try (Tensor row = Tensor.ones(1, 1L << 18); Tensor huge = row.expand(1L << 18, 1L << 18)) {
            assertEquals("Tensor[float32, shape=[262144, 262144], cpu] [1.000, 1.000, 1.000, 1.000, 1.000, 1.000, ...]",
                    huge.toString());
        }
        Random random = new Random(5);
        for (int round = 0; round < 200; round++) {
            int rank = random.nextInt(5);
            long[] shape = new long[rank];
            for (int i = 0; i < rank; i++) {
                shape[i] = random.nextInt(4);
            }
            try (TensorScope scope = TensorScope.open()) {
                Tensor t = Tensor.randn(new Generator(round), shape, DType.FLOAT32, Device.CPU);
                if (rank >= 2) {
                    t = t.transpose(0, rank - 1);
                }
                float[] all = t.toFloatArray();
                StringBuilder expected = new StringBuilder(" [");
                for (int i = 0; i < Math.min(6, all.length); i++) {
                    expected.append(i > 0 ? ", " : "").append(String.format("%.4g", (double) all[i]));
                }
                expected.append(all.length > 6 ? ", ...]" : "]");
                String s = t.toString();
                assertEquals(expected.toString(), s.substring(s.indexOf("cpu]") + 4), java.util.Arrays.toString(shape));
            }
        }
    }

    /** Was: the FFM API's "Segment is too large to wrap", after a full copy of the tensor to the host. */
    /** Were: int64 values read through doubles (2^53 + 1 shown as 2^53), and a decimal comma under a German locale. */
    @Test
    void toStringShowsInt64ValuesExactlyAndFloatsInAnyLocale() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor longs = Tensor.of(new long[] {(1L << 53) + 1, Long.MIN_VALUE + 1, 123456789012345679L}, 3);
            assertTrue(longs.toString().endsWith("[9007199254740993, -9223372036854775807, 123456789012345679]"),
                    longs.toString());
            java.util.Locale before = java.util.Locale.getDefault();
            try {
                java.util.Locale.setDefault(java.util.Locale.GERMANY);
                assertTrue(Tensor.of(new float[] {1.5f}, 1).toString().endsWith("[1.500]"));
            } finally {
                java.util.Locale.setDefault(before);
            }
        }
    }

    /** Was: Long.MAX_VALUE as a double, 2^63, filled an int64 tensor with Long.MIN_VALUE. */
    @Test
    void fullRefusesAnIntegerValueOutsideInt64OrNotWhole() {
        try (TensorScope scope = TensorScope.open()) {
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.full(new long[] {1}, (double) Long.MAX_VALUE, DType.INT64, Device.CPU));
            assertThrows(IllegalArgumentException.class, () -> Tensor.full(new long[] {1}, 1.5, DType.INT32, Device.CPU));
            assertArrayEquals(new long[] {-(1L << 63)}, Tensor.full(new long[] {1}, -0x1p63, DType.INT64, Device.CPU)
                    .toLongArray());
            // a NaN float32 whose rounding carried into the exponent became infinity in bfloat16
            short bits = DType.bfloat16Bits(Float.intBitsToFloat(0x7F800001));
            assertTrue((bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0, Integer.toHexString(bits));
        }
    }

    @Test
    void anArrayOfMoreElementsThanJavaHoldsIsRefusedBeforeAnyCopy() {
        try (Tensor one = Tensor.ones(new long[] {1}, DType.BOOL, Device.CPU); Tensor many = one.expand((1L << 31) + 8)) {
            String m = message(IllegalArgumentException.class, many::toBooleanArray);
            assertTrue(m.contains("toBooleanArray") && m.contains("2147483656 elements"), m);
        }
    }

    @Test
    void shapesPast2To63ElementsAreRefusedInJava() {
        try (Tensor t = Tensor.ones(2, 3)) {
            String m = message(IllegalArgumentException.class, () -> t.reshape(6, 7, 0x6DB6DB6DB6DB6DB7L));
            assertTrue(m.contains("more than 2^63"), m);
            try (Tensor one = Tensor.ones(1, 1)) {
                m = message(IllegalArgumentException.class, () -> one.expand(7, 0x6DB6DB6DB6DB6DB7L));
                assertTrue(m.contains("more than 2^63"), m);
            }
        }
    }

    /** Was: libtorch refused a shift beyond its symbolic-integer range; a roll repeats every dim size. */
    @Test
    void aRollByAnyShiftIsTheRollByItsRemainder() {
        try (Tensor t = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3)) {
            long shift = -(1L << 62) - 1;
            assertArrayEquals(t.roll(Math.floorMod(shift, 3), 1).toFloatArray(), t.roll(shift, 1).toFloatArray());
            assertArrayEquals(new float[] {3, 1, 2, 6, 4, 5}, t.roll(Long.MAX_VALUE, 1).toFloatArray()); // 2^63-1 ≡ 1
        }
    }

    @Test
    void scaledDotProductAttentionRefusesWhatItCannotPairInJava() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor q = Tensor.zeros(new long[] {2, 4, 5, 8}, DType.FLOAT32, Device.CPU);
            Tensor k = Tensor.zeros(new long[] {3, 4, 6, 8}, DType.FLOAT32, Device.CPU);
            String m = message(IllegalArgumentException.class,
                    () -> Tensor.scaledDotProductAttention(q, k, k, null, false, null));
            assertTrue(m.contains("do not broadcast"), m);
            Tensor k2 = Tensor.zeros(new long[] {2, 4, 6, 8}, DType.FLOAT32, Device.CPU);
            Tensor v2 = Tensor.zeros(new long[] {2, 2, 6, 8}, DType.FLOAT32, Device.CPU);
            m = message(IllegalArgumentException.class, () -> Tensor.scaledDotProductAttention(q, k2, v2, null, false, null));
            assertTrue(m.contains("4 key heads and 2 value heads"), m);
            Tensor mask = Tensor.ones(new long[] {}, DType.BOOL, Device.CPU);
            m = message(IllegalArgumentException.class, () -> Tensor.scaledDotProductAttention(q, k2, k2, mask, false, null));
            assertTrue(m.contains("at least the 2 dims"), m);
            // was: zeros, from libtorch's kernel, for a NaN scale
            for (double scale : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
                m = message(IllegalArgumentException.class,
                        () -> Tensor.scaledDotProductAttention(q, k2, k2, null, true, scale));
                assertTrue(m.contains("the scale must be finite, got " + scale), m);
            }
            // batch dims that broadcast are PyTorch's too
            Tensor oneBatch = Tensor.randn(new Generator(1), new long[] {1, 4, 6, 8}, DType.FLOAT32, Device.CPU);
            Tensor both = oneBatch.expand(2, 4, 6, 8).contiguous();
            Tensor query = Tensor.randn(new Generator(2), new long[] {2, 4, 5, 8}, DType.FLOAT32, Device.CPU);
            assertTrue(Tensor.scaledDotProductAttention(query, oneBatch, oneBatch, null, false, null)
                    .allclose(Tensor.scaledDotProductAttention(query, both, both, null, false, null), 1e-6, 1e-6));
        }
    }

    @Test
    void dimsAreCheckedAndNamedAsTheTensorHasThem() {
        try (Tensor t = Tensor.ones(2, 3); Tensor s = Tensor.scalar(2)) {
            String m = message(IllegalArgumentException.class, () -> t.unsqueeze(5));
            assertTrue(m.contains("new dim of a 2-d tensor (expected -3 to 2)"), m);
            m = message(IllegalArgumentException.class, () -> Tensor.stack(List.of(t, t), 5));
            assertTrue(m.contains("new dim of a 2-d tensor"), m);
            m = message(IllegalArgumentException.class, () -> s.repeatInterleave(3, 0));
            assertTrue(m.contains("0-d"), m);
        }
    }
}

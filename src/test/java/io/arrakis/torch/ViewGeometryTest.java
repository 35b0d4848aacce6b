package io.arrakis.torch;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The view ops whose geometry is computed in Java ({@code Tensor.restrided}) against libtorch's own view ops through
 * the dispatcher: the same sizes, strides, first element and values, on contiguous tensors and on views (narrowed,
 * transposed, expanded, 0-d, without elements).
 */
class ViewGeometryTest {
    private static final Random RANDOM = new Random(7);

    /** Bases of several layouts, each with the values 0, 1, 2, ... of a contiguous tensor viewed differently. */
    private static List<Tensor> bases() {
        List<Tensor> bases = new ArrayList<>();
        bases.add(Tensor.arange(24).to(DType.FLOAT32).reshape(2, 3, 4));
        bases.add(Tensor.arange(60).to(DType.FLOAT32).reshape(3, 4, 5).transpose(0, 2)); // [5, 4, 3], not contiguous
        bases.add(Tensor.arange(90).to(DType.FLOAT32).reshape(6, 15).narrow(1, 2, 9).narrow(0, 1, 4)); // offset, gaps
        bases.add(Tensor.arange(4).to(DType.FLOAT32).reshape(4, 1).expand(4, 6)); // stride 0
        bases.add(Tensor.arange(6).to(DType.FLOAT32).reshape(1, 6, 1));
        bases.add(Tensor.full(new long[] {}, 3.5, DType.FLOAT32, Device.CPU)); // 0-d
        bases.add(Tensor.zeros(new long[] {0, 5}, DType.FLOAT32, Device.CPU));
        bases.add(Tensor.zeros(new long[] {3, 0, 2}, DType.FLOAT32, Device.CPU).transpose(0, 2));
        return bases;
    }

    private static void assertSameView(Tensor expected, Tensor actual, String what) {
        assertSameLayout(expected, actual, what);
        if (expected.numel() > 0) {
            assertEquals(expected.dataAddress(), actual.dataAddress(), what + ": first element");
        }
        // where the view starts in its memory, also where it has no elements to read
        assertEquals(storageOffset(expected), storageOffset(actual), what + ": storage offset");
    }

    private static long storageOffset(Tensor t) {
        try (Tensor.Held held = t.hold()) {
            return t.storageOffset();
        }
    }

    /** The same sizes, strides and values, and the metadata libtorch reports; in memory of their own. */
    private static void assertSameLayout(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + ": sizes");
        assertArrayEquals(expected.strides(), actual.strides(), what + ": strides");
        assertArrayEquals(expected.toDoubleArray(), actual.toDoubleArray(), what + ": values");
        assertEquals(expected.isContiguous(), actual.isContiguous(), what + ": contiguity");
        // the metadata the view keeps is what libtorch reports for its handle
        try (Tensor reread = Tensor.adopt(actual.newHandle())) {
            assertArrayEquals(actual.shape(), reread.shape(), what + ": sizes libtorch reports");
            assertArrayEquals(actual.strides(), reread.strides(), what + ": strides libtorch reports");
            assertEquals(actual.dtype(), reread.dtype(), what + ": dtype libtorch reports");
            assertEquals(actual.device(), reread.device(), what + ": device libtorch reports");
        }
    }

    private static Tensor aten(String name, String overload, Tensor t, Function<Call, Call> args) {
        return args.apply(Call.begin(Op.of(name, overload), t).tensor(t)).tensorResult();
    }

    private static List<Tensor> atenList(String name, String overload, Tensor t, Function<Call, Call> args) {
        return args.apply(Call.begin(Op.of(name, overload), t).tensor(t)).run().tensorListAt(0);
    }

    @Test
    void everyViewOpHasLibtorchsGeometry() {
        try (TensorScope scope = TensorScope.open()) {
            for (Tensor base : bases()) {
                int n = base.dim();
                String b = base.describe() + " strides " + java.util.Arrays.toString(base.strides());
                for (int d0 = 0; d0 < n; d0++) {
                    for (int d1 = 0; d1 < n; d1++) {
                        int x = d0;
                        int y = d1;
                        assertSameView(aten("aten::transpose", "int", base, c -> c.i64(x).i64(y)), base.transpose(x, y),
                                "transpose " + x + "," + y + " of " + b);
                        for (long offset = -base.size(x) - 1; x != y && offset <= base.size(y) + 1; offset++) {
                            long o = offset;
                            assertSameView(aten("aten::diagonal", "", base, c -> c.i64(o).i64(x).i64(y)),
                                    base.diagonal(o, x, y), "diagonal " + o + " of " + x + "," + y + " of " + b);
                        }
                    }
                    int d = d0;
                    long size = base.size(d);
                    for (long start = 0; start <= size; start++) {
                        long s = start;
                        long length = size - start == 0 ? 0 : 1 + RANDOM.nextLong(size - start);
                        assertSameView(aten("aten::narrow", "", base, c -> c.i64(d).i64(s).i64(length)),
                                base.narrow(d, s, length), "narrow " + d + " " + s + "+" + length + " of " + b);
                    }
                    for (long index = -size; index < size; index++) {
                        long i = index;
                        assertSameView(aten("aten::select", "int", base, c -> c.i64(d).i64(i)), base.select(d, i),
                                "select " + d + " " + i + " of " + b);
                    }
                    assertSameView(aten("aten::squeeze", "dim", base, c -> c.i64(d)), base.squeeze(d),
                            "squeeze " + d + " of " + b);
                    for (long piece = 1; piece <= size + 1; piece++) {
                        long p = piece;
                        assertSameViews(atenList("aten::split", "Tensor", base, c -> c.i64(p).i64(d)), base.split(p, d),
                                "split " + p + " along " + d + " of " + b);
                    }
                    for (int chunks = 1; chunks <= size + 2; chunks++) {
                        int k = chunks;
                        assertSameViews(atenList("aten::chunk", "", base, c -> c.i64(k).i64(d)), base.chunk(k, d),
                                "chunk " + k + " along " + d + " of " + b);
                    }
                    long[] sizes = randomParts(size);
                    assertSameViews(atenList("aten::split_with_sizes", "", base, c -> c.ints(sizes).i64(d)),
                            base.split(sizes, d), "split " + java.util.Arrays.toString(sizes) + " along " + d + " of " + b);
                }
                for (int d = 0; d <= n; d++) {
                    int at = d;
                    assertSameView(aten("aten::unsqueeze", "", base, c -> c.i64(at)), base.unsqueeze(at),
                            "unsqueeze " + at + " of " + b);
                }
                int[] order = shuffled(n);
                long[] orderLong = java.util.Arrays.stream(order).asLongStream().toArray();
                assertSameView(aten("aten::permute", "", base, c -> c.ints(orderLong)), base.permute(order),
                        "permute " + java.util.Arrays.toString(order) + " of " + b);
                for (long[] shape : expansions(base.shape())) {
                    assertSameView(aten("aten::expand", "", base, c -> c.ints(shape).bool(false)), base.expand(shape),
                            "expand to " + java.util.Arrays.toString(shape) + " of " + b);
                }
                for (long[] shape : reshapes(base.numel())) {
                    Tensor byLibtorch = aten("aten::reshape", "", base, c -> c.ints(shape));
                    String what = "reshape to " + java.util.Arrays.toString(shape) + " of " + b;
                    boolean viewable = Shapes.viewStrides(base.shape(), base.strides(),
                            Shapes.inferSize(shape, base.numel())) != null;
                    if (viewable) {
                        assertSameView(byLibtorch, base.reshape(shape), what);
                    } else { // a copy, by libtorch either way
                        assertSameLayout(byLibtorch, base.reshape(shape), what);
                    }
                    if (viewable) {
                        assertSameView(aten("aten::view", "", base, c -> c.ints(shape)), base.view(shape),
                                "view as " + java.util.Arrays.toString(shape) + " of " + b);
                    } else {
                        assertThrows(IllegalArgumentException.class, () -> base.view(shape));
                        assertThrows(TorchException.class, () -> aten("aten::view", "", base, c -> c.ints(shape)),
                                "libtorch refuses the view too: " + java.util.Arrays.toString(shape) + " of " + b);
                    }
                }
            }
        }
    }

    @Test
    void aZeroDimTensorTakesDimsZeroAndMinusOne() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor scalar = Tensor.full(new long[] {}, 3.5, DType.FLOAT32, Device.CPU);
            for (int d : new int[] {0, -1}) {
                for (int e : new int[] {0, -1}) {
                    assertSameView(aten("aten::transpose", "int", scalar, c -> c.i64(d).i64(e)), scalar.transpose(d, e),
                            "transpose " + d + "," + e + " of a 0-d tensor");
                }
                assertSameView(aten("aten::squeeze", "dim", scalar, c -> c.i64(d)), scalar.squeeze(d),
                        "squeeze " + d + " of a 0-d tensor");
                assertSameView(aten("aten::unsqueeze", "", scalar, c -> c.i64(d)), scalar.unsqueeze(d),
                        "unsqueeze " + d + " of a 0-d tensor");
            }
            assertSameView(aten("aten::permute", "", scalar, c -> c.ints()), scalar.permute(), "permute of a 0-d tensor");
            assertThrows(IllegalArgumentException.class, () -> scalar.narrow(0, 0, 1));
            assertThrows(IllegalArgumentException.class, () -> scalar.select(0, 0));
            assertThrows(IllegalArgumentException.class, () -> scalar.diagonal(0, 0, 1));
            assertThrows(IllegalArgumentException.class, () -> scalar.split(1, 0));
            assertThrows(IllegalArgumentException.class, () -> scalar.chunk(1, 0));
        }
    }

    @Test
    void aDiagonalOfOneDimOrOffsetsPastTheMatrixAreRefusedOrEmptyAsLibtorchMakesThem() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor m = Tensor.arange(6).reshape(2, 3);
            IllegalArgumentException same = assertThrows(IllegalArgumentException.class, () -> m.diagonal(0, 1, -1));
            assertTrue(same.getMessage().contains("dim1 and dim2 must differ"), same.getMessage());
            assertThrows(TorchException.class, () -> aten("aten::diagonal", "", m, c -> c.i64(0).i64(1).i64(-1)));
            for (long offset : new long[] {Long.MIN_VALUE, Long.MAX_VALUE, -2, 3}) {
                assertArrayEquals(new long[] {0}, m.diagonal(offset, 0, 1).shape(), "offset " + offset);
            }
            assertArrayEquals(new long[] {1, 5}, m.diagonal(1, 0, 1).toLongArray()); // [0, 1] and [1, 2]
            assertArrayEquals(new long[] {3}, m.diagonal(-1, 0, 1).toLongArray()); // [1, 0]
            // strides 2^62 and 2^62: the diagonal's would wrap (was an ArithmeticException; libtorch refuses it too)
            Tensor wide = Tensor.zeros(new long[] {0, 1, 1L << 62}, DType.FLOAT32, Device.CPU);
            assertThrows(IllegalArgumentException.class, () -> wide.diagonal(0, 0, 1));
        }
    }

    @Test
    void viewsStartingOrSizedPast2To63AreRefusedAsLibtorchRefusesThem() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor empty = Tensor.zeros(new long[] {4, 0, 1L << 62}, DType.FLOAT32, Device.CPU); // strides [2^62, 2^62, 1]
            assertThrows(TorchException.class, () -> aten("aten::narrow", "", empty, c -> c.i64(0).i64(2).i64(1)));
            assertThrows(IllegalArgumentException.class, () -> empty.narrow(0, 2, 1));
            assertThrows(IllegalArgumentException.class, () -> empty.select(0, 3));
            assertThrows(IllegalArgumentException.class, () -> empty.split(1, 0));
            assertThrows(IllegalArgumentException.class, () -> empty.chunk(4, 0));
            // within range, libtorch's geometry; a second step that would pass 2^63 from there is refused too
            Tensor later = empty.narrow(0, 1, 3); // starts 2^62 elements in
            assertSameView(aten("aten::narrow", "", empty, c -> c.i64(0).i64(1).i64(3)), later, "narrow 0 1+3 of " + empty);
            assertThrows(TorchException.class, () -> aten("aten::narrow", "", later, c -> c.i64(0).i64(1).i64(1)));
            assertThrows(IllegalArgumentException.class, () -> later.narrow(0, 1, 1));
            Tensor wide = Tensor.zeros(new long[] {0, 2}, DType.FLOAT32, Device.CPU).expand(3, 0, 2);
            assertSameView(aten("aten::narrow", "", wide, c -> c.i64(0).i64(2).i64(1)), wide.narrow(0, 2, 1), "narrow of " + wide);

            Tensor none = Tensor.zeros(new long[] {0}, DType.FLOAT32, Device.CPU);
            assertThrows(TorchException.class, () -> aten("aten::view", "", none, c -> c.ints(Long.MAX_VALUE, Long.MAX_VALUE, 0)));
            assertThrows(IllegalArgumentException.class, () -> none.view(Long.MAX_VALUE, Long.MAX_VALUE, 0));
            assertThrows(IllegalArgumentException.class, () -> none.reshape(Long.MAX_VALUE, Long.MAX_VALUE, 0));
            assertThrows(IllegalArgumentException.class, () -> none.expand(Long.MAX_VALUE, Long.MAX_VALUE, 0));
        }
    }

    /**
     * Found by a differential run against PyTorch 1.13: narrow refused a negative start and split(0) a dim of size 0,
     * which both take; unsqueeze wrapped a stride past 2^63 (on an empty tensor, where libtorch wraps it too, or
     * refuses it later).
     */
    @Test
    void negativeStartsEmptySplitsAndStridesPast2To63AsLibtorch() {
        try (TensorScope scope = TensorScope.open()) {
            Tensor five = Tensor.arange(5);
            assertSameView(aten("aten::narrow", "", five, c -> c.i64(0).i64(-2).i64(2)), five.narrow(0, -2, 2),
                    "narrow from -2");
            assertArrayEquals(new long[] {3, 4}, five.narrow(0, -2, 2).contiguous().toLongArray());
            assertThrows(IndexOutOfBoundsException.class, () -> five.narrow(0, -6, 1));
            Tensor none = Tensor.zeros(new long[] {2, 0}, DType.FLOAT32, Device.CPU);
            List<Tensor> pieces = none.split(0, 1);
            assertEquals(1, pieces.size());
            assertSameLayout(none, pieces.getFirst(), "split(0) of " + none);
            assertThrows(IllegalArgumentException.class, () -> five.split(0, 0));
            Tensor wide = Tensor.zeros(new long[] {5, 0, 1L << 62}, DType.INT64, Device.CPU); // strides [2^62, 2^62, 1]
            assertThrows(IllegalArgumentException.class, () -> wide.unsqueeze(0));
            assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(1).expand(1L << 40).split(1, 0),
                    "2^40 pieces");
        }
    }

    private static void assertSameViews(List<Tensor> expected, List<Tensor> actual, String what) {
        assertEquals(expected.size(), actual.size(), what + ": pieces");
        for (int i = 0; i < expected.size(); i++) {
            assertSameView(expected.get(i), actual.get(i), what + ", piece " + i);
        }
    }

    private static long[] randomParts(long size) {
        List<Long> parts = new ArrayList<>();
        long left = size;
        while (left > 0 || parts.size() < 2) {
            long part = left == 0 ? 0 : RANDOM.nextLong(left + 1);
            parts.add(part);
            left -= part;
        }
        parts.add(left);
        return parts.stream().mapToLong(Long::longValue).toArray();
    }

    private static int[] shuffled(int n) {
        List<Integer> dims = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            dims.add(i);
        }
        java.util.Collections.shuffle(dims, RANDOM);
        return dims.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Target shapes for expand: the shape itself, -1 kept sizes, grown size-1 dims, new leading dims of 1 and 3. */
    private static List<long[]> expansions(long[] shape) {
        List<long[]> targets = new ArrayList<>();
        targets.add(shape.clone());
        long[] grown = shape.clone();
        long[] kept = shape.clone();
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 1) {
                grown[i] = 3;
            }
            if (i % 2 == 0) {
                kept[i] = -1;
            }
        }
        targets.add(grown);
        targets.add(kept);
        for (long lead : new long[] {1, 3}) {
            long[] led = new long[shape.length + 2];
            led[0] = lead;
            led[1] = 1;
            System.arraycopy(grown, 0, led, 2, shape.length);
            targets.add(led);
        }
        return targets;
    }

    /** Shapes of {@code numel} elements: flat, split in two or three dims where the count factors, with a -1. */
    private static List<long[]> reshapes(long numel) {
        List<long[]> shapes = new ArrayList<>();
        shapes.add(new long[] {numel});
        shapes.add(new long[] {-1});
        shapes.add(new long[] {1, numel, 1});
        for (long f = 2; f <= numel; f++) {
            if (numel % f == 0) {
                shapes.add(new long[] {f, numel / f});
                shapes.add(new long[] {numel / f, -1});
                for (long g = 2; g <= numel / f; g++) {
                    if (numel / f % g == 0) {
                        shapes.add(new long[] {f, g, numel / f / g});
                    }
                }
            }
        }
        if (numel == 0) {
            shapes.add(new long[] {0, 7});
            shapes.add(new long[] {2, 0, 3});
        }
        return shapes;
    }

    @Test
    void viewsOfJavaMemoryWriteThroughAndEndWithIt() {
        Arena arena = Arena.ofConfined();
        try (TensorScope scope = TensorScope.open()) {
            MemorySegment memory = arena.allocate(4L * 12, 4);
            Tensor t = Tensor.fromSegment(memory, DType.FLOAT32, 3, 4);
            Tensor column = t.transpose(0, 1).select(0, 2); // elements 2, 6, 10
            column.copyFrom(Tensor.of(new float[] {1, 2, 3}, 3));
            assertEquals(2f, memory.getAtIndex(ValueLayout.JAVA_FLOAT, 6));
            Tensor row = t.view(12).narrow(0, 8, 4);
            arena.close();
            assertThrows(IllegalStateException.class, row::toFloatArray, "a view of closed Java memory is refused");
        }
    }

    @Test
    void aViewOutlivesItsBaseAndItsMetadataIsLibtorchs() {
        Tensor view;
        try (TensorScope scope = TensorScope.open()) {
            Tensor base = Tensor.arange(12).to(DType.FLOAT32).reshape(3, 4);
            view = scope.keep(base.transpose(0, 1).narrow(0, 1, 2));
        }
        try (view) {
            assertArrayEquals(new float[] {1, 5, 9, 2, 6, 10}, view.contiguous().toFloatArray());
            assertArrayEquals(new long[] {1, 4}, view.strides());
        }
    }
}

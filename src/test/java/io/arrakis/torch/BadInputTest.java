package io.arrakis.torch;

import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Every public op and factory of {@link Tensor} given bad input throws the exception the class Javadoc documents, with
 * a message naming the op (or, for closed tensors, the tensor), and the JVM keeps working afterwards.
 *
 * <p>Three tables: {@link #badArguments()} (wrong shapes, dims, dtypes, indices, devices), {@link #dimsOutOfRange()}
 * (every dim-taking op with several out-of-range dims) and {@link #closedInputs()} (every op with each of its tensor
 * inputs closed, with and without its metadata cached). Cases that once revealed library bugs are regression tests
 * at the end.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BadInputTest {
    private static final Class<IllegalArgumentException> IAE = IllegalArgumentException.class;
    private static final Class<IndexOutOfBoundsException> IOOBE = IndexOutOfBoundsException.class;
    private static final Class<IllegalStateException> ISE = IllegalStateException.class;
    private static final Class<TorchException> TORCH = TorchException.class;

    private final List<Tensor> fixtures = new ArrayList<>();
    private Arena arena;

    // fixtures, all CPU; fNN are float32 of that shape
    private Tensor f23, f34, f43, f22, f33, f1, f3, f4, f223, f234, f334, f24, f13;
    private Tensor d34, d43, d4, d23, d234; // float64
    private Tensor i3, iNeg, i22, i33, i2; // int64
    private Tensor b23, b2, b22; // bool
    private Tensor s0, empty0, empty20, c2; // 0-d float64, [0], [2, 0], complex64[2]

    /** One bad call: what it must throw, and words of which at least one its message must contain. */
    private record Case(String name, Class<? extends Throwable> expected, Executable call, String... mentions) {
    }

    @BeforeAll
    void fixtures() {
        LibTorch.load();
        f23 = fx(Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        f34 = fx(Tensor.ones(3, 4));
        f43 = fx(Tensor.ones(4, 3));
        f22 = fx(Tensor.of(new float[] {2, 1, 1, 3}, 2, 2));
        f33 = fx(Tensor.of(new float[] {4, 1, 0, 1, 3, 1, 0, 1, 2}, 3, 3));
        f1 = fx(Tensor.ones(1));
        f3 = fx(Tensor.ones(3));
        f4 = fx(Tensor.ones(4));
        f223 = fx(Tensor.ones(2, 2, 3));
        f234 = fx(Tensor.ones(2, 3, 4));
        f334 = fx(Tensor.ones(3, 3, 4));
        f24 = fx(Tensor.ones(2, 4));
        f13 = fx(Tensor.ones(1, 3));
        d34 = fx(Tensor.ones(new long[] {3, 4}, DType.FLOAT64, Device.CPU));
        d43 = fx(Tensor.ones(new long[] {4, 3}, DType.FLOAT64, Device.CPU));
        d4 = fx(Tensor.ones(new long[] {4}, DType.FLOAT64, Device.CPU));
        d23 = fx(Tensor.ones(new long[] {2, 3}, DType.FLOAT64, Device.CPU));
        d234 = fx(Tensor.ones(new long[] {2, 3, 4}, DType.FLOAT64, Device.CPU));
        i3 = fx(Tensor.of(new long[] {0, 1, 2}, 3));
        iNeg = fx(Tensor.of(new long[] {0, -1}, 2));
        i22 = fx(Tensor.of(new long[] {1, 0, 0, 1}, 2, 2));
        i33 = fx(Tensor.of(new long[] {1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, 3));
        i2 = fx(Tensor.of(new long[] {1, 0}, 2));
        b23 = fx(Tensor.of(new boolean[] {true, false, true, false, true, false}, 2, 3));
        b2 = fx(Tensor.of(new boolean[] {true, false}, 2));
        b22 = fx(Tensor.of(new boolean[] {true, false, true, true}, 2, 2));
        s0 = fx(Tensor.scalar(1.5));
        empty0 = fx(Tensor.zeros(0));
        empty20 = fx(Tensor.zeros(2, 0));
        c2 = fx(f22.eigvals());
        arena = Arena.ofShared();
    }

    private Tensor fx(Tensor t) {
        fixtures.add(t);
        return t;
    }

    @AfterAll
    void closeFixtures() {
        fixtures.forEach(Tensor::close);
        arena.close();
    }

    // ------------------------------------------------------------------------------------------------ bad arguments

    private List<Case> badArgumentCases() {
        List<Case> c = new ArrayList<>();
        // linear algebra
        c.add(new Case("matmul inner dims differ", IAE, () -> f23.matmul(f23), "matmul"));
        c.add(new Case("matmul 0-d left", IAE, () -> s0.matmul(f23), "matmul"));
        c.add(new Case("matmul 0-d right", IAE, () -> f23.matmul(s0), "matmul"));
        c.add(new Case("matmul 1-d right of wrong size", IAE, () -> f23.matmul(f4), "matmul"));
        c.add(new Case("matmul batch dims do not broadcast", IAE, () -> f223.matmul(f334), "matmul"));
        c.add(new Case("matmul float32 @ float64", IAE, () -> f23.matmul(d34), "matmul"));
        c.add(new Case("linear weight [in, out] swapped", IAE, () -> f23.linear(f34, null), "linear"));
        c.add(new Case("linear 1-d weight", IAE, () -> f23.linear(f3, null), "linear"));
        c.add(new Case("linear 0-d input", IAE, () -> s0.linear(f43, null), "linear"));
        c.add(new Case("linear bias of wrong size", IAE, () -> f23.linear(f43, f3), "linear"));
        c.add(new Case("linear 2-d bias", IAE, () -> f23.linear(f43, f24), "linear"));
        c.add(new Case("linear float64 weight", IAE, () -> f23.linear(d43, null), "linear"));
        c.add(new Case("linear float64 bias", IAE, () -> f23.linear(f43, d4), "linear"));
        c.add(new Case("bmm 2-d operands", IAE, () -> f23.bmm(f34), "bmm"));
        c.add(new Case("bmm batch sizes differ", IAE, () -> f234.bmm(f334.transpose(1, 2)), "bmm"));
        c.add(new Case("bmm inner dims differ", IAE, () -> f223.bmm(f223), "bmm"));
        c.add(new Case("bmm float32 @ float64", IAE, () -> f223.bmm(d234), "bmm"));
        c.add(new Case("einsum no operands", IAE, () -> Tensor.einsum("ij->i"), "einsum"));
        c.add(new Case("einsum too few operands", IAE, () -> Tensor.einsum("ij,jk->ik", f23), "einsum"));
        c.add(new Case("einsum too many operands", IAE, () -> Tensor.einsum("ij->i", f23, f34), "einsum"));
        c.add(new Case("einsum term rank differs", IAE, () -> Tensor.einsum("ijk,jk->ik", f23, f34), "einsum"));
        c.add(new Case("einsum float32 with float64", IAE, () -> Tensor.einsum("ij,jk->ik", f23, d34), "einsum"));
        c.add(new Case("einsum unknown output label", IAE, () -> Tensor.einsum("ij->iz", f23), "einsum"));
        c.add(new Case("einsum output label twice", IAE, () -> Tensor.einsum("ij->ii", f23), "einsum"));
        c.add(new Case("einsum ellipsis split by a space", IAE, () -> Tensor.einsum(". ..ij->ij", f23), "einsum"));
        c.add(new Case("einsum subscript not a letter", IAE, () -> Tensor.einsum("i_->i", f23), "einsum"));
        // was: libtorch's refusal, with its reason on standard error only
        c.add(new Case("einsum subscript of two sizes", IAE, () -> Tensor.einsum("ij,jk->ik", f23, f23),
                "subscript j", "3 long in operand 0 but 2 in operand 1"));
        c.add(new Case("einsum subscript of two sizes after an ellipsis", IAE,
                () -> Tensor.einsum("...j,jk->...k", f34, f34), "subscript j", "4 long in operand 0 but 3"));
        c.add(new Case("einsum ellipsis term longer than its operand", IAE,
                () -> Tensor.einsum("ij...k,jk->i", f23, f34), "names at least 3 dims"));
        c.add(new Case("svd 1-d", IAE, () -> f3.svd(), "svd"));
        c.add(new Case("svd int64", IAE, () -> i22.svd(), "svd"));
        // was: LAPACK iterated for ever on an infinite entry
        c.add(new Case("svd of an infinite entry", IAE, () -> Tensor.of(new double[] {1, 2, Double.NEGATIVE_INFINITY, 5},
                2, 2).svd(), "infinite"));
        c.add(new Case("eigh 1-d", IAE, () -> f3.eigh(), "eigh"));
        c.add(new Case("cholesky int64", IAE, () -> i22.cholesky(), "cholesky"));
        c.add(new Case("norm dims repeated", IAE, () -> f3.norm(new int[] {0, -1}, false), "norm"));
        c.add(new Case("norm no dims", IAE, () -> f3.norm(new int[0], false), "norm"));
        c.add(new Case("norm int64", IAE, () -> i22.norm(), "norm"));
        c.add(new Case("eigvals non-square", IAE, () -> f23.eigvals(), "eigvals"));
        c.add(new Case("eigvals 1-d", IAE, () -> f3.eigvals(), "eigvals"));
        c.add(new Case("eigvals int64", IAE, () -> i33.eigvals(), "eigvals"));
        c.add(new Case("viewAsReal of a real tensor", IAE, () -> f23.viewAsReal(), "viewAsReal"));
        c.add(new Case("allclose shapes do not broadcast", IAE, () -> f23.allclose(f34, 1e-5, 1e-8), "allclose"));

        // elementwise
        c.add(new Case("add shapes do not broadcast", IAE, () -> f23.add(f34), "add"));
        c.add(new Case("add 1-d does not broadcast", IAE, () -> f23.add(f4), "add"));
        c.add(new Case("sub shapes do not broadcast", IAE, () -> f23.sub(f34), "sub"));
        c.add(new Case("mul shapes do not broadcast", IAE, () -> f23.mul(f34), "mul"));
        c.add(new Case("div shapes do not broadcast", IAE, () -> f23.div(f34), "div"));
        c.add(new Case("neg of bool", IAE, () -> b23.neg(), "neg"));
        c.add(new Case("gelu of int64", IAE, () -> i3.gelu(), "gelu"));
        c.add(new Case("gelu(tanh) of int64", IAE, () -> i3.gelu(true), "gelu"));
        c.add(new Case("where non-bool condition", IAE, () -> f23.where(f23, f23), "where"));
        c.add(new Case("where other does not broadcast", IAE, () -> f23.where(b23, f34), "where"));
        c.add(new Case("where condition does not broadcast", IAE, () -> f23.where(b2, f23), "where"));
        c.add(new Case("maskedFill non-bool mask", IAE, () -> f23.maskedFill(f23, 0), "maskedFill"));
        c.add(new Case("maskedFill mask does not broadcast", IAE, () -> f23.maskedFill(b2, 0), "maskedFill"));
        c.add(new Case("maskedFill mask larger than the tensor", IAE, () -> f3.maskedFill(b23, 0), "maskedFill"));
        c.add(new Case("tril 1-d", IAE, () -> f3.tril(0), "tril"));
        c.add(new Case("triu 0-d", IAE, () -> s0.triu(0), "triu"));

        // neural-network ops
        c.add(new Case("softmax of int64", IAE, () -> i3.softmax(0), "softmax"));
        c.add(new Case("logSoftmax of int64", IAE, () -> i3.logSoftmax(0), "logSoftmax"));
        c.add(new Case("layerNorm 0-d", IAE, () -> s0.layerNorm(null, null, 1e-5), "layerNorm"));
        c.add(new Case("layerNorm weight of wrong size", IAE, () -> f23.layerNorm(f4, null, 1e-5), "layerNorm"));
        c.add(new Case("layerNorm bias of wrong size", IAE, () -> f23.layerNorm(null, f4, 1e-5), "layerNorm"));
        c.add(new Case("layerNorm 2-d weight", IAE, () -> f23.layerNorm(f13, null, 1e-5), "layerNorm"));
        c.add(new Case("layerNormAndScale weight of wrong size", IAE, () -> f23.layerNormAndScale(f4, null, 1e-5),
                "layerNormAndScale"));
        c.add(new Case("rmsNormAndScale 0-d", IAE, () -> s0.rmsNormAndScale(null, 1e-6), "rmsNormAndScale"));
        c.add(new Case("rmsNorm 0-d", IAE, () -> s0.rmsNorm(null, 1e-6), "rmsNorm"));
        c.add(new Case("rmsNorm weight of wrong size", IAE, () -> f23.rmsNorm(f4, 1e-6), "rmsNorm"));
        c.add(new Case("embedding 1-d table", IAE, () -> f3.embedding(i2), "embedding"));
        c.add(new Case("embedding float indices", IAE, () -> f23.embedding(f3), "embedding"));
        c.add(new Case("embedding bool indices", IAE, () -> f23.embedding(b2), "embedding"));
        c.add(new Case("embedding index = vocab size", IOOBE, () -> f23.embedding(i3), "embedding"));
        c.add(new Case("embedding negative index", IOOBE, () -> f23.embedding(iNeg), "embedding"));
        c.add(new Case("sdpa 1-d query", IAE, () -> Tensor.scaledDotProductAttention(f3, f3, f3, null, false, null),
                "scaledDotProductAttention"));
        c.add(new Case("sdpa key head dim differs", IAE, () -> Tensor.scaledDotProductAttention(f23, f24, f24, null, false, null),
                "scaledDotProductAttention"));
        c.add(new Case("sdpa value length differs", IAE, () -> Tensor.scaledDotProductAttention(f23, f23, f33, null, false, null),
                "scaledDotProductAttention"));
        c.add(new Case("sdpa ranks differ", IAE, () -> Tensor.scaledDotProductAttention(f23, f223, f223, null, false, null),
                "scaledDotProductAttention"));
        c.add(new Case("sdpa mask and causal", IAE, () -> Tensor.scaledDotProductAttention(f23, f23, f23, b22, true, null),
                "scaledDotProductAttention"));
        c.add(new Case("sdpa 3 query heads, 2 key heads", IAE, () -> Tensor.scaledDotProductAttention(
                Tensor.ones(3, 2, 4), Tensor.ones(2, 2, 4), Tensor.ones(2, 2, 4), null, true, null), "grouped-query"));
        c.add(new Case("sdpa key and value heads differ", IAE, () -> Tensor.scaledDotProductAttention(
                Tensor.ones(4, 2, 4), Tensor.ones(2, 2, 4), Tensor.ones(1, 2, 4), null, true, null), "grouped-query"));
        c.add(new Case("split sizes short of the dim", IAE, () -> f23.split(new long[] {1, 1}, 1), "add up to"));
        c.add(new Case("split sizes with a negative one", IAE, () -> f23.split(new long[] {4, -1}, 1), "split"));
        c.add(new Case("roll of a missing dim", IAE, () -> f23.roll(1, 2), "roll"));
        c.add(new Case("sdpa float64 key", IAE, () -> Tensor.scaledDotProductAttention(f23, d23, f23, null, false, null),
                "scaledDotProductAttention"));
        c.add(new Case("sdpa float64 value", IAE, () -> Tensor.scaledDotProductAttention(f23, f23, d23, null, false, null),
                "scaledDotProductAttention"));

        // combining and splitting
        c.add(new Case("cat no tensors", IAE, () -> Tensor.cat(List.of(), 0), "cat"));
        c.add(new Case("cat shapes differ off the dim", IAE, () -> Tensor.cat(List.of(f23, f22), 0), "cat"));
        c.add(new Case("cat ranks differ", IAE, () -> Tensor.cat(List.of(f23, f3), 0), "cat"));
        c.add(new Case("cat dtypes differ", IAE, () -> Tensor.cat(List.of(f23, d23), 0), "cat"));
        c.add(new Case("stack no tensors", IAE, () -> Tensor.stack(List.of(), 0), "stack"));
        c.add(new Case("stack shapes differ", IAE, () -> Tensor.stack(List.of(f23, f22), 0), "stack"));
        c.add(new Case("stack dtypes differ", IAE, () -> Tensor.stack(List.of(f23, d23), 0), "stack"));
        c.add(new Case("split size 0", IAE, () -> f23.split(0, 0), "split"));
        c.add(new Case("split negative size", IAE, () -> f23.split(-1, 1), "split"));
        c.add(new Case("chunk 0 chunks", IAE, () -> f23.chunk(0, 0), "chunk"));
        c.add(new Case("chunk negative chunks", IAE, () -> f23.chunk(-2, 0), "chunk"));
        c.add(new Case("split of a 0-d tensor", IAE, () -> s0.split(1, 0), "split"));
        c.add(new Case("chunk of a 0-d tensor", IAE, () -> s0.chunk(1, 0), "chunk"));
        c.add(new Case("repeatInterleave negative repeats", IAE, () -> f23.repeatInterleave(-1, 0), "repeatInterleave"));

        // reductions
        c.add(new Case("mean of int64", IAE, () -> i3.mean(), "mean"));
        c.add(new Case("mean(dim) of int64", IAE, () -> i3.mean(0, false), "mean"));
        c.add(new Case("mean of bool", IAE, () -> b23.mean(), "mean"));
        c.add(new Case("max of an empty tensor", IAE, () -> empty0.max(), "max"));
        c.add(new Case("min of an empty tensor", IAE, () -> empty0.min(), "min"));
        c.add(new Case("max over an empty dim", IAE, () -> empty20.max(1, false), "max"));
        c.add(new Case("min over an empty dim", IAE, () -> empty20.min(1, true), "min"));
        c.add(new Case("argmax over an empty dim", IAE, () -> empty20.argmax(1, false), "argmax"));
        c.add(new Case("topk k > size", IAE, () -> f23.topk(4, 1, true), "topk"));
        c.add(new Case("topk negative k", IAE, () -> f23.topk(-1, 1, false), "topk"));

        // views and movement
        c.add(new Case("reshape wrong element count", IAE, () -> f23.reshape(4, 2), "reshape"));
        c.add(new Case("reshape two -1", IAE, () -> f23.reshape(-1, -1), "reshape"));
        c.add(new Case("reshape negative size", IAE, () -> f23.reshape(-2, -3), "reshape"));
        c.add(new Case("reshape -1 not dividing", IAE, () -> f23.reshape(-1, 4), "reshape"));
        c.add(new Case("reshape empty with -1 and 0", IAE, () -> empty0.reshape(-1, 0), "reshape"));
        c.add(new Case("view wrong element count", IAE, () -> f23.view(7), "view"));
        c.add(new Case("view two -1", IAE, () -> f23.view(-1, -1), "view"));
        c.add(new Case("view negative size", IAE, () -> f23.view(3, -2), "view"));
        c.add(new Case("permute too few dims", IAE, () -> f23.permute(0), "permute"));
        c.add(new Case("permute too many dims", IAE, () -> f23.permute(0, 1, 2), "permute"));
        c.add(new Case("permute repeated dim", IAE, () -> f23.permute(1, 1), "permute"));
        c.add(new Case("permute repeated dim (negative)", IAE, () -> f23.permute(1, -1), "permute"));
        c.add(new Case("narrow past the end", IOOBE, () -> f23.narrow(1, 2, 2), "narrow"));
        c.add(new Case("narrow start before the start", IOOBE, () -> f23.narrow(1, -4, 1), "narrow"));
        c.add(new Case("narrow negative length", IOOBE, () -> f23.narrow(0, 0, -1), "narrow"));
        c.add(new Case("select on a 0-d tensor", IAE, () -> s0.select(0, 0), "select"));
        c.add(new Case("narrow on a 0-d tensor", IAE, () -> s0.narrow(0, 0, 1), "narrow"));
        c.add(new Case("slice on a 0-d tensor", IAE, () -> s0.slice(0, 0, 1, 1), "slice"));
        c.add(new Case("indexSelect on a 0-d tensor", IAE, () -> s0.indexSelect(0, i2), "indexSelect"));
        c.add(new Case("slice step 0", IAE, () -> f23.slice(1, 0, 2, 0), "slice"));
        c.add(new Case("slice negative step", IAE, () -> f23.slice(1, 2, 0, -1), "slice"));
        c.add(new Case("select index = size", IOOBE, () -> f23.select(1, 3), "select"));
        c.add(new Case("select index < -size", IOOBE, () -> f23.select(0, -3), "select"));
        c.add(new Case("select huge index", IOOBE, () -> f23.select(0, Long.MAX_VALUE), "select"));
        c.add(new Case("indexSelect float index", IAE, () -> f23.indexSelect(1, f3), "indexSelect"));
        c.add(new Case("indexSelect 2-d index", IAE, () -> f23.indexSelect(1, i22), "indexSelect"));
        c.add(new Case("indexSelect index = size", IOOBE, () -> f23.indexSelect(0, i3), "indexSelect"));
        c.add(new Case("indexSelect negative index", IOOBE, () -> f23.indexSelect(1, iNeg), "indexSelect"));
        c.add(new Case("expand to fewer dims", IAE, () -> f23.expand(3), "expand"));
        c.add(new Case("asSegment of a non-contiguous view", IAE, () -> f23.transpose(0, 1).asSegment(), "asSegment"));

        // reading
        c.add(new Case("item of 6 elements", IAE, () -> f23.item(), "item"));
        c.add(new Case("item of no elements", IAE, () -> empty0.item(), "item"));
        c.add(new Case("itemLong of 3 elements", IAE, () -> i3.itemLong(), "itemLong"));
        // was: libtorch's range check lets 2^63 through, as Long.MIN_VALUE
        c.add(new Case("itemLong of 2^63", IAE, () -> Tensor.of(new double[] {0x1p63}, 1).itemLong(), "itemLong",
                "int64's range"));
        c.add(new Case("itemLong of NaN", IAE, () -> Tensor.of(new float[] {Float.NaN}, 1).itemLong(), "itemLong"));
        // was: inf in one element, refused in two (torch refuses both)
        for (long[] shape : new long[][] {{}, {1}, {2}}) {
            c.add(new Case("full float16 1e6 " + Arrays.toString(shape), IAE,
                    () -> Tensor.full(shape, 1e6, DType.FLOAT16, Device.CPU), "Tensor.full", "beyond float16's range"));
            c.add(new Case("full bfloat16 3.4e38 " + Arrays.toString(shape), IAE,
                    () -> Tensor.full(shape, 3.4e38, DType.BFLOAT16, Device.CPU), "Tensor.full", "bfloat16"));
        }
        c.add(new Case("itemBoolean of 2 elements", IAE, () -> b2.itemBoolean(), "itemBoolean"));
        // (these messages should name the op too: see messagesNameTheOpCalled)
        c.add(new Case("toFloatArray of complex", IAE, () -> c2.toFloatArray(), "toFloatArray", "complex"));
        c.add(new Case("toDoubleArray of complex", IAE, () -> c2.toDoubleArray(), "toDoubleArray", "complex"));
        c.add(new Case("toLongArray of complex", IAE, () -> c2.toLongArray(), "toLongArray", "complex"));
        c.add(new Case("toIntArray of complex", IAE, () -> c2.toIntArray(), "toIntArray", "complex"));
        c.add(new Case("toBooleanArray of complex", IAE, () -> c2.toBooleanArray(), "toBooleanArray", "complex"));

        // creation
        c.add(new Case("of(float[]) too few values", IAE, () -> Tensor.of(new float[5], 2, 3), "Tensor.of"));
        c.add(new Case("of(float[]) too many values", IAE, () -> Tensor.of(new float[7], 2, 3), "Tensor.of"));
        c.add(new Case("of(float[]) negative size", IAE, () -> Tensor.of(new float[6], -2, -3), "Tensor.of"));
        c.add(new Case("of(double[]) wrong count", IAE, () -> Tensor.of(new double[5], 6), "Tensor.of"));
        c.add(new Case("of(long[]) wrong count", IAE, () -> Tensor.of(new long[3], 2), "Tensor.of"));
        c.add(new Case("of(long[]) 0-d of two values", IAE, () -> Tensor.of(new long[2]), "Tensor.of"));
        c.add(new Case("of(int[]) wrong count", IAE, () -> Tensor.of(new int[4], 2, 3), "Tensor.of"));
        c.add(new Case("of(boolean[]) wrong count", IAE, () -> Tensor.of(new boolean[3], 2, 2), "Tensor.of"));
        c.add(new Case("fromSegment heap segment", IAE,
                () -> Tensor.fromSegment(MemorySegment.ofArray(new float[4]), DType.FLOAT32, 4), "fromSegment"));
        c.add(new Case("fromSegment too small", IAE,
                () -> Tensor.fromSegment(arena.allocate(12, 8), DType.FLOAT32, 4), "fromSegment"));
        c.add(new Case("fromSegment misaligned", IAE,
                () -> Tensor.fromSegment(arena.allocate(64, 8).asSlice(2), DType.FLOAT32, 4), "fromSegment"));
        c.add(new Case("fromSegment read-only", IAE,
                () -> Tensor.fromSegment(arena.allocate(16, 8).asReadOnly(), DType.FLOAT32, 4), "fromSegment"));
        c.add(new Case("fromSegment negative size", IAE,
                () -> Tensor.fromSegment(arena.allocate(16, 8), DType.FLOAT32, -4), "fromSegment"));
        c.add(new Case("zeros negative size", IAE, () -> Tensor.zeros(2, -1), "Tensor.zeros"));
        c.add(new Case("zeros(dtype) negative size", IAE, () -> Tensor.zeros(new long[] {-1}, DType.INT64, Device.CPU), "Tensor.zeros"));
        c.add(new Case("ones negative size", IAE, () -> Tensor.ones(-3), "Tensor.ones"));
        c.add(new Case("empty negative size", IAE, () -> Tensor.empty(new long[] {-1}, DType.FLOAT32, Device.CPU), "Tensor.empty"));
        c.add(new Case("arange step 0", IAE, () -> Tensor.arange(0, 10, 0, DType.FLOAT32, Device.CPU), "Tensor.arange"));
        c.add(new Case("arange NaN end", IAE, () -> Tensor.arange(0, Double.NaN, 1, DType.FLOAT32, Device.CPU), "Tensor.arange"));
        c.add(new Case("arange NaN step", IAE, () -> Tensor.arange(0, 10, Double.NaN, DType.FLOAT32, Device.CPU), "Tensor.arange"));
        c.add(new Case("arange too many elements", IAE, () -> Tensor.arange(0, 1e12, 1, DType.FLOAT32, Device.CPU), "Tensor.arange"));
        c.add(new Case("arange to infinity", IAE, () -> Tensor.arange(0, Double.POSITIVE_INFINITY, 1, DType.FLOAT32, Device.CPU),
                "Tensor.arange"));
        c.add(new Case("eye negative n", IAE, () -> Tensor.eye(-1, DType.FLOAT32, Device.CPU), "Tensor.eye"));
        c.add(new Case("randn negative size", IAE, () -> Tensor.randn(new Generator(1), new long[] {-2}, DType.FLOAT32, Device.CPU),
                "Tensor.randn"));
        c.add(new Case("randn too many elements", IAE, () -> Tensor.randn(new Generator(1), new long[] {1L << 20, 1L << 20},
                DType.FLOAT32, Device.CPU), "Tensor.randn"));
        c.add(new Case("rand negative size", IAE, () -> Tensor.rand(new Generator(1), new long[] {3, -1}, DType.FLOAT32, Device.CPU),
                "Tensor.rand"));
        c.add(new Case("rand too many elements", IAE, () -> Tensor.rand(new Generator(1), new long[] {1L << 36}, DType.FLOAT64,
                Device.CPU), "Tensor.rand"));
        c.add(new Case("randint low = high", IAE, () -> Tensor.randint(new Generator(1), 5, 5, new long[] {3}, Device.CPU),
                "Tensor.randint"));
        c.add(new Case("randint low > high", IAE, () -> Tensor.randint(new Generator(1), 5, 1, new long[] {3}, Device.CPU),
                "Tensor.randint"));
        c.add(new Case("randint negative size", IAE, () -> Tensor.randint(new Generator(1), 0, 5, new long[] {-3}, Device.CPU),
                "Tensor.randint"));

        // allocations libtorch refuses: a TorchException naming the op, not a crash
        c.add(new Case("empty of 4 PiB, more than the machine has", IAE,
                () -> Tensor.empty(new long[] {1L << 50}, DType.FLOAT32, Device.CPU), "Tensor.empty", "GiB"));
        c.add(new Case("zeros of 4 PiB, more than the machine has", IAE, () -> Tensor.zeros(1L << 50), "Tensor.zeros", "GiB"));
        c.add(new Case("ones of 4 PiB, more than the machine has", IAE, () -> Tensor.ones(1L << 25, 1L << 25), "Tensor.ones", "GiB"));
        c.add(new Case("eye of 2^40 x 2^40 (libtorch)", TORCH, () -> Tensor.eye(1L << 40, DType.FLOAT32, Device.CPU), "eye"));
        c.add(new Case("repeatInterleave Long.MAX_VALUE times", IAE, () -> f23.repeatInterleave(Long.MAX_VALUE, 0),
                "repeatInterleave", "2^63"));

        // devices and parsing
        c.add(new Case("Device.parse gpu", IAE, () -> Device.parse("gpu"), "device"));
        c.add(new Case("Device.parse empty", IAE, () -> Device.parse(""), "device"));
        c.add(new Case("Device.parse null", IAE, () -> Device.parse(null), "device"));
        c.add(new Case("Device.parse cuda:", IAE, () -> Device.parse("cuda:"), "device"));
        c.add(new Case("Device.parse cuda:x", IAE, () -> Device.parse("cuda:x"), "device"));
        c.add(new Case("Device.parse cuda:-1", IAE, () -> Device.parse("cuda:-1"), "device"));
        c.add(new Case("Device.parse cpu:1", IAE, () -> Device.parse("cpu:1"), "device"));
        c.add(new Case("Device.cuda(-1)", IAE, () -> Device.cuda(-1), "device index"));
        c.add(new Case("new Device(CPU, 1)", IAE, () -> new Device(Device.Type.CPU, 1), "cpu"));
        c.add(new Case("new Device(null, 0)", IAE, () -> new Device(null, 0), "device"));
        c.add(new Case("DType.parse float33", IAE, () -> DType.parse("float33"), "dtype"));
        c.add(new Case("DType.parse empty", IAE, () -> DType.parse(""), "dtype"));
        c.add(new Case("DType.parse int128", IAE, () -> DType.parse("int128"), "dtype"));
        return c;
    }

    @TestFactory
    @Order(1)
    Stream<DynamicTest> badArguments() {
        return badArgumentCases().stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> expect(c)));
    }

    /** A CUDA device on this CPU-only libtorch: every way of making or moving a tensor there says so. */
    @TestFactory
    @Order(1)
    Stream<DynamicTest> cudaOnCpuBuild() {
        assumeFalse(LibTorch.load().cudaBuild(), "skipped: a CUDA libtorch is loaded (CudaTensorTest covers it)");
        Device gpu = Device.cuda(0);
        assertEquals("cuda:0", gpu.toString());
        assertEquals(gpu, Device.parse("CUDA"));
        assertEquals(Device.cuda(1), Device.parse(" cuda:1 "));
        Generator g = new Generator(7);
        List<Case> cases = List.of(
                new Case("zeros", ISE, () -> Tensor.zeros(new long[] {2}, DType.FLOAT32, gpu)),
                new Case("ones", ISE, () -> Tensor.ones(new long[] {2}, DType.FLOAT32, gpu)),
                new Case("full", ISE, () -> Tensor.full(new long[] {2}, 1, DType.FLOAT32, gpu)),
                new Case("empty", ISE, () -> Tensor.empty(new long[] {2}, DType.FLOAT32, gpu)),
                new Case("eye", ISE, () -> Tensor.eye(2, DType.FLOAT32, gpu)),
                new Case("arange", ISE, () -> Tensor.arange(0, 4, 1, DType.FLOAT32, gpu)),
                new Case("randn", ISE, () -> Tensor.randn(g, new long[] {2}, DType.FLOAT32, gpu)),
                new Case("rand", ISE, () -> Tensor.rand(g, new long[] {2}, DType.FLOAT32, gpu)),
                new Case("randint", ISE, () -> Tensor.randint(g, 0, 3, new long[] {2}, gpu)),
                new Case("to(Device)", ISE, () -> f23.to(gpu)),
                new Case("to(DType, Device)", ISE, () -> f23.to(DType.FLOAT16, gpu)),
                new Case("to(cuda:1)", ISE, () -> f23.to(Device.parse("cuda:1"))));
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.name() + " on cuda", () -> {
            IllegalStateException e = assertThrows(ISE, c.call());
            assertContains(e, "CPU build");
            assertContains(e, "cuda:");
        }));
    }

    // ------------------------------------------------------------------------------------------------ dims out of range

    /** An op taking a dim, applied to the [2, 3] float tensor. */
    private record DimOp(String op, boolean newDim, java.util.function.BiFunction<Tensor, Integer, Object> call) {
    }

    private List<DimOp> dimOps() {
        return List.of(
                new DimOp("size", false, (t, d) -> t.size(d)),
                new DimOp("softmax", false, Tensor::softmax),
                new DimOp("logSoftmax", false, Tensor::logSoftmax),
                new DimOp("sum", false, (t, d) -> t.sum(d, false)),
                new DimOp("mean", false, (t, d) -> t.mean(d, true)),
                new DimOp("max", false, (t, d) -> t.max(d, false)),
                new DimOp("min", false, (t, d) -> t.min(d, false)),
                new DimOp("argmax", false, (t, d) -> t.argmax(d, false)),
                new DimOp("topk", false, (t, d) -> t.topk(1, d, true)),
                new DimOp("split", false, (t, d) -> t.split(1, d)),
                new DimOp("chunk", false, (t, d) -> t.chunk(2, d)),
                new DimOp("repeatInterleave", false, (t, d) -> t.repeatInterleave(2, d)),
                new DimOp("transpose", false, (t, d) -> t.transpose(d, 0)),
                new DimOp("transpose", false, (t, d) -> t.transpose(0, d)),
                new DimOp("permute", false, (t, d) -> t.permute(d, d == 0 || d == -2 ? 1 : 0)),
                new DimOp("narrow", false, (t, d) -> t.narrow(d, 0, 1)),
                new DimOp("slice", false, (t, d) -> t.slice(d, 0, 1, 1)),
                new DimOp("select", false, (t, d) -> t.select(d, 0)),
                new DimOp("indexSelect", false, (t, d) -> t.indexSelect(d, i2)),
                new DimOp("squeeze", false, Tensor::squeeze),
                new DimOp("cat", false, (t, d) -> Tensor.cat(List.of(t, t), d)),
                new DimOp("unsqueeze", true, Tensor::unsqueeze),
                new DimOp("stack", true, (t, d) -> Tensor.stack(List.of(t, t), d)));
    }

    @TestFactory
    @Order(1)
    Stream<DynamicTest> dimsOutOfRange() {
        return dimOps().stream().flatMap(op -> {
            int[] bad = op.newDim() ? new int[] {3, 4, -4, Integer.MAX_VALUE, Integer.MIN_VALUE}
                    : new int[] {2, 3, -3, Integer.MAX_VALUE, Integer.MIN_VALUE};
            int[] good = op.newDim() ? new int[] {0, 2, -3} : new int[] {0, 1, -1, -2};
            Stream<DynamicTest> valid = Arrays.stream(good).mapToObj(d -> DynamicTest.dynamicTest(
                    op.op() + "(dim " + d + ") works", () -> closeAll(op.call().apply(f23, d))));
            Stream<DynamicTest> invalid = Arrays.stream(bad).mapToObj(d -> DynamicTest.dynamicTest(
                    op.op() + "(dim " + d + ") of a 2-d tensor", () -> {
                        IllegalArgumentException e = assertThrows(IAE, () -> closeAll(op.call().apply(f23, d)));
                        assertContains(e, op.op());
                        assertContains(e, "dim");
                    }));
            return Stream.concat(valid, invalid);
        });
    }

    // ------------------------------------------------------------------------------------------------ closed inputs

    /** An op over {@code arity} tensor inputs, and how to make a valid set of them. */
    private record InputOp(String name, Supplier<Tensor[]> inputs, Function<Tensor[], Object> call) {
    }

    private static Tensor[] ts(Tensor... t) {
        return t;
    }

    private static Tensor pos23() {
        return Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
    }

    private static Tensor mask23() {
        return Tensor.of(new boolean[] {true, false, true, false, true, false}, 2, 3);
    }

    private List<InputOp> inputOps() {
        List<InputOp> ops = new ArrayList<>();
        Supplier<Tensor[]> one = () -> ts(pos23());
        Supplier<Tensor[]> two = () -> ts(pos23(), pos23());
        ops.add(new InputOp("matmul", () -> ts(pos23(), Tensor.ones(3, 4)), t -> t[0].matmul(t[1])));
        ops.add(new InputOp("linear", () -> ts(pos23(), Tensor.ones(4, 3), Tensor.ones(4)), t -> t[0].linear(t[1], t[2])));
        ops.add(new InputOp("bmm", () -> ts(Tensor.ones(2, 2, 3), Tensor.ones(2, 3, 4)), t -> t[0].bmm(t[1])));
        ops.add(new InputOp("einsum", () -> ts(pos23(), Tensor.ones(3, 4)), t -> Tensor.einsum("ij,jk->ik", t[0], t[1])));
        ops.add(new InputOp("add", two, t -> t[0].add(t[1])));
        ops.add(new InputOp("sub", two, t -> t[0].sub(t[1])));
        ops.add(new InputOp("mul", two, t -> t[0].mul(t[1])));
        ops.add(new InputOp("div", two, t -> t[0].div(t[1])));
        ops.add(new InputOp("add(scalar)", one, t -> t[0].add(2.0)));
        ops.add(new InputOp("sub(scalar)", one, t -> t[0].sub(2.0)));
        ops.add(new InputOp("mul(scalar)", one, t -> t[0].mul(2.0)));
        ops.add(new InputOp("div(scalar)", one, t -> t[0].div(2.0)));
        ops.add(new InputOp("pow", one, t -> t[0].pow(2.0)));
        ops.add(new InputOp("neg", one, t -> t[0].neg()));
        ops.add(new InputOp("exp", one, t -> t[0].exp()));
        ops.add(new InputOp("log", one, t -> t[0].log()));
        ops.add(new InputOp("sqrt", one, t -> t[0].sqrt()));
        ops.add(new InputOp("rsqrt", one, t -> t[0].rsqrt()));
        ops.add(new InputOp("abs", one, t -> t[0].abs()));
        ops.add(new InputOp("tanh", one, t -> t[0].tanh()));
        ops.add(new InputOp("sigmoid", one, t -> t[0].sigmoid()));
        ops.add(new InputOp("relu", one, t -> t[0].relu()));
        ops.add(new InputOp("silu", one, t -> t[0].silu()));
        ops.add(new InputOp("cos", one, t -> t[0].cos()));
        ops.add(new InputOp("sin", one, t -> t[0].sin()));
        ops.add(new InputOp("gelu", one, t -> t[0].gelu()));
        ops.add(new InputOp("gelu(tanh)", one, t -> t[0].gelu(true)));
        ops.add(new InputOp("softmax", one, t -> t[0].softmax(-1)));
        ops.add(new InputOp("logSoftmax", one, t -> t[0].logSoftmax(-1)));
        ops.add(new InputOp("layerNorm", () -> ts(pos23(), Tensor.ones(3), Tensor.zeros(3)), t -> t[0].layerNorm(t[1], t[2], 1e-5)));
        ops.add(new InputOp("rmsNorm", () -> ts(pos23(), Tensor.ones(3)), t -> t[0].rmsNorm(t[1], 1e-6)));
        ops.add(new InputOp("embedding", () -> ts(pos23(), Tensor.of(new long[] {1, 0, 1}, 3)), t -> t[0].embedding(t[1])));
        ops.add(new InputOp("cat", two, t -> Tensor.cat(List.of(t[0], t[1]), 0)));
        ops.add(new InputOp("stack", two, t -> Tensor.stack(List.of(t[0], t[1]), 0)));
        ops.add(new InputOp("split", one, t -> t[0].split(1, 0)));
        ops.add(new InputOp("chunk", one, t -> t[0].chunk(3, 1)));
        ops.add(new InputOp("where", () -> ts(pos23(), mask23(), pos23()), t -> t[0].where(t[1], t[2])));
        ops.add(new InputOp("maskedFill", () -> ts(pos23(), mask23()), t -> t[0].maskedFill(t[1], -1)));
        ops.add(new InputOp("tril", one, t -> t[0].tril(0)));
        ops.add(new InputOp("triu", one, t -> t[0].triu(1)));
        ops.add(new InputOp("sum", one, t -> t[0].sum()));
        ops.add(new InputOp("sum(dim)", one, t -> t[0].sum(1, false)));
        ops.add(new InputOp("mean", one, t -> t[0].mean()));
        ops.add(new InputOp("mean(dim)", one, t -> t[0].mean(0, true)));
        ops.add(new InputOp("max", one, t -> t[0].max()));
        ops.add(new InputOp("max(dim)", one, t -> t[0].max(1, false)));
        ops.add(new InputOp("min", one, t -> t[0].min()));
        ops.add(new InputOp("min(dim)", one, t -> t[0].min(1, false)));
        ops.add(new InputOp("argmax", one, t -> t[0].argmax(1, false)));
        ops.add(new InputOp("topk", one, t -> t[0].topk(2, 1, true)));
        ops.add(new InputOp("norm", one, t -> t[0].norm()));
        ops.add(new InputOp("norm(dim)", one, t -> t[0].norm(1, false)));
        ops.add(new InputOp("repeatInterleave", one, t -> t[0].repeatInterleave(2, 0)));
        ops.add(new InputOp("scaledDotProductAttention", () -> ts(pos23(), pos23(), pos23(), Tensor.of(new boolean[] {true,
                false, true, true}, 2, 2)), t -> Tensor.scaledDotProductAttention(t[0], t[1], t[2], t[3], false, null)));
        ops.add(new InputOp("svd", () -> ts(Tensor.of(new float[] {4, 1, 0, 1, 3, 1, 0, 1, 2}, 3, 3)), t -> t[0].svd()));
        ops.add(new InputOp("eigh", () -> ts(Tensor.of(new float[] {4, 1, 0, 1, 3, 1, 0, 1, 2}, 3, 3)), t -> t[0].eigh()));
        ops.add(new InputOp("cholesky", () -> ts(Tensor.of(new float[] {4, 1, 0, 1, 3, 1, 0, 1, 2}, 3, 3)), t -> t[0].cholesky()));
        ops.add(new InputOp("norm(dims)", one, t -> t[0].norm(new int[] {0, 1}, false)));
        ops.add(new InputOp("eigvals", () -> ts(Tensor.of(new float[] {2, 1, 1, 3}, 2, 2)), t -> t[0].eigvals()));
        ops.add(new InputOp("viewAsReal", () -> {
            try (Tensor m = Tensor.of(new float[] {2, 1, 1, 3}, 2, 2)) {
                return ts(m.eigvals());
            }
        }, t -> t[0].viewAsReal()));
        ops.add(new InputOp("allclose", two, t -> t[0].allclose(t[1], 1e-5, 1e-8)));
        ops.add(new InputOp("reshape", one, t -> t[0].reshape(3, 2)));
        ops.add(new InputOp("view", one, t -> t[0].view(-1)));
        ops.add(new InputOp("permute", one, t -> t[0].permute(1, 0)));
        ops.add(new InputOp("transpose", one, t -> t[0].transpose(0, 1)));
        ops.add(new InputOp("narrow", one, t -> t[0].narrow(1, 1, 2)));
        ops.add(new InputOp("slice", one, t -> t[0].slice(1, 0, 3, 2)));
        ops.add(new InputOp("select", one, t -> t[0].select(0, 1)));
        ops.add(new InputOp("indexSelect", () -> ts(pos23(), Tensor.of(new long[] {2, 0}, 2)), t -> t[0].indexSelect(1, t[1])));
        ops.add(new InputOp("unsqueeze", one, t -> t[0].unsqueeze(0)));
        ops.add(new InputOp("squeeze", () -> ts(Tensor.ones(1, 3)), t -> t[0].squeeze(0)));
        ops.add(new InputOp("expand", () -> ts(Tensor.ones(1, 3)), t -> t[0].expand(4, -1)));
        ops.add(new InputOp("contiguous", one, t -> t[0].contiguous()));
        ops.add(new InputOp("to(DType)", one, t -> t[0].to(DType.FLOAT64)));
        ops.add(new InputOp("to(Device)", one, t -> t[0].to(Device.CPU)));
        ops.add(new InputOp("copy", one, t -> t[0].copy()));
        ops.add(new InputOp("item", () -> ts(Tensor.of(new float[] {3}, 1)), t -> t[0].item()));
        ops.add(new InputOp("itemLong", () -> ts(Tensor.of(new long[] {3})), t -> t[0].itemLong()));
        ops.add(new InputOp("itemBoolean", () -> ts(Tensor.of(new boolean[] {true})), t -> t[0].itemBoolean()));
        ops.add(new InputOp("toFloatArray", one, t -> t[0].toFloatArray()));
        ops.add(new InputOp("toDoubleArray", one, t -> t[0].toDoubleArray()));
        ops.add(new InputOp("toLongArray", one, t -> t[0].toLongArray()));
        ops.add(new InputOp("toIntArray", one, t -> t[0].toIntArray()));
        ops.add(new InputOp("toBooleanArray", one, t -> t[0].toBooleanArray()));
        ops.add(new InputOp("asSegment", one, t -> t[0].asSegment()));
        ops.add(new InputOp("dataAddress", one, t -> t[0].dataAddress()));
        ops.add(new InputOp("isContiguous", one, t -> t[0].isContiguous()));
        return ops;
    }

    /**
     * Ops whose closed-input check with cached metadata once crashed the JVM (the freed handle reached libtorch): checked
     * in a child JVM by {@link #binaryOpsOnClosedTensorThrow()} and {@link #normOfClosedTensorThrows()}, so that a
     * regression fails those tests instead of killing the test run.
     */
    private static boolean crashesWithCachedMeta(String op) {
        return List.of("add", "sub", "mul", "norm", "norm(dim)").contains(op);
    }

    /**
     * Each op with each of its tensor inputs closed, once with the input's metadata already read (as after any earlier
     * use) and once fresh: an IllegalStateException naming that tensor. Each op first runs once on open inputs, so a
     * broken table entry fails rather than passing for the wrong reason.
     */
    @TestFactory
    @Order(2)
    Stream<DynamicTest> closedInputs() {
        return inputOps().stream().flatMap(op -> {
            Tensor[] sample = op.inputs().get();
            int arity = sample.length;
            closeAll(List.of(sample));
            Stream<DynamicTest> works = Stream.of(DynamicTest.dynamicTest(op.name() + " on open inputs works", () -> {
                Tensor[] in = op.inputs().get();
                try {
                    closeAll(op.call().apply(in));
                } finally {
                    closeAll(List.of(in));
                }
            }));
            Stream<DynamicTest> closed = IntStream.range(0, arity).boxed().flatMap(i -> Stream.of(true, false)
                    .filter(cached -> !(cached && crashesWithCachedMeta(op.name())))
                    .map(cached -> DynamicTest.dynamicTest(op.name() + " with input " + i + " closed"
                            + (cached ? "" : " (metadata never read)"), () -> {
                        Tensor[] in = op.inputs().get();
                        try {
                            if (!cached) {
                                Tensor fresh = in[i].mul(1.0); // a new handle whose metadata nobody has read
                                in[i].close();
                                in[i] = fresh;
                            }
                            in[i].close();
                            assertTrue(in[i].isClosed());
                            String name = closedName(in[i]);
                            IllegalStateException e = assertThrows(ISE, () -> closeAll(op.call().apply(in)));
                            assertContains(e, name);
                            assertContains(e, "closed");
                        } finally {
                            closeAll(List.of(in));
                        }
                    })));
            return Stream.concat(works, closed);
        });
    }

    /** The id a closed tensor's messages use, from its toString "Tensor[closed ID]". */
    private static String closedName(Tensor t) {
        String s = t.toString();
        assertTrue(s.startsWith("Tensor[closed 0x"), s);
        return s.substring("Tensor[closed ".length(), s.length() - 1);
    }

    @Test
    @Order(2)
    void closingTwiceIsHarmlessAndToStringSaysClosed() {
        Tensor t = pos23();
        t.close();
        t.close();
        assertTrue(t.isClosed());
        assertTrue(t.toString().startsWith("Tensor[closed 0x"), t.toString());
        assertTrue(t.toString().contains("float32[2, 3]"), t.toString());
    }

    // ------------------------------------------------------------------------------------------------ libtorch's rejections

    /**
     * Mistakes that once reached libtorch (a TorchException) and are now caught in Java with the documented
     * IllegalArgumentException; see {@link #incompatibleShapesAndDtypesAreIllegalArguments()}.
     */
    private List<Case> reachingLibtorch() {
        return List.of(
                new Case("expand [2, 3] to [4, 3]", IAE, () -> f23.expand(4, 3), "expand"),
                new Case("expand to a negative size", IAE, () -> f23.expand(-2, 3), "expand"),
                new Case("view of a transposed tensor as 1-d", IAE, () -> f23.transpose(0, 1).view(-1), "view"),
                new Case("allclose float32 with float64", IAE, () -> f23.allclose(d23, 1e-5, 1e-8), "allclose"),
                new Case("layerNorm float64 weight on float32 input", IAE, () -> f23.layerNorm(d4.narrow(0, 0, 3), null, 1e-5),
                        "layerNorm", "layer_norm"),
                new Case("where condition and other do not broadcast", IAE,
                        () -> f1.where(b2, f3), "where"),
                new Case("sdpa mask that does not broadcast", IAE,
                        () -> Tensor.scaledDotProductAttention(f23, f23, f23, Tensor.ones(new long[] {5}, DType.BOOL, Device.CPU),
                                false, null), "scaledDotProductAttention", "scaled_dot_product_attention"),
                new Case("sdpa int64 mask", IAE, () -> Tensor.scaledDotProductAttention(f23, f23, f23, i2, false, null),
                        "scaledDotProductAttention", "scaled_dot_product_attention"),
                new Case("cat of 0-d tensors", IAE, () -> Tensor.cat(List.of(s0, s0), 0), "cat"));
    }

    // ------------------------------------------------------------------------------------------------ still alive

    @Test
    @Order(Integer.MAX_VALUE)
    void jvmStillWorksAfterAllTheErrors() {
        try (Tensor a = Tensor.arange(0, 12, 1, DType.FLOAT32, Device.CPU);
             Tensor m = a.reshape(3, 4);
             Tensor p = m.matmul(m.transpose(0, 1));
             Tensor s = p.softmax(1);
             Tensor total = s.sum()) {
            // rows of m are [0..3], [4..7], [8..11]: m mᵀ = [[14, 38, 62], [38, 126, 214], [62, 214, 366]]
            assertArrayEquals(new float[] {14, 38, 62, 38, 126, 214, 62, 214, 366}, p.toFloatArray());
            assertEquals(3.0, total.item(), 1e-5);
        }
        for (Tensor f : fixtures) {
            assertFalse(f.isClosed(), "a fixture was closed by a failing call: " + f);
        }
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, f23.toFloatArray());
    }

    // ------------------------------------------------------------------------------------------------ bugs

    /** Was a JVM crash (SIGSEGV in aoti_torch_cpu_add_Tensor): add/sub/mul(Tensor) passed a closed tensor's raw handle. */
    @Test
    @Order(2)
    void binaryOpsOnClosedTensorThrow() {
        Child.expectInFreshJvm("binaryOpsOnClosedTensor");
    }

    /** Was a JVM crash (SIGSEGV in aoti_torch_cpu_mul_Tensor): norm() of a closed tensor reached mul(Tensor). */
    @Test
    @Order(2)
    void normOfClosedTensorThrows() {
        Child.expectInFreshJvm("normOfClosedTensor");
    }

    /**
     * Was: with Tensor.ones as the JVM's first call libtorch was not loaded yet, giving ExceptionInInitializerError
     * "Symbol not found: torch_new_list_reserve_size" and NoClassDefFoundError for every list-taking op afterwards.
     */
    @Test
    @Order(2)
    void firstCallOfTheJvmCanBeAnyFactory() {
        Child.expectInFreshJvm("firstCallIsOnes");
    }

    @Test
    void metadataOfClosedTensorThrows() {
        Tensor t = pos23();
        t.close();
        String name = closedName(t);
        List<Executable> reads = List.of(t::shape, t::dim, t::numel, t::dtype, t::device, () -> t.size(0), t::strides);
        for (Executable read : reads) {
            assertContains(assertThrows(ISE, read), name);
        }
    }

    @Test
    void sizeOfAZeroDimTensorNamesTheOp() {
        Throwable e = assertThrows(RuntimeException.class, () -> s0.size(0));
        assertTrue(e instanceof IllegalArgumentException || e instanceof IndexOutOfBoundsException, e.toString());
        assertFalse(e instanceof ArrayIndexOutOfBoundsException, e.toString());
        assertMentionsAny(e, "size");
    }

    @Test
    void overflowingShapeIsAnIllegalArgument() {
        List<Case> cases = List.of(
                new Case("zeros", IAE, () -> Tensor.zeros(Long.MAX_VALUE, 4), "Tensor.zeros"),
                new Case("ones", IAE, () -> Tensor.ones(1L << 40, 1L << 40), "Tensor.ones"),
                new Case("empty", IAE, () -> Tensor.empty(new long[] {1L << 62, 8}, DType.FLOAT32, Device.CPU), "Tensor.empty"),
                new Case("of", IAE, () -> Tensor.of(new float[4], Long.MAX_VALUE, 2), "Tensor.of"));
        for (Case c : cases) {
            expect(c);
        }
    }

    @Test
    void narrowWithHugeLengthIsOutOfBounds() {
        expect(new Case("narrow", IOOBE, () -> f23.narrow(1, 1, Long.MAX_VALUE), "narrow"));
    }

    @Test
    void messagesNameTheOpCalled() {
        List<Case> cases = List.of(
                new Case("full negative size", IAE, () -> Tensor.full(new long[] {-1}, 1, DType.FLOAT32, Device.CPU), "Tensor.full"),
                new Case("norm dim out of range", IAE, () -> f23.norm(2, false), "norm"),
                new Case("toFloatArray of complex", IAE, () -> c2.toFloatArray(), "toFloatArray"),
                new Case("toDoubleArray of complex", IAE, () -> c2.toDoubleArray(), "toDoubleArray"),
                new Case("toLongArray of complex", IAE, () -> c2.toLongArray(), "toLongArray"),
                new Case("toIntArray of complex", IAE, () -> c2.toIntArray(), "toIntArray"),
                new Case("toBooleanArray of complex", IAE, () -> c2.toBooleanArray(), "toBooleanArray"));
        for (Case c : cases) {
            expect(c);
        }
    }

    @Test
    void incompatibleShapesAndDtypesAreIllegalArguments() {
        for (Case c : reachingLibtorch()) {
            expect(c);
        }
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /**
     * Scenarios that crash the JVM (or need a fresh one) run in a child JVM, so that a crash fails one test instead of
     * killing the whole run. A scenario prints OK when the library behaves as documented.
     */
    static final class Child {
        private Child() {
        }

        /** Runs {@code scenario} in a fresh JVM and fails unless it prints OK and exits 0. */
        static void expectInFreshJvm(String scenario) {
            try {
                java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("arrakis-child");
                String out = ChildJvm.of(Child.class, scenario).jvmOption("-XX:ErrorFile=" + dir.resolve("hs_err_pid%p.log"))
                        .directory(dir).run();
                assertTrue(out.contains("\nOK " + scenario), "scenario " + scenario + " did not print OK:\n" + out);
                java.nio.file.Files.deleteIfExists(dir); // empty when the scenario passed
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        public static void main(String[] args) {
            String scenario = args[0];
            System.out.println();
            switch (scenario) {
                case "firstCallIsOnes" -> {
                    try (Tensor ones = Tensor.ones(2, 2); Tensor s = ones.sum(); Tensor r = ones.reshape(4)) {
                        check(s.item() == 4.0 && r.dim() == 1, "ones(2, 2) gave " + ones);
                    }
                }
                case "binaryOpsOnClosedTensor" -> {
                    List<Function<Tensor[], Object>> ops = List.of(t -> t[0].add(t[1]), t -> t[0].sub(t[1]), t -> t[0].mul(t[1]));
                    for (Function<Tensor[], Object> op : ops) {
                        for (int closed = 0; closed < 2; closed++) {
                            Tensor[] in = {pos23(), pos23()};
                            in[closed].shape(); // metadata cached, as after any earlier use
                            in[closed].close();
                            expectClosed(in[closed], () -> closeAll(op.apply(in)));
                            closeAll(List.of(in));
                        }
                    }
                }
                case "normOfClosedTensor" -> {
                    Tensor t = pos23();
                    t.close();
                    expectClosed(t, t::norm);
                    expectClosed(t, () -> t.norm(1, false));
                }
                case "asSegmentAfterArenaCloses" -> {
                    Arena arena = Arena.ofConfined();
                    MemorySegment seg = arena.allocate(64L << 20, 64); // unmapped when freed
                    Tensor t = Tensor.fromSegment(seg, DType.FLOAT32, 16L << 20);
                    MemorySegment view = t.asSegment();
                    arena.close();
                    check(!view.scope().isAlive(), "asSegment() of a fromSegment tensor is still alive after its arena closed");
                    try {
                        view.getAtIndex(ValueLayout.JAVA_FLOAT, 1000);
                        throw new AssertionError("read freed memory through asSegment()");
                    } catch (IllegalStateException expected) {
                        // as documented
                    }
                }
                case "binaryOpAfterArenaCloses" -> {
                    Arena arena = Arena.ofConfined();
                    MemorySegment seg = arena.allocate(64L << 20, 64);
                    Tensor t = Tensor.fromSegment(seg, DType.FLOAT32, 16L << 20);
                    Tensor other = Tensor.ones(1);
                    t.shape();
                    arena.close();
                    for (Function<Tensor[], Object> op : List.<Function<Tensor[], Object>>of(x -> x[0].add(x[1]),
                            x -> x[1].add(x[0]), x -> x[0].sub(x[1]), x -> x[1].mul(x[0]))) {
                        try {
                            closeAll(op.apply(new Tensor[] {t, other}));
                            throw new AssertionError("a binary op read the memory of a closed arena without an exception");
                        } catch (IllegalStateException expected) {
                            check(expected.getMessage().contains("arena"), expected.getMessage());
                        }
                    }
                }
                case "einsumViewAfterArenaCloses" -> {
                    Arena arena = Arena.ofConfined();
                    MemorySegment seg = arena.allocate(64L << 20, 64);
                    Tensor t = Tensor.fromSegment(seg, DType.FLOAT32, 4096, 4096);
                    // one operand, nothing summed: libtorch's einsum returns views of it
                    List<Tensor> views = List.of(Tensor.einsum("ij->ji", t), Tensor.einsum("ij->ij", t),
                            Tensor.einsum("ii->i", t));
                    arena.close();
                    for (Tensor view : views) {
                        try {
                            closeAll(view.sum());
                            throw new AssertionError("an einsum view read the memory of a closed arena without an exception");
                        } catch (IllegalStateException expected) {
                            check(expected.getMessage().contains("arena"), expected.getMessage());
                        }
                    }
                }
                case "viewOfAnUnreachableTensorsSegment" -> {
                    // the source tensor is dropped at once: only its segment, and the tensor over it, stay
                    Thread collector = Thread.ofPlatform().daemon().start(() -> {
                        while (true) {
                            System.gc();
                            Thread.onSpinWait();
                        }
                    });
                    for (int round = 0; round < 200; round++) {
                        Tensor view = Tensor.fromSegment(Tensor.ones(new long[] {1L << 20}, DType.FLOAT32, Device.CPU)
                                .asSegment(), DType.FLOAT32, 1L << 20);
                        try (Tensor doubled = view.mul(2.0); Tensor s = doubled.sum()) {
                            check(s.item() == 2.0 * (1L << 20), "round " + round + ": the sum is " + s.item());
                        }
                        view.close();
                    }
                    collector.interrupt();
                }
                case "foreignThreadOnAConfinedArenasTensor" -> {
                    Arena arena = Arena.ofConfined();
                    Tensor t = Tensor.fromSegment(arena.allocate(64L << 20, 64), DType.FLOAT32, 16L << 20);
                    Throwable[] got = new Throwable[1];
                    Thread other = Thread.ofPlatform().start(() -> {
                        try {
                            closeAll(t.mul(2.0));
                        } catch (Throwable e) {
                            got[0] = e;
                        }
                    });
                    try {
                        other.join();
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                    check(got[0] instanceof WrongThreadException && got[0].getMessage().contains("confined"),
                            "another thread used a confined arena's tensor: " + got[0]);
                    arena.close();
                }
                case "closeWhileAnotherThreadComputes" -> {
                    // each op reads y while the main thread closes it: the op finishes, or says y is closed
                    List<Function<Tensor[], Tensor>> ops = List.of(t -> t[0].add(t[1]), t -> t[0].mul(t[1]),
                            t -> t[1].mul(2.0), t -> t[1].copy(), t -> t[0].matmul(t[1]), t -> t[1].sum(),
                            t -> t[1].transpose(0, 1).contiguous(), t -> Tensor.einsum("ij,jk->ik", t[0], t[1]),
                            t -> Tensor.of(new float[] {(float) t[1].narrow(0, 0, 1).sum().item()}, 1));
                    for (int round = 0; round < 40; round++) {
                        Function<Tensor[], Tensor> op = ops.get(round % ops.size());
                        Tensor x = Tensor.ones(new long[] {1024, 1024}, DType.FLOAT32, Device.CPU);
                        Tensor y = Tensor.ones(new long[] {1024, 1024}, DType.FLOAT32, Device.CPU);
                        Throwable[] failure = new Throwable[1];
                        Thread worker = Thread.ofPlatform().start(() -> {
                            try {
                                for (int i = 0; i < 10_000; i++) {
                                    op.apply(new Tensor[] {x, y}).close();
                                }
                            } catch (IllegalStateException closed) {
                                if (!closed.getMessage().contains("closed")) {
                                    failure[0] = closed;
                                }
                            } catch (Throwable e) {
                                failure[0] = e;
                            }
                        });
                        try {
                            Thread.sleep(1 + round % 4);
                            y.close();
                            worker.join();
                        } catch (InterruptedException e) {
                            throw new AssertionError(e);
                        }
                        check(failure[0] == null, "round " + round + ": " + failure[0]);
                        x.close();
                    }
                }
                default -> throw new IllegalArgumentException(scenario);
            }
            try (Tensor a = Tensor.ones(3); Tensor s = a.sum()) {
                check(s.item() == 3.0, "the JVM no longer computes");
            }
            System.out.println("OK " + scenario);
        }

        private static void expectClosed(Tensor closed, Executable use) {
            String name = closedName(closed);
            try {
                use.execute();
            } catch (IllegalStateException e) {
                check(e.getMessage().contains(name), e.getMessage());
                return;
            } catch (Throwable e) {
                throw new AssertionError("expected IllegalStateException naming " + name + ", got " + e, e);
            }
            throw new AssertionError("a closed tensor was used without an exception");
        }

        private static void check(boolean ok, String message) {
            if (!ok) {
                throw new AssertionError(message);
            }
        }
    }

    private static void expect(Case c) {
        Throwable e = assertThrows(c.expected(), c.call(), c.name());
        assertEquals(c.expected(), e.getClass(), () -> c.name() + ": " + e);
        assertMentionsAny(e, c.mentions());
    }

    private static void assertMentionsAny(Throwable e, String... words) {
        assertNotNull(e.getMessage(), () -> "no message: " + e);
        String m = e.getMessage().toLowerCase(Locale.ROOT);
        for (String w : words) {
            if (m.contains(w.toLowerCase(Locale.ROOT))) {
                return;
            }
        }
        fail("message of " + e.getClass().getSimpleName() + " names none of " + Arrays.toString(words) + ": " + e.getMessage());
    }

    private static void assertContains(Throwable e, String word) {
        assertMentionsAny(e, word);
    }

    /** Closes a result: a tensor, a list of them, or nothing for other values. */
    static void closeAll(Object result) {
        if (result instanceof Tensor t) {
            t.close();
        } else if (result instanceof List<?> list) {
            for (Object o : list) {
                closeAll(o);
            }
        }
    }
}

package io.arrakis.torch;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A linear layer's weight {@code [out, in]} for repeated products, {@code x · weightᵀ + bias} as
 * {@link Tensor#linear}. On the CPU, float32 products with weights whose sizes are both multiples of 64, and bfloat16
 * products where the CPU has AVX-512, read a copy of the weight in oneDNN's own blocked layout (see
 * {@code OneDnnLinear}), made at the first product and freed by {@link #close}. The copy costs the weight's memory
 * once more, so it is not made where it would leave less than an eighth of the memory this process may use, or less
 * than its own size, available ({@link HostMemory}), and it is used only once products of a few row counts through it
 * have matched products through the weight as it is; otherwise the products read the weight as it is. The copy is laid
 * out for the number of threads of the first product (all of libtorch's, or fewer for a small one), and every product
 * through it runs on that many. The weight must not change while this is open, as the copy would not follow it.
 * {@code -Darrakis.packedWeights=off} or {@code ARRAKIS_PACKED_WEIGHTS=off} makes no copies.
 */
public final class LinearWeight implements AutoCloseable {
    /** The out-parameter slot this class reads libtorch's thread count into (OneDnnLinear uses the first three). */
    private static final long TEAM_SLOT = 24;
    /** Rows of the products a packed copy must get right before it is used. */
    private static final long[] CHECKED_ROWS = {1, 17};
    /**
     * The most a checked float32 product through the packed copy may differ from one through the weight, relative to
     * the largest value; libtorch's wrong copies are off by a third or more.
     */
    private static final double CHECK_TOLERANCE = 1e-4;
    /** The same in bfloat16: two roundings to 8 significant bits, each up to 2^-8 of a value, apart. */
    private static final double CHECK_TOLERANCE_BFLOAT16 = 2e-2;

    private final Tensor weight;
    private final Object lock = new Object();
    private volatile Packed packed;
    private volatile boolean decided; // whether the packed copy was made or found not to fit

    /**
     * A packed copy and the number of threads it was packed for: oneDNN lays a weight out for the team that packs it
     * and reads it as laid out for the team that multiplies, so every product through it runs on that team.
     */
    private record Packed(Tensor copy, int team) {
    }

    /** Products with {@code weight [out, in]}, which stays its owner's. */
    public LinearWeight(Tensor weight) {
        java.util.Objects.requireNonNull(weight, "a linear weight must not be null");
        if (weight.dim() != 2) {
            throw new IllegalArgumentException("a linear weight must be [out, in], got " + weight.describe());
        }
        this.weight = weight;
    }

    /** The weight {@code [out, in]}. */
    public Tensor weight() {
        return weight;
    }

    /** {@code x · weightᵀ + bias}; {@code bias} may be null. */
    public Tensor apply(Tensor x, Tensor bias) {
        return product(x, bias, OneDnnLinear.PostOp.NONE);
    }

    /** {@code gelu(x · weightᵀ + bias)}, as {@link Tensor#linearGelu}. */
    public Tensor applyGelu(Tensor x, Tensor bias, boolean tanhApproximation) {
        return product(x, bias, tanhApproximation ? OneDnnLinear.PostOp.GELU_TANH : OneDnnLinear.PostOp.GELU);
    }

    /** Whether products now read a packed copy of the weight. */
    public boolean isPacked() {
        return packed != null;
    }

    private Tensor product(Tensor x, Tensor bias, OneDnnLinear.PostOp post) {
        boolean oneDnnPlain = OneDnnLinear.covers(x, weight, bias);
        if (oneDnnPlain || OneDnnLinear.coversPacked(x, weight, bias)) {
            x.checkLinear(weight, bias);
            Packed p = packedFor(x.numel() / x.size(-1));
            if (p != null) {
                int team = SmallOps.exactTeam(p.team(), Native.out().asSlice(TEAM_SLOT, 8));
                try {
                    return OneDnnLinear.linear(x, weight, p.copy(), bias, post);
                } finally {
                    SmallOps.restore(team);
                }
            }
            if (oneDnnPlain) {
                return OneDnnLinear.linear(x, weight, null, bias, post);
            }
        }
        // libtorch's route, which checks the operands itself
        return post == OneDnnLinear.PostOp.NONE ? x.linear(weight, bias)
                : x.linearGelu(weight, bias, post == OneDnnLinear.PostOp.GELU_TANH);
    }

    /**
     * The packed copy, made now if this is the first product, for about {@code rows} rows on the team such a product
     * gets; null where none.
     */
    private Packed packedFor(long rows) {
        if (!LibTorch.packedWeights() || !SmallOps.available()
                || !OneDnnLinear.packs(weight.size(0), weight.size(1), weight.dtype())) {
            return null;
        }
        if (decided) {
            return packed;
        }
        synchronized (lock) {
            if (!decided) {
                long bytes = weight.numel() * weight.dtype().byteSize();
                if (roomFor(bytes, HostMemory.availableBytes(), HostMemory.usableBytes())) {
                    MemorySegment scratch = Native.out().asSlice(TEAM_SLOT, 8);
                    int team = SmallOps.fittedTeam(rows * weight.size(0), SmallOps.LINEAR_OUTPUT_GRAIN, scratch);
                    int restore = SmallOps.exactTeam(team, scratch);
                    try {
                        // owned by this object, not by the scope of the pass that happens to make it
                        Tensor candidate = TensorScope.unscoped(() -> List.of(OneDnnLinear.pack(weight, rows))).getFirst();
                        if (agrees(weight, candidate)) {
                            packed = new Packed(candidate, team);
                        } else {
                            candidate.close();
                        }
                    } finally {
                        SmallOps.restore(restore);
                    }
                }
                decided = true;
            }
            return packed;
        }
    }

    /**
     * Whether a packed copy of {@code bytes} may be made with {@code available} bytes of memory available (0: unknown)
     * out of {@code usable} (0: unknown): the passes need room for their activations too, so an eighth of the usable
     * memory, and at least as much as the copy, must stay available after it.
     */
    static boolean roomFor(long bytes, long available, long usable) {
        return available <= 0 || available - bytes >= Math.max(bytes, usable / 8);
    }

    /**
     * Whether products through {@code candidate}, a packed copy of {@code weight}, match those of {@link Tensor#linear}
     * through the weight, on the calling thread's team as it is.
     */
    static boolean agrees(Tensor weight, Tensor candidate) {
        Generator generator = new Generator(0);
        double tolerance = weight.dtype() == DType.BFLOAT16 ? CHECK_TOLERANCE_BFLOAT16 : CHECK_TOLERANCE;
        try (TensorScope scope = TensorScope.open()) {
            for (long rows : CHECKED_ROWS) {
                Tensor x = Tensor.randn(generator, new long[] {rows, weight.size(1)}, weight.dtype(), weight.device());
                Tensor expected = x.linear(weight, null).to(DType.FLOAT32);
                Tensor actual = OneDnnLinear.linear(x, weight, candidate, null, OneDnnLinear.PostOp.NONE)
                        .to(DType.FLOAT32);
                double scale = expected.abs().max().item();
                if (!(actual.sub(expected).abs().max().item() <= tolerance * scale)) {
                    return false;
                }
            }
            return true;
        }
    }

    /** Frees the packed copy, if one was made; the weight stays its owner's. */
    @Override
    public void close() {
        synchronized (lock) {
            decided = true;
            if (packed != null) {
                packed.copy().close();
                packed = null;
            }
        }
    }
}

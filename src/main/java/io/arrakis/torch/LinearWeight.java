package io.arrakis.torch;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * A linear layer's weight {@code [out, in]} for repeated products, {@code x · weightᵀ + bias} as
 * {@link Tensor#linear}. On the CPU, float32 products with weights whose inputs are a multiple of 64 where the CPU has
 * AVX2, and bfloat16 products where it has AVX-512, read a copy of the weight in oneDNN's own blocked layout (see
 * {@code OneDnnLinear}), freed by {@link #close}. A float32 copy has zero rows added up to a multiple of 64 outputs
 * where few are needed (GPT-2's vocabulary of 50,257 takes 47), and products through it return a view of their first
 * {@code out} columns. oneDNN lays a copy out for the number of threads that multiply
 * through it, so there are up to two: one for products small enough for a single thread, made at the first such
 * product unless the other already exists (small products then read that one), and one for the rest, on all of
 * libtorch's threads, made at the first larger product. Each copy costs the weight's memory once more, so none is made
 * where it would leave less than an eighth of the memory this process may use, or less than its own size, available
 * ({@link HostMemory}), and one is used only once products of a few row counts through it have matched products
 * through the weight as it is; otherwise the products read the weight as it is. The weight must not change while this
 * is open, as the copies would not follow it. {@code -Darrakis.packedWeights=off} or
 * {@code ARRAKIS_PACKED_WEIGHTS=off} makes no copies.
 */
public final class LinearWeight implements AutoCloseable {
    /** The out-parameter slot this class reads libtorch's thread count into (OneDnnLinear uses the first two). */
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
    /** Packed copies by the number of threads they were laid out for; empty where none could be made. */
    private final Map<Integer, Optional<Tensor>> copies = new ConcurrentHashMap<>();
    private boolean closed; // guarded by lock

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

    /**
     * {@code x · weightᵀ + bias}; {@code bias} may be null. Through a packed copy with rows added, the result is a view
     * of the first {@code out} columns of a wider one (not contiguous).
     */
    public Tensor apply(Tensor x, Tensor bias) {
        return product(x, bias, OneDnnLinear.PostOp.NONE);
    }

    /**
     * {@code gelu(x · weightᵀ + bias)}, as {@link Tensor#linear} then {@link Tensor#gelu}: in one product through a
     * packed float32 copy; in narrower dtypes the product is rounded to the dtype before the activation, as an
     * unfused pass (and Hugging Face's) rounds it.
     */
    public Tensor applyGelu(Tensor x, Tensor bias, boolean tanhApproximation) {
        if (x.dtype() != DType.FLOAT32) {
            try (Tensor product = apply(x, bias)) {
                return product.gelu(tanhApproximation);
            }
        }
        return product(x, bias, tanhApproximation ? OneDnnLinear.PostOp.GELU_TANH : OneDnnLinear.PostOp.GELU);
    }

    /** Whether products now read a packed copy of the weight. */
    public boolean isPacked() {
        return copies.values().stream().anyMatch(Optional::isPresent);
    }

    /** The numbers of threads the packed copies made so far are laid out for. */
    Set<Integer> packedTeams() {
        return copies.entrySet().stream().filter(e -> e.getValue().isPresent()).map(Map.Entry::getKey)
                .collect(Collectors.toUnmodifiableSet());
    }

    private Tensor product(Tensor x, Tensor bias, OneDnnLinear.PostOp post) {
        if (OneDnnLinear.covers(x, weight, bias)) {
            x.checkLinear(weight, bias);
            if (packable()) {
                MemorySegment scratch = Native.out().asSlice(TEAM_SLOT, 8);
                long rows = x.numel() / x.size(-1);
                int all = SmallOps.threads(scratch);
                boolean small = SmallOps.cutsTeams()
                        && SmallOps.fitted(all, rows * weight.size(0), SmallOps.LINEAR_OUTPUT_GRAIN) == 1;
                int team = small && (hasCopy(1) || !hasCopy(all)) ? 1 : all;
                Tensor copy = packedFor(rows, team, all);
                // held for the product, or the weight as it is: close() on another thread may free it meanwhile
                Tensor.Held held = copy == null ? null : copy.holdIfOpen();
                if (held != null) {
                    try (held) {
                        int restore = SmallOps.exactTeam(team, all);
                        try {
                            return throughCopy(x, copy, bias, post);
                        } finally {
                            SmallOps.restore(restore);
                        }
                    }
                }
            }
        }
        // libtorch's route, which checks the operands itself
        if (post == OneDnnLinear.PostOp.NONE) {
            return x.linear(weight, bias);
        }
        try (Tensor product = x.linear(weight, bias)) {
            return product.gelu(post == OneDnnLinear.PostOp.GELU_TANH);
        }
    }

    /** The product through a packed copy, narrowed back to this weight's outputs where the copy has more. */
    private Tensor throughCopy(Tensor x, Tensor copy, Tensor bias, OneDnnLinear.PostOp post) {
        long out = weight.size(0);
        long added = OneDnnLinear.packedOutputs(out, weight.dtype()) - out;
        if (added == 0) {
            return OneDnnLinear.linear(x, weight, copy, bias, post);
        }
        try (Tensor zeros = bias == null ? null : Tensor.zeros(new long[] {added}, bias.dtype(), bias.device());
             Tensor extended = bias == null ? null : Tensor.cat(List.of(bias, zeros), 0);
             Tensor full = OneDnnLinear.linear(x, weight, copy, extended, post)) {
            return full.narrow(-1, 0, out);
        }
    }

    private boolean hasCopy(int team) {
        return copies.getOrDefault(team, Optional.empty()).isPresent();
    }

    /** Whether this weight's products may read packed copies. */
    private boolean packable() {
        return LibTorch.packedWeights() && SmallOps.available()
                && OneDnnLinear.packs(weight.size(0), weight.size(1), weight.dtype());
    }

    /**
     * The copy laid out for {@code team} threads, made now for about {@code rows} rows if it is the first; or null.
     * {@code all} is the calling thread's team now.
     */
    private Tensor packedFor(long rows, int team, int all) {
        Optional<Tensor> copy = copies.get(team);
        if (copy != null) {
            return copy.orElse(null);
        }
        synchronized (lock) {
            if (closed) {
                return null;
            }
            copy = copies.get(team);
            if (copy == null) {
                copy = Optional.ofNullable(pack(rows, team, all));
                copies.put(team, copy);
            }
            return copy.orElse(null);
        }
    }

    /** A checked copy packed on {@code team} threads (from {@code all}), or null: no room, or it is wrong. */
    private Tensor pack(long rows, int team, int all) {
        long out = weight.size(0);
        long outputs = OneDnnLinear.packedOutputs(out, weight.dtype());
        long bytes = outputs * weight.size(1) * weight.dtype().byteSize();
        // a weight with rows added is made whole first, and freed once packed
        if (!roomFor(outputs == out ? bytes : 2 * bytes, HostMemory.availableBytes(), HostMemory.usableBytes())) {
            return null;
        }
        int restore = SmallOps.exactTeam(team, all);
        try {
            // owned by this object, not by the scope of the pass that happens to make it
            Tensor candidate = TensorScope.unscoped(() -> {
                if (outputs == out) {
                    return List.of(OneDnnLinear.pack(weight, rows));
                }
                try (Tensor zeroRows = Tensor.zeros(new long[] {outputs - out, weight.size(1)}, weight.dtype(),
                        weight.device()); Tensor whole = Tensor.cat(List.of(weight, zeroRows), 0)) {
                    return List.of(OneDnnLinear.pack(whole, rows));
                }
            }).getFirst();
            if (agrees(weight, candidate)) {
                return candidate;
            }
            candidate.close();
            return null;
        } finally {
            SmallOps.restore(restore);
        }
    }

    /**
     * Whether a packed copy of {@code bytes} may be made with {@code available} bytes of memory available (-1: unknown)
     * out of {@code usable} (0: unknown): the passes need room for their activations too, so an eighth of the usable
     * memory, and at least as much as the copy, must stay available after it.
     */
    static boolean roomFor(long bytes, long available, long usable) {
        return available < 0 || available - bytes >= Math.max(bytes, usable / 8);
    }

    /**
     * Whether products through {@code candidate}, a packed copy of {@code weight}, match those of {@link Tensor#linear}
     * through the weight, on the calling thread's team as it is.
     */
    static boolean agrees(Tensor weight, Tensor candidate) {
        Generator generator = new Generator(0);
        double tolerance = weight.dtype() == DType.BFLOAT16 ? CHECK_TOLERANCE_BFLOAT16 : CHECK_TOLERANCE;
        try (TensorScope scope = TensorScope.open(); Tensor.Held held = candidate.hold()) {
            for (long rows : CHECKED_ROWS) {
                Tensor x = Tensor.randn(generator, new long[] {rows, weight.size(1)}, weight.dtype(), weight.device());
                Tensor expected = x.linear(weight, null).to(DType.FLOAT32);
                Tensor actual = OneDnnLinear.linear(x, weight, candidate, null, OneDnnLinear.PostOp.NONE)
                        .narrow(-1, 0, weight.size(0)).to(DType.FLOAT32);
                double scale = expected.abs().max().item();
                if (!(actual.sub(expected).abs().max().item() <= tolerance * scale)) {
                    return false;
                }
            }
            return true;
        }
    }

    /** Frees the packed copies; the weight stays its owner's, and later products read it as it is. */
    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            copies.values().forEach(copy -> copy.ifPresent(Tensor::close));
            copies.clear();
        }
    }
}

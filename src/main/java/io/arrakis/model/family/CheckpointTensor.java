package io.arrakis.model.family;

import java.util.Arrays;
import java.util.List;

/**
 * One tensor of a Hugging Face checkpoint and where it goes: its name and shape as {@code save_pretrained} writes
 * them, whether it is an {@code nn.Linear} weight ({@code [out, in]}, transposed on loading into the {@code x @ W}
 * layout), and the slots its last dimension fills. A fused tensor fills several: the last dimension is read as
 * {@code [groups, sum of part sizes]} and each part takes its columns of every group, so that {@code [q | k | v]}
 * is one group and GPT-NeoX's per-head {@code [head, q | k | v]} is one group per head.
 *
 * <p>A checkpoint that stores each expert of a mixture of experts as its own tensor names the expert: the tensor
 * fills that expert's slice of its slots, which hold every expert's stacked in expert order.
 *
 * @param shape the shape in the file
 * @param transposed whether loading transposes it ({@code nn.Linear} weights)
 * @param groups how many repetitions of the parts the last dimension holds
 * @param parts the slots filled, with their sizes per group
 * @param expert the expert whose slice of the slots this tensor fills, or -1 when it fills them whole
 * @param swappable whether a file may also store it with its last two dimensions swapped, which loading swaps back
 *     (Qwen3-VL-MoE's fused experts, which {@code transformers} 5 saves in {@code nn.Linear}'s {@code [out, in]}
 *     order where the published files have {@code [in, out]})
 */
public record CheckpointTensor(String name, long[] shape, boolean transposed, int groups, List<Part> parts,
        int expert, boolean swappable) {

    /**
     * A slot and how many columns of each group it takes.
     *
     * @param slot where the columns go
     * @param size columns per group
     */
    public record Part(Slot slot, long size) {
    }

    public CheckpointTensor {
        shape = shape.clone();
        parts = List.copyOf(parts);
        long last = transposed ? shape[0] : shape.length == 0 ? 1 : shape[shape.length - 1]; // a 0-d buffer: one
        long perGroup = parts.stream().mapToLong(Part::size).sum();
        if (transposed && shape.length != 2 || parts.isEmpty() || last != groups * perGroup
                || swappable && (transposed || shape.length < 2)) {
            throw new IllegalStateException(name + ": shape " + Arrays.toString(shape) + " does not hold " + groups
                    + " groups of " + parts);
        }
    }

    /** A tensor that fills its slots whole. */
    public CheckpointTensor(String name, long[] shape, boolean transposed, int groups, List<Part> parts) {
        this(name, shape, transposed, groups, parts, -1, false);
    }

    /** A tensor loaded as stored, into one slot; with no shape, a 0-d buffer. */
    static CheckpointTensor stored(String name, Slot slot, long... shape) {
        return new CheckpointTensor(name, shape, false, 1,
                List.of(new Part(slot, shape.length == 0 ? 1 : shape[shape.length - 1])));
    }

    /** An {@code nn.Linear} weight {@code [out, in]}, into one slot as {@code [in, out]}. */
    static CheckpointTensor linear(String name, Slot slot, long out, long in) {
        return new CheckpointTensor(name, new long[] {out, in}, true, 1, List.of(new Part(slot, out)));
    }

    /** A tensor loaded as stored whose last dimension is split into parts. */
    static CheckpointTensor fusedStored(String name, long[] shape, Part... parts) {
        return new CheckpointTensor(name, shape, false, 1, List.of(parts));
    }

    /** An {@code nn.Linear} weight whose output rows hold {@code groups} repetitions of the parts. */
    static CheckpointTensor fusedLinear(String name, long in, int groups, Part... parts) {
        long out = groups * Arrays.stream(parts).mapToLong(Part::size).sum();
        return new CheckpointTensor(name, new long[] {out, in}, true, groups, List.of(parts));
    }

    /** A vector (a fused bias) holding {@code groups} repetitions of the parts. */
    static CheckpointTensor fusedVector(String name, int groups, Part... parts) {
        long size = groups * Arrays.stream(parts).mapToLong(Part::size).sum();
        return new CheckpointTensor(name, new long[] {size}, false, groups, List.of(parts));
    }

    /** A tensor loaded as stored whose last dimension holds {@code groups} repetitions of the parts. */
    static CheckpointTensor interleaved(String name, long[] shape, int groups, Part... parts) {
        return new CheckpointTensor(name, shape, false, groups, List.of(parts));
    }

    static Part part(Slot slot, long size) {
        return new Part(slot, size);
    }

    /**
     * The number of elements.
     *
     * @return the product of the shape
     * @throws ArithmeticException if it overflows a long
     */
    public long numel() {
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        return n;
    }

    /**
     * The shape in the file.
     *
     * @return a copy
     */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * How a new model initialises this tensor: as its (first) slot.
     *
     * @return the initialisation
     */
    public Slot.Init init() {
        return parts.get(0).slot().init();
    }

    /** This tensor as expert {@code index}'s slice of its slots. */
    CheckpointTensor ofExpert(int index) {
        return new CheckpointTensor(name, shape, transposed, groups, parts, index, swappable);
    }

    /** This tensor, which a file may also store with its last two dimensions swapped. */
    CheckpointTensor orSwapped() {
        return new CheckpointTensor(name, shape, transposed, groups, parts, expert, true);
    }

    /**
     * The shape with its last two dimensions swapped, as a file stores a {@link #swappable} tensor swapped.
     *
     * @return a new array
     */
    public long[] swappedShape() {
        long[] swapped = shape.clone();
        swapped[shape.length - 1] = shape[shape.length - 2];
        swapped[shape.length - 2] = shape[shape.length - 1];
        return swapped;
    }

    CheckpointTensor named(String newName) {
        return new CheckpointTensor(newName, shape, transposed, groups, parts, expert, swappable);
    }
}

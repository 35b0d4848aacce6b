package io.arrakis.model.family;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntPredicate;

/**
 * A family's Hugging Face checkpoint for one configuration ({@code *ForCausalLM}, as {@code save_pretrained} writes
 * it): the tensors outside the blocks, the tensors of each block (the same in every layer), and names a checkpoint
 * may carry that are not parameters of this configuration (a copy of tied embeddings). Loading, random
 * initialisation and the parameter count all read it.
 */
public final class Checkpoint {
    private final String basePrefix;
    private final String layerPrefix;
    private final int layers;
    private final List<CheckpointTensor> global;
    private final List<LayerTensor> perLayer;
    private final List<String> tolerated;
    private final int positionsFrom;
    private final List<String> unread;
    private final long unreadParameters;

    private Checkpoint(Builder b) {
        this.basePrefix = b.basePrefix;
        this.layerPrefix = b.layerPrefix;
        this.layers = b.layers;
        this.global = List.copyOf(b.global);
        this.perLayer = List.copyOf(b.perLayer);
        this.tolerated = List.copyOf(b.tolerated);
        this.positionsFrom = b.positionsFrom;
        this.unread = List.copyOf(b.unread);
        this.unreadParameters = b.unreadParameters;
    }

    /**
     * Starts a description.
     *
     * @param basePrefix the prefix of the base model's tensors ({@code "transformer."}, {@code "model."}); files of
     *     the base model alone ({@code GPT2Model}) store them without it
     * @param layerPrefix the prefix of block {@code %d}'s tensors after the base prefix ({@code "h.%d."})
     * @param layers the number of blocks
     */
    static Builder builder(String basePrefix, String layerPrefix, int layers) {
        return new Builder(basePrefix, layerPrefix, layers);
    }

    /**
     * The prefix of the base model's tensors, which files of the base model alone leave out.
     *
     * @return e.g. {@code "transformer."}
     */
    public String basePrefix() {
        return basePrefix;
    }

    /**
     * Prefixes of tensors a checkpoint may hold that the model does not read (GLM-4.5's multi-token prediction
     * layers after its last block).
     *
     * @return an unmodifiable list of full-name prefixes
     */
    public List<String> unread() {
        return unread;
    }

    /**
     * The row of the learned position table that position 0 reads: the rows ahead of it are stored but never read
     * (OPT's two).
     *
     * @return 0 for most families
     */
    public int positionsFrom() {
        return positionsFrom;
    }

    /**
     * The tensors outside the blocks, with their full names.
     *
     * @return an unmodifiable list
     */
    public List<CheckpointTensor> global() {
        return global;
    }

    /**
     * Block {@code layer}'s tensors, with their full names.
     *
     * @param layer the block index
     * @return a new list
     */
    public List<CheckpointTensor> layer(int layer) {
        String prefix = basePrefix + layerPrefix.formatted(layer);
        List<CheckpointTensor> named = new ArrayList<>(perLayer.size());
        for (LayerTensor t : perLayer) {
            if (t.layers().test(layer)) {
                named.add(t.tensor().named(prefix + t.tensor().name()));
            }
        }
        return named;
    }

    /**
     * Names a checkpoint may hold that are not parameters of this configuration (the unembedding of tied embeddings,
     * used where it differs from the embedding).
     *
     * @return an unmodifiable list
     */
    public List<String> tolerated() {
        return tolerated;
    }

    /**
     * Every tensor by its full name: those outside the blocks, then each block's.
     *
     * @return a new map
     */
    public Map<String, CheckpointTensor> tensors() {
        Map<String, CheckpointTensor> all = new LinkedHashMap<>();
        global.forEach(t -> all.put(t.name(), t));
        for (int i = 0; i < layers; i++) {
            layer(i).forEach(t -> all.put(t.name(), t));
        }
        return all;
    }

    /**
     * The number of parameters: the elements of every tensor, the unembedding counted once when tied, and the
     * parameters of the model the forward pass does not read ({@link Builder#unreadInLayers}).
     *
     * @return the count
     * @throws ArithmeticException if it overflows a long
     */
    public long parameterCount() {
        long total = 0;
        for (LayerTensor t : perLayer) {
            long times = java.util.stream.IntStream.range(0, layers).filter(t.layers()).count();
            total = Math.addExact(total, Math.multiplyExact(t.tensor().numel(), times));
        }
        for (CheckpointTensor t : global) {
            total = Math.addExact(total, t.numel());
        }
        return Math.addExact(total, unreadParameters);
    }

    /** A block tensor and the blocks that have it. */
    private record LayerTensor(CheckpointTensor tensor, IntPredicate layers) {
    }

    /** Collects a family's tensors in the order its modules are declared. */
    static final class Builder {
        private final String basePrefix;
        private final String layerPrefix;
        private final int layers;
        private final List<CheckpointTensor> global = new ArrayList<>();
        private final List<LayerTensor> perLayer = new ArrayList<>();
        private final List<String> tolerated = new ArrayList<>();
        private long unreadParameters;
        private int positionsFrom;
        private final List<String> unread = new ArrayList<>();

        private Builder(String basePrefix, String layerPrefix, int layers) {
            this.basePrefix = basePrefix;
            this.layerPrefix = layerPrefix;
            this.layers = layers;
        }

        /** Tensors of the base model outside the blocks, named after the base prefix. */
        Builder global(CheckpointTensor... tensors) {
            for (CheckpointTensor t : tensors) {
                global.add(t.named(basePrefix + t.name()));
            }
            return this;
        }

        /** Tensors whose full names start with {@code prefix} are in some files but not read. */
        Builder unread(String prefix) {
            unread.add(prefix);
            return this;
        }

        /**
         * A module of the blocks {@code present} accepts, under {@code suffix} after the block's prefix, that the model
         * has but the forward pass does not read (DeepSeek-V3.2's indexer, whose choice is every key within the passes
         * it takes): its tensors are not loaded, and its {@code parameters} per block count in
         * {@link #parameterCount}.
         */
        Builder unreadInLayers(IntPredicate present, String suffix, long parameters) {
            for (int i = 0; i < layers; i++) {
                if (present.test(i)) {
                    unread.add(basePrefix + layerPrefix.formatted(i) + suffix);
                    unreadParameters = Math.addExact(unreadParameters, parameters);
                }
            }
            return this;
        }

        /** Position 0 reads row {@code row} of the learned position table; the rows ahead of it are never read. */
        Builder positionsFrom(int row) {
            positionsFrom = row;
            return this;
        }

        /** Tensors outside the blocks that exist only when {@code present}. */
        Builder globalIf(boolean present, CheckpointTensor... tensors) {
            return present ? global(tensors) : this;
        }

        /** Tensors of every block, named after the block's prefix. */
        Builder layer(CheckpointTensor... tensors) {
            return layerWhere(l -> true, tensors);
        }

        /** Tensors of the blocks {@code layers} accepts (GLM-4.5's experts from its first sparse layer on). */
        Builder layerWhere(IntPredicate layers, CheckpointTensor... tensors) {
            for (CheckpointTensor t : tensors) {
                perLayer.add(new LayerTensor(t, layers));
            }
            return this;
        }

        /** Block tensors that exist only when {@code present}. */
        Builder layerIf(boolean present, CheckpointTensor... tensors) {
            return present ? layer(tensors) : this;
        }

        /**
         * The unembedding, an {@code nn.Linear} {@code [vocab, d_model]} outside the base model ({@code name} is not
         * prefixed); with tied embeddings it is the embedding, unless the file stores a copy with other values, which
         * transformers 5 then keeps untied. Its bias {@code [vocab]}, where {@link Architecture#unembeddingBias}, is
         * {@code name} with {@code .bias} for {@code .weight}.
         */
        Builder unembedding(String name, Architecture a) {
            if (a.tiedEmbeddings()) {
                tolerated.add(name);
            } else {
                global.add(CheckpointTensor.linear(name, Slot.UNEMBED, a.vocabSize(), a.dModel()));
            }
            if (a.unembeddingBias()) {
                global.add(CheckpointTensor.stored(name.replaceFirst("\\.weight$", ".bias"), Slot.UNEMBED_BIAS,
                        a.vocabSize()));
            }
            return this;
        }

        Checkpoint build() {
            return new Checkpoint(this);
        }
    }
}

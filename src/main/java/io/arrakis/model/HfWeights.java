package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Checkpoint;
import io.arrakis.model.family.CheckpointTensor;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.Slot;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Reads a Hugging Face checkpoint's tensors into {@link Weights} as the family's {@link Checkpoint} describes them:
 * each tensor checked against its shape, converted to the model's dtype (or float32, where Hugging Face keeps it so)
 * and device, transposed where it is an {@code nn.Linear} weight, split where Hugging Face fuses projections.
 */
final class HfWeights {

    /** Where checkpoint tensors come from, by name. */
    interface Source {
        Set<String> names();

        /** The tensor's shape, without loading it. */
        long[] shape(String name);

        /** The tensor on the CPU in the file's dtype, in memory of its own (not a file's mapping); the caller owns it. */
        Tensor load(String name);

        /** The name the file gives (or would give) the tensor {@code name}, for messages. */
        default String storedName(String name) {
            return name;
        }
    }

    /**
     * Buffers checkpoints carry that are not parameters: gpt2's {@code attn.bias}/{@code attn.masked_bias}, the same
     * causal masks under gpt-neo's {@code attn.attention.} and gpt-neox's {@code attention.}, rotary frequencies.
     */
    private static final List<String> IGNORABLE_SUFFIXES = List.of(".attn.bias", ".attn.masked_bias",
            ".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq");

    private final HookedAutoConfig config;
    private final Source source;
    private final DType dtype;
    private final Device device;
    private final String missingPrefix;
    /** See {@link #swappedLayout()}; null until asked. */
    private Boolean swappedLayout;
    private final Set<String> used = new HashSet<>();

    private HfWeights(HookedAutoConfig config, Source source, DType dtype, Device device) {
        this.config = config;
        this.source = source;
        this.dtype = dtype;
        this.device = device;
        Checkpoint checkpoint = config.checkpoint();
        // a base model saved alone (GPT2Model) names its tensors without the prefix the *ForCausalLM class adds
        String embed = checkpoint.global().getFirst().name();
        String prefix = checkpoint.basePrefix();
        this.missingPrefix = !source.names().contains(embed) && embed.startsWith(prefix)
                && source.names().contains(embed.substring(prefix.length())) ? prefix : "";
    }

    static Weights load(HookedAutoConfig config, Source source, DType dtype, Device device) {
        HfWeights reader = new HfWeights(config, source, dtype, device);
        Checkpoint checkpoint = config.checkpoint();
        Weights weights;
        try (TensorScope scope = TensorScope.open()) {
            Map<Slot, Tensor> global = reader.read(checkpoint.global());
            reader.unitWeightsUnlessStored(global, Slot.LNF_W);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.nLayers(); i++) {
                Map<Slot, Tensor> read = reader.read(checkpoint.layer(i));
                reader.unitWeightsUnlessStored(read, Slot.LN1_W, Slot.LN2_W, Slot.Q_NORM, Slot.K_NORM);
                if (config.architecture().valuesAreKeys(i)) { // the same projection, read twice by the pass
                    read.put(Slot.WV, read.get(Slot.WK).copy());
                    if (read.get(Slot.BK) != null) {
                        read.put(Slot.BV, read.get(Slot.BK).copy());
                    }
                }
                layers.add(layer(read));
            }
            Tensor embed = global.get(Slot.EMBED);
            Tensor unembed = global.get(Slot.UNEMBED);
            if (unembed == null) {
                unembed = reader.tiedUnembedding(checkpoint, embed);
                reader.used.addAll(checkpoint.tolerated());
            }
            Tensor positions = global.get(Slot.POS_EMBED);
            if (positions != null && checkpoint.positionsFrom() > 0) {
                positions = positions.narrow(0, checkpoint.positionsFrom(), config.maxPositions());
            }
            Weights.PerLayerEmbedding perLayer = global.get(Slot.PLE_EMBED) == null ? null
                    : new Weights.PerLayerEmbedding(global.get(Slot.PLE_EMBED), global.get(Slot.PLE_PROJECTION),
                            global.get(Slot.PLE_PROJECTION_NORM));
            weights = keep(scope, new Weights(embed, positions, layers, global.get(Slot.LNF_W),
                    global.get(Slot.LNF_B), unembed, global.get(Slot.UNEMBED_BIAS), perLayer,
                    config.architecture().moe() != null
                    && config.architecture().moe().float32Logits()));
        }
        reader.checkAllUsed(weights);
        return weights;
    }

    /**
     * Puts a weight of ones in these norm slots where the family's norms have no parameters (OLMo's, nanochat's), so
     * that the forward pass and every tool that reads a norm's weight read what the norm applies; the query and key
     * norms' only where the family has them.
     */
    private void unitWeightsUnlessStored(Map<Slot, Tensor> slots, Slot... norms) {
        Architecture a = config.architecture();
        if (a.normParameters()) {
            return;
        }
        boolean whole = a.qkNorm() == Architecture.QkNorm.WHOLE;
        for (Slot norm : norms) {
            if ((norm == Slot.Q_NORM || norm == Slot.K_NORM) && a.qkNorm() == Architecture.QkNorm.NONE) {
                continue;
            }
            long width = switch (norm) {
                case Q_NORM -> whole ? (long) a.nHeads() * a.dHead() : a.dHead();
                case K_NORM -> whole ? (long) a.nKvHeads() * a.dHead() : a.dHead();
                default -> a.dModel();
            };
            slots.put(norm, Tensor.ones(new long[] {width}, dtype, device));
        }
    }

    /**
     * The parameters of an unembedding stored beside tied embeddings in a checkpoint of these {@code names}, which
     * loads untied if its values differ (see {@link #tiedUnembedding}); 0 if the embeddings are untied or it stores none.
     */
    static long storedUntiedCopy(HookedAutoConfig config, Set<String> names) {
        Checkpoint checkpoint = config.checkpoint();
        CheckpointTensor embed = checkpoint.global().getFirst();
        String prefix = checkpoint.basePrefix();
        boolean embedStored = names.contains(embed.name())
                || embed.name().startsWith(prefix) && names.contains(embed.name().substring(prefix.length()));
        return embedStored && checkpoint.tolerated().stream().anyMatch(names::contains) ? embed.numel() : 0;
    }

    /**
     * The unembedding of tied embeddings: a view of the embedding, unless the checkpoint also stores an unembedding
     * with other values, which transformers 5 then keeps, leaving the two untied.
     */
    private Tensor tiedUnembedding(Checkpoint checkpoint, Tensor embed) {
        Tensor tied = embed.transpose(0, 1);
        for (String name : checkpoint.tolerated()) {
            if (!source.names().contains(name) || used.contains(name)) { // absent, or read as the embedding
                continue;
            }
            checkTiedCopy(name, embed);
            long vocab = embed.shape()[0];
            Tensor stored = param(new CheckpointTensor(name, embed.shape(), true, 1,
                    List.of(new CheckpointTensor.Part(Slot.UNEMBED, vocab))));
            if (stored.allclose(tied, 0.0, 0.0)) { // torch.equal, as transformers compares them
                stored.close();
            } else {
                tied.close();
                return stored;
            }
        }
        return tied;
    }

    /**
     * Refuses a stored unembedding of tied embeddings whose shape is not the embedding's: Hugging Face refuses it as a
     * size mismatch, and it means the config does not describe this checkpoint.
     */
    private void checkTiedCopy(String name, Tensor embed) {
        long[] stored = source.shape(name);
        if (!Arrays.equals(stored, embed.shape())) {
            throw new IllegalArgumentException("tensor '" + source.storedName(name) + "' has shape "
                    + Arrays.toString(stored) + ", but the config ties the embeddings (tie_word_embeddings), so the"
                    + " unembedding is the embedding, "
                    + Arrays.toString(embed.shape()) + " — is config.json for this checkpoint?");
        }
    }

    private static Weights.Layer layer(Map<Slot, Tensor> t) {
        return new Weights.Layer(t.get(Slot.LN1_W), t.get(Slot.LN1_B), t.get(Slot.LN2_W), t.get(Slot.LN2_B),
                t.get(Slot.WQ), t.get(Slot.BQ), t.get(Slot.WK), t.get(Slot.BK), t.get(Slot.WV), t.get(Slot.BV),
                t.get(Slot.WO), t.get(Slot.BO), t.get(Slot.W_IN), t.get(Slot.B_IN), t.get(Slot.W_GATE),
                t.get(Slot.B_GATE), t.get(Slot.W_OUT), t.get(Slot.B_OUT), t.get(Slot.Q_NORM), t.get(Slot.K_NORM),
                t.get(Slot.ATTN_OUT_NORM_W), t.get(Slot.MLP_OUT_NORM_W), t.get(Slot.W_ROUTER), t.get(Slot.B_ROUTER),
                t.get(Slot.SINKS), t.get(Slot.W_ATTN_GATE), t.get(Slot.SHARED_W_GATE), t.get(Slot.SHARED_W_IN),
                t.get(Slot.SHARED_W_OUT), t.get(Slot.SHARED_EXPERT_GATE), t.get(Slot.EXPERT_SCORE_BIAS),
                t.get(Slot.XIELU_ALPHA_P), t.get(Slot.XIELU_ALPHA_N), t.get(Slot.XIELU_BETA), t.get(Slot.XIELU_EPS),
                t.get(Slot.LAYER_SCALAR),
                t.get(Slot.W_KV_A) == null ? null : new Weights.Latent(t.get(Slot.W_Q_A), t.get(Slot.B_Q_A),
                        t.get(Slot.Q_A_NORM), t.get(Slot.W_Q_B), t.get(Slot.W_KV_A), t.get(Slot.B_KV_A),
                        t.get(Slot.KV_A_NORM), t.get(Slot.W_KV_B)),
                t.get(Slot.LIN_W_Q) == null ? null : new Weights.Linear(t.get(Slot.LIN_W_Q), t.get(Slot.LIN_W_K),
                        t.get(Slot.LIN_W_V), t.get(Slot.LIN_W_Z), t.get(Slot.LIN_W_B), t.get(Slot.LIN_W_A),
                        t.get(Slot.LIN_CONV), t.get(Slot.LIN_DT_BIAS), t.get(Slot.LIN_A_LOG), t.get(Slot.LIN_NORM),
                        t.get(Slot.LIN_W_OUT)),
                t.get(Slot.CONV_W_IN) == null ? null : new Weights.Conv(t.get(Slot.CONV_W_IN), t.get(Slot.CONV_B_IN),
                        t.get(Slot.CONV_KERNEL), t.get(Slot.CONV_KERNEL_BIAS), t.get(Slot.CONV_W_OUT),
                        t.get(Slot.CONV_B_OUT)),
                t.get(Slot.MAMBA_W_IN) == null ? null : new Weights.Mamba(t.get(Slot.MAMBA_W_IN),
                        t.get(Slot.MAMBA_B_IN), t.get(Slot.MAMBA_CONV), t.get(Slot.MAMBA_CONV_BIAS),
                        t.get(Slot.MAMBA_DT_BIAS), t.get(Slot.MAMBA_A_LOG), t.get(Slot.MAMBA_D), t.get(Slot.MAMBA_NORM),
                        t.get(Slot.MAMBA_W_OUT), t.get(Slot.MAMBA_B_OUT)),
                t.get(Slot.PLE_GATE) == null ? null : new Weights.PerLayerInput(t.get(Slot.PLE_GATE),
                        t.get(Slot.PLE_OUT), t.get(Slot.PLE_OUT_NORM)),
                t.get(Slot.ROUTER_SCALE) == null ? null : new Weights.NormedExperts(t.get(Slot.ROUTER_SCALE),
                        t.get(Slot.EXPERT_SCALE), t.get(Slot.EXPERTS_IN_NORM_W), t.get(Slot.SHARED_OUT_NORM_W),
                        t.get(Slot.EXPERTS_OUT_NORM_W)));
    }

    /** Loads the tensors and fills their slots; expert slices are stacked in expert order. */
    private Map<Slot, Tensor> read(List<CheckpointTensor> tensors) {
        Map<Slot, Tensor> slots = new EnumMap<>(Slot.class);
        Map<Slot, TreeMap<Integer, Tensor>> experts = new EnumMap<>(Slot.class);
        for (CheckpointTensor t : tensors) {
            Map<Slot, Tensor> filled = split(t, param(t));
            if (t.expert() < 0) {
                slots.putAll(filled);
            } else {
                filled.forEach((slot, slice) -> experts.computeIfAbsent(slot, s -> new TreeMap<>()).put(t.expert(), slice));
            }
        }
        experts.forEach((slot, slices) -> {
            slots.put(slot, Tensor.stack(List.copyOf(slices.values()), 0));
            slices.values().forEach(Tensor::close); // one copy of the experts at a time
        });
        return slots;
    }

    /**
     * The slots one tensor fills: itself, or the parts of its last dimension. The fused tensor's handle and the steps
     * in between are closed here, so memory no part holds is freed at once, not when the whole model is loaded.
     */
    static Map<Slot, Tensor> split(CheckpointTensor t, Tensor whole) {
        Map<Slot, Tensor> slots = new EnumMap<>(Slot.class);
        if (t.groups() == 1 && t.parts().size() == 1) {
            slots.put(t.parts().getFirst().slot(), whole);
            return slots;
        }
        try (TensorScope scope = TensorScope.open()) {
            // the last dimension is [groups, parts...]: each part takes its columns of every group
            long[] shape = whole.shape();
            int last = shape.length - 1;
            long groupSize = t.parts().stream().mapToLong(CheckpointTensor.Part::size).sum();
            long[] grouped = Arrays.copyOf(shape, shape.length + 1);
            grouped[last] = t.groups();
            grouped[last + 1] = groupSize;
            Tensor view = whole.view(grouped);
            long offset = 0;
            for (CheckpointTensor.Part part : t.parts()) {
                long[] flat = shape.clone();
                flat[last] = t.groups() * part.size();
                slots.put(part.slot(), scope.keep(view.narrow(-1, offset, part.size()).reshape(flat).contiguous()));
                offset += part.size();
            }
        }
        whole.close();
        return slots;
    }

    /**
     * The tensor {@code t} names with its Hugging Face shape, in the model's dtype and device; {@code nn.Linear}'s
     * {@code [out, in]} weights as {@code [in, out]} views of their contiguous copy.
     */
    private Tensor param(CheckpointTensor t) {
        String name = t.name().startsWith(missingPrefix) ? t.name().substring(missingPrefix.length()) : t.name();
        if (!source.names().contains(name) && t.parts().getFirst().slot() == Slot.EMBED) {
            // tied embeddings saved by safetensors' save_model keep one name of the two, the first in order:
            // lm_head.weight for gpt2 and llama; transformers then fills the embedding from it
            String tied = config.checkpoint().tolerated().stream().filter(source.names()::contains).findFirst()
                    .orElse(null);
            name = tied != null ? tied : name;
        }
        if (!source.names().contains(name)) {
            if (t.parts().getFirst().slot() == Slot.UNEMBED) {
                List<String> heads = source.names().stream()
                        .filter(n -> n.startsWith("score.") || n.startsWith("classifier.")).sorted().toList();
                if (!heads.isEmpty()) { // AutoModelForCausalLM would give such a checkpoint a random lm_head
                    throw new IllegalArgumentException("the checkpoint has no " + name + " but a classification head "
                            + heads + " (its config's architectures: " + config.raw().get("architectures") + "):"
                            + " this library runs causal language models, whose head maps to the vocabulary");
                }
                throw new IllegalArgumentException("the checkpoint has no " + source.storedName(name) + " but its"
                        + " config says the embeddings are not tied (tie_word_embeddings=false)");
            }
            if (source.names().contains(name + "_blocks")) {
                String stored = source.storedName(name);
                throw new IllegalArgumentException("tensor '" + stored + "' is stored quantized, as '" + stored
                        + "_blocks' and '" + stored + "_scales' (MXFP4, as gpt-oss publishes its experts), which is not"
                        + " supported; dequantize the checkpoint first (transformers: load it with"
                        + " Mxfp4Config(dequantize=True) and save_pretrained)");
            }
            if (source.names().isEmpty()) {
                throw new IllegalArgumentException("the checkpoint holds no tensor at all (is the weight_map of its"
                        + " model.safetensors.index.json empty?)");
            }
            throw new IllegalArgumentException("the checkpoint has no tensor '" + source.storedName(name) + "', which"
                    + " a " + config.family() + " model with this config needs" + near(name));
        }
        used.add(name);
        if (source.names().contains(name + "_scale_inv")) {
            String quantized = source.storedName(name);
            throw new IllegalArgumentException("tensor '" + quantized + "' is stored quantized, with block scales in '"
                    + quantized + "_scale_inv' (FP8, as DeepSeek-V3 and Qwen3's FP8 checkpoints publish their weights),"
                    + " which is not supported; use the checkpoint in bfloat16, or dequantize it first");
        }
        long[] stored = source.shape(name); // from the header: a tensor of another size is never read
        boolean swapped = t.swappable() && swappedLayout();
        if (!Arrays.equals(stored, swapped ? t.swappedShape() : t.shape())) {
            throw new IllegalArgumentException("tensor '" + source.storedName(name) + "' has shape "
                    + clipped(Arrays.toString(stored)) + " but the config needs " + Arrays.toString(t.shape())
                    + (t.swappable() ? " (or " + Arrays.toString(t.swappedShape()) + ", swapped as transformers 5 saves"
                    + " it" + (swapped ? ", as the checkpoint's other expert tensors are" : "") + ")" : ""));
        }
        try (Tensor loaded = source.load(name);
             Tensor raw = swapped ? loaded.transpose(-2, -1).contiguous() : loaded.alias()) {
            if (!raw.dtype().isFloatingPoint()) {
                throw new IllegalArgumentException("tensor '" + source.storedName(name) + "' is " + raw.dtype()
                        + "; weights must be floating point");
            }
            // a slot Hugging Face keeps in float32 stays float32 in a narrower model; a float32 router in any
            Slot slot = t.parts().getFirst().slot();
            MixtureOfExperts moe = config.architecture().moe();
            DType target = slot.float32() && dtype.byteSize() < 4
                    || slot == Slot.W_ROUTER && moe != null && moe.float32Router() ? DType.FLOAT32 : dtype;
            // nn.Linear's [out, in] stays as it is stored, and the model reads it through an [in, out] view
            if (t.transposed() && raw.dtype() == target && device.isCpu()) {
                try (Tensor rows = raw.contiguous()) {
                    return rows.transpose(0, 1);
                }
            }
            try (Tensor converted = raw.to(target, device); Tensor rows = converted.contiguous()) {
                return t.transposed() ? rows.transpose(0, 1) : rows.alias();
            }
        }
    }

    /**
     * Whether the file stores the {@link CheckpointTensor#swappable} tensors with their last two dimensions swapped
     * (as transformers 5 saves them), as the shapes of those with two distinct shapes say: a tensor with one shape
     * either way (Qwen3-VL-MoE's gate_up_proj where d_model is twice the experts' width) follows the others.
     *
     * @throws IllegalArgumentException where some are stored one way and some the other
     */
    private boolean swappedLayout() {
        if (swappedLayout == null) {
            boolean asPublished = false;
            boolean swapped = false;
            for (CheckpointTensor t : config.checkpoint().tensors().values()) {
                String name = t.name().startsWith(missingPrefix) ? t.name().substring(missingPrefix.length())
                        : t.name();
                if (t.swappable() && source.names().contains(name)) {
                    long[] stored = source.shape(name);
                    boolean asIs = Arrays.equals(stored, t.shape());
                    boolean other = Arrays.equals(stored, t.swappedShape());
                    asPublished |= asIs && !other;
                    swapped |= other && !asIs;
                }
            }
            if (asPublished && swapped) {
                throw new IllegalArgumentException("the checkpoint stores some fused expert tensors as published and"
                        + " others with their last two dimensions swapped, as transformers 5 saves them; a checkpoint"
                        + " has one layout");
            }
            swappedLayout = swapped;
        }
        return swappedLayout;
    }

    private String near(String name) {
        String tail = name.substring(name.lastIndexOf('.', name.length() - 8) + 1);
        List<String> similar = source.names().stream().filter(n -> n.endsWith(tail)).limit(3).toList();
        return similar.isEmpty() ? "" : " (the file has e.g. " + String.join(", ", similar.stream()
                .map(n -> clipped(source.storedName(n))).toList()) + ")";
    }

    /** Text from the file as a message shows it: at most 100 characters, as a file may hold names of any length. */
    private static String clipped(String text) {
        return text.length() <= 100 ? text
                : text.substring(0, Character.isHighSurrogate(text.charAt(98)) ? 98 : 99) + "…";
    }

    private void checkAllUsed(Weights weights) {
        TreeSet<String> unexpected = new TreeSet<>();
        for (String n : source.names()) {
            if (!used.contains(n) && IGNORABLE_SUFFIXES.stream().noneMatch(n::endsWith)
                    && config.checkpoint().unread().stream().noneMatch(p -> (missingPrefix + n).startsWith(p))) {
                unexpected.add(n);
            }
        }
        if (!unexpected.isEmpty()) {
            weights.close();
            throw new IllegalArgumentException("the checkpoint has tensors a " + config.family() + " model with this config"
                    + " does not use, e.g. " + String.join(", ", unexpected.stream().limit(5)
                    .map(n -> clipped(source.storedName(n))).toList())
                    + " — is config.json for this checkpoint?");
        }
    }

    /** Hands every parameter out of the loading scope. */
    private static Weights keep(TensorScope scope, Weights w) {
        w.all().forEach(scope::keep);
        return w;
    }
}

package io.arrakis.model;

import io.arrakis.Progress;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.CheckpointTensor;
import io.arrakis.model.family.LinearAttention;
import io.arrakis.model.family.Mamba2;
import io.arrakis.model.family.Slot;
import io.arrakis.model.safetensors.SafeTensorsDirectory;
import io.arrakis.text.HfTokenizer;
import io.arrakis.text.Tokenizer;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A decoder-only transformer with TransformerLens hook points — the Java form of Arrakis's {@code HookedAutoModel}.
 *
 * <pre>{@code
 * try (HookedAutoModel model = HookedAutoModel.fromPretrained(Path.of("gpt2-tiny"));
 *      ModelOutput out = model.forward(Tensor.of(new long[] {1, 2, 3}, 1, 3))) {
 *     Tensor logits = out.logits();                                         // [batch, pos, vocab]
 *     Tensor pattern = out.cache().get("blocks.0.attn.hook_pattern");       // [batch, head, query, key]
 * }
 * }</pre>
 *
 * <p>Hook points (per layer {@code i}): {@code hook_embed} (for gemma before its scale by {@code sqrt(d_model)}, which
 * TransformerLens folds into W_E and so into its {@code hook_embed}, and for granite before its
 * {@code embedding_multiplier}), {@code hook_pos_embed} (learned positions), {@code ln_embed.hook_scale} and
 * {@code ln_embed.hook_normalized} (nanochat's norm of the embeddings before the first block, as {@code ln1}'s below),
 * {@code blocks.i.hook_resid_pre}, {@code blocks.i.ln1.hook_scale} and {@code blocks.i.ln1.hook_normalized} (the
 * attention's input norm: what it divides each position by, {@code [batch, pos, 1]}, the standard deviation or root
 * mean square with eps, float32 for float16 and bfloat16 models; and its output, as for {@code ln_final} below; a hook
 * at the scale makes the norm divide by what it leaves, op by op, so a replaced scale, say a clean run's to freeze the
 * norm, changes the output; olmo2, olmo3, flex-olmo and exaone4, which normalise sublayer outputs only, have neither),
 * {@code blocks.i.attn.hook_q/hook_k/hook_v} ({@code [batch, pos, head, d_head]}, key/value heads for grouped-query
 * attention), {@code blocks.i.attn.hook_q_normed/hook_k_normed} (families that normalise queries and keys after their
 * projections: the norm's output, before rotary embeddings; after them in nanochat),
 * {@code blocks.i.attn.hook_v_normed} (gemma4, which divides each value head by its RMS before attention; its layers
 * that attend to an earlier layer's keys and values, {@link HookedAutoConfig#keysFrom}, have the query hooks alone),
 * {@code blocks.i.attn.hook_rot_q/hook_rot_k} (layers that rotate, {@link HookedAutoConfig#rotates}),
 * {@code blocks.i.attn.hook_attn_scores} (scaled, soft-capped where the family caps them, masked with -inf; float32 for
 * gpt-neo and gpt-j in reduced precision, as Hugging Face computes their scores and softmax),
 * {@code blocks.i.attn.hook_pattern}, {@code blocks.i.attn.hook_gate} (families that gate each head's output, afmoe:
 * the sigmoid gate, {@code [batch, pos, head, d_head]}, that multiplies it), {@code blocks.i.attn.hook_z} (the heads'
 * outputs as the output projection reads them, gated where the family gates them); in place of the {@code attn.} hooks
 * a linear-attention layer ({@link HookedAutoConfig#mixer}, Qwen3.5's gated DeltaNet) has
 * {@code blocks.i.linear_attn.hook_q/hook_k} ({@code [batch, pos, key_head, key_dim]}) and {@code hook_v}
 * ({@code [batch, pos, value_head, value_dim]}), after the convolution and SiLU, before the L2 norm,
 * {@code blocks.i.linear_attn.hook_beta} and {@code hook_decay} ({@code [batch, pos, value_head]}: the sigmoid of
 * {@code in_proj_b}, and the float32 log of the step's decay), {@code hook_core} (the delta rule's output),
 * {@code hook_gate} ({@code in_proj_z}'s output) and {@code hook_z} (the gated norm's output, which {@code out_proj}
 * reads), the last three {@code [batch, pos, value_head, value_dim]}, and a short-convolution layer (LFM2's)
 * {@code blocks.i.conv.hook_b}, {@code hook_c} and {@code hook_x} (its input projection's three gates),
 * {@code hook_conv} (the causal convolution of B · x) and {@code hook_z} (C times it, which {@code out_proj} reads),
 * each {@code [batch, pos, d_model]}, and a Mamba-2 layer (Granite 4.0's, Bamba's) {@code blocks.i.mamba.hook_x}
 * ({@code [batch, pos, head, head_dim]}), {@code hook_b} and {@code hook_c} ({@code [batch, pos, group, state]}), after
 * the convolution and activation, {@code hook_dt} ({@code [batch, pos, head]}: the time steps after their softplus and
 * limits), {@code hook_ssm} (the state space's output with its {@code D · x}, float32), {@code hook_gate}
 * ({@code in_proj}'s gate) and {@code hook_z} (the gated norm's output, which {@code out_proj} reads), the last three
 * {@code [batch, pos, head, head_dim]}; {@code blocks.i.hook_attn_out} (what the block adds to the residual stream:
 * after the output norm of families that normalise it, and after granite's {@code residual_multiplier}, as is
 * {@code hook_mlp_out}), {@code blocks.i.hook_resid_mid} (sequential residual), {@code blocks.i.ln2.hook_scale} and
 * {@code blocks.i.ln2.hook_normalized} (the MLP's input norm, as ln1's, where the MLP has one of its own: phi, gpt-j,
 * cohere, and falcon and stable-lm in their parallel layouts with one norm, feed it ln1's output),
 * {@code blocks.i.mlp.hook_pre}, {@code blocks.i.mlp.hook_pre_linear} (gated MLPs: the up projection),
 * {@code blocks.i.mlp.hook_post}, {@code blocks.i.hook_mlp_out}, {@code blocks.i.hook_per_layer_input} and
 * {@code blocks.i.hook_per_layer_out} (gemma4's per-layer embeddings: the block's own input
 * {@code [batch, pos, width]}, and what the block adds from it to the residual stream after its MLP),
 * {@code blocks.i.hook_resid_post} (times gemma4's layer scalar, which multiplies the whole stream a block outputs),
 * {@code ln_final.hook_scale}, {@code ln_final.hook_normalized} (the final norm's output, its weight and bias applied:
 * what the unembedding reads, as TransformerLens's unfolded LayerNorm has it; its folded LayerNormPre and its RMSNorm
 * take the hook before the weight and bias, the stream centred where the norm is a LayerNorm and divided by its scale),
 * {@code logits}. With attention sinks (gpt-oss) {@code hook_pattern} leaves out the share of each row the sink took,
 * so rows sum to less than 1.
 *
 * <p>A sparse mixture of experts (mixtral, gpt-oss, qwen3-moe, qwen3-vl-moe, olmoe, qwen2-moe) has, in place of the
 * dense MLP's {@code mlp.hook_pre}, {@code hook_pre_linear} and {@code hook_post}:
 * {@code blocks.i.mlp.hook_router_logits} {@code [batch, pos, experts]} (the router's output),
 * {@code blocks.i.mlp.hook_expert_indices} {@code [batch, pos, k]} (int64, each token's chosen experts, best first)
 * and {@code blocks.i.mlp.hook_expert_weights} {@code [batch, pos, k]} (their routing weights, aligned with the
 * indices, as the family's routing makes them: summing to 1 for mixtral, or less for qwen3-moe, olmoe and qwen2-moe
 * without {@code norm_topk_prob}, times each expert's scale for gemma4, sigmoids for llama4, which multiplies each
 * chosen expert's input by its weight; float32 for mixtral, which weights the experts in float32); replacing the
 * indices or weights reroutes the tokens.
 * TransformerLens's hooks of these names differ: its {@code hook_expert_weights} is the softmax over every expert
 * before the top k are chosen, {@code [batch * pos, experts]}, and its indices are {@code [batch * pos, k]}. Then per
 * expert {@code e}, on the rows {@code [n, d_mlp]} of the n tokens routed to it in (batch, pos) order (n may be 0):
 * {@code blocks.i.mlp.experts.e.hook_pre} (the gate projection, as the dense gated MLP's {@code hook_pre} is),
 * {@code hook_pre_linear} (the up projection) and {@code hook_post} (the activation's output); TransformerLens's
 * experts name the gate projection {@code hook_gate} and the up projection {@code hook_pre}. A shared expert
 * (qwen2-moe), which every token goes to, has {@code blocks.i.mlp.shared_expert.hook_pre}, {@code hook_pre_linear} and
 * {@code hook_post} {@code [batch, pos, d_shared]}, and {@code blocks.i.mlp.hook_shared_expert_gate}
 * {@code [batch, pos, 1]}, the sigmoid weighting its output. {@code hook_mlp_out} is the experts' weighted sum, plus
 * the shared expert's gated output; gemma4's block MLP is its experts' shared expert, the two outputs normalised
 * each before their sum is, and its router and experts read the residual stream through norms of their own, which
 * have no hooks ({@code ln2} feeds its shared expert alone).
 *
 * <p>Forward passes may run on many threads at once; hooks added with {@link #addHook} apply to all of them until
 * their handle is closed, except to the passes of a thread that {@link #holdHooks holds} the hooks it found (as the
 * tools of several passes do), which see a hook added or removed meanwhile once the hold ends. {@link #close} waits
 * for the passes and weight reads running on other threads to finish; once it has begun, a pass or read that starts
 * on a thread not already inside one is refused as closed.
 */
public final class HookedAutoModel implements AutoCloseable {
    private final HookedAutoConfig config;
    private final Weights weights;
    private final ForwardTables tables = new ForwardTables();
    private final DType dtype;
    private final Device device;
    private final Set<String> hookNames;
    /** The added hooks in order, each registration its own object, so that closing one removes no equal other. */
    private final List<Registration> persistentHooks = new CopyOnWriteArrayList<>();
    private final ThreadLocal<HeldHooks> heldHooks = new ThreadLocal<>();

    /** A thread's hold of the model-wide hooks (see holdHooks): its own object, so an old handle ends no later hold. */
    private record HeldHooks(List<HookSpec> hooks, Thread holder) {
    }

    private static final class Registration {
        private final HookSpec spec;

        Registration(HookSpec spec) {
            this.spec = spec;
        }
    }
    private final Path tokenizerFile; // null when the model has none
    private HfTokenizer tokenizer; // read on first use, guarded by this
    // forward passes and weight reads hold the read lock; close takes the write lock, so it waits for them instead of
    // freeing weights under a running pass
    private final ReentrantReadWriteLock uses = new ReentrantReadWriteLock();
    // set when close begins: from then on a thread that holds no use is refused at once instead of queueing behind
    // close, which may be waiting for a pass whose hook waits for that thread
    private volatile boolean closing;
    private volatile boolean closed; // set under the write lock
    private final Set<CapturedForward> captures = new LinkedHashSet<>(); // guarded by this

    /** A hook bound to the hook names it runs at. */
    public record HookSpec(java.util.function.Predicate<String> where, String description, Hook hook) {
        public HookSpec {
            java.util.Objects.requireNonNull(where, "where");
            java.util.Objects.requireNonNull(hook, "hook");
        }

        /** A hook at one hook point. */
        public static HookSpec at(String hookName, Hook hook) {
            java.util.Objects.requireNonNull(hookName, "hook name");
            return new HookSpec(hookName::equals, hookName, hook);
        }

        /**
         * A hook at every hook point whose name {@code filter} accepts. The filter is asked any number of times about
         * a name in a pass: its answer must depend on the name alone.
         */
        public static HookSpec matching(java.util.function.Predicate<String> filter, Hook hook) {
            return new HookSpec(filter, "a name filter", hook);
        }
    }

    /** Removes a hook added with {@link #addHook}, or ends a {@link #holdHooks hold}, when closed. */
    public interface HookHandle extends AutoCloseable {
        @Override
        void close();
    }

    private HookedAutoModel(HookedAutoConfig config, Weights weights, DType dtype, Device device, Path tokenizerFile) {
        this.config = config;
        this.weights = weights;
        this.dtype = dtype;
        this.device = device;
        this.tokenizerFile = tokenizerFile;
        this.hookNames = java.util.Collections.unmodifiableSet(hookNamesOf(config)); // keeps the forward order
    }

    // ------------------------------------------------------------------------------------------------ construction

    /**
     * Loads a Hugging Face model directory ({@code config.json}, safetensors weights, and {@code tokenizer.json} for
     * {@link #toTokens} when present) as float32 on the CPU. A hub cache folder ({@code models--ORG--NAME}) is read
     * from the snapshot its {@code refs/main} names.
     */
    public static HookedAutoModel fromPretrained(Path dir) {
        return fromPretrained(dir, DType.FLOAT32, Device.CPU);
    }

    /** Loads a Hugging Face model directory in {@code dtype} on {@code device}. */
    public static HookedAutoModel fromPretrained(Path dir, DType dtype, Device device) {
        checkDtype(dtype);
        dir = HookedAutoConfig.modelFolder(dir);
        HookedAutoConfig config = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        Object weightsFile = config.raw().get("transformers_weights"); // transformers reads it before the usual names
        if (weightsFile != null && !(weightsFile instanceof String)) {
            throw new IllegalArgumentException("config.json's transformers_weights must be a file name, got " + weightsFile);
        }
        try (SafeTensorsDirectory files = SafeTensorsDirectory.open(dir, (String) weightsFile)) {
            HfWeights.Source stored = MultimodalCheckpoint.languageModel(config.multimodal(), new HfWeights.Source() {
                @Override
                public Set<String> names() {
                    return files.names();
                }

                @Override
                public long[] shape(String name) {
                    return files.info(name).shape();
                }

                @Override
                public Tensor load(String name) {
                    return files.tensor(name);
                }
            });
            HfWeights.Source source = FusedExperts.perExpert(stored, config.checkpoint().tensors().keySet());
            MemoryCheck.require(config, HfWeights.storedUntiedCopy(config, source.names()), dtype, device);
            Path tokenizerFile = dir.resolve(HfTokenizer.FILE_NAME);
            return new HookedAutoModel(config, HfWeights.load(config, source, dtype, device), dtype, device,
                    java.nio.file.Files.isRegularFile(tokenizerFile) ? tokenizerFile : null);
        }
    }

    /**
     * A model with random weights, initialised as Hugging Face initialises the family: normal(0, initializer_range)
     * matrices and embeddings, the embedding's padding row ({@code pad_token_id}'s, in the families whose embedding has
     * one) zero, unit norm weights (zero for gemma's {@code (1 + w)} norms), zero biases; the same seed gives the same
     * weights.
     */
    public static HookedAutoModel create(HookedAutoConfig config, long seed, DType dtype, Device device) {
        return create(config, seed, dtype, device, Progress.NONE);
    }

    /** {@link #create(HookedAutoConfig, long, DType, Device)}, telling {@code progress} how many weights are drawn. */
    public static HookedAutoModel create(HookedAutoConfig config, long seed, DType dtype, Device device,
                                         Progress progress) {
        checkDtype(dtype);
        MemoryCheck.require(config, 0, dtype, device);
        RandomSource source = new RandomSource(config, seed, dtype, progress);
        return new HookedAutoModel(config, HfWeights.load(config, source, dtype, device), dtype, device, null);
    }

    /**
     * The memory this process may still use, in bytes ({@code MemAvailable}, capped by a cgroup limit), as
     * {@link #create} and {@link #fromPretrained} check it before allocating weights; 0 when none is left, -1 when
     * unknown.
     */
    public static long availableMemoryBytes() {
        return io.arrakis.torch.HostMemory.availableBytes();
    }

    private static void checkDtype(DType dtype) {
        if (dtype != DType.FLOAT32 && dtype != DType.FLOAT16 && dtype != DType.BFLOAT16 && dtype != DType.FLOAT64) {
            throw new IllegalArgumentException("a model's dtype must be float32, float16, bfloat16 or float64, got " + dtype);
        }
    }

    /** The config. */
    public HookedAutoConfig config() {
        return config;
    }

    /** The weights' dtype. */
    public DType dtype() {
        return dtype;
    }

    /** Where the weights live. */
    public Device device() {
        return device;
    }

    Weights weights() {
        return weights;
    }

    /**
     * The tokenizer of the folder the model was loaded from ({@code tokenizer.json}), read on the first call; empty for
     * a model without one. The model owns it and closes it with itself, so it is handed out as a {@link Tokenizer},
     * which has no {@code close}; {@link HfTokenizer#load} gives one of your own.
     *
     * @throws IllegalArgumentException when the folder's tokenizer.json cannot be read
     * @throws IllegalStateException when the model is closed
     */
    public synchronized Optional<Tokenizer> tokenizer() {
        if (closed) {
            throw new IllegalStateException("this " + config.family() + " model is closed");
        }
        if (tokenizer == null && tokenizerFile != null) {
            tokenizer = HfTokenizer.load(tokenizerFile);
        }
        return Optional.ofNullable(tokenizer).map(OwnedTokenizer::new);
    }

    /** The model's tokenizer without its {@code close}. */
    private record OwnedTokenizer(HfTokenizer tokenizer) implements Tokenizer {
        @Override
        public int vocabSize() {
            return tokenizer.vocabSize();
        }

        @Override
        public OptionalLong addedBos() {
            return tokenizer.addedBos();
        }

        @Override
        public long[] encode(String text) {
            return tokenizer.encode(text);
        }

        @Override
        public String decode(long[] ids) {
            return tokenizer.decode(ids);
        }

        @Override
        public List<String> tokenStrings(long[] ids) {
            return tokenizer.tokenStrings(ids);
        }

        @Override
        public String toString() {
            return tokenizer.toString();
        }
    }

    /**
     * {@code text} as input ids {@code [1, pos]} (int64, CPU) through the model's {@link #tokenizer()}, special tokens
     * such as a beginning-of-sequence token added as the tokenizer adds them (Llama's adds one, GPT-2's none), as
     * Hugging Face's tokenizer gives them. TransformerLens's {@code to_tokens} prepends one to every model by default:
     * {@link #toTokens(String, boolean)} does what it does.
     *
     * @throws IllegalStateException when the model has no tokenizer
     * @throws IllegalArgumentException when the tokenizer gives an id the model's vocabulary lacks
     */
    public Tensor toTokens(String text) {
        Tokenizer tokenizer = requireTokenizer();
        return embeddable(tokenizer.encodeAsTensor(text), tokenizer);
    }

    /**
     * {@code text} as input ids {@code [1, pos]} beginning with the model's {@link #bosTokenId()} where
     * {@code prependBos}, and without it where not, as TransformerLens's {@code to_tokens(text, prepend_bos)}: see
     * {@link Tokenizer#encode(String, long, boolean)}.
     *
     * @throws IllegalStateException when the model has no tokenizer, or no beginning-of-sequence token
     * @throws IllegalArgumentException when that id is not one of the tokenizer's, or the tokenizer gives an id the
     *     model's vocabulary lacks
     */
    public Tensor toTokens(String text, boolean prependBos) {
        Tokenizer tokenizer = requireTokenizer();
        long bos = bosTokenId().orElseThrow(() -> new IllegalStateException("this " + config.family() + " model has"
                + " no beginning-of-sequence token: its tokenizer puts none before a text, and its configuration names "
                + (config.raw().get("bos_token_id") == null ? "no bos_token_id" : "no single bos_token_id (it is "
                + config.raw().get("bos_token_id") + ")") + "; toTokens(text) gives the tokenizer's ids"));
        return embeddable(tokenizer.encodeAsTensor(text, bos, prependBos), tokenizer);
    }

    /**
     * The beginning-of-sequence token of this model's inputs: the one its tokenizer puts before every text, where it
     * has a tokenizer that does (as Hugging Face's tokenizer and TransformerLens use it, whatever the configuration
     * says), else the configuration's {@link HookedAutoConfig#bosTokenId() bos_token_id}.
     *
     * @return the id, or empty where there is neither
     * @throws IllegalArgumentException when the folder's tokenizer.json cannot be read
     * @throws IllegalStateException when the model is closed
     */
    public OptionalLong bosTokenId() {
        return bosTokenId(tokenizer().orElse(null));
    }

    /**
     * The beginning-of-sequence token of inputs that {@code tokenizer} makes for this model: the one it puts before
     * every text, where it puts one, else the configuration's {@link HookedAutoConfig#bosTokenId() bos_token_id}.
     *
     * @param tokenizer the tokenizer, or null for none
     * @return the id, or empty where there is neither
     */
    public OptionalLong bosTokenId(Tokenizer tokenizer) {
        OptionalLong added = tokenizer == null ? OptionalLong.empty() : tokenizer.addedBos();
        return added.isPresent() ? added : config.bosTokenId();
    }

    /** {@code ids} where the model embeds each of them; a tokenizer whose ids it does not is named. */
    private Tensor embeddable(Tensor ids, Tokenizer tokenizer) {
        long[] values = ids.toLongArray();
        for (long id : values) {
            if (id < 0 || id >= config.vocabSize()) {
                ids.close();
                throw new IllegalArgumentException("the tokenizer (" + tokenizer + ") gives id " + id + ", which this "
                        + config.family() + " model's vocabulary of " + config.vocabSize() + " tokens does not have:"
                        + " is the tokenizer this model's?");
            }
        }
        return ids;
    }

    private Tokenizer requireTokenizer() {
        return tokenizer().orElseThrow(() -> new IllegalStateException("this " + config.family() + " model has no"
                + " tokenizer: its folder has no " + HfTokenizer.FILE_NAME));
    }

    /** Every hook point of this model, in the order a forward pass reaches them. */
    public Set<String> hookNames() {
        return hookNames;
    }

    // ------------------------------------------------------------------------------------------------ hooks

    /**
     * Adds a hook that runs in every forward pass until the returned handle is closed. A pass takes the hooks as they
     * are when it starts: one added or removed meanwhile (by a hook, or another thread) counts from the next pass, or
     * from the first after a {@link #holdHooks() hold} ends.
     */
    public HookHandle addHook(HookSpec spec) {
        checkOpen();
        checkHookSpec(spec);
        Registration registration = new Registration(spec);
        persistentHooks.add(registration);
        // its own registration, once: closing a handle must not remove (or reorder) a registration of an equal spec
        return () -> persistentHooks.remove(registration);
    }

    /**
     * Holds the model's hooks as they are now for every pass this thread starts until the returned handle is closed
     * (on this thread), so that the passes of one measurement (a clean and a patched run, say) run under the same
     * hooks while other threads add or remove theirs. The library's tools of several passes (path patching, the
     * attention view, the sweep) hold them; a hold taken inside another keeps the outer one.
     */
    public HookHandle holdHooks() {
        checkOpen();
        if (heldHooks.get() != null) {
            return () -> { };
        }
        HeldHooks hold = new HeldHooks(modelHooks(), Thread.currentThread());
        heldHooks.set(hold);
        return () -> {
            if (Thread.currentThread() != hold.holder()) {
                throw new IllegalStateException("a hold of the model's hooks ends on the thread that took it ("
                        + hold.holder() + "), not on " + Thread.currentThread());
            }
            if (heldHooks.get() == hold) {
                heldHooks.remove();
            }
        };
    }

    /** The model-wide hooks a pass this thread starts runs: those held, else those registered now. */
    private List<HookSpec> passHooks() {
        HeldHooks held = heldHooks.get();
        return held != null ? held.hooks() : modelHooks();
    }

    private List<HookSpec> modelHooks() {
        return persistentHooks.stream().map(r -> r.spec).toList();
    }

    private void checkHookSpec(HookSpec spec) {
        Objects.requireNonNull(spec, "hook spec");
        if (hookNames.stream().noneMatch(spec.where())) {
            throw new IllegalArgumentException("no hook point of this " + config.family() + " model matches "
                    + spec.description() + unrotated(spec.description()) + "; hook points look like "
                    + String.join(", ", hookNames.stream().limit(5).toList()));
        }
    }

    private static final Pattern ROTATION = Pattern.compile("blocks\\.(\\d{1,9})\\.attn\\.hook_rot_[qk]");
    private static final Pattern KEYS_VALUES = Pattern.compile(
            "blocks\\.(\\d{1,9})\\.attn\\.hook_(k|v|k_normed|v_normed|rot_k)");

    /**
     * Why {@code name}, a rotation's or a key's or value's hook point, is none here: its layer does not rotate, or
     * attends to an earlier layer's keys and values; else nothing.
     */
    private String unrotated(String name) {
        Matcher kv = KEYS_VALUES.matcher(name);
        if (kv.matches() && Integer.parseInt(kv.group(1)) < config.nLayers()) {
            int layer = Integer.parseInt(kv.group(1));
            if (config.keysFrom(layer) != layer) {
                return " (layer " + layer + " attends to layer " + config.keysFrom(layer) + "'s keys and values and"
                        + " makes none: hook that layer's)";
            }
        }
        Matcher m = ROTATION.matcher(name);
        if (!m.matches() || !config.rotary()) {
            return "";
        }
        int layer = Integer.parseInt(m.group(1));
        return layer < config.nLayers() && !config.rotates(layer)
                ? " (layer " + layer + " applies no rotary embedding: a NoPE layer)" : "";
    }

    // ------------------------------------------------------------------------------------------------ forward

    /**
     * Runs the model on {@code inputIds} ({@code [batch, pos]} or {@code [pos]}, int64 or int32), caching every
     * activation.
     */
    public ModelOutput forward(Tensor inputIds) {
        return forward(inputIds, CacheSpec.all());
    }

    /** Runs the model, caching the activations {@code spec} chooses. */
    public ModelOutput forward(Tensor inputIds, CacheSpec spec) {
        Objects.requireNonNull(spec, "spec");
        return run(inputIds, spec, List.of());
    }

    /** Runs the model with {@code hooks} added for this call only; returns the logits. */
    public Tensor runWithHooks(Tensor inputIds, HookSpec... hooks) {
        Objects.requireNonNull(hooks, "hooks");
        for (HookSpec h : hooks) {
            checkHookSpec(h);
        }
        try (ModelOutput out = run(inputIds, CacheSpec.none(), List.of(hooks))) {
            return detachLogits(out);
        }
    }

    /** Runs the model with {@code hooks} added for this call only, caching what {@code spec} chooses. */
    public ModelOutput runWithHooks(Tensor inputIds, CacheSpec spec, HookSpec... hooks) {
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(hooks, "hooks");
        for (HookSpec h : hooks) {
            checkHookSpec(h);
        }
        return run(inputIds, spec, List.of(hooks));
    }

    private static Tensor detachLogits(ModelOutput out) {
        Tensor logits = out.logits();
        Tensor copy = logits.alias(); // a second handle, so closing the output leaves this one
        out.close();
        return copy;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this " + config.family() + " model is closed");
        }
    }

    /** Runs {@code body}, which reads the weights, with the model held open. */
    <T> T using(Supplier<T> body) {
        // tryLock takes the read lock unless close holds the write lock, even while close waits for it: a use this
        // thread already holds, or one that began before close did, goes on, and close waits for it
        if (closing && uses.getReadHoldCount() == 0 || !uses.readLock().tryLock()) {
            throw new IllegalStateException("this " + config.family() + " model is closed");
        }
        try {
            checkOpen();
            return body.get();
        } finally {
            uses.readLock().unlock();
        }
    }

    private void checkCacheSpec(CacheSpec spec) {
        Set<String> explicit = spec.explicitNames();
        if (explicit != null) {
            for (String name : explicit) {
                if (!hookNames.contains(name)) {
                    throw new IllegalArgumentException("CacheSpec names '" + name + "', which is not a hook point of this "
                            + config.family() + " model" + unrotated(name));
                }
            }
        }
    }

    private ModelOutput run(Tensor inputIds, CacheSpec spec, List<HookSpec> callHooks) {
        return using(() -> {
            checkCacheSpec(spec);
            List<HookSpec> hooks = new ArrayList<>(passHooks());
            hooks.addAll(callHooks);
            // what the cache keeps, and what hooks see and return, lives to the pass's end
            java.util.function.Predicate<String> hooked = hooks.isEmpty() ? MemoryCheck.NOTHING
                    : name -> hooks.stream().anyMatch(h -> h.where().test(name));
            Tensor ids = checkInput(inputIds, spec == CacheSpec.none() && hooks.isEmpty() ? MemoryCheck.NOTHING
                    : name -> spec.keeps(name) || hooked.test(name), hooked);
            ActivationCache cache = new ActivationCache(config.nLayers());
            try (TensorScope scope = TensorScope.open()) {
                Pass pass = new Pass(scope, spec, hooks, cache);
                // its own handle: the cache may hold the pass's, and closing one must leave the other
                Tensor logits = scope.keep(new Forward(config, weights, tables, pass).run(ids).alias());
                return new ModelOutput(logits, cache);
            } catch (Throwable e) { // a hook may throw a checked exception too
                cache.close();
                throw e;
            } finally {
                if (ids != inputIds) {
                    ids.close();
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------ CUDA graphs

    /**
     * Records this model's forward pass for ids of shape {@code [batch, pos]} as a CUDA graph, caching what
     * {@code spec} names: {@link CapturedForward#run} then replays the whole pass with one launch. Hooks cannot run
     * inside a graph, which replays kernels and not Java, so a model with hooks is refused here, and a run after hooks
     * were added fails. Mixture-of-experts models are refused too: their routing reads the router's choice back to the
     * host. Closing the model closes its captured passes.
     *
     * <p>A replay writes the temporaries of the captured ops into memory that libtorch's caching allocator keeps for
     * the graph's stream. The allocator hands such memory back to the driver when its cache is emptied, and whenever
     * an allocation on the device runs short of memory, silently where its retry then succeeds; a replay could then
     * write memory that other tensors use. libtorch's C interface offers no pool of the graph's own (as
     * {@code torch.cuda.graph} has), so use captured passes where other work leaves the GPU memory to spare, and
     * capture again after its cache was emptied.
     *
     * @throws IllegalArgumentException for a shape the model cannot take or a cache entry it does not have
     * @throws IllegalStateException if the model is closed, has hooks, or is not on a GPU
     * @throws UnsupportedOperationException for a mixture-of-experts model or a CPU build of libtorch
     */
    public CapturedForward capture(int batch, int pos, CacheSpec spec) {
        return using(() -> record(batch, pos, spec));
    }

    private CapturedForward record(int batch, int pos, CacheSpec spec) {
        if (batch < 1 || pos < 1 || pos > config.longestPass()) {
            throw new IllegalArgumentException("cannot capture ids of shape [" + batch + ", " + pos + "]: batch and"
                    + " positions must be at least 1, positions at most " + config.longestPass());
        }
        checkCacheSpec(spec);
        checkNoHooks();
        if (config.architecture().moe() != null) {
            throw new UnsupportedOperationException("a " + config.family() + " model routes each token by reading the"
                    + " router's choice back to the host, which a CUDA graph cannot record");
        }
        if (device.isCpu()) {
            throw new IllegalStateException("a CUDA graph records GPU work; this model is on the " + device);
        }
        CapturedForward captured = CapturedForward.record(this, new long[] {batch, pos}, spec);
        synchronized (this) {
            captures.add(captured); // before close can look: it waits for this call
        }
        return captured;
    }

    private void checkNoHooks() {
        // one snapshot: another thread may remove hooks meanwhile
        List<HookSpec> hooks = passHooks();
        if (!hooks.isEmpty()) {
            throw new IllegalStateException("this model has " + hooks.size() + " hook(s), e.g. "
                    + hooks.getFirst().description() + "; a CUDA graph replays kernels, not Java, so it cannot run"
                    + " hooks: close their handles, or use forward/runWithHooks");
        }
    }

    /** The pass a CUDA graph records: ids already checked and on the model's device, no hooks. */
    ModelOutput forwardOnDevice(Tensor ids, CacheSpec spec) {
        return using(() -> {
            checkNoHooks();
            ActivationCache cache = new ActivationCache(config.nLayers());
            try (TensorScope scope = TensorScope.open()) {
                Tensor logits = new Forward(config, weights, tables, new Pass(scope, spec, List.of(), cache)).run(ids);
                return new ModelOutput(scope.keep(logits), cache);
            } catch (RuntimeException | Error e) {
                cache.close();
                throw e;
            }
        });
    }

    /** {@code inputIds} checked as {@link #forward} checks them, as a handle of its own that the caller closes. */
    Tensor checkedIds(Tensor inputIds) {
        return using(() -> {
            checkNoHooks();
            Tensor ids = checkInput(inputIds, MemoryCheck.NOTHING, MemoryCheck.NOTHING);
            return ids == inputIds ? inputIds.alias() : ids;
        });
    }

    synchronized void forget(CapturedForward captured) {
        captures.remove(captured);
    }

    /**
     * The ids as the pass takes them, after checking them and that the pass fits with what it keeps ({@code kept}) and
     * what its hooks may replace ({@code hooked}).
     */
    private Tensor checkInput(Tensor inputIds, java.util.function.Predicate<String> kept,
                              java.util.function.Predicate<String> hooked) {
        if (inputIds.dtype() != DType.INT64 && inputIds.dtype() != DType.INT32) {
            throw new IllegalArgumentException("input ids must be int64 (or int32), got " + inputIds);
        }
        if (inputIds.dim() != 1 && inputIds.dim() != 2) {
            throw new IllegalArgumentException("input ids must be [pos] or [batch, pos], got shape "
                    + java.util.Arrays.toString(inputIds.shape()));
        }
        long pos = inputIds.size(-1);
        if (inputIds.numel() == 0 || pos == 0) {
            throw new IllegalArgumentException("input ids are empty (shape " + java.util.Arrays.toString(inputIds.shape()) + ")");
        }
        if (pos > config.maxPositions()) {
            throw new IllegalArgumentException("the input has " + pos + " positions but this model has "
                    + config.maxPositions() + " (max_position_embeddings / n_positions)");
        }
        if (pos > config.longestPass()) {
            throw new IllegalArgumentException("the input has " + pos + " positions, but beyond "
                    + config.longestPass() + " (index_topk) this model's indexer attends to a chosen few keys per"
                    + " query, which is not implemented; passes of at most " + config.longestPass() + " positions"
                    + " attend to every key, as its model does");
        }
        MemoryCheck.requirePass(config, hookNames, kept, hooked, inputIds.numel() / pos, pos, dtype, device);
        // ids on the host are read there; ids on a GPU are read back, which waits for it: the pass itself never does
        long[] values = inputIds.toLongArray();
        boolean replaced = false;
        MultimodalCheckpoint.Placeholders placeholders = config.placeholders();
        for (long placeholder : placeholders.ids()) { // embedded as another token, as the multimodal model does
            for (int i = 0; i < values.length; i++) {
                if (values[i] == placeholder) {
                    values[i] = placeholders.replacement();
                    replaced = true;
                }
            }
        }
        long min = Arrays.stream(values).min().orElseThrow();
        long max = Arrays.stream(values).max().orElseThrow();
        if (min < 0 || max >= config.vocabSize()) {
            throw new IllegalArgumentException("token ids range over [" + min + ", " + max + "] but the vocabulary has "
                    + config.vocabSize() + " tokens (ids 0 to " + (config.vocabSize() - 1) + ")");
        }
        long[] shape = {inputIds.dim() == 1 ? 1 : inputIds.size(0), pos};
        if (replaced || !inputIds.device().isCpu()) {
            return Tensor.of(values, shape); // the embedding copies host ids to the model's device without waiting
        }
        return inputIds.dim() == 1 ? inputIds.unsqueeze(0) : inputIds;
    }

    /**
     * One forward pass's hook bookkeeping: runs the hooks registered for a hook point, checks their replacements, and
     * caches what the spec keeps.
     */
    static final class Pass {
        private final TensorScope scope;
        private final CacheSpec spec;
        private final List<HookSpec> hooks;
        private final ActivationCache cache;
        private final java.util.IdentityHashMap<Tensor, Boolean> cached = new java.util.IdentityHashMap<>();
        /** Activations hooks saw or returned: they live until the pass ends. */
        private final java.util.IdentityHashMap<Tensor, Boolean> held = new java.util.IdentityHashMap<>();

        Pass(TensorScope scope, CacheSpec spec, List<HookSpec> hooks, ActivationCache cache) {
            this.scope = scope;
            this.spec = spec;
            this.hooks = hooks;
            this.cache = cache;
        }

        /** Whether a hook or the cache takes the activation at hook point {@code name}. */
        boolean observes(String name) {
            return spec.keeps(name) || hooks(name);
        }

        /** Whether a hook runs at hook point {@code name}. */
        boolean hooks(String name) {
            for (HookSpec h : hooks) {
                if (h.where().test(name)) {
                    return true;
                }
            }
            return false;
        }

        /**
         * The activation after the hook point {@code name}. Hooks run with the pass's scope innermost, so what they
         * make lives until the pass ends, as do the activations they saw and returned; the rest of a block's work is
         * freed when the block ends ({@link #block}).
         */
        Tensor at(String name, Tensor activation) {
            Tensor current = activation;
            boolean hooked = false;
            for (HookSpec h : hooks) {
                if (h.where().test(name)) {
                    hooked = true;
                    Tensor given = scope.claim(current);
                    Tensor replacement = scope.callIn(() -> run(h, given, name));
                    if (current.isClosed()) {
                        throw new IllegalStateException("the hook at " + name + " closed the activation it was given,"
                                + " which belongs to the forward pass; return a replacement instead");
                    }
                    if (replacement != null && replacement != current) {
                        current = scope.claim(accepted(name, current, replacement));
                    }
                }
            }
            if (hooked) {
                held.put(activation, Boolean.TRUE);
                held.put(current, Boolean.TRUE);
            }
            if (spec.keeps(name)) {
                // one tensor can sit at two hook points (resid_post of a block is resid_pre of the next): give each
                // entry its own handle so removing one entry leaves the other
                Tensor entry = cached.put(current, Boolean.TRUE) == null ? current : current.alias();
                cache.put(name, scope.keep(scope.claim(entry)));
            }
            return current;
        }

        /** One hook's answer, with the scopes it left open closed; in the pass's scope (see {@link #at}). */
        private Tensor run(HookSpec h, Tensor activation, String name) {
            Tensor replacement;
            try {
                replacement = h.hook().apply(activation, name);
            } catch (Throwable e) { // scopes the hook opened go with it, or the pass's own could not close
                try {
                    scope.closeInnerScopes();
                } catch (RuntimeException closing) {
                    e.addSuppressed(closing);
                }
                throw e;
            }
            int left = scope.closeInnerScopes();
            if (left > 0) {
                throw new IllegalStateException("the hook at " + name + " left " + left + " TensorScope(s) open"
                        + " (closed now, their tensors freed): close the scopes a hook opens before it returns");
            }
            return replacement;
        }

        /** A handle to {@code t} that lives until the pass ends, past the block that made it. */
        Tensor outliving(Tensor t) {
            return scope.claim(t.alias());
        }

        /**
         * Runs block {@code work} in a scope of its own, freeing what it made but its result (the residual stream it
         * returns), the cache's entries and what hooks saw or made; {@code input}, the residual stream it read, is
         * closed too where neither the cache nor a hook holds it.
         */
        Tensor block(Tensor input, java.util.function.Supplier<Tensor> work) {
            Tensor output;
            try (TensorScope block = TensorScope.open()) {
                output = block.keep(work.get());
            }
            if (output != input && !cached.containsKey(input) && !held.containsKey(input)) {
                input.close();
            }
            return output;
        }

        /**
         * The pass's own handle to a hook's replacement, after checking it: the outputs the pass hands out, closed by
         * their owner, must not close a tensor the hook made elsewhere (a patch, another output's cache entry).
         */
        private static Tensor accepted(String name, Tensor original, Tensor replacement) {
            Tensor own;
            try {
                own = replacement.alias();
            } catch (IllegalStateException | WrongThreadException e) { // closed, or the arena of its memory is
                throw new IllegalStateException("the hook at " + name + " returned a tensor that can no longer be used: "
                        + e.getMessage(), e);
            }
            if (!java.util.Arrays.equals(original.shape(), own.shape()) || original.dtype() != own.dtype()
                    || !original.device().equals(own.device())) {
                own.close();
                throw new IllegalArgumentException("the hook at " + name + " returned " + replacement
                        + " in place of " + original + "; a replacement must keep the shape, dtype and device");
            }
            return own;
        }
    }

    // ------------------------------------------------------------------------------------------------ weights, TransformerLens layout

    /** Query weights {@code [layer, head, d_model, d_head]}, a new tensor. */
    public Tensor W_Q() {
        return using(() -> stackLayers(l -> perHeadIn(softmaxLayer(l).wq(), l)));
    }

    /** Key weights {@code [layer, kv_head, d_model, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor W_K(boolean repeatKv) {
        return using(() -> stackLayers(l -> repeatKv(perHeadIn(keyValueLayer(l).wk(), l), repeatKv)));
    }

    /** Value weights {@code [layer, kv_head, d_model, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor W_V(boolean repeatKv) {
        return using(() -> stackLayers(l -> repeatKv(perHeadIn(keyValueLayer(l).wv(), l), repeatKv)));
    }

    /**
     * Output weights {@code [layer, head, d_head, d_model]} ({@code d_head} of the values,
     * {@link HookedAutoConfig#dHeadV}), a new tensor.
     */
    public Tensor W_O() {
        return using(() -> stackLayers(this::perHeadOut));
    }

    /** Query biases {@code [layer, head, d_head]} (zeros where the family has none), a new tensor. */
    public Tensor b_Q() {
        return using(() -> stackLayers(l -> perHeadBias(softmaxLayer(l).bq(), softmaxLayer(l).wq(), l)));
    }

    /** Key biases {@code [layer, kv_head, d_head]} ({@code repeatKv}: one per query head; zeros where none). */
    public Tensor b_K(boolean repeatKv) {
        return using(() -> stackLayers(l -> repeatKv(perHeadBias(keyValueLayer(l).bk(), keyValueLayer(l).wk(),
                l), repeatKv)));
    }

    /** Value biases {@code [layer, kv_head, d_head]} ({@code repeatKv}: one per query head; zeros where none). */
    public Tensor b_V(boolean repeatKv) {
        return using(() -> stackLayers(l -> repeatKv(perHeadBias(keyValueLayer(l).bv(), keyValueLayer(l).wv(),
                l), repeatKv)));
    }

    /** Output biases {@code [layer, d_model]} (zeros where the family has none), a new tensor. */
    public Tensor b_O() {
        return using(() -> stackLayers(this::outBias));
    }

    /** Block {@code layer}'s query weights {@code [head, d_model, d_head]}, a new tensor (one layer's worth of memory). */
    public Tensor W_Q(int layer) {
        return using(() -> owned(perHeadIn(softmaxLayer(layer).wq(), layer)));
    }

    /** Block {@code layer}'s key weights {@code [kv_head, d_model, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor W_K(int layer, boolean repeatKv) {
        return using(() -> owned(repeatKv(perHeadIn(keyValueLayer(layer).wk(), layer), repeatKv)));
    }

    /** Block {@code layer}'s value weights {@code [kv_head, d_model, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor W_V(int layer, boolean repeatKv) {
        return using(() -> owned(repeatKv(perHeadIn(keyValueLayer(layer).wv(), layer), repeatKv)));
    }

    /**
     * Block {@code layer}'s output weights {@code [head, d_head, d_model]} ({@code d_head} of the values); for a
     * linear-attention layer, its {@code out_proj} per value head {@code [value_head, value_dim, d_model]}, which
     * {@code blocks.i.linear_attn.hook_z} multiplies; for a short-convolution layer, its {@code out_proj} as one head
     * {@code [1, d_model, d_model]}, which {@code blocks.i.conv.hook_z} multiplies.
     */
    public Tensor W_O(int layer) {
        return using(() -> owned(perHeadOut(layer)));
    }

    /** Block {@code layer}'s query biases {@code [head, d_head]} (zeros where the family has none). */
    public Tensor b_Q(int layer) {
        return using(() -> owned(perHeadBias(softmaxLayer(layer).bq(), softmaxLayer(layer).wq(), layer)));
    }

    /** Block {@code layer}'s key biases {@code [kv_head, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor b_K(int layer, boolean repeatKv) {
        return using(() -> owned(repeatKv(perHeadBias(keyValueLayer(layer).bk(), keyValueLayer(layer).wk(),
                layer), repeatKv)));
    }

    /** Block {@code layer}'s value biases {@code [kv_head, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor b_V(int layer, boolean repeatKv) {
        return using(() -> owned(repeatKv(perHeadBias(keyValueLayer(layer).bv(), keyValueLayer(layer).wv(),
                layer), repeatKv)));
    }

    /** Block {@code layer}'s output bias {@code [d_model]} (zeros where the family has none). */
    public Tensor b_O(int layer) {
        return using(() -> owned(outBias(layer)));
    }

    /** Unembedding weights {@code [d_model, vocab]} (the embeddings' transpose where they are tied), a new tensor. */
    public Tensor W_U() {
        return using(() -> owned(weights.unembed.alias()));
    }

    /** Unembedding bias {@code [vocab]} (zeros where the family has none), a new tensor. */
    public Tensor b_U() {
        return using(() -> weights.unembedBias == null
                ? Tensor.zeros(new long[] {config.vocabSize()}, dtype, device) : owned(weights.unembedBias.alias()));
    }

    /**
     * Token embeddings {@code [vocab, d_model]} as stored, a new tensor: {@code hook_embed} reads rows of it. The pass
     * then multiplies by {@link HookedAutoConfig#embeddingScale()} where it is not 1 (gemma's {@code sqrt(d_model)},
     * granite's {@code embedding_multiplier}), which TransformerLens folds into its {@code W_E}, and nanochat's
     * normalises the embeddings ({@code ln_embed}) before the first block.
     */
    public Tensor W_E() {
        return using(() -> owned(weights.embed.alias()));
    }

    /** Learned position embeddings {@code [n_ctx, d_model]}, a new tensor; null where the family has none. */
    public Tensor W_pos() {
        return using(() -> weights.posEmbed == null ? null : owned(weights.posEmbed.alias()));
    }

    /**
     * MLP input weights {@code [layer, d_model, d_mlp]}: the up projection of a gated MLP (whose output is
     * {@code mlp.hook_pre_linear}), with an expert dimension after the layer's in a mixture of experts
     * ({@code [layer, expert, d_model, d_mlp]}: the routed experts', a shared expert's not among them); a new tensor.
     */
    public Tensor W_in() {
        return using(() -> stackLayers(l -> layer(l).win().alias()));
    }

    /** A gated MLP's gate weights, laid out as {@link #W_in()}'s; null where the MLP is not gated. */
    public Tensor W_gate() {
        return using(() -> config.gatedMlp() ? stackLayers(l -> layer(l).wgate().alias()) : null);
    }

    /** MLP output weights {@code [layer, d_mlp, d_model]} ({@code [layer, expert, d_mlp, d_model]} with experts). */
    public Tensor W_out() {
        return using(() -> stackLayers(l -> layer(l).wout().alias()));
    }

    /** MLP input biases {@code [layer, d_mlp]} ({@code [layer, expert, d_mlp]}; zeros where the family has none). */
    public Tensor b_in() {
        return using(() -> stackLayers(l -> mlpBias(layer(l).bin(), layer(l).win())));
    }

    /** A gated MLP's gate biases, laid out as {@link #b_in()}'s; null where the MLP is not gated. */
    public Tensor b_gate() {
        return using(() -> config.gatedMlp() ? stackLayers(l -> mlpBias(layer(l).bgate(), layer(l).wgate())) : null);
    }

    /** MLP output biases {@code [layer, d_model]} ({@code [layer, expert, d_model]}; zeros where none). */
    public Tensor b_out() {
        return using(() -> stackLayers(l -> mlpBias(layer(l).bout(), layer(l).wout())));
    }

    /** Block {@code layer}'s MLP input weights {@code [d_model, d_mlp]} ({@code [expert, d_model, d_mlp]}). */
    public Tensor W_in(int layer) {
        return using(() -> owned(layer(layer).win().alias()));
    }

    /** Block {@code layer}'s gate weights, laid out as {@link #W_in(int)}'s; null where the MLP is not gated. */
    public Tensor W_gate(int layer) {
        return using(() -> {
            Weights.Layer l = layer(layer);
            return config.gatedMlp() ? owned(l.wgate().alias()) : null;
        });
    }

    /** Block {@code layer}'s MLP output weights {@code [d_mlp, d_model]} ({@code [expert, d_mlp, d_model]}). */
    public Tensor W_out(int layer) {
        return using(() -> owned(layer(layer).wout().alias()));
    }

    /** Block {@code layer}'s MLP input bias {@code [d_mlp]} ({@code [expert, d_mlp]}; zeros where none). */
    public Tensor b_in(int layer) {
        return using(() -> owned(mlpBias(layer(layer).bin(), layer(layer).win())));
    }

    /** Block {@code layer}'s gate bias, laid out as {@link #b_in(int)}'s; null where the MLP is not gated. */
    public Tensor b_gate(int layer) {
        return using(() -> {
            Weights.Layer l = layer(layer);
            return config.gatedMlp() ? owned(mlpBias(l.bgate(), l.wgate())) : null;
        });
    }

    /** Block {@code layer}'s MLP output bias {@code [d_model]} ({@code [expert, d_model]}; zeros where none). */
    public Tensor b_out(int layer) {
        return using(() -> owned(mlpBias(layer(layer).bout(), layer(layer).wout())));
    }

    /**
     * Block {@code layer}'s attention sink logits {@code [head]} (gpt-oss: each joins its head's softmax as a key
     * without a value), a new tensor; null where the family has no sinks.
     */
    public Tensor attentionSinks(int layer) {
        return using(() -> {
            Tensor sinks = layer(layer).sinks();
            return sinks == null ? null : sinks.copy();
        });
    }

    /**
     * Block {@code layer}'s attention output gate weights {@code [head, d_model, d_head]} (afmoe: each head's
     * {@code hook_z} is its attention's output times {@code sigmoid(x · W_G)}, {@code x} the attention's normalised
     * input), a new tensor; null where the family has no such gate.
     */
    public Tensor W_G(int layer) {
        return using(() -> {
            Tensor gate = softmaxLayer(layer).attnGate();
            return gate == null ? null : owned(perHeadIn(gate, layer));
        });
    }

    private Weights.Layer layer(int layer) {
        checkLayer(layer);
        return weights.layers.get(layer);
    }

    /** Block {@code layer}'s weights, refusing a layer without heads, which no per-head query map reads. */
    private Weights.Layer softmaxLayer(int layer) {
        Weights.Layer l = layer(layer);
        String why = switch (config.mixer(layer)) {
            case SOFTMAX_ATTENTION -> null;
            case LINEAR_ATTENTION -> "its queries, keys and values pass a convolution over positions, so no per-head"
                    + " W_Q, W_K, W_V, W_G nor their biases map the residual stream to them; read blocks." + layer
                    + ".linear_attn.hook_q/k/v instead (W_O(" + layer + ") exists: its value heads' out_proj)";
            case SHORT_CONVOLUTION -> "it has no heads, queries, keys or values; read blocks." + layer
                    + ".conv.hook_b/c/x instead (W_O(" + layer + ") exists: its out_proj, as one head)";
            case MAMBA2 -> "its heads read x, B and C through a convolution over positions, so no per-head W_Q, W_K,"
                    + " W_V nor their biases map the residual stream to them; read blocks." + layer
                    + ".mamba.hook_x/b/c/dt instead (W_O(" + layer + ") exists: its heads' out_proj)";
        };
        if (why != null) {
            throw new UnsupportedOperationException("layer " + layer + " of this " + config.family() + " model mixes"
                    + " tokens by " + config.mixer(layer).description() + ": " + why + ". Softmax-attention layers: "
                    + java.util.stream.IntStream.range(0, config.nLayers()).filter(config::attentionHeads).boxed()
                    .toList());
        }
        return l;
    }

    /**
     * Block {@code layer}'s weights where it projects keys and values of its own; refused where its queries attend to
     * an earlier layer's (gemma4's sharing layers), naming that layer.
     */
    private Weights.Layer keyValueLayer(int layer) {
        Weights.Layer l = softmaxLayer(layer);
        int from = config.architecture().keysFrom(layer);
        if (from != layer) {
            throw new UnsupportedOperationException("layer " + layer + " of this " + config.family() + " model projects"
                    + " no keys or values: its queries attend to layer " + from + "'s, as that layer's attention uses"
                    + " them; ask for layer " + from + "'s key and value weights, biases and key norm");
        }
        return l;
    }

    // The per-layer pieces below are views of the weights (or fresh zeros): stacking copies them once, and owned()
    // copies a single layer's, so that no caller can write into the model.

    private Tensor stackLayers(java.util.function.IntFunction<Tensor> perLayer) {
        try (TensorScope scope = TensorScope.open()) {
            List<Tensor> layers = new ArrayList<>();
            for (int l = 0; l < config.nLayers(); l++) {
                layers.add(perLayer.apply(l));
                if (!Arrays.equals(layers.get(l).shape(), layers.getFirst().shape())) {
                    throw new UnsupportedOperationException("this " + config.family() + " model's layers 0 and " + l
                            + " hold these weights in different shapes, " + Arrays.toString(layers.getFirst().shape())
                            + " and " + Arrays.toString(layers.get(l).shape()) + " (a dense MLP and experts, layers"
                            + " that mix tokens differently, heads or MLPs of different widths): ask for them per"
                            + " layer");
                }
            }
            return scope.keep(Tensor.stack(layers, 0));
        }
    }

    /** A copy of what {@code make} gives (a weight, a view of one, or work on it), the work freed. */
    private static Tensor copied(java.util.function.Supplier<Tensor> make) {
        try (TensorScope scope = TensorScope.open()) {
            return scope.keep(make.get().copy());
        }
    }

    private static Tensor owned(Tensor viewOrFresh) {
        try (viewOrFresh) {
            return viewOrFresh.isContiguous() ? viewOrFresh.copy() : viewOrFresh.contiguous();
        }
    }

    /** The heads {@code [head, d_model, d_head]} of block {@code layer}'s {@code w [d_model, heads · d_head]}. */
    private Tensor perHeadIn(Tensor w, int layer) {
        refuseLatentAttention(w);
        int dHead = config.dHead(layer);
        try (Tensor view = w.view(config.dModel(), w.size(1) / dHead, dHead)) {
            return view.permute(1, 0, 2);
        }
    }

    /**
     * Each head's rows of the output projection; a linear-attention layer's, each value head's of its out_proj; a
     * Mamba-2 layer's, each head's.
     */
    private Tensor perHeadOut(int layer) {
        Weights.Layer l = layer(layer);
        return switch (config.mixer(layer)) {
            case SOFTMAX_ATTENTION -> l.wo().view(config.nHeads(), config.dHeadV(layer), config.dModel());
            case LINEAR_ATTENTION -> {
                LinearAttention m = config.architecture().linearAttention();
                yield l.linear().wout().view(m.valueHeads(), m.valueDim(), config.dModel());
            }
            case SHORT_CONVOLUTION -> l.conv().wout().view(1, config.dModel(), config.dModel());
            case MAMBA2 -> {
                Mamba2 m = config.architecture().mamba2();
                yield l.mamba().wout().view(m.heads(), m.headDim(), config.dModel());
            }
        };
    }

    /** The per-head view of the bias {@code b} of the projection {@code w} (zeros where it has none). */
    private Tensor perHeadBias(Tensor b, Tensor w, int layer) {
        refuseLatentAttention(w);
        int dHead = config.dHead(layer);
        long heads = w.size(1) / dHead;
        return b == null ? Tensor.zeros(new long[] {heads, dHead}, dtype, device) : b.view(heads, dHead);
    }

    /**
     * Refuses a projection latent attention does not have ({@code w} null): its keys and values, and its queries where
     * they have a latent of their own, pass an RMSNorm between two projections, so no matrix maps the residual stream
     * to them.
     */
    private void refuseLatentAttention(Tensor w) {
        if (w == null) {
            throw new UnsupportedOperationException("this " + config.family() + " model's attention is multi-head"
                    + " latent attention: its keys and values (and its queries, where q_lora_rank gives them a latent)"
                    + " are projected from latents that an RMSNorm normalises, so no per-head W_K, W_V (or W_Q), nor"
                    + " their biases, exists; read hook_q, hook_k and hook_v instead (W_O exists)");
        }
    }

    private Tensor outBias(int layer) {
        Weights.Layer l = layer(layer);
        Tensor bo = l.conv() != null ? l.conv().bout() : l.mamba() != null ? l.mamba().bout() : l.bo();
        return bo != null ? bo.view(config.dModel()) : Tensor.zeros(new long[] {config.dModel()}, dtype, device);
    }

    /** An MLP bias, or zeros shaped as the outputs of {@code weight [..., in, out]}: {@code [..., out]}. */
    private Tensor mlpBias(Tensor bias, Tensor weight) {
        if (bias != null) {
            return bias.alias();
        }
        long[] w = weight.shape();
        long[] shape = java.util.Arrays.copyOf(w, w.length - 1);
        shape[w.length - 2] = w[w.length - 1];
        return Tensor.zeros(shape, dtype, device);
    }

    private Tensor repeatKv(Tensor perKvHead, boolean repeat) {
        long kvHeads = perKvHead.size(0);
        if (!repeat || kvHeads == config.nHeads()) {
            return perKvHead;
        }
        try (perKvHead) {
            return perKvHead.repeatInterleave(config.nHeads() / kvHeads, 0);
        }
    }

    // ------------------------------------------------------------------------------------------------ pieces of a block

    /**
     * Block {@code layer}'s first norm (the attention's input norm, {@code ln_1} / {@code input_layernorm}) applied to
     * {@code resid [..., d_model]} (e.g. {@code blocks.{layer}.hook_resid_pre}) exactly as the forward pass applies it;
     * a copy of {@code resid} where the family's attention reads the residual stream as it is (olmo2, olmo3, flex-olmo,
     * exaone4). A new tensor.
     */
    public Tensor normalize(int layer, Tensor resid) {
        return using(() -> {
            checkLayer(layer);
            Weights.Layer l = weights.layers.get(layer);
            if (!config.architecture().inputNorms()) {
                return resid.copy();
            }
            try (TensorScope scope = TensorScope.open()) {
                return scope.keep(new Forward(config, weights, tables, null).norm(resid, l.ln1w(), l.ln1b()));
            }
        });
    }

    /** The final norm applied to {@code resid [..., d_model]} exactly as the forward pass applies it; a new tensor. */
    Tensor normalizeFinal(Tensor resid) {
        return using(() -> {
            try (TensorScope scope = TensorScope.open()) {
                return scope.keep(new Forward(config, weights, tables, null).norm(resid, weights.lnfw, weights.lnfb));
            }
        });
    }

    /**
     * Block {@code layer}'s query norm applied to queries {@code q [batch, pos, heads, d_head]}
     * ({@code hook_q → hook_q_normed}; in nanochat and HunYuan, after the rotation, {@code hook_rot_q → hook_q_normed})
     * exactly as the forward pass applies it; a copy where the family has none. A norm over the whole projection
     * (olmo2, olmo3, olmoe, flex-olmo) needs every query head, and so do norms with weights per head (cohere's).
     */
    public Tensor normalizeQueries(int layer, Tensor q) {
        return using(() -> normalizeQk(layer, q, softmaxLayer(layer).qNorm(), config.nHeads(), "queries"));
    }

    /** Block {@code layer}'s key norm applied to keys {@code [batch, pos, kv_heads, d_head]}, as {@link #normalizeQueries}. */
    public Tensor normalizeKeys(int layer, Tensor k) {
        return using(() -> normalizeQk(layer, k, keyValueLayer(layer).kNorm(), config.nKvHeads(layer), "keys"));
    }

    /**
     * Block {@code layer}'s value norm applied to values {@code [batch, pos, kv_heads, d_head]} as the forward pass
     * computes {@code hook_v_normed}: each head divided by its RMS (gemma4's {@code v_norm}); a copy of {@code v}
     * where the family does not normalise values. A new tensor.
     */
    public Tensor normalizeValues(int layer, Tensor v) {
        return using(() -> {
            keyValueLayer(layer);
            checkHeads(layer, v, "values");
            return config.architecture().valueNorm() ? v.rmsNorm(null, config.normEps()) : v.copy();
        });
    }

    /** Refuses {@code x} unless it is {@code [batch, pos, heads, d_head]} with block {@code layer}'s head width. */
    private void checkHeads(int layer, Tensor x, String what) {
        if (x.dim() != 4 || x.size(3) != config.dHead(layer)) {
            throw new IllegalArgumentException("the " + what + " must be [batch, pos, heads, d_head = "
                    + config.dHead(layer) + "], got shape " + java.util.Arrays.toString(x.shape()));
        }
    }

    private Tensor normalizeQk(int layer, Tensor x, Tensor weight, int heads, String what) {
        checkHeads(layer, x, what);
        Architecture.QkNorm kind = config.architecture().qkNorm(layer);
        if (kind == Architecture.QkNorm.NONE) {
            return x.copy();
        }
        if (kind == Architecture.QkNorm.WHOLE && x.size(2) != heads) {
            throw new UnsupportedOperationException("this " + config.family() + " model normalises the " + what
                    + " of all " + heads + " heads together, so the " + what + " of " + x.size(2)
                    + " head(s) alone have no normalised value");
        }
        if (kind == Architecture.QkNorm.PER_HEAD_OWN_WEIGHTS && x.size(2) != heads) {
            throw new IllegalArgumentException("this " + config.family() + " model normalises each of its " + heads
                    + " heads' " + what + " with weights of its own, so give the " + what + " of all of them, got "
                    + x.size(2));
        }
        try (TensorScope scope = TensorScope.open()) {
            return scope.keep(new Forward(config, weights, tables, null).qkNorm(x, weight));
        }
    }

    /**
     * The attention pattern of {@code scores} {@code [batch, head, query, key]} as the forward pass computes
     * {@code hook_pattern} from scores a hook gave it: their softmax, or, with {@code sinks} {@code [head]} (gpt-oss's
     * learned logits; null for none), the softmax with each head's sink as one more key, whose column is left out; a
     * row masked whole (-inf for every key) is 0, as in TransformerLens. A new tensor.
     */
    public Tensor attentionPattern(Tensor scores, Tensor sinks) {
        if (scores.dim() != 4 || (sinks != null && (sinks.dim() != 1 || sinks.size(0) != scores.size(1)))) {
            throw new IllegalArgumentException("attentionPattern: scores must be [batch, head, query, key] and sinks"
                    + " [head]; got " + Arrays.toString(scores.shape())
                    + (sinks == null ? "" : " and " + Arrays.toString(sinks.shape())));
        }
        try (TensorScope scope = TensorScope.open()) {
            return scope.keep(Forward.pattern(scores, sinks, true));
        }
    }

    /**
     * Block {@code layer}'s attention scores {@code [batch, head, query, key]} for queries and keys
     * {@code [batch, pos, head, d_head]} as they enter the dot product (normalised and rotated where the family does
     * so, one key head per query head): scaled, soft-capped where the family caps them, and -inf where the layer's
     * mask forbids, as the forward pass computes {@code hook_attn_scores}; ministral3's queries are first multiplied
     * by their positions' temperature, which {@code hook_rot_q} does not hold. A new tensor.
     */
    public Tensor attentionScores(int layer, Tensor q, Tensor k) {
        return using(() -> {
            softmaxLayer(layer);
            long[] qs = q.shape();
            long[] ks = k.shape();
            // the mask is [pos, pos]: keys of another length would broadcast against it without a word
            // the scale is the model's: queries of another head size would be scaled as its heads without a word
            int dHead = config.dHead(layer);
            if (qs.length != 4 || ks.length != 4 || qs[0] != ks[0] || qs[1] != ks[1] || qs[3] != dHead
                    || ks[3] != dHead || ks[2] == 0 || qs[2] % ks[2] != 0) {
                throw new IllegalArgumentException("attentionScores: queries and keys must be [batch, pos, heads,"
                        + " d_head = " + dHead + "] with the same batch and positions, and query heads a"
                        + " multiple of key heads; got " + Arrays.toString(qs) + " and " + Arrays.toString(ks));
            }
            try (TensorScope scope = TensorScope.open()) {
                return scope.keep(new Forward(config, weights, tables, null).scores(layer, q, k));
            }
        });
    }

    /**
     * The rotary position embedding block {@code layer}'s attention applies to queries and keys
     * ({@code hook_q → hook_rot_q}, after any query/key norm but nanochat's), for {@code x [batch, pos, heads, d_head]}
     * at positions {@code 0..pos-1}; a new tensor, a copy of {@code x} for a layer that does not rotate
     * ({@link HookedAutoConfig#rotates}).
     *
     * @throws IllegalStateException when the family has no rotary embeddings ({@link HookedAutoConfig#rotary()})
     */
    public Tensor rotate(int layer, Tensor x) {
        return using(() -> {
            checkLayer(layer);
            if (!config.rotary()) {
                throw new IllegalStateException("this " + config.family() + " model has no rotary position embeddings");
            }
            if (x.dim() != 4 || x.size(3) != config.dHead(layer)) {
                throw new IllegalArgumentException("rotate expects [batch, pos, heads, d_head = " + config.dHead(layer)
                        + "], got shape " + java.util.Arrays.toString(x.shape()));
            }
            if (!config.rotates(layer)) {
                return x.copy();
            }
            try (TensorScope scope = TensorScope.open()) {
                Architecture a = config.architecture();
                Forward.Rotary rotary = Forward.Rotary.of(a, a.rope(layer), x.size(1), x.dtype(), x.device());
                return scope.keep(rotary.apply(x));
            }
        });
    }

    /**
     * Block {@code layer}'s attention mask for {@code pos} positions, bool {@code [pos, pos]} on the model's device:
     * true where query q may not look at key k (the future, keys beyond a local or sliding window, and keys of earlier
     * chunks than the query's in a chunked layer); a new tensor.
     */
    public Tensor attentionMask(int layer, long pos) {
        if (pos < 0) {
            throw new IllegalArgumentException("attentionMask: pos must not be negative, got " + pos);
        }
        return using(() -> {
            softmaxLayer(layer);
            try (TensorScope scope = TensorScope.open()) {
                return scope.keep(new Forward(config, weights, tables, null).mask(layer, pos, device));
            }
        });
    }

    /**
     * The effective scales of each block's first norm (the attention's input norm), {@code [layer, d_model]}: the norm
     * weight in the model's dtype, or {@code 1 + w} for {@code (1 + w)} norms as the forward pass forms it (gemma's in
     * float32 for a float16 or bfloat16 model, nemotron's in the model's dtype), ones for norms without parameters
     * (olmo's, nanochat's); null where the blocks have no input norm (olmo2, olmo3, flex-olmo, exaone4). Folding them
     * into the rows of W_Q, W_K, W_V is the weights' part of TransformerLens's {@code fold_ln}, which for LayerNorm
     * families also folds the norm's bias into b_Q, b_K, b_V and centres the weights. A new tensor.
     */
    public Tensor normWeights() {
        return using(() -> {
            List<Tensor> perLayer = new ArrayList<>();
            try (TensorScope scope = TensorScope.open()) {
                for (Weights.Layer l : weights.layers) {
                    if (l.ln1w() == null) {
                        return null;
                    }
                    perLayer.add(config.normAddsOne() ? plusOne(l.ln1w(), config.architecture().norm()) : l.ln1w());
                }
                return scope.keep(Tensor.stack(perLayer, 0));
            }
        });
    }

    /**
     * The effective scales of the query norms, {@code [layer, head, d_head]} in the model's dtype (the weight, or
     * {@code 1 + w} for gemma3's norms, in float32 as {@link #normWeights()} says; a norm over the whole projection
     * sliced per head); null where the family has no query norm, or one without a weight (llama4). A new tensor.
     */
    public Tensor queryNormWeights() {
        return using(() -> !qkNormWeighted() ? null
                : stackLayers(l -> qkNormScale(softmaxLayer(l).qNorm(), config.nHeads(), l, false)));
    }

    /** The effective scales of the key norms, {@code [layer, kv_head, d_head]} ({@code repeatKv}: one per query head), as {@link #queryNormWeights()}. */
    public Tensor keyNormWeights(boolean repeatKv) {
        return using(() -> !qkNormWeighted() ? null
                : stackLayers(l -> qkNormScale(keyValueLayer(l).kNorm(), config.nKvHeads(l), l, repeatKv)));
    }

    /**
     * Block {@code layer}'s query-norm scales {@code [head, d_head]}, as {@link #queryNormWeights()} gives every
     * layer's; null where the family has no query norm, or one without a weight. A new tensor.
     */
    public Tensor queryNormWeights(int layer) {
        return using(() -> !qkNormWeighted() ? null
                : copied(() -> qkNormScale(softmaxLayer(layer).qNorm(), config.nHeads(), layer, false)));
    }

    /** Block {@code layer}'s key-norm scales {@code [kv_head, d_head]} ({@code repeatKv}: one per query head). */
    public Tensor keyNormWeights(int layer, boolean repeatKv) {
        return using(() -> !qkNormWeighted() ? null
                : copied(() -> qkNormScale(keyValueLayer(layer).kNorm(), config.nKvHeads(layer), layer, repeatKv)));
    }

    /** Whether the family's query and key norms have weights (llama4's L2 norm has none, nor a scale but 1). */
    private boolean qkNormWeighted() {
        Architecture.QkNorm kind = config.architecture().qkNorm();
        return kind != Architecture.QkNorm.NONE && kind != Architecture.QkNorm.ROTATED_UNWEIGHTED;
    }

    /** A query or key norm's weight {@code w} as per-head scales {@code [heads, d_head]}, a view where it can be. */
    private Tensor qkNormScale(Tensor w, int heads, int layer, boolean repeatKv) {
        boolean perHead = config.architecture().qkNorm() == Architecture.QkNorm.PER_HEAD;
        Tensor scale = config.normAddsOne() ? plusOne(w, config.architecture().norm()) : w;
        int dHead = config.dHead(layer);
        Tensor perHeadScale = perHead ? scale.unsqueeze(0).expand(heads, dHead) : scale.view(heads, dHead);
        return repeatKv(perHeadScale, repeatKv);
    }

    /**
     * The effective scales of the norms of each block's attention output, {@code [layer, d_model]} in the model's
     * dtype (the weight, or {@code 1 + w} for gemma2's and gemma3's norms, in float32 as {@link #normWeights()} says),
     * which multiply what the heads write
     * (after division by the output's RMS) before it joins the residual stream; null where the family does not
     * normalise the attention's output. A new tensor.
     */
    public Tensor attentionOutNormWeights() {
        return using(() -> config.architecture().outputNorms() ? stackLayers(this::attentionOutNormScale) : null);
    }

    /** Block {@code layer}'s attention-output norm scales {@code [d_model]}, as {@link #attentionOutNormWeights()}. */
    public Tensor attentionOutNormWeights(int layer) {
        return using(() -> config.architecture().outputNorms() ? copied(() -> attentionOutNormScale(layer)) : null);
    }

    private Tensor attentionOutNormScale(int layer) {
        Tensor w = layer(layer).attnOutNorm();
        return config.normAddsOne() ? plusOne(w, config.architecture().norm()) : w;
    }

    /**
     * A {@code (1 + w)} norm's scale as its forward pass forms it: gemma's in float32 for a float16 or bfloat16 model,
     * where the dtype would round it; nemotron's LayerNorm's in the model's dtype.
     */
    static Tensor plusOne(Tensor w, Architecture.Norm norm) {
        boolean widened = norm != Architecture.Norm.LAYER_NORM_PLUS_ONE
                && (w.dtype() == DType.FLOAT16 || w.dtype() == DType.BFLOAT16);
        return (widened ? w.to(DType.FLOAT32) : w).add(1.0);
    }

    private void checkLayer(int layer) {
        if (layer < 0 || layer >= config.nLayers()) {
            throw new IllegalArgumentException("layer " + layer + " is not in this model: layers 0.." + (config.nLayers() - 1));
        }
    }

    /**
     * Frees the weights, the tokenizer and the captured passes, once the forward passes and calls running on other
     * threads have finished; later calls that read them throw {@link IllegalStateException} (the configuration, the
     * hook names and {@link #attentionPattern}, which reads no weights, stay usable).
     *
     * @throws IllegalStateException when called from inside a pass or call of this model (a hook, say)
     */
    @Override
    public void close() {
        if (uses.getReadHoldCount() > 0) {
            throw new IllegalStateException("this " + config.family() + " model cannot be closed by code running inside"
                    + " one of its own passes (a hook, say)");
        }
        closing = true;
        uses.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
        } finally {
            uses.writeLock().unlock();
        }
        List<CapturedForward> open;
        synchronized (this) {
            open = List.copyOf(captures);
            if (tokenizer != null) {
                tokenizer.close();
            }
        }
        RuntimeException failed = null;
        for (CapturedForward capture : open) {
            try {
                capture.close(); // waits for a replay in progress: the graphs read the weights
            } catch (RuntimeException e) {
                if (failed == null) {
                    failed = e;
                } else {
                    failed.addSuppressed(e);
                }
            }
        }
        if (failed != null) {
            throw new IllegalStateException("a captured pass of this model could not be closed, so its weights stay"
                    + " allocated: a replay may still read them", failed);
        }
        tables.close();
        weights.close();
    }

    @Override
    public String toString() {
        return "HookedAutoModel[" + config + ", " + dtype + ", " + device + "]";
    }

    static Set<String> hookNamesOf(HookedAutoConfig config) {
        Set<String> names = new LinkedHashSet<>();
        names.add("hook_embed");
        if (!config.rotary()) {
            names.add("hook_pos_embed");
        }
        if (config.architecture().embeddingNorm()) {
            names.add("ln_embed.hook_scale");
            names.add("ln_embed.hook_normalized");
        }
        boolean ln1 = config.architecture().inputNorms();
        boolean ln2 = ln1 && (!config.parallelResidual() || config.checkpoint().tensors().values().stream()
                .anyMatch(t -> t.parts().stream().anyMatch(p -> p.slot() == Slot.LN2_W)));
        for (int i = 0; i < config.nLayers(); i++) {
            String b = "blocks." + i + ".";
            names.add(b + "hook_resid_pre");
            if (ln1) {
                names.add(b + "ln1.hook_scale");
                names.add(b + "ln1.hook_normalized");
            }
            switch (config.architecture().mixer(i)) {
                case SOFTMAX_ATTENTION -> attentionHookNames(config, i, names);
                case LINEAR_ATTENTION -> {
                    for (String h : new String[] {"hook_q", "hook_k", "hook_v", "hook_beta", "hook_decay", "hook_core",
                            "hook_gate", "hook_z"}) {
                        names.add(b + "linear_attn." + h);
                    }
                }
                case SHORT_CONVOLUTION -> {
                    for (String h : new String[] {"hook_b", "hook_c", "hook_x", "hook_conv", "hook_z"}) {
                        names.add(b + "conv." + h);
                    }
                }
                case MAMBA2 -> {
                    for (String h : new String[] {"hook_x", "hook_b", "hook_c", "hook_dt", "hook_ssm", "hook_gate",
                            "hook_z"}) {
                        names.add(b + "mamba." + h);
                    }
                }
            }
            names.add(b + "hook_attn_out");
            if (!config.parallelResidual()) {
                names.add(b + "hook_resid_mid");
            }
            if (ln2) {
                names.add(b + "ln2.hook_scale");
                names.add(b + "ln2.hook_normalized");
            }
            if (config.numExperts() > 0 && config.architecture().moe().sparse(i)) {
                names.add(b + "mlp.hook_router_logits");
                names.add(b + "mlp.hook_expert_indices");
                names.add(b + "mlp.hook_expert_weights");
                for (int e = 0; e < config.numExperts(); e++) {
                    names.add(b + "mlp.experts." + e + ".hook_pre");
                    names.add(b + "mlp.experts." + e + ".hook_pre_linear");
                    names.add(b + "mlp.experts." + e + ".hook_post");
                }
                if (config.architecture().moe().hasSharedExpert()) {
                    names.add(b + "mlp.shared_expert.hook_pre");
                    names.add(b + "mlp.shared_expert.hook_pre_linear");
                    names.add(b + "mlp.shared_expert.hook_post");
                    if (config.architecture().moe().sharedGated()) {
                        names.add(b + "mlp.hook_shared_expert_gate");
                    }
                }
            } else {
                names.add(b + "mlp.hook_pre");
                if (config.gatedMlp()) {
                    names.add(b + "mlp.hook_pre_linear");
                }
                names.add(b + "mlp.hook_post");
            }
            names.add(b + "hook_mlp_out");
            if (config.architecture().perLayerInputs() != null) {
                names.add(b + "hook_per_layer_input");
                names.add(b + "hook_per_layer_out");
            }
            names.add(b + "hook_resid_post");
        }
        names.add("ln_final.hook_scale");
        names.add("ln_final.hook_normalized");
        names.add("logits");
        return names;
    }

    /** A softmax-attention layer's hook points, in the order the pass makes them. */
    private static void attentionHookNames(HookedAutoConfig config, int i, Set<String> names) {
        String b = "blocks." + i + ".";
        boolean ownKeys = config.architecture().keysFrom(i) == i; // gemma4's sharing layers project queries alone
        for (String h : ownKeys ? new String[] {"hook_q", "hook_k", "hook_v"} : new String[] {"hook_q"}) {
            names.add(b + "attn." + h);
        }
        if (config.architecture().valueNorm() && ownKeys) {
            names.add(b + "attn.hook_v_normed");
        }
        List<String> normed = config.architecture().qkNorm(i) == Architecture.QkNorm.NONE ? List.of()
                : ownKeys ? List.of(b + "attn.hook_q_normed", b + "attn.hook_k_normed")
                : List.of(b + "attn.hook_q_normed");
        List<String> rotated = !config.rotates(i) ? List.of()
                : ownKeys ? List.of(b + "attn.hook_rot_q", b + "attn.hook_rot_k") : List.of(b + "attn.hook_rot_q");
        boolean normedLast = config.architecture().qkNormAfterRotary();
        names.addAll(normedLast ? rotated : normed); // in the order the pass makes them
        names.addAll(normedLast ? normed : rotated);
        names.add(b + "attn.hook_attn_scores");
        names.add(b + "attn.hook_pattern");
        if (config.architecture().attentionOutputGate()) {
            names.add(b + "attn.hook_gate");
        }
        names.add(b + "attn.hook_z");
    }

    /**
     * Tensors with random values in the Hugging Face shapes of a checkpoint, for {@link #create}. Each tensor draws
     * from its own generator, seeded by the model's seed and the tensor's name, so its values do not depend on the
     * order tensors are loaded in.
     */
    static final class RandomSource implements HfWeights.Source {
        private final Map<String, CheckpointTensor> tensors;
        private final long seed;
        private final double std;
        private final boolean normsStartAtZero;
        private final int paddingIndex;
        private final DType dtype;
        private final Progress progress;
        private final long total;
        private long drawn;

        /** Tensors drawn in {@code dtype}, the model's, so that loading them needs no conversion. */
        RandomSource(HookedAutoConfig config, long seed, DType dtype) {
            this(config, seed, dtype, Progress.NONE);
        }

        /** The same, telling {@code progress} how many weights are drawn. */
        RandomSource(HookedAutoConfig config, long seed, DType dtype, Progress progress) {
            this.tensors = config.checkpoint().tensors();
            this.seed = seed;
            this.std = config.initializerRange();
            // gemma's (1 + w) norms start at w = 0, the identity scale; transformers starts nemotron's at w = 1
            this.normsStartAtZero = config.architecture().norm() == Architecture.Norm.RMS_NORM_PLUS_ONE;
            this.paddingIndex = config.architecture().paddingIndex();
            this.dtype = dtype;
            this.progress = progress;
            this.total = tensors.values().stream().mapToLong(t -> Arrays.stream(t.shape()).reduce(1, Math::multiplyExact)).sum();
        }

        @Override
        public Set<String> names() {
            return tensors.keySet();
        }

        @Override
        public long[] shape(String name) {
            return tensors.get(name).shape();
        }

        @Override
        public Tensor load(String name) {
            CheckpointTensor tensor = tensors.get(name);
            long[] shape = tensor.shape();
            Tensor drawnTensor = switch (tensor.init()) {
                case NORM -> normsStartAtZero ? Tensor.zeros(shape, dtype, Device.CPU) : Tensor.ones(shape, dtype, Device.CPU);
                case ZERO -> Tensor.zeros(shape, dtype, Device.CPU);
                case NORMAL -> Tensor.normal(new Generator(seed * 0x9E3779B97F4A7C15L + name.hashCode()), shape, 0.0, std,
                        dtype, Device.CPU);
                case CONSTANT -> Tensor.full(shape, tensor.parts().getFirst().slot().initialValue(), dtype, Device.CPU);
            };
            if (paddingIndex >= 0 && tensor.parts().stream().anyMatch(part -> part.slot() == Slot.EMBED)) {
                Tensor row = drawnTensor.select(0, paddingIndex);
                row.copyFrom(Tensor.zeros(row.shape(), dtype, Device.CPU));
            }
            drawn += drawnTensor.numel();
            progress.advanced(drawn, total);
            return drawnTensor;
        }
    }
}

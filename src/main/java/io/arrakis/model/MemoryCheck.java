package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.LinearAttention;
import io.arrakis.model.family.Mamba2;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.HostMemory;

import java.util.Locale;
import java.util.Set;

/**
 * Refuses, before anything is allocated, a model whose weights cannot fit in the memory this process may use, and a
 * pass whose logits and cached activations cannot.
 */
final class MemoryCheck {
    private static final double GIB = 1024.0 * 1024 * 1024;

    /**
     * A pass or stack needing less than this fraction of all the memory this process may use is not checked against
     * what is free now: it fails only where memory is all but full already, and reading the kernel's figures would
     * cost a small pass a good share of its time.
     */
    private static final double SMALL = 64;

    /** What a pass without a cache or hooks keeps to its end. */
    static final java.util.function.Predicate<String> NOTHING = name -> false;

    private MemoryCheck() {
    }

    /**
     * Refuses a CPU pass over ids {@code [batch, pos]} whose logits, or its logits, the activations it keeps to its end
     * ({@code kept}: what the cache keeps and what hooks see, twice where {@code hooked}, which may replace it) and one
     * block's work, exceed the memory available:
     * libtorch's failed allocation would otherwise print its C++ stack trace, and an allocation the kernel grants but
     * cannot back ends the process. The activations are counted at their shapes and dtypes, each tensor once (a
     * query, key or value keeps the product of all three, a gated MLP's gate or up projection both); a block's work,
     * which the pass frees as the block ends, as the most it holds at once ({@link #blockBytesPerToken}); the logits
     * twice where a scale or soft-cap makes new ones from them.
     */
    static void requirePass(HookedAutoConfig config, Set<String> hookNames, java.util.function.Predicate<String> kept,
                            java.util.function.Predicate<String> hooked, long batch, long pos, DType dtype,
                            Device device) {
        if (!device.isCpu()) {
            return;
        }
        long tokens = batch * pos;
        PassBytes needed = passBytes(config, hookNames, kept, hooked, batch, pos, dtype, device);
        double logits = needed.logits();
        double held = needed.held();
        double work = needed.work();
        if (needed.total() < HostMemory.usableBytes() / SMALL) {
            return; // spare small passes reading the kernel's figures
        }
        long available = HostMemory.availableBytes();
        if (available < 0) {
            return;
        }
        if (logits > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%,d input ids need %.1f GiB for their"
                    + " logits alone (%,d per id in %s), but only %.1f GiB of memory is available to this process; run"
                    + " fewer sequences or positions at once", tokens, logits / GIB, config.vocabSize(), dtype,
                    available / GIB));
        }
        if (logits + held + work > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, (held > 0 ? "caching this pass's"
                    + " activations over [%d, %d] input ids (and holding what hooks see) needs at least %.1f GiB besides"
                    + " %.1f GiB of logits and %.1f GiB for a block's work, but only %.1f GiB of memory is available"
                    + " to this process; cache fewer hook points (CacheSpec.only or matching; attention patterns and"
                    + " scores grow with the square of the positions), or run fewer sequences or positions at once"
                    : "a pass over [%d, %d] input ids needs %.1f GiB for its logits and %.1f GiB for a block's"
                    + " work, but only %.1f GiB of memory is available to this process; run fewer sequences or"
                    + " positions at once"), held > 0
                    ? new Object[] {batch, pos, held / GIB, logits / GIB, work / GIB, available / GIB}
                    : new Object[] {batch, pos, logits / GIB, work / GIB, available / GIB}));
        }
    }

    /** A pass's memory as {@link #requirePass} counts it: its logits, what it keeps to its end, one block's work. */
    record PassBytes(double logits, double held, double work) {
        double total() {
            return logits + held + work;
        }
    }

    /** What {@link #requirePass} counts for a pass over ids {@code [batch, pos]}. */
    static PassBytes passBytes(HookedAutoConfig config, Set<String> hookNames, java.util.function.Predicate<String> kept,
                               java.util.function.Predicate<String> hooked, long batch, long pos, DType dtype,
                               Device device) {
        long tokens = batch * pos;
        Architecture a = config.architecture();
        double logits = (double) tokens * config.vocabSize() * dtype.byteSize()
                * (a.logitScale() != 1.0 || a.logitSoftcap() > 0 ? 2 : 1);
        double held = kept == NOTHING ? 0 : keptBytesPerToken(config, hookNames, kept, hooked, pos, dtype) * tokens;
        boolean explicitAttention = !Forward.fusedAttentionPays(device, dtype) || a.attentionSoftcap() > 0
                || a.attentionSinks() || kept != NOTHING && hookNames.stream().anyMatch(n -> (n.endsWith("hook_pattern")
                || n.endsWith("hook_attn_scores")) && kept.test(n));
        return new PassBytes(logits, held, blockBytesPerToken(config, pos, explicitAttention, dtype) * tokens);
    }

    /**
     * The elements per token of a layer's queries, keys and values as the pass makes them: one fused product, or,
     * for latent attention, the queries, the keys (made whole per head), the keys' and values' product, and the
     * latents with their norms.
     */
    private static double queriesKeysValues(HookedAutoConfig config) {
        LatentAttention m = config.architecture().latentAttention();
        if (m == null) { // the widest layer's, where layers differ
            return java.util.stream.IntStream.range(0, config.nLayers())
                    .mapToDouble(l -> (double) (config.nHeads() + 2L * config.nKvHeads(l)) * config.dHead(l)).max()
                    .orElse(0);
        }
        return (double) config.nHeads() * (2L * m.queryKeyDim() + m.nopeDim() + m.valueDim())
                + 2.0 * (m.keyValueRank() + m.ropeDim() + m.queryRank());
    }

    /** The width of a mixture's dense layers' MLP; 0 where no layer is dense (whatever the width's key says). */
    private static int denseWidth(MixtureOfExperts moe) {
        return moe.sparseLayers() != null && moe.sparseLayers().contains(false) ? moe.denseWidth() : 0;
    }

    /**
     * The most bytes per token one block holds at once besides what the pass keeps, with room to spare: the residual
     * stream in and out and its sums, the norms' outputs, the Q/K/V product and what attention makes of it (where it
     * runs explicitly, its scores, float32 where the family computes them so, with soft-capping's steps, and its
     * pattern), its output, the MLP's hidden activations (each expert's tokens together as many as the tokens'
     * picks), and linear attention's or a Mamba-2 layer's work where the model has them.
     */
    static double blockBytesPerToken(HookedAutoConfig config, long pos, boolean explicitAttention, DType dtype) {
        Architecture a = config.architecture();
        double qkv = queriesKeysValues(config);
        double hidden;
        if (a.moe() != null) { // one expert's work at a time (gpt-oss's clamped SwiGLU makes more), then k outputs
            // per token weighted, joined, reordered and summed; or a dense layer's gated MLP, where the larger
            int k = config.expertsPerToken();
            hidden = Math.max((double) config.dMlp() * (a.moe().clampedSwiglu() != null ? 9 : 4) * k
                    + 4.0 * k * config.dModel() * Math.max(1, 4 / dtype.byteSize()), 4.0 * denseWidth(a.moe()));
        } else { // a GELU written out step by step in reduced precision holds two more of the MLP's width; relu^2
            // holds one more beside an ungated MLP's input (a gated MLP's is freed before its product with up)
            boolean stepwise = reduced(dtype) && (a.activationFunction() == Architecture.Activation.GELU_TANH
                    && !a.activation().equals("gelu_pytorch_tanh") || a.activation().equals("gelu_python"));
            boolean squared = a.activationFunction() == Architecture.Activation.RELU2 && !config.gatedMlp();
            // xIELU holds both its sides, its linear term and the step being made at once
            boolean xielu = a.activationFunction() == Architecture.Activation.XIELU;
            int steps = xielu ? 4 : stepwise ? 2 : squared ? 1 : 0;
            int widest = java.util.stream.IntStream.range(0, config.nLayers()).map(a::dMlp).max().orElse(0);
            hidden = (double) widest * ((config.gatedMlp() ? 4 : 2) + steps);
        }
        // the projection, and its clamped copy where clip_qkv clamps it
        double bytes = (8.0 * config.dModel() + (a.clipQkv() > 0 ? 3 : 2) * qkv + hidden) * dtype.byteSize();
        if (explicitAttention) {
            boolean wide = reduced(dtype) && a.scoresInFloat32(); // queries and keys converted, scores made in float32
            int scoreBytes = wide ? 4 : dtype.byteSize();
            bytes += (double) config.nHeads() * pos
                    * (scoreBytes * (a.attentionSoftcap() > 0 ? 8 : 2) + 2 * dtype.byteSize())
                    + (wide ? 4.0 * java.util.stream.IntStream.range(0, config.nLayers())
                            .map(l -> (config.nHeads() + config.nKvHeads(l)) * config.dHead(l)).max().orElse(0) : 0);
        }
        LinearAttention linear = a.linearAttention();
        if (linear != null) { // the delta rule's float32 work: its inputs' copies and steps, a chunk's square matrices
            // with the steps that make them, the corrections, the keys that read the state, and the output
            int k = linear.keyDim();
            int v = linear.valueDim();
            bytes += 4.0 * linear.valueHeads() * (8.0 * (2 * k + v) + 6.0 * GatedDeltaRule.CHUNK + 2.0 * (k + v));
        }
        Mamba2 mamba = a.mamba2();
        if (mamba != null) { // the projection and the convolution's output; the scan's float32 work: its inputs'
            // copies and steps, a chunk's square matrices with the steps that make them, and the output
            bytes += (mamba.projection() + 2.0 * mamba.convChannels()) * dtype.byteSize() + 4.0 * mamba.heads()
                    * (8.0 * mamba.headDim() + 6.0 * mamba.stateSize() + 6.0 * mamba.chunk());
        }
        return bytes;
    }

    /**
     * The bytes per token of the activations {@code kept}, besides the logits: a query, key or value keeps its layer's
     * whole Q/K/V product (they are views of it; in linear attention, of the convolution's output), linear attention's
     * gate its input projections' product, a short convolution's gates their product, a gated MLP's gate or up
     * projection both halves of theirs.
     */
    private static double keptBytesPerToken(HookedAutoConfig config, Set<String> hookNames,
                                            java.util.function.Predicate<String> kept,
                                            java.util.function.Predicate<String> hooked, long pos, DType dtype) {
        double bytes = 0;
        Set<String> products = new java.util.HashSet<>(); // the layers' fused products counted already
        for (String name : hookNames) {
            if (!kept.test(name) || sameAsKept(name, kept)) {
                continue;
            }
            if (hooked.test(name)) { // a hook's replacement, beside what it replaced
                bytes += elementsPerToken(config, name, pos) * bytesPerElement(config, name, dtype);
            }
            String layer = name.startsWith("blocks.") ? name.substring(0, name.indexOf('.', "blocks.".length()) + 1) : "";
            String local = name.substring(layer.length());
            LinearAttention linear = config.architecture().linearAttention();
            if (local.equals("attn.hook_q") || local.equals("attn.hook_k") || local.equals("attn.hook_v")) {
                if (products.add(layer + "qkv")) {
                    bytes += queriesKeysValues(config) * dtype.byteSize();
                }
            } else if (local.equals("linear_attn.hook_q") || local.equals("linear_attn.hook_k")
                    || local.equals("linear_attn.hook_v")) { // views of the convolution's output
                if (products.add(layer + "convolved")) {
                    bytes += (double) linear.convChannels() * dtype.byteSize();
                }
            } else if (local.equals("conv.hook_b") || local.equals("conv.hook_c") || local.equals("conv.hook_x")) {
                if (products.add(layer + "gates")) { // views of the short convolution's input projection
                    bytes += 3.0 * config.dModel() * dtype.byteSize();
                }
            } else if (local.equals("mamba.hook_x") || local.equals("mamba.hook_b") || local.equals("mamba.hook_c")) {
                if (products.add(layer + "convolved")) { // views of the convolution's output
                    bytes += (double) config.architecture().mamba2().convChannels() * dtype.byteSize();
                }
            } else if (local.equals("mamba.hook_gate")) { // a view of the input projection's product
                bytes += (double) config.architecture().mamba2().projection() * dtype.byteSize();
            } else if (local.equals("linear_attn.hook_gate")) { // a view of the input projections' product
                bytes += ((double) linear.convChannels() + (double) linear.valueHeads() * (linear.valueDim() + 2))
                        * dtype.byteSize();
            } else if (config.gatedMlp() && (local.equals("mlp.hook_pre") || local.equals("mlp.hook_pre_linear"))) {
                if (products.add(layer + "gateUp")) {
                    bytes += 2.0 * mlpWidth(config, name) * dtype.byteSize();
                }
            } else {
                bytes += elementsPerToken(config, name, pos) * bytesPerElement(config, name, dtype);
            }
        }
        return bytes;
    }

    /** Whether the activation at {@code name} is one the cache already holds: a block's resid_pre is the last resid_post. */
    private static boolean sameAsKept(String name, java.util.function.Predicate<String> kept) {
        if (!name.endsWith(".hook_resid_pre")) {
            return false;
        }
        int layer = layerOf(name);
        return layer > 0 && kept.test("blocks." + (layer - 1) + ".hook_resid_post");
    }

    /** The MLP width of the block hook point {@code name} is in: a dense layer's among experts, or d_mlp. */
    private static int mlpWidth(HookedAutoConfig config, String name) {
        MixtureOfExperts moe = config.architecture().moe();
        if (!name.startsWith("blocks.")) {
            return config.dMlp();
        }
        int layer = layerOf(name);
        if (moe == null) {
            return config.architecture().dMlp(layer); // gemma4 doubles it in some layers
        }
        return moe.sparse(layer) ? config.dMlp() : moe.denseWidth();
    }

    /** The elements per token of the activation at a hook point of {@link HookedAutoModel#hookNamesOf}. */
    private static double elementsPerToken(HookedAutoConfig config, String name, long pos) {
        String point = name.substring(name.lastIndexOf('.') + 1);
        if (name.contains(".experts.")) {
            // each expert sees only its tokens; together they see each token top-k times
            return (double) config.dMlp() * config.expertsPerToken() / config.numExperts();
        }
        if (name.contains(".shared_expert.")) {
            return config.architecture().moe().sharedWidth();
        }
        if (name.contains(".conv.")) { // a short convolution's gates, convolution and product: d_model each
            return config.dModel();
        }
        Mamba2 mamba = config.architecture().mamba2();
        if (name.contains(".mamba.")) {
            return switch (point) {
                case "hook_b", "hook_c" -> (double) mamba.groups() * mamba.stateSize();
                case "hook_dt" -> mamba.heads();
                default -> mamba.inner(); // x, the state space's output, the gate, the normed output
            };
        }
        LinearAttention linear = config.architecture().linearAttention();
        if (name.contains(".linear_attn.")) {
            return switch (point) {
                case "hook_q", "hook_k" -> (double) linear.keyHeads() * linear.keyDim();
                case "hook_beta", "hook_decay" -> linear.valueHeads();
                default -> (double) linear.valueHeads() * linear.valueDim(); // values, outputs, gates
            };
        }
        return switch (point) {
            case "logits" -> 0; // counted apart
            case "hook_scale" -> 1;
            case "hook_q", "hook_q_normed", "hook_rot_q" -> (double) config.nHeads() * config.dHead(layerOf(name));
            case "hook_z", "hook_gate" -> (double) config.nHeads() * config.dHeadV(layerOf(name));
            case "hook_k", "hook_k_normed", "hook_rot_k" ->
                    (double) config.nKvHeads(layerOf(name)) * config.dHead(layerOf(name));
            case "hook_v", "hook_v_normed" -> (double) config.nKvHeads(layerOf(name)) * config.dHeadV(layerOf(name));
            case "hook_attn_scores", "hook_pattern" -> (double) config.nHeads() * pos;
            case "hook_pre", "hook_pre_linear", "hook_post" -> mlpWidth(config, name);
            case "hook_router_logits" -> config.numExperts();
            case "hook_expert_indices", "hook_expert_weights" -> config.expertsPerToken();
            case "hook_shared_expert_gate" -> 1;
            case "hook_per_layer_input" -> config.architecture().perLayerInputs().width();
            default -> config.dModel(); // the embeddings, the residual stream, attention and MLP outputs, final norm
        };
    }

    /** The layer of a {@code blocks.{layer}.} hook point. */
    static int layerOf(String name) {
        return Integer.parseInt(name.substring("blocks.".length(), name.indexOf('.', "blocks.".length())));
    }

    private static boolean reduced(DType dtype) {
        return dtype == DType.BFLOAT16 || dtype == DType.FLOAT16;
    }

    /** The bytes of an element of the activation at {@code name} in a model of {@code dtype}. */
    private static int bytesPerElement(HookedAutoConfig config, String name, DType dtype) {
        boolean reduced = reduced(dtype);
        Architecture a = config.architecture();
        String point = name.substring(name.lastIndexOf('.') + 1);
        return switch (point) {
            case "hook_expert_indices" -> 8; // int64
            case "hook_expert_weights" -> a.moe().float32Weights() ? Math.max(4, dtype.byteSize()) : dtype.byteSize();
            case "hook_router_logits" -> a.moe().float32Logits() ? 4 : dtype.byteSize();
            case "hook_scale", "hook_decay", "hook_ssm" -> reduced ? 4 : dtype.byteSize(); // float32 in the pass
            case "hook_attn_scores" -> reduced && a.scoresInFloat32() ? 4 : dtype.byteSize();
            default -> dtype.byteSize();
        };
    }

    /**
     * Refuses a CPU stack of {@code components} tensors of {@code elementsEach} elements in {@code dtype} that cannot
     * be held three times (its parts, the stack they are joined into, and that stack with one more component), and,
     * where the final norm is applied to it ({@code applyLn}), five more times in float32 (or float64) for that
     * norm's steps, in the memory available.
     */
    static void requireStack(String method, long components, long elementsEach, DType dtype, Device device,
                             boolean applyLn) {
        if (!device.isCpu()) {
            return;
        }
        double elements = (double) components * elementsEach;
        double needed = 3 * elements * dtype.byteSize() + (applyLn ? 5 * elements * Math.max(4, dtype.byteSize()) : 0);
        if (needed < HostMemory.usableBytes() / SMALL) {
            return;
        }
        long available = HostMemory.availableBytes();
        if (available >= 0 && needed > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "%s stacks %,d components of %,d elements"
                    + " in %s, which with their parts needs %.1f GiB, but only %.1f GiB of memory is available to this"
                    + " process; run the pass over fewer sequences or positions", method, components, elementsEach,
                    dtype, needed / GIB, available / GIB));
        }
    }

    /**
     * Refuses weights that cannot fit in the memory available: the config's parameters, plus {@code untiedCopy}
     * parameters where the file stores an unembedding beside tied embeddings (which loads untied if its values differ).
     */
    static void require(HookedAutoConfig config, long untiedCopy, DType dtype, Device device) {
        if (!device.isCpu()) {
            return; // GPU memory is checked by the allocator; a CUDA out-of-memory is a clean TorchException
        }
        long parameters = Math.addExact(config.parameterCount(), untiedCopy);
        long needed = Math.multiplyExact(parameters, (long) dtype.byteSize());
        long available = HostMemory.availableBytes();
        if (available >= 0 && needed > available) {
            String smaller = dtype.byteSize() > 2
                    ? String.format(Locale.ROOT, "load it in bfloat16 (%.1f GiB), or ", 2.0 * parameters / GIB) : "";
            String copy = untiedCopy > 0 ? " (its file stores an unembedding beside its tied embeddings)" : "";
            // by the config's own keys, which a HookedAutoConfig.with(...) and the CLI's --config both take
            // as many layers as fit beside the rest of the weights in this dtype, leaving a quarter for the passes
            long perLayer = config.checkpoint().layer(0).stream().mapToLong(t -> t.numel()).sum();
            long rest = parameters - perLayer * config.nLayers();
            long fitting = Math.min(config.nLayers() - 1L,
                    (available / 4 * 3 / dtype.byteSize() - rest) / Math.max(1, perLayer));
            String perLayerKey = java.util.stream.Stream.of("attention_types", "layer_types")
                    .filter(k -> config.raw().get(k) != null).findFirst().orElse(null);
            String fewer = fitting >= 1
                    ? String.format(Locale.ROOT, "use fewer layers (%s, e.g. %d%s)", config.hfKey("num_hidden_layers"),
                            fitting, perLayerKey == null ? "" : ", with " + perLayerKey + " to match")
                    : String.format(Locale.ROOT, "use a smaller vocabulary or width (%s is %,d, %s %,d)",
                            config.hfKey("vocab_size"), config.vocabSize(), config.hfKey("hidden_size"), config.dModel());
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s with %,d parameters%s needs %.1f GiB for its weights in %s, but only %.1f GiB of memory is"
                            + " available to this process; %s%s",
                    config.family(), parameters, copy, needed / GIB, dtype, available / GIB, smaller, fewer));
        }
    }
}

package io.arrakis.model;

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

    private MemoryCheck() {
    }

    /**
     * Refuses a CPU pass over ids {@code [batch, pos]} whose logits, or its logits and the activations {@code spec}
     * caches, exceed the memory available: libtorch's failed allocation would otherwise print its C++ stack trace, and
     * an allocation the kernel grants but cannot back ends the process. The activations are counted at their shapes
     * in the model's dtype, each tensor once, and nothing the pass frees on the way: no more than the pass holds.
     */
    static void requirePass(HookedAutoConfig config, Set<String> hookNames, CacheSpec spec, long batch, long pos,
                            DType dtype, Device device) {
        if (!device.isCpu()) {
            return;
        }
        long tokens = batch * pos;
        double logits = (double) tokens * config.vocabSize() * dtype.byteSize();
        double cached = spec == CacheSpec.none() ? 0
                : cachedElementsPerToken(config, hookNames, spec, pos) * tokens * dtype.byteSize();
        if (logits + cached < HostMemory.usableBytes() / 8.0) {
            return; // far from the limit: spare every pass reading the kernel's figures
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
        if (logits + cached > available) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "caching this pass's activations over"
                    + " [%d, %d] input ids needs at least %.1f GiB besides %.1f GiB of logits, but only %.1f GiB of"
                    + " memory is available to this process; cache fewer hook points (CacheSpec.only or matching;"
                    + " attention patterns and scores grow with the square of the positions), or run fewer sequences"
                    + " or positions at once", batch, pos, cached / GIB, logits / GIB, available / GIB));
        }
    }

    /** The elements per token of the activations {@code spec} caches, besides the logits. */
    private static double cachedElementsPerToken(HookedAutoConfig config, Set<String> hookNames, CacheSpec spec,
                                                 long pos) {
        double elements = 0;
        for (String name : hookNames) {
            if (spec.keeps(name) && !sameAsKept(name, spec)) {
                elements += elementsPerToken(config, name, pos);
            }
        }
        return elements;
    }

    /** Whether the activation at {@code name} is one the cache already holds: a block's resid_pre is the last resid_post. */
    private static boolean sameAsKept(String name, CacheSpec spec) {
        if (!name.endsWith(".hook_resid_pre")) {
            return false;
        }
        int layer = Integer.parseInt(name.substring("blocks.".length(), name.indexOf('.', "blocks.".length())));
        return layer > 0 && spec.keeps("blocks." + (layer - 1) + ".hook_resid_post");
    }

    /** The elements per token of the activation at a hook point of {@link HookedAutoModel#hookNamesOf}. */
    private static double elementsPerToken(HookedAutoConfig config, String name, long pos) {
        String point = name.substring(name.lastIndexOf('.') + 1);
        if (name.contains(".experts.")) {
            // each expert sees only its tokens; together they see each token top-k times
            return (double) config.dMlp() * config.expertsPerToken() / config.numExperts();
        }
        return switch (point) {
            case "logits", "hook_pos_embed" -> 0; // the logits are counted apart; the positions are one [pos, d_model]
            case "hook_scale" -> 1;
            case "hook_q", "hook_q_normed", "hook_rot_q", "hook_z" -> (double) config.nHeads() * config.dHead();
            case "hook_k", "hook_k_normed", "hook_rot_k", "hook_v" -> (double) config.nKvHeads() * config.dHead();
            case "hook_attn_scores", "hook_pattern" -> (double) config.nHeads() * pos;
            case "hook_pre", "hook_pre_linear", "hook_post" -> config.dMlp();
            case "hook_router_logits" -> config.numExperts();
            case "hook_expert_indices", "hook_expert_weights" -> config.expertsPerToken();
            default -> config.dModel(); // the embeddings, the residual stream, attention and MLP outputs, final norm
        };
    }

    /**
     * Refuses a CPU stack of {@code components} tensors of {@code elementsEach} elements in {@code dtype} that cannot
     * be held twice (its parts, then the stack they are joined into) in the memory available.
     */
    static void requireStack(String method, long components, long elementsEach, DType dtype, Device device) {
        if (!device.isCpu()) {
            return;
        }
        double needed = 2.0 * components * elementsEach * dtype.byteSize();
        if (needed < HostMemory.usableBytes() / 8.0) {
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
            String fewer = config.nLayers() > 1
                    ? String.format(Locale.ROOT, "use fewer layers (%s, e.g. %d)", config.hfKey("num_hidden_layers"),
                            Math.max(1, config.nLayers() / 4))
                    : String.format(Locale.ROOT, "use a smaller vocabulary or width (%s is %,d, %s %,d)",
                            config.hfKey("vocab_size"), config.vocabSize(), config.hfKey("hidden_size"), config.dModel());
            throw new IllegalStateException(String.format(Locale.ROOT,
                    "%s with %,d parameters%s needs %.1f GiB for its weights in %s, but only %.1f GiB of memory is"
                            + " available to this process; %s%s",
                    config.family(), parameters, copy, needed / GIB, dtype, available / GIB, smaller, fewer));
        }
    }
}

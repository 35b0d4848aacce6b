package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * TransformerLens's residual-stream tools ({@code ActivationCache.accumulated_resid}, {@code decompose_resid},
 * {@code stack_head_results}, {@code apply_ln_to_stack}, {@code logit_attrs}) over one forward pass's cache:
 *
 * <pre>{@code
 * try (ModelOutput out = model.forward(ids)) {
 *     ResidualStream resid = new ResidualStream(model, out.cache());
 *     try (ResidualStream.Components parts = resid.decomposeResid(false)) {
 *         Tensor attrs = resid.logitAttrs(parts.stack(), answers);   // [component, batch, pos]
 *     }
 * }
 * }</pre>
 *
 * <p>A class of its own, built from a model and a cache, because every one of these needs both: this library's
 * {@link ActivationCache} is activations by name and nothing else, and {@link ModelOutput} the logits beside it,
 * while the final norm, {@code W_O} and {@code W_U} are the model's. Nothing is read or copied until a method is
 * called; the model and the cache must stay open until then.
 *
 * <p>Stacks are {@code [component, batch, pos, d_model]}, with one label per component. Every tensor returned is new
 * and owned by the caller: by the innermost open {@link TensorScope}, or closed by the caller
 * ({@link Components#close}). A method that needs cache entries the cache lacks throws
 * {@link IllegalArgumentException} naming them and the {@link CacheSpec} that keeps them.
 *
 * <p>{@link #applyLnToStack} divides by the final norm's scale as the pass had it, {@code ln_final.hook_scale}, where
 * the cache holds it (as TransformerLens does; a hook's replacement included), and otherwise recomputes it from the
 * last block's {@code hook_resid_post} as the family's final norm does: the variance of the centred stream (LayerNorm)
 * or its mean square (RMSNorm), plus epsilon, in float32.
 */
public final class ResidualStream {
    private static final String FINAL_SCALE = "ln_final.hook_scale";
    private final HookedAutoModel model;
    private final ActivationCache cache;
    private final Architecture arch;
    private final String finalResid;

    /**
     * A labelled stack of residual-stream components.
     *
     * @param stack {@code [component, batch, pos, d_model]}, owned by the caller
     * @param labels one per component, in stack order
     */
    public record Components(Tensor stack, List<String> labels) implements AutoCloseable {
        public Components {
            labels = List.copyOf(labels);
        }

        /** Frees the stack. */
        @Override
        public void close() {
            stack.close();
        }
    }

    /**
     * The tools over {@code cache}, which a forward pass of {@code model} filled, or of a model computing the same
     * function (the same checkpoint loaded again, say). Only the cache's depth and widths can be checked: a cache of
     * another model of the same shape gives numbers that mean nothing, without a word.
     *
     * @throws IllegalArgumentException if a model of another depth or width filled the cache: its decompositions
     *     would end at another layer's stream, or mix its activations with this model's weights
     */
    public ResidualStream(HookedAutoModel model, ActivationCache cache) {
        if (cache.layers() != model.config().architecture().nLayers()) {
            throw new IllegalArgumentException("the cache is of a pass through " + cache.layers() + " blocks, the model"
                    + " has " + model.config().architecture().nLayers() + ": give the cache of a pass of this model");
        }
        checkWidths(model.config(), cache);
        this.model = model;
        this.cache = cache;
        this.arch = model.config().architecture();
        this.finalResid = "blocks." + (arch.nLayers() - 1) + ".hook_resid_post";
    }

    /** Refuses a cache whose residual streams or heads have another shape than this model's. */
    private static void checkWidths(HookedAutoConfig config, ActivationCache cache) {
        Architecture a = config.architecture();
        for (String name : cache.names()) {
            long[] shape = cache.get(name).shape();
            boolean stream = name.endsWith("hook_resid_pre") || name.endsWith("hook_resid_mid")
                    || name.endsWith("hook_resid_post") || name.endsWith("hook_attn_out") || name.endsWith("hook_mlp_out")
                    || name.equals("hook_embed") || name.equals("hook_pos_embed") || name.equals("ln_final.hook_normalized");
            int dHeadV = name.endsWith(".attn.hook_z") ? a.dHeadV(MemoryCheck.layerOf(name)) : 0;
            boolean wrong = stream ? shape[shape.length - 1] != config.dModel()
                    : name.endsWith(".attn.hook_z") && (shape[shape.length - 2] != a.nHeads()
                    || shape[shape.length - 1] != dHeadV);
            if (wrong) {
                throw new IllegalArgumentException("the cache's " + name + " is " + Arrays.toString(shape)
                        + ", which a pass of this model (d_model " + config.dModel() + ", " + a.nHeads() + " heads of "
                        + dHeadV + " there) does not make: give the cache of a pass of this model");
            }
        }
    }

    /**
     * The residual stream at each layer boundary, as TransformerLens's {@code accumulated_resid()}: every block's
     * {@code hook_resid_pre} (labels {@code "0_pre"}, ...), with {@code includeMid} each block's
     * {@code hook_resid_mid} after it ({@code "0_mid"}), and last the final {@code hook_resid_post}
     * ({@code "final_post"}).
     *
     * @param applyLn pass each stream through the final norm, its weight and bias included, on the stream's own
     *     statistics: the logit lens (the last one becomes {@code ln_final.hook_normalized}). TransformerLens 2's
     *     {@code accumulated_resid(apply_ln=True)} instead divides every stream by the final stream's scale
     *     ({@code apply_ln_to_stack}); for its numbers, pass false and give the stack to {@link #applyLnToStack}
     * @throws UnsupportedOperationException with {@code includeMid} for a family that runs attention and MLP in
     *     parallel: its blocks have no mid point
     */
    public Components accumulatedResid(boolean includeMid, boolean applyLn) {
        if (includeMid && arch.parallelResidual()) {
            throw new UnsupportedOperationException("a " + model.config().family() + " block runs attention and MLP in"
                    + " parallel on the same input: it has no mid point (hook_resid_mid) to include");
        }
        List<String> names = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        for (int l = 0; l < arch.nLayers(); l++) {
            names.add("blocks." + l + ".hook_resid_pre");
            labels.add(l + "_pre");
            if (includeMid) {
                names.add("blocks." + l + ".hook_resid_mid");
                labels.add(l + "_mid");
            }
        }
        names.add(finalResid);
        labels.add("final_post");
        List<Tensor> parts = require("accumulatedResid", names);
        try (TensorScope scope = TensorScope.open()) {
            Tensor stack = Tensor.stack(parts, 0);
            return new Components(scope.keep(applyLn ? model.normalizeFinal(stack) : stack), labels);
        }
    }

    /**
     * What each part of the model wrote into the final residual stream, as TransformerLens's {@code decompose_resid()}:
     * {@code "embed"}, {@code "pos_embed"} where the family learns positions, then per block {@code "0_attn_out"},
     * {@code "0_mlp_out"} (and gemma4's {@code "0_per_layer_out"}, its per-layer input's term), ... The components sum
     * to the last block's {@code hook_resid_post} in every family: {@code "embed"} is {@code hook_embed} times the
     * family's embedding scale (gemma's {@code sqrt(d_model)}, granite's {@code embedding_multiplier}), which the
     * forward pass applies after that hook (nanochat's normalised embedding, the first block's {@code hook_resid_pre}),
     * and {@code hook_attn_out}/{@code hook_mlp_out} are what joins the residual stream, after any output norm (gemma2,
     * gemma3, olmo2, olmo3, flex-olmo, exaone4, glm4, hyperclovax, afmoe) or residual multiplier (granite's), in
     * parallel blocks too; where each block multiplies the stream it outputs by a scalar (gemma4's
     * {@code layer_scalar}), each component is multiplied by those of its block and every later one, as the stream
     * carries it to the end. A hook that replaced a residual stream itself ({@code hook_resid_pre},
     * {@code hook_resid_mid}, {@code hook_resid_post}) in the pass breaks that sum, as it does in TransformerLens: the
     * components say what was written, not what was replaced.
     *
     * @param applyLn pass the stack through {@link #applyLnToStack}
     */
    public Components decomposeResid(boolean applyLn) {
        // where the embeddings are normalised (nanochat), what enters the first block is the embedding's part
        List<String> names = new ArrayList<>(List.of(arch.embeddingNorm() ? "blocks.0.hook_resid_pre" : "hook_embed"));
        List<String> labels = new ArrayList<>(List.of("embed"));
        if (!arch.rotary()) {
            names.add("hook_pos_embed");
            labels.add("pos_embed");
        }
        // per component, the first block it passes: the embeddings pass every block
        List<Integer> layerOf = new ArrayList<>(Collections.nCopies(names.size(), 0));
        for (int l = 0; l < arch.nLayers(); l++) {
            List<String> outputs = arch.perLayerInputs() == null ? List.of("attn_out", "mlp_out")
                    : List.of("attn_out", "mlp_out", "per_layer_out");
            for (String output : outputs) {
                names.add("blocks." + l + ".hook_" + output);
                labels.add(l + "_" + output);
                layerOf.add(l);
            }
        }
        List<Tensor> parts = new ArrayList<>(require("decomposeResid", withFinalResid(names, applyLn)));
        try (TensorScope scope = TensorScope.open()) {
            if (arch.embeddingScale() != 1.0 && !arch.embeddingNorm()) { // as the forward pass scales it
                parts.set(0, parts.getFirst().mul(arch.embeddingScale(model.dtype())));
            }
            if (arch.layerScalars()) {
                double[] fromLayer = scalarProducts();
                for (int i = 0; i < labels.size(); i++) {
                    parts.set(i, parts.get(i).mul(fromLayer[layerOf.get(i)]));
                }
            }
            Tensor stack = Tensor.stack(parts.subList(0, labels.size()), 0);
            return new Components(scope.keep(applyLn ? applyLnToStack(stack) : stack), labels);
        }
    }

    /** Per layer, the product of its layer scalar and every later one's. */
    private double[] scalarProducts() {
        double[] products = new double[arch.nLayers()];
        double product = 1.0;
        for (int l = arch.nLayers() - 1; l >= 0; l--) {
            product *= model.weights().layers.get(l).layerScalar().toDoubleArray()[0];
            products[l] = product;
        }
        return products;
    }

    /**
     * Each attention head's output, {@code z · W_O} times granite's residual multiplier, labelled {@code "L0H0"},
     * {@code "L0H1"}, ..., as TransformerLens's {@code stack_head_results()}; a linear-attention layer's heads are its
     * value heads, each {@code linear_attn.hook_z} times its rows of {@code out_proj}, and a short-convolution layer
     * is one head, {@code conv.hook_z} times its {@code out_proj}. A block's heads sum to its
     * {@code hook_attn_out} less its output bias {@code b_O} (times the multiplier), which, like everything else in
     * the stream, belongs to the remainder.
     *
     * @param includeRemainder add {@code "remainder"}: the final {@code hook_resid_post} less every head, so that the
     *     stack sums to it
     * @param applyLn pass the stack through {@link #applyLnToStack}
     * @throws UnsupportedOperationException for families that normalise the attention output before it joins the
     *     residual stream (gemma2, gemma3, olmo2, olmo3, flex-olmo, exaone4, glm4, hyperclovax, afmoe): what joins
     *     is no sum of per-head terms
     */
    public Components stackHeadResults(boolean includeRemainder, boolean applyLn) {
        if (arch.outputNorms()) {
            throw new UnsupportedOperationException("a " + model.config().family() + " model normalises each attention"
                    + " output before it joins the residual stream, so that output is not a sum of per-head terms;"
                    + " decomposeResid gives each block's whole attention output");
        }
        List<String> names = new ArrayList<>();
        long components = includeRemainder ? 1 : 0;
        for (int l = 0; l < arch.nLayers(); l++) {
            switch (arch.mixer(l)) {
                case SOFTMAX_ATTENTION -> names.add("blocks." + l + ".attn.hook_z");
                case LINEAR_ATTENTION -> names.add("blocks." + l + ".linear_attn.hook_z");
                case SHORT_CONVOLUTION -> names.add("blocks." + l + ".conv.hook_z");
                case MAMBA2 -> names.add("blocks." + l + ".mamba.hook_z");
            }
            components += switch (arch.mixer(l)) {
                case SOFTMAX_ATTENTION -> arch.nHeads();
                case LINEAR_ATTENTION -> arch.linearAttention().valueHeads();
                case SHORT_CONVOLUTION -> 1;
                case MAMBA2 -> arch.mamba2().heads();
            };
        }
        List<Tensor> z = require("stackHeadResults", withFinalResid(names, includeRemainder || applyLn));
        long[] zShape = z.getFirst().shape(); // [batch, pos, heads, d_head]
        MemoryCheck.requireStack("stackHeadResults", components, zShape[0] * zShape[1] * model.config().dModel(),
                z.getFirst().dtype(), z.getFirst().device(), applyLn);
        List<String> labels = new ArrayList<>();
        try (TensorScope scope = TensorScope.open()) {
            List<Tensor> perLayer = new ArrayList<>();
            for (int l = 0; l < arch.nLayers(); l++) {
                Tensor zl = z.get(l).dim() == 3 ? z.get(l).unsqueeze(2) : z.get(l); // a convolution's: one head
                Tensor heads = Tensor.einsum("bphd,hdm->hbpm", zl, model.W_O(l));
                perLayer.add(arch.residualMultiplier() == 1.0 ? heads : heads.mul(arch.residualMultiplier()));
                for (int h = 0; h < heads.size(0); h++) {
                    labels.add("L" + l + "H" + h);
                }
            }
            Tensor stack = Tensor.cat(perLayer, 0);
            if (includeRemainder) {
                Tensor remainder = cache.get(finalResid).sub(stack.sum(0, false));
                stack = Tensor.cat(List.of(stack, remainder.unsqueeze(0)), 0);
                labels.add("remainder");
            }
            return new Components(scope.keep(applyLn ? applyLnToStack(stack) : stack), labels);
        }
    }

    /**
     * The final norm applied to a stack of components of the final residual stream, linearly: each component
     * centred (LayerNorm families), divided by the scale of the actual final stream (see the class comment) and
     * multiplied by the norm's weight ({@code 1 + w} for gemma's norms). The norm's bias, where it has one, belongs to
     * no component, so it is left out, as TransformerLens leaves it out (its {@code fold_ln} moves it into
     * {@code b_U}): a complete decomposition ({@link #decomposeResid}, or {@link #stackHeadResults} with its
     * remainder) sums to {@code ln_final.hook_normalized} less that bias, and each component's value does not depend
     * on which others share the stack. TransformerLens only centres and divides, leaving the weight to be folded
     * into {@code W_U}; this library does not fold it, and multiplies here instead.
     *
     * @param stack {@code [component, batch, pos, d_model]} in the cache's dtype and device and of its batch and
     *     positions; float16 and bfloat16 stacks are computed on in float32 and rounded once, to their dtype
     * @return a new stack of the same shape
     */
    public Tensor applyLnToStack(Tensor stack) {
        Tensor resid = require("applyLnToStack", List.of(finalResid)).getFirst();
        checkStack(stack, resid);
        return model.using(() -> {
            try (TensorScope scope = TensorScope.open()) {
                Weights w = model.weights();
                boolean layerNorm = arch.norm().centres();
                Tensor inverseScale;
                if (cache.contains(FINAL_SCALE)) {
                    inverseScale = cache.get(FINAL_SCALE).reciprocal();
                } else {
                    Tensor x = resid.dtype() == DType.FLOAT32 || resid.dtype() == DType.FLOAT64 ? resid : resid.to(DType.FLOAT32);
                    Tensor centred = layerNorm ? x.sub(x.mean(-1, true)) : x;
                    inverseScale = centred.mul(centred).mean(-1, true).add(arch.normEps()).rsqrt();
                }
                DType wide = stack.dtype() == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
                Tensor widened = as(stack, wide);
                Tensor parts = layerNorm ? widened.sub(widened.mean(-1, true)) : widened;
                Tensor weight = model.config().normAddsOne() ? HookedAutoModel.plusOne(w.lnfw, arch.norm()) : w.lnfw;
                return scope.keep(as(parts.mul(as(inverseScale, wide)).mul(as(weight, wide)), stack.dtype()));
            }
        });
    }

    private static Tensor as(Tensor t, DType dtype) {
        return t.dtype() == dtype ? t : t.to(dtype);
    }

    /** {@link #logitAttrs(Tensor, Tensor, Tensor)} for the tokens alone. */
    public Tensor logitAttrs(Tensor stack, Tensor tokens) {
        return logitAttrs(stack, tokens, null);
    }

    /**
     * Direct logit attribution, as TransformerLens's {@code logit_attrs}: each component after
     * {@link #applyLnToStack}, projected onto the unembedding direction ({@code W_U}'s column) of {@code tokens},
     * less that of {@code incorrectTokens} where given, and multiplied by the family's logit scale (cohere's
     * {@code logit_scale}, granite's {@code 1 / logits_scaling}). For a complete decomposition the components sum
     * to the token's logit less what the biases give it (the unembedding bias and the final norm's bias through
     * {@code W_U}, times the scale), or to the difference of two such; for families that soft-cap their logits
     * (gemma2, gemma3), to that value before the cap, which is not linear. {@code W_U} is the model's: TransformerLens's
     * {@code from_pretrained} centres it by default ({@code center_unembed}), which moves single-token attributions
     * by a per-component constant but leaves differences of two tokens as they are.
     *
     * @param stack {@code [component, batch, pos, d_model]}, as for {@link #applyLnToStack}
     * @param tokens int64 ids: {@code [batch, pos]} (one per position, e.g. each next token), {@code [batch]} (one
     *     per example, at every position) or a 0-dim tensor (one for all)
     * @param incorrectTokens null, or ids of the same shape
     * @return {@code [component, batch, pos]}, new
     */
    public Tensor logitAttrs(Tensor stack, Tensor tokens, Tensor incorrectTokens) {
        long[] resid = require("logitAttrs", List.of(finalResid)).getFirst().shape();
        long[] t = tokens.shape();
        if (!(t.length == 0 || t.length == 1 && t[0] == resid[0] || t.length == 2 && t[0] == resid[0] && t[1] == resid[1])) {
            throw new IllegalArgumentException("logitAttrs: tokens must be [batch, pos] = [" + resid[0] + ", " + resid[1]
                    + "], [batch] or 0-dim, got shape " + Arrays.toString(t));
        }
        if (incorrectTokens != null && !Arrays.equals(t, incorrectTokens.shape())) {
            throw new IllegalArgumentException("logitAttrs: incorrect tokens must have the tokens' shape "
                    + Arrays.toString(t) + ", got " + Arrays.toString(incorrectTokens.shape()));
        }
        return model.using(() -> {
            try (TensorScope scope = TensorScope.open()) {
                Tensor rows = model.weights().unembed.transpose(0, 1); // [vocab, d_model]
                Tensor directions = unembeddingRows(rows, tokens, "tokens");
                if (incorrectTokens != null) {
                    directions = directions.sub(unembeddingRows(rows, incorrectTokens, "incorrect tokens"));
                }
                Tensor attrs = applyLnToStack(stack).mul(directions).sum(-1, false);
                double factor = arch.logitScale() / arch.headInputDivisor();
                return scope.keep(factor == 1.0 ? attrs : attrs.mul(factor));
            }
        });
    }

    /** The unembedding directions of {@code tokens}, per position (see {@link #perPosition}). */
    private static Tensor unembeddingRows(Tensor rows, Tensor tokens, String what) {
        try {
            return rows.embedding(perPosition(tokens));
        } catch (IndexOutOfBoundsException e) {
            IndexOutOfBoundsException named = new IndexOutOfBoundsException("logitAttrs: the " + what
                    + " must be ids of the vocabulary, [0, " + rows.size(0) + "): " + e.getMessage());
            named.initCause(e);
            throw named;
        }
    }

    /** Ids as {@code [batch, pos]}, or {@code [batch or 1, 1]} to broadcast over positions. */
    private static Tensor perPosition(Tensor tokens) {
        return tokens.dim() == 2 ? tokens : tokens.reshape(Math.max(1, tokens.numel()), 1);
    }

    private List<String> withFinalResid(List<String> names, boolean needed) {
        if (!needed) {
            return names;
        }
        List<String> all = new ArrayList<>(names);
        all.add(finalResid);
        return all;
    }

    /** The cache's entries at {@code names}, or the exception that says which are missing and how to keep them. */
    private List<Tensor> require(String method, List<String> names) {
        List<String> missing = names.stream().filter(name -> !cache.contains(name)).toList();
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(method + " needs the cache entries " + String.join(", ", missing)
                    + ", which this cache lacks: run the forward pass with CacheSpec.all(), or with CacheSpec.only(\""
                    + String.join("\", \"", names) + "\") and whatever else you need");
        }
        return names.stream().map(cache::get).toList();
    }

    private void checkStack(Tensor stack, Tensor resid) {
        long[] r = resid.shape();
        long[] s = stack.shape();
        if (s.length != 4 || s[1] != r[0] || s[2] != r[1] || s[3] != r[2]) {
            throw new IllegalArgumentException("a stack of residual-stream components must be [component, batch, pos,"
                    + " d_model] = [n, " + r[0] + ", " + r[1] + ", " + r[2] + "], got shape " + Arrays.toString(s));
        }
        if (stack.dtype() != resid.dtype() || !stack.device().equals(resid.device())) {
            throw new IllegalArgumentException("a stack of residual-stream components must be " + resid.dtype() + " on "
                    + resid.device() + " as the cache is, got " + stack.dtype() + " on " + stack.device());
        }
    }
}

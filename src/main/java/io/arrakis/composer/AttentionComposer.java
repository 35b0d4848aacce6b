package io.arrakis.composer;

import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * Arrakis's {@code composer} tool ({@code core_arrakis.attention_head_comp}): composite heads built from two heads'
 * weights, attention "path patching" by weight swapping, and the standard tools of the composer package
 * ({@link CompositionScores}, {@link HeadDetectors}, {@link PathPatching}) on one model.
 *
 * <pre>{@code
 * AttentionComposer composer = new AttentionComposer(model);
 * try (AttentionComposer.HeadComposition hc = composer.headComposition(Head.of(0, 0), Head.of(0, 1), 0.5);
 *      Tensor logits = composer.attentionPathPatching(inputIds, Head.of(0, 0), Head.of(0, 1))) {
 *     System.out.println(hc);
 * }
 * }</pre>
 *
 * <p>Heads are named by their query-head index; in grouped-query models a head's key and value weights are those of
 * its key/value head. Nothing here changes the model's weights.
 */
public final class AttentionComposer {
    private final HookedAutoModel model;

    public AttentionComposer(HookedAutoModel model) {
        this.model = Objects.requireNonNull(model, "model");
    }

    public HookedAutoModel model() {
        return model;
    }

    /**
     * A composite head: {@code wQ}, {@code wK}, {@code wV} {@code [d_model, d_head]} are the means of the two heads'
     * matrices, {@code wO [d_head, d_model]} is {@code alpha · W_O(head1) + (1 − alpha) · W_O(head2)}; the
     * composition scores are those of head1 → head2 ({@link CompositionScores#pair}), which are 0 unless
     * {@code head1.layer() < head2.layer()} (a head can only compose with a later one). {@code model} is the model
     * whose heads they are: only its composer applies the composite. Closing it frees the four weight tensors.
     */
    public record HeadComposition(HookedAutoModel model, Head head1, Head head2, double alpha, Tensor wQ, Tensor wK,
                                  Tensor wV, Tensor wO,
                                  double qComposition, double kComposition, double vComposition)
            implements AutoCloseable {
        @Override
        public void close() {
            for (Tensor t : new Tensor[] {wQ, wK, wV, wO}) {
                if (t != null) {
                    t.close();
                }
            }
        }

        private static String shape(Tensor t) {
            return t == null ? "null" : t.isClosed() ? "(closed)" : Arrays.toString(t.shape());
        }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT,
                    "HeadComposition[%s + %s, alpha=%s, W_Q/W_K/W_V %s, W_O %s, %s→%s composition Q=%.6f K=%.6f V=%.6f]",
                    head1, head2, alpha, shape(wQ), shape(wO), head1, head2,
                    qComposition, kComposition, vComposition);
        }
    }

    // ------------------------------------------------------------------------------------------------ composite heads

    /** {@link #headComposition(Head, Head, double)} with Arrakis's default alpha, 0.5: the output weights averaged. */
    public HeadComposition headComposition(Head head1, Head head2) {
        return headComposition(head1, head2, 0.5);
    }

    /**
     * The composite of {@code head1} and {@code head2} (Arrakis's {@code head_composition}): mean Q, K, V weights,
     * output weights mixed by {@code alpha}, and the Q-/K-/V-composition scores of head1 → head2 (0 unless
     * {@code head1.layer() < head2.layer()}).
     *
     * @throws IllegalArgumentException when alpha is outside [0, 1] (or NaN) or a head is not in the model
     */
    public HeadComposition headComposition(Head head1, Head head2, double alpha) {
        Objects.requireNonNull(head1, "head1");
        Objects.requireNonNull(head2, "head2");
        if (!(alpha >= 0.0 && alpha <= 1.0)) {
            throw new IllegalArgumentException("alpha must lie in [0, 1], got " + alpha);
        }
        HookedAutoConfig c = model.config();
        head1.checkIn(c, "first");
        head2.checkIn(c, "second");
        requireSameWidth(c, head1, head2, "averaged");
        Tensor wq;
        Tensor wk;
        Tensor wv;
        Tensor wo;
        try (TensorScope scope = TensorScope.open()) {
            wq = scope.keep(mean(model::W_Q, head1, head2));
            wk = scope.keep(mean(l -> model.W_K(l, true), head1, head2));
            wv = scope.keep(mean(l -> model.W_V(l, true), head1, head2));
            wo = scope.keep(slice(model::W_O, head1).mul(alpha).add(slice(model::W_O, head2).mul(1.0 - alpha)));
        }
        double q = CompositionScores.pair(model, head1, head2, CompositionScores.Mode.Q);
        double k = CompositionScores.pair(model, head1, head2, CompositionScores.Mode.K);
        double v = CompositionScores.pair(model, head1, head2, CompositionScores.Mode.V);
        return new HeadComposition(model, head1, head2, alpha, wq, wk, wv, wo, q, k, v);
    }

    /**
     * The composite head's output {@code [batch, pos, d_model]} on the residual stream entering head1's layer: the
     * model is run to {@code blocks.{l}.hook_resid_pre} (l = head1's layer), the layer's attention-input norm is
     * applied as in the forward pass, and the composite's query, key and value ({@code x · W + b}, with biases the
     * means of the two heads' biases, like the weights) go through causal attention as layer l computes it (query and
     * key norms, the model's scaling, rotary embeddings and soft-capping where the family has them, the layer's local
     * or sliding window) and are projected with {@code wO} (no output bias: it belongs to the layer, not to a head; nor
     * the norm some families apply to the attention's output, which acts on the sum of the heads). With attention sinks
     * (gpt-oss) the composite's sink logit is the mean of the two heads', like its biases, and with an output gate
     * (afmoe) so are its gate's weights. With head1 == head2 and alpha = 1 this is exactly that head's term of the
     * attention output ({@code hook_z} of the head times its W_O slice). Families that normalise all heads' queries
     * together (olmo2, olmo3, olmoe, flex-olmo) are refused with {@link UnsupportedOperationException}: one head's
     * query has no normalised value on its own.
     *
     * @param inputIds int64 ids {@code [batch, pos]} or {@code [pos]}
     */
    public Tensor applyComposedHead(Tensor inputIds, HeadComposition composite) {
        Objects.requireNonNull(composite, "composite");
        if (composite.model() != model) {
            throw new IllegalArgumentException("the composite was made from the heads of another model; make it with"
                    + " headComposition of this composer, whose model runs it");
        }
        Head h1 = composite.head1();
        Head h2 = composite.head2();
        HookedAutoConfig c = model.config();
        h1.checkIn(c, "first");
        h2.checkIn(c, "second");
        int layer = h1.layer();
        long[] in = {c.dModel(), c.dHead(layer)};
        for (Tensor w : new Tensor[] {composite.wQ(), composite.wK(), composite.wV()}) {
            checkShape(w, in, "W_Q, W_K and W_V");
        }
        checkShape(composite.wO(), new long[] {c.dHead(layer), c.dModel()}, "W_O");
        String residName = "blocks." + layer + ".hook_resid_pre";
        try (TensorScope scope = TensorScope.open();
             ModelOutput out = model.forward(inputIds, CacheSpec.only(residName))) {
            Tensor x = model.normalize(layer, out.cache().get(residName));
            Tensor bq = mean(model::b_Q, h1, h2);
            Tensor bk = mean(l -> model.b_K(l, true), h1, h2);
            Tensor bv = mean(l -> model.b_V(l, true), h1, h2);
            Tensor sink = c.attentionSinks() ? sink(h1).add(sink(h2)).div(2.0) : null;
            Tensor wg = c.attentionOutputGate() ? mean(model::W_G, h1, h2) : null;
            Tensor z = headZ(layer, x, composite.wQ(), bq, composite.wK(), bk, composite.wV(), bv, sink, wg);
            return scope.keep(z.matmul(composite.wO()));
        }
    }

    /**
     * Refuses two heads of layers whose heads differ in width (Gemma 4's sliding and full-attention layers), or a
     * head of a layer that shares an earlier layer's keys and values (Gemma 4's): their weights cannot be
     * {@code what}.
     */
    private static void requireSameWidth(HookedAutoConfig c, Head a, Head b, String what) {
        for (Head h : new Head[] {a, b}) {
            if (c.keysFrom(h.layer()) != h.layer()) {
                throw new IllegalArgumentException("head " + h + " attends to layer " + c.keysFrom(h.layer())
                        + "'s keys and values, which it shares, and projects none of its own: its weights cannot be "
                        + what);
            }
        }
        if (c.dHead(a.layer()) != c.dHead(b.layer())) {
            throw new IllegalArgumentException("heads " + a + " and " + b + " are " + c.dHead(a.layer()) + " and "
                    + c.dHead(b.layer()) + " features wide (layers " + a.layer() + " and " + b.layer() + " of this "
                    + c.family() + " model differ), so their weights cannot be " + what + "; pick heads of layers"
                    + " whose heads are as wide");
        }
    }

    private static void checkShape(Tensor w, long[] shape, String which) {
        Objects.requireNonNull(w, which);
        if (!Arrays.equals(w.shape(), shape)) {
            throw new IllegalArgumentException("the composite's " + which + " must be " + Arrays.toString(shape)
                    + " ([d_model, d_head] in, [d_head, d_model] out), got " + Arrays.toString(w.shape()));
        }
    }

    // ------------------------------------------------------------------------------------------------ weight swapping

    /**
     * Arrakis's {@code attention_path_patching}: the model's logits {@code [batch, pos, vocab]} when {@code destHead}'s
     * attention output ({@code hook_z}) is recomputed with {@code srcHead}'s query, key and value weights and biases on
     * destHead's own input (its layer's normalised residual stream), with destHead's layer's query and key norms,
     * attention scaling, rotary embeddings, soft-capping and mask (and srcHead's attention sink and output gate, where
     * the family has them; olmo2, olmo3, olmoe and flex-olmo are refused, as in {@link #applyComposedHead}); every
     * other head and the rest of the model are unchanged, and destHead keeps its own W_O. With src == dest the logits
     * are those of a plain forward pass (up to rounding). This is a weight swap, not path patching in the sense of Wang
     * et al. (clean vs corrupted inputs): that is {@link #pathPatching}.
     */
    public Tensor attentionPathPatching(Tensor inputIds, Head srcHead, Head destHead) {
        Objects.requireNonNull(srcHead, "srcHead");
        Objects.requireNonNull(destHead, "destHead");
        HookedAutoConfig c = model.config();
        srcHead.checkIn(c, "source");
        destHead.checkIn(c, "destination");
        requireSameWidth(c, srcHead, destHead, "swapped");
        int layer = destHead.layer();
        String b = "blocks." + layer + ".";
        Tensor[] resid = new Tensor[1];
        try (TensorScope scope = TensorScope.open()) {
            Tensor wq = slice(model::W_Q, srcHead);
            Tensor wk = slice(l -> model.W_K(l, true), srcHead);
            Tensor wv = slice(l -> model.W_V(l, true), srcHead);
            Tensor bq = slice(model::b_Q, srcHead);
            Tensor bk = slice(l -> model.b_K(l, true), srcHead);
            Tensor bv = slice(l -> model.b_V(l, true), srcHead);
            Tensor sink = c.attentionSinks() ? sink(srcHead) : null;
            Tensor wg = c.attentionOutputGate() ? slice(model::W_G, srcHead) : null;
            HookSpec capture = HookSpec.at(b + "hook_resid_pre", (act, name) -> {
                resid[0] = act;
                return null;
            });
            HookSpec replace = HookSpec.at(b + "attn.hook_z", (z, name) -> {
                Tensor x = model.normalize(layer, resid[0]);
                Tensor zNew = headZ(layer, x, wq, bq, wk, bk, wv, bv, sink, wg).to(z.dtype());
                return replaceHead(z, destHead.index(), zNew);
            });
            return scope.keep(model.runWithHooks(inputIds, capture, replace));
        }
    }

    // ------------------------------------------------------------------------------------------------ the standard tools

    /**
     * Path patching of the direct path ({@link PathPatching.Mode#PATH}): the change in {@code metric} when
     * {@code receiver}'s {@code route} input sees {@code sender}'s output on {@code corrupted} in place of that on
     * {@code clean}, with what lies between them frozen, MLPs included; see
     * {@link PathPatching#patch(HookedAutoModel, Tensor, Tensor, Head, Head, PathPatching.Route, Function)}. Wang et
     * al.'s recipe, where MLPs recompute, is {@link PathPatching.Mode#PATH_THROUGH_MLPS} through {@link PathPatching}.
     */
    public double pathPatching(Tensor clean, Tensor corrupted, Head sender, Head receiver, PathPatching.Route route,
                               PathPatching.Metric metric) {
        return PathPatching.patch(model, clean, corrupted, sender, receiver, route, metric);
    }

    /** All-pairs composition scores {@code [layer, head, layer, head]}; see {@link CompositionScores#allPairs}. */
    public Tensor compositionScores(CompositionScores.Mode mode) {
        return CompositionScores.allPairs(model, mode);
    }

    /** Previous-token, induction and duplicate-token head scores; see {@link HeadDetectors#detect}. */
    public HeadDetectors.Scores detectHeads(int seqLen, int batch, long seed) {
        return HeadDetectors.detect(model, seqLen, batch, seed);
    }

    // ------------------------------------------------------------------------------------------------ internals

    /** Head h's slice of a per-layer weight ({@code perLayer} gives a layer's {@code [head, ...]} tensor). */
    private static Tensor slice(IntFunction<Tensor> perLayer, Head h) {
        return perLayer.apply(h.layer()).select(0, h.index());
    }

    private static Tensor mean(IntFunction<Tensor> perLayer, Head h1, Head h2) {
        return slice(perLayer, h1).add(slice(perLayer, h2)).div(2.0);
    }

    /** Head h's attention sink logit, a 0-d tensor. */
    private Tensor sink(Head h) {
        return model.attentionSinks(h.layer()).select(0, h.index());
    }

    /**
     * One head's attention output z {@code [batch, pos, d_head]} at block {@code layer} for normalised input
     * {@code x [batch, pos, d_model]}, computed as the forward pass computes a head's (OLMo's clamp of the projections,
     * query and key norms before or, in nanochat, after rotary embeddings, gemma4's value norm, scaling, soft-capping,
     * mask); {@code sink}
     * is its attention sink logit, or null; {@code wg [d_model, d_head]} its output gate's weights, which multiply z by
     * {@code sigmoid(x · wg)}, or null. A family that normalises all heads' queries together (olmo2, olmo3, olmoe,
     * flex-olmo) has no such value for a head alone: {@link HookedAutoModel#normalizeQueries} refuses it.
     */
    private Tensor headZ(int layer, Tensor x, Tensor wq, Tensor bq, Tensor wk, Tensor bk, Tensor wv, Tensor bv,
                         Tensor sink, Tensor wg) {
        HookedAutoConfig c = model.config();
        long batch = x.size(0);
        long pos = x.size(1);
        int dHead = c.dHead(layer);
        double clip = c.clipQkv();
        Tensor q = clipped(project(x, wq, bq), clip).view(batch, pos, 1, dHead);
        Tensor k = clipped(project(x, wk, bk), clip).view(batch, pos, 1, dHead);
        Tensor v = model.normalizeValues(layer, clipped(project(x, wv, bv), clip).view(batch, pos, 1, dHead));
        boolean normedFirst = !c.qkNormAfterRotary();
        if (normedFirst) {
            q = model.normalizeQueries(layer, q);
            k = model.normalizeKeys(layer, k);
        }
        if (c.rotary()) {
            q = model.rotate(layer, q);
            k = model.rotate(layer, k);
        }
        if (!normedFirst) {
            q = model.normalizeQueries(layer, q);
            k = model.normalizeKeys(layer, k);
        }
        Tensor scores = model.attentionScores(layer, q, k);
        Tensor pattern = model.attentionPattern(scores, sink == null ? null : sink.view(1));
        // the scores may be float32 in a reduced-precision model (gpt-neo, gpt-j), the pattern is the values' dtype
        pattern = pattern.dtype() == v.dtype() ? pattern : pattern.to(v.dtype());
        Tensor z = Tensor.einsum("bhqk,bkhd->bqhd", pattern, v).reshape(batch, pos, dHead);
        return wg == null ? z : z.mul(project(x, wg, null).sigmoid());
    }

    /**
     * {@code x W + b} for a head's {@code W [d_model, d_head]} as one linear op, bias included, which rounds once in
     * float16 and bfloat16, as the forward pass's projection does.
     */
    private static Tensor project(Tensor x, Tensor w, Tensor b) {
        return x.linear(w.transpose(0, 1).contiguous(), b);
    }

    /** A projection clamped to {@code [-clip, clip]} as the forward pass clamps OLMo's ({@code clip_qkv}); 0: none. */
    private static Tensor clipped(Tensor projected, double clip) {
        return clip > 0 ? projected.clamp(-clip, clip) : projected;
    }

    /** {@code z [batch, pos, head, d_head]} with head {@code index} replaced by {@code zHead [batch, pos, d_head]}. */
    private static Tensor replaceHead(Tensor z, int index, Tensor zHead) {
        long heads = z.size(2);
        List<Tensor> parts = new ArrayList<>();
        if (index > 0) {
            parts.add(z.narrow(2, 0, index));
        }
        parts.add(zHead.unsqueeze(2));
        if (index + 1 < heads) {
            parts.add(z.narrow(2, index + 1, heads - index - 1));
        }
        return Tensor.cat(parts, 2);
    }
}

package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.RotaryPrecision;
import io.arrakis.model.family.LatentAttention;
import io.arrakis.model.family.LinearAttention;
import io.arrakis.model.family.Mamba2;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.QueryTemperature;
import io.arrakis.model.family.Rope;
import io.arrakis.model.family.ShortConvolution;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One forward pass, top to bottom, for every family: the differences (norm, positions, rotary, MLP kind, residual
 * wiring, attention scaling and windows) are read from the config's {@link Architecture}. Tensors made here belong to
 * the caller's {@link io.arrakis.torch.TensorScope}, except a block's own work, which {@link HookedAutoModel.Pass#block}
 * frees when the block ends, so that a pass holds one block's intermediates at a time; what the cache keeps and what
 * hooks saw is handed out or held by {@link HookedAutoModel.Pass}.
 *
 * <p>Attention takes one of two routes per layer. The fused route is one {@code scaled_dot_product_attention} (libtorch
 * picks flash, memory-efficient, cuDNN or math kernels); it is taken where nothing asks for the layer's scores or
 * pattern (no hook, no cache entry), the family's attention is expressible there (no soft-capping, no sinks), and the
 * device and dtype have a fused kernel worth calling. Otherwise the layer computes scores, pattern and their product
 * explicitly. Both routes share everything else: fused Q/K/V and gate/up projections, cached masks and rotary tables.
 * Likewise a GELU MLP's input projection applies the activation as it writes its output (one op where the device has
 * one) unless something observes {@code mlp.hook_pre}, the activation's input.
 */
final class Forward {
    /** -inf as a number for in-place fills: a 0-dim CPU tensor, shared, never written. */
    private static final Tensor NEGATIVE_INFINITY = TensorScope.unscoped(
            () -> List.of(Tensor.scalar(Double.NEGATIVE_INFINITY))).getFirst();

    private final Architecture c;
    private final Weights w;
    private final ForwardTables tables;
    private final HookedAutoModel.Pass hook;
    /** The keys and values of the layers whose later layers attend to them (gemma4's sharing), by layer. */
    private final Map<Integer, List<Tensor>> sharedKeysValues = new HashMap<>();

    Forward(HookedAutoConfig config, Weights weights, ForwardTables tables, HookedAutoModel.Pass pass) {
        this.c = config.architecture();
        this.w = weights;
        this.tables = tables;
        this.hook = pass;
    }

    /**
     * Whether libtorch's fused attention pays on this device and dtype: on a GPU always; on the CPU in float32 and
     * float64 only, as its reduced-precision CPU kernel computes in float32 and runs far slower than the explicit
     * product.
     */
    static boolean fusedAttentionPays(Device device, DType dtype) {
        return !device.isCpu() || dtype == DType.FLOAT32 || dtype == DType.FLOAT64;
    }

    /** Logits {@code [batch, pos, vocab]} for int64 ids {@code [batch, pos]} on the model's device. */
    Tensor run(Tensor ids) {
        long batch = ids.size(0);
        long pos = ids.size(1);
        Tensor x = hook.at("hook_embed", w.embed.embedding(ids));
        if (c.embeddingScale() != 1.0) {
            // gemma's is a tensor in the weights' dtype (sqrt(2048) is 45.25 in bfloat16); after hook_embed, so it is
            // part of blocks.0.hook_resid_pre (TransformerLens folds it into W_E, so its hook_embed has it)
            x = x.mul(c.embeddingScale(w.embed.dtype()));
        }
        if (!c.rotary()) {
            Tensor positions = w.posEmbed.narrow(0, 0, pos).unsqueeze(0).expand(batch, pos, c.dModel());
            // a view of the weights: what a hook or a reader of the cache writes into it must not reach them
            if (hook.observes("hook_pos_embed")) {
                positions = positions.copy();
            }
            x = x.add(hook.at("hook_pos_embed", positions));
        }
        if (c.embeddingNorm()) { // nanochat's final norm, which has no parameters, normalises the embeddings too
            x = hookedNorm("ln_embed.", x, w.lnfw, w.lnfb);
        }
        Tensor perLayerInputs = c.perLayerInputs() == null ? null : perLayerInputs(ids, x);
        Map<Rope, Rotary> rotaries = new HashMap<>(); // one per distinct rope: gemma3's sliding layers have their own
        for (int i = 0; i < c.nLayers(); i++) {
            Rope rope = c.rope(i);
            Rotary rotary = rope == null ? null : rotaries.computeIfAbsent(rope, r -> rotary(r, pos));
            int layer = i;
            Tensor input = x;
            Tensor own = perLayerInputs == null ? null : perLayerInputs.select(2, i);
            x = hook.block(input, () -> block(layer, input, rotary, own));
        }
        Tensor normalized = hookedNorm("ln_final.", x, w.lnfw, w.lnfb);
        double divisor = c.headInputDivisor();
        Tensor logits = w.project(divisor == 1.0 ? normalized : normalized.div(divisor), w.unembed, w.unembedBias);
        if (c.logitScale() != 1.0) {
            logits = then(logits, l -> l.mul(c.logitScale()));
        }
        if (c.logitSoftcap() > 0) {
            double cap = c.logitSoftcap();
            logits = then(then(then(logits, l -> l.div(cap)), Tensor::tanh), l -> l.mul(cap));
        }
        return hook.at("logits", logits);
    }

    /** {@code step} of {@code t}, which is then closed: a chain of such steps holds two of its tensors at a time. */
    private static Tensor then(Tensor t, java.util.function.UnaryOperator<Tensor> step) {
        try (t) {
            return step.apply(t);
        }
    }

    /**
     * Gemma 4's per-layer inputs {@code [batch, pos, layers, width]} ({@link Architecture.PerLayerInputs}): the
     * tokens' rows of the per-layer embedding times {@code sqrt(width)} (rounded to its dtype), plus the projection
     * of the token embeddings {@code embedded} times {@code d_model^-1/2}, each layer's slice normalised, the sum
     * times {@code 2^-1/2}, in the order {@code Gemma4TextModel} rounds them.
     */
    private Tensor perLayerInputs(Tensor ids, Tensor embedded) {
        Architecture.PerLayerInputs p = c.perLayerInputs();
        Weights.PerLayerEmbedding e = w.perLayerEmbedding;
        long batch = ids.size(0);
        long pos = ids.size(1);
        Tensor tokens = e.embed().embedding(ids).mul(e.embed().dtype().round(Math.sqrt(p.width())))
                .view(batch, pos, c.nLayers(), p.width());
        Tensor projected = w.project(embedded, e.projection(), null).mul(1 / Math.sqrt(c.dModel()))
                .view(batch, pos, c.nLayers(), p.width());
        return norm(projected, e.norm(), null).add(tokens).mul(1 / Math.sqrt(2));
    }

    /**
     * What a block adds to the residual stream from its per-layer input {@code input [batch, pos, width]} after its
     * MLP: the gate's activation on the stream {@code resid}, times the input, projected back and normalised.
     */
    private Tensor perLayerOut(String b, Weights.PerLayerInput l, Tensor resid, Tensor input) {
        Tensor gated = activation(w.project(resid, l.gate(), null)).mul(hook.at(b + "hook_per_layer_input", input));
        return hook.at(b + "hook_per_layer_out", norm(w.project(gated, l.out(), null), l.norm(), null));
    }

    private Tensor block(int i, Tensor x, Rotary rotary, Tensor perLayerInput) {
        String b = "blocks." + i + ".";
        Weights.Layer l = w.layers.get(i);
        Weights.Fused f = w.fused.get(i);
        Tensor residPre = hook.at(b + "hook_resid_pre", x);
        Tensor attnIn = c.inputNorms() ? hookedNorm(b + "ln1.", residPre, l.ln1w(), l.ln1b()) : residPre;
        Tensor attnOut = switch (c.mixer(i)) {
            case SOFTMAX_ATTENTION -> attention(i, b, l, f, attnIn, rotary);
            case LINEAR_ATTENTION -> linearAttention(b, l, f, attnIn);
            case SHORT_CONVOLUTION -> shortConvolution(b, l, attnIn);
            case MAMBA2 -> mamba2(b, l, attnIn);
        };
        if (c.outputNorms()) { // the output is normalised before the residual sum (gemma2, olmo2, glm4, ...)
            attnOut = norm(attnOut, l.attnOutNorm(), null);
        }
        attnOut = hook.at(b + "hook_attn_out", toResidual(attnOut));
        if (c.parallelResidual()) {
            // gpt-neox normalises the MLP's input on its own; stable-lm feeds it the attention's (no ln2)
            Tensor mlpIn = l.ln2w() == null ? attnIn : hookedNorm(b + "ln2.", residPre, l.ln2w(), l.ln2b());
            Tensor mlpOut = mlp(i, b, l, f, mlpIn, residPre);
            Tensor residPost = c.outputsSummedFirst() ? attnOut.add(mlpOut).add(residPre)
                    : residPre.add(attnOut).add(mlpOut);
            return hook.at(b + "hook_resid_post", scaled(l, residPost));
        }
        Tensor residMid = hook.at(b + "hook_resid_mid", residPre.add(attnOut));
        Tensor mlpOut = mlp(i, b, l, f,
                c.inputNorms() ? hookedNorm(b + "ln2.", residMid, l.ln2w(), l.ln2b()) : residMid, residMid);
        Tensor residPost = residMid.add(mlpOut);
        if (perLayerInput != null) {
            residPost = residPost.add(perLayerOut(b, l.perLayerInput(), residPost, perLayerInput));
        }
        return hook.at(b + "hook_resid_post", scaled(l, residPost));
    }

    /** The block's output times its layer scalar where the family has one (gemma4), as it is otherwise. */
    private static Tensor scaled(Weights.Layer l, Tensor residPost) {
        return l.layerScalar() == null ? residPost : residPost.mul(l.layerScalar());
    }

    private Tensor attention(int layer, String b, Weights.Layer l, Weights.Fused f, Tensor x, Rotary rotary) {
        long batch = x.size(0);
        long pos = x.size(1);
        int heads = c.nHeads();
        int kvHeads = c.nKvHeads(layer);
        if (c.keysFrom(layer) != layer) { // gemma4: its queries attend to an earlier layer's keys and values
            return sharingAttention(layer, b, l, x, rotary);
        }
        List<Tensor> qkv = c.latentAttention() != null ? latentQueriesKeysValues(l, x)
                : clipped(w.project(x, f.qkv(), f.qkvBias())).view(batch, pos, heads + 2L * kvHeads, c.dHead(layer))
                        .split(new long[] {heads, kvHeads, kvHeads}, 2);
        Tensor q = hook.at(b + "attn.hook_q", qkv.get(0));
        Tensor k = hook.at(b + "attn.hook_k", qkv.get(1));
        Tensor v = hook.at(b + "attn.hook_v", qkv.get(2));
        if (c.valueNorm()) { // gemma4: each value head divided by its RMS, without a weight
            v = hook.at(b + "attn.hook_v_normed", v.rmsNorm(null, c.normEps()));
        }
        boolean normed = c.qkNorm(layer) != Architecture.QkNorm.NONE;
        if (normed && !c.qkNormAfterRotary()) {
            q = hook.at(b + "attn.hook_q_normed", qkNorm(q, l.qNorm()));
            k = hook.at(b + "attn.hook_k_normed", qkNorm(k, l.kNorm()));
        }
        if (rotary != null) {
            q = hook.at(b + "attn.hook_rot_q", rotary.apply(q));
            k = hook.at(b + "attn.hook_rot_k", rotary.apply(k));
        }
        if (normed && c.qkNormAfterRotary()) { // nanochat and HunYuan normalise the rotated queries and keys
            q = hook.at(b + "attn.hook_q_normed", qkNorm(q, l.qNorm()));
            k = hook.at(b + "attn.hook_k_normed", qkNorm(k, l.kNorm()));
        }
        if (c.keysShared(layer)) {
            sharedKeysValues.put(layer, List.of(hook.outliving(k), hook.outliving(v)));
        }
        return attend(layer, b, l, x, q, k, v);
    }

    /**
     * The attention of a layer whose queries attend to the keys and values of layer {@code keysFrom} as that layer's
     * attention used them (normalised and rotated): its own queries, normalised and rotated, and no key or value
     * projection.
     */
    private Tensor sharingAttention(int layer, String b, Weights.Layer l, Tensor x, Rotary rotary) {
        Tensor q = hook.at(b + "attn.hook_q", w.project(x, l.wq(), l.bq())
                .view(x.size(0), x.size(1), c.nHeads(), c.dHead(layer)));
        if (c.qkNorm(layer) != Architecture.QkNorm.NONE) {
            q = hook.at(b + "attn.hook_q_normed", qkNorm(q, l.qNorm()));
        }
        if (rotary != null) {
            q = hook.at(b + "attn.hook_rot_q", rotary.apply(q));
        }
        List<Tensor> kv = sharedKeysValues.get(c.keysFrom(layer));
        return attend(layer, b, l, x, q, kv.get(0), kv.get(1));
    }

    /** Attention of queries {@code q}, keys {@code k} and values {@code v}, as ready, through the output projection. */
    private Tensor attend(int layer, String b, Weights.Layer l, Tensor x, Tensor q, Tensor k, Tensor v) {
        long batch = x.size(0);
        long pos = x.size(1);
        int heads = c.nHeads();
        Tensor z;
        if (explicitAttention(b, l, q)) {
            Tensor scores = hook.at(b + "attn.hook_attn_scores", scores(layer, q, k));
            Tensor pattern = pattern(scores, l.sinks(), hook.hooks(b + "attn.hook_attn_scores"));
            pattern = hook.at(b + "attn.hook_pattern", pattern.dtype() == v.dtype() ? pattern : pattern.to(v.dtype()));
            z = patternTimesValues(pattern, v);
        } else {
            Tensor mask = windowed(layer, pos) ? additiveMask(layer, pos, q) : null;
            Tensor queries = productQueries(layer, q).transpose(1, 2);
            z = Tensor.scaledDotProductAttention(queries, k.transpose(1, 2), v.transpose(1, 2), mask, mask == null,
                    productScale()).transpose(1, 2);
        }
        if (c.attentionOutputGate()) {
            Tensor gate = w.project(x, l.attnGate(), null).view(batch, pos, heads, c.dHeadV(layer)).sigmoid();
            z = z.mul(hook.at(b + "attn.hook_gate", gate));
        }
        z = hook.at(b + "attn.hook_z", z);
        return w.project(z.reshape(batch, pos, (long) heads * c.dHeadV(layer)), l.wo(), l.bo());
    }

    /**
     * A linear-attention layer's token mixer ({@link LinearAttention}), as transformers' {@code Qwen3_5GatedDeltaNet}
     * computes it: its input projections as one product, the causal convolution and the model's activation over
     * queries, keys and values, the decay rates in float32, the gated delta rule ({@link GatedDeltaRule}), then each
     * head's output normalised, gated and projected.
     */
    private Tensor linearAttention(String b, Weights.Layer l, Weights.Fused f, Tensor x) {
        LinearAttention m = c.linearAttention();
        Weights.Linear t = l.linear();
        long batch = x.size(0);
        long pos = x.size(1);
        long keys = (long) m.keyHeads() * m.keyDim();
        long values = (long) m.valueHeads() * m.valueDim();
        List<Tensor> in = w.project(x, f.linearIn(), null)
                .split(new long[] {m.convChannels(), values, m.valueHeads(), m.valueHeads()}, -1);
        // padded on both ends, the convolution's last kernel - 1 outputs would read later positions: dropped
        Tensor convolved = activation(in.get(0).transpose(1, 2).conv1d(t.conv(), m.convKernel() - 1,
                m.convChannels()).narrow(2, 0, pos)).transpose(1, 2);
        List<Tensor> qkv = convolved.split(new long[] {keys, keys, values}, -1);
        String a = b + "linear_attn.";
        Tensor q = hook.at(a + "hook_q", qkv.get(0).reshape(batch, pos, m.keyHeads(), m.keyDim()));
        Tensor k = hook.at(a + "hook_k", qkv.get(1).reshape(batch, pos, m.keyHeads(), m.keyDim()));
        Tensor v = hook.at(a + "hook_v", qkv.get(2).reshape(batch, pos, m.valueHeads(), m.valueDim()));
        Tensor beta = hook.at(a + "hook_beta", in.get(2).sigmoid());
        Tensor rate = in.get(3).to(DType.FLOAT32).add(t.dtBias()).softplus();
        Tensor decay = hook.at(a + "hook_decay", t.aLog().to(DType.FLOAT32).exp().neg().mul(rate));
        Tensor core = hook.at(a + "hook_core", GatedDeltaRule.apply(q, k, v, decay, beta, chunkFuture(x.device())));
        Tensor gate = hook.at(a + "hook_gate", in.get(1).reshape(batch, pos, m.valueHeads(), m.valueDim()));
        Tensor z = hook.at(a + "hook_z", gatedNorm(core, gate, t.norm()));
        return w.project(z.reshape(batch, pos, values), t.wout(), null);
    }

    /**
     * A short-convolution layer's token mixer ({@link ShortConvolution}), as transformers' {@code Lfm2ShortConv}
     * computes it: the gates B, C and x from one projection, B · x convolved causally over positions, channel by
     * channel, times C, projected back.
     */
    private Tensor shortConvolution(String b, Weights.Layer l, Tensor x) {
        Weights.Conv t = l.conv();
        long pos = x.size(1);
        long d = c.dModel();
        List<Tensor> gates = w.project(x, t.win(), t.bin()).split(new long[] {d, d, d}, -1);
        String a = b + "conv.";
        Tensor gateB = hook.at(a + "hook_b", gates.get(0));
        Tensor gateC = hook.at(a + "hook_c", gates.get(1));
        Tensor in = hook.at(a + "hook_x", gates.get(2));
        // padded on both ends, the convolution's last kernel - 1 outputs would read later positions: dropped
        Tensor convolved = hook.at(a + "hook_conv", gateB.mul(in).transpose(1, 2).conv1d(t.kernel(), t.kernelBias(),
                c.shortConvolution().kernel() - 1, d).narrow(2, 0, pos).transpose(1, 2));
        Tensor z = hook.at(a + "hook_z", gateC.mul(convolved));
        return w.project(z, t.wout(), t.bout());
    }

    /**
     * A Mamba-2 layer's token mixer ({@link Mamba2}), as transformers' {@code BambaMixer} (Granite 4.0's
     * {@code GraniteMoeHybridMambaLayer}) computes it without kernels: the gate, the convolution's channels and the
     * time steps from one projection; x, B and C convolved causally and through the model's activation; the time steps'
     * softplus within their limits; the state space ({@link Mamba2Scan}) in float32; its output times the SiLU of the
     * gate RMS-normalised over all heads together in float32, times the norm's weight, projected back in the model's
     * dtype.
     */
    private Tensor mamba2(String b, Weights.Layer l, Tensor x) {
        Mamba2 m = c.mamba2();
        Weights.Mamba t = l.mamba();
        long batch = x.size(0);
        long pos = x.size(1);
        long groupChannels = (long) m.groups() * m.stateSize();
        List<Tensor> in = w.project(x, t.win(), t.bin()).split(new long[] {m.inner(), m.convChannels(), m.heads()},
                -1);
        // padded on both ends, the convolution's last kernel - 1 outputs would read later positions: dropped
        Tensor convolved = activation(in.get(1).transpose(1, 2).conv1d(t.conv(), t.convBias(), m.convKernel() - 1,
                m.convChannels()).narrow(2, 0, pos)).transpose(1, 2);
        List<Tensor> xbc = convolved.split(new long[] {m.inner(), groupChannels, groupChannels}, -1);
        String a = b + "mamba.";
        Tensor xs = hook.at(a + "hook_x", xbc.get(0).reshape(batch, pos, m.heads(), m.headDim()));
        Tensor bs = hook.at(a + "hook_b", xbc.get(1).reshape(batch, pos, m.groups(), m.stateSize()));
        Tensor cs = hook.at(a + "hook_c", xbc.get(2).reshape(batch, pos, m.groups(), m.stateSize()));
        Tensor dt = in.get(2).add(t.dtBias()).softplus();
        if (m.dtMin() > 0 || m.dtMax() < Double.POSITIVE_INFINITY) { // a softplus is never below 0
            dt = dt.clamp(m.dtMin(), m.dtMax() < Double.POSITIVE_INFINITY ? m.dtMax() : null);
        }
        dt = hook.at(a + "hook_dt", dt);
        Tensor decayRate = t.aLog().to(DType.FLOAT32).exp().neg();
        Tensor ssm = hook.at(a + "hook_ssm", Mamba2Scan.apply(xs, dt, decayRate, bs, cs, t.skip(), m.chunk(),
                n -> triangles(n, x.device())));
        Tensor gate = hook.at(a + "hook_gate", in.get(0).reshape(batch, pos, m.heads(), m.headDim()));
        Tensor gated = ssm.mul(gate.to(DType.FLOAT32).silu()).reshape(batch, pos, m.inner());
        Tensor z = gated.rmsNorm(null, c.normEps()).mul(t.norm()).to(x.dtype()).view(batch, pos, m.heads(),
                m.headDim());
        z = hook.at(a + "hook_z", z);
        return w.project(z.reshape(batch, pos, m.inner()), t.wout(), t.bout());
    }

    /**
     * The triangles {@link Mamba2Scan} masks an {@code n}-position square with: the strictly lower one of ones in
     * float32 and the strictly upper one as bool, on {@code device}.
     */
    private List<Tensor> triangles(int n, Device device) {
        record Key(int size, Device device) {
        }
        return tables.get(new Key(n, device), () -> List.of(
                Tensor.ones(new long[] {n, n}, DType.FLOAT32, device).tril(-1),
                Tensor.ones(new long[] {n, n}, DType.BOOL, device).triu(1)));
    }

    /** The strictly upper triangle of a {@link GatedDeltaRule#CHUNK}-position chunk on {@code device}. */
    private Tensor chunkFuture(Device device) {
        record Key(int chunk, Device device) {
        }
        int n = GatedDeltaRule.CHUNK;
        return tables.get(new Key(n, device), () -> List.of(
                Tensor.ones(new long[] {n, n}, DType.BOOL, device).triu(1))).getFirst();
    }

    /**
     * Linear attention's gated RMSNorm of each head's output {@code core}: normalised in float32, back in the model's
     * dtype times the weight, times the SiLU of the float32 gate, rounded back once.
     */
    private Tensor gatedNorm(Tensor core, Tensor gate, Tensor weight) {
        if (!reducedPrecision(core)) {
            return core.rmsNorm(weight, c.normEps()).mul(gate.silu());
        }
        Tensor scaled = core.rmsNorm(null, c.normEps()).mul(weight);
        return scaled.mul(gate.to(DType.FLOAT32).silu()).to(core.dtype());
    }

    /** The projected queries, keys and values clamped to the family's {@code clip_qkv}; as they are without one. */
    private Tensor clipped(Tensor qkv) {
        double bound = c.clipQkv();
        if (bound == 0) {
            return qkv;
        }
        record Key(double bound, DType dtype, Device device) {
        }
        List<Tensor> bounds = tables.get(new Key(bound, qkv.dtype(), qkv.device()), () -> List.of(
                Tensor.full(new long[] {}, -bound, qkv.dtype(), qkv.device()),
                Tensor.full(new long[] {}, bound, qkv.dtype(), qkv.device())));
        return qkv.clampBetween(bounds.get(0), bounds.get(1));
    }

    /**
     * Multi-head latent attention's queries and keys {@code [batch, pos, heads, nope + rope]} and values
     * {@code [batch, pos, heads, v]}: the queries from their latent (or {@code wq}), the keys' and values' from
     * theirs, each latent normalised; every head's key ends with the one rotated key the down-projection gives.
     */
    private List<Tensor> latentQueriesKeysValues(Weights.Layer l, Tensor x) {
        LatentAttention m = c.latentAttention();
        Weights.Latent t = l.latent();
        long batch = x.size(0);
        long pos = x.size(1);
        int heads = c.nHeads();
        double eps = LatentAttention.LATENT_NORM_EPS;
        Tensor q = m.queryRank() == 0 ? w.project(x, l.wq(), null)
                : w.project(norm(w.project(x, t.wqa(), t.bqa()), t.qaNorm(), null, eps), t.wqb(), null);
        Tensor compressed = w.project(x, t.wkva(), t.bkva());
        Tensor keysValues = w.project(norm(compressed.narrow(-1, 0, m.keyValueRank()), t.kvaNorm(), null, eps),
                t.wkvb(), null).view(batch, pos, heads, m.nopeDim() + m.valueDim());
        Tensor sharedKey = compressed.narrow(-1, m.keyValueRank(), m.ropeDim()).unsqueeze(2)
                .expand(batch, pos, heads, m.ropeDim());
        Tensor k = Tensor.cat(List.of(keysValues.narrow(-1, 0, m.nopeDim()), sharedKey), -1);
        return List.of(q.view(batch, pos, heads, m.queryKeyDim()), k,
                keysValues.narrow(-1, m.nopeDim(), m.valueDim()));
    }

    /** Whether this layer's attention runs explicitly (see the class comment). */
    private boolean explicitAttention(String b, Weights.Layer l, Tensor q) {
        return !fusedAttentionPays(q.device(), q.dtype()) || c.attentionSoftcap() > 0 || l.sinks() != null
                || hook.observes(b + "attn.hook_attn_scores") || hook.observes(b + "attn.hook_pattern");
    }

    /** The factor on query-key products: {@code attentionScalar^-1/2} where the family scales, times granite's multiplier. */
    private double scoreScale() {
        return (c.scaleAttention() ? 1 / Math.sqrt(c.attentionScalar()) : 1.0) * c.attentionMultiplier();
    }

    /**
     * The queries as they enter the product with the keys: multiplied by the family's temperature at their positions
     * ({@link #tempered}), and by {@link #scoreScale} where the family scales them first.
     */
    private Tensor productQueries(int layer, Tensor q) {
        Tensor tempered = tempered(layer, q);
        return c.queriesScaledFirst() ? tempered.mul(scoreScale()) : tempered;
    }

    /** The factor on the query-key product: {@link #scoreScale}, or 1 where the queries were scaled first. */
    private double productScale() {
        return c.queriesScaledFirst() ? 1.0 : scoreScale();
    }

    /**
     * Attention scores {@code [batch, head, query, key]} of queries {@code [batch, pos, head, d_head]} and keys
     * {@code [batch, pos, kv_head, d_head]} (after rotary embeddings; query head {@code h} reads key head
     * {@code h / (heads / kv_heads)}): scaled (see {@link #scoreScale}), soft-capped where the family caps them, -inf
     * where the layer's mask forbids; in float32 where the family computes them so from reduced precision. The
     * queries are first multiplied by the family's temperature at their positions, and by the scale where the family
     * scales them first ({@link #productQueries}).
     */
    Tensor scores(int layer, Tensor q, Tensor k) {
        q = productQueries(layer, q);
        if (c.scoresInFloat32() && reducedPrecision(q)) {
            q = q.to(DType.FLOAT32);
            k = k.to(DType.FLOAT32);
        }
        long groups = q.size(2) / k.size(2);
        long[] s = q.shape();
        // grouped-query attention reads each key head for its group of query heads, without copying keys
        String equation = groups == 1 ? "bqhd,bkhd->bhqk" : "bqngd,bknd->bngqk";
        Tensor queries = groups == 1 ? q : q.view(s[0], s[1], k.size(2), groups, s[3]);
        Tensor forbidden = forbidden(layer, q.size(1), q.device());
        Tensor scores;
        if (c.attentionSoftcap() > 0) {
            Tensor product = Tensor.einsum(equation, queries, k);
            Tensor capped = softcap(productScale() == 1.0 ? product : product.mul(productScale()),
                    c.attentionSoftcap());
            // chosen, not added: an infinite score at a forbidden key would make its row NaN through inf + -inf
            scores = negativeInfinity(capped).where(forbidden, capped);
        } else { // the same, in the one tensor the product writes
            scores = Tensor.einsumMasked(equation, queries, k, productScale(), forbidden, NEGATIVE_INFINITY);
        }
        return groups == 1 ? scores : scores.reshape(s[0], s[2], s[1], k.size(1));
    }

    /** A 0-d -inf in the dtype and on the device of {@code like}, kept with the masks so no pass allocates one. */
    private Tensor negativeInfinity(Tensor like) {
        record Key(DType dtype, Device device) {
        }
        return tables.get(new Key(like.dtype(), like.device()), () -> List.of(
                Tensor.full(new long[] {}, Double.NEGATIVE_INFINITY, like.dtype(), like.device()))).getFirst();
    }

    /** {@code z [batch, pos, head, d_head]}: the pattern {@code [batch, head, query, key]} times values {@code [batch, pos, kv_head, d_head]}. */
    private static Tensor patternTimesValues(Tensor pattern, Tensor v) {
        long groups = pattern.size(1) / v.size(2);
        if (groups == 1) {
            return Tensor.einsum("bhqk,bkhd->bqhd", pattern, v);
        }
        long[] p = pattern.shape();
        Tensor grouped = pattern.view(p[0], v.size(2), groups, p[2], p[3]);
        return Tensor.einsum("bngqk,bknd->bqngd", grouped, v).reshape(p[0], p[2], p[1], v.size(3));
    }

    /**
     * Whether the layer's mask is more than causal at this length: a local or sliding window, or a chunk, shorter than
     * the input.
     */
    private boolean windowed(int layer, long pos) {
        int window = Math.max(c.attentionWindow(layer), c.attentionChunk(layer));
        return window > 0 && window < pos;
    }

    /** The layer's mask at this length as 0 (may look) and -inf (may not), in the dtype and on the device of {@code like}. */
    private Tensor additiveMask(int layer, long pos, Tensor like) {
        int window = windowed(layer, pos) ? c.attentionWindow(layer) : 0;
        int chunk = windowed(layer, pos) ? c.attentionChunk(layer) : 0;
        record Key(int window, int chunk, long pos, DType dtype, Device device) {
        }
        return tables.get(new Key(window, chunk, pos, like.dtype(), like.device()), () -> List.of(
                Tensor.zeros(new long[] {pos, pos}, like.dtype(), like.device())
                        .maskedFill(forbidden(layer, pos, like.device()), Double.NEGATIVE_INFINITY))).getFirst();
    }

    /** Where the layer's queries may not look at this length, {@code [query, key]} bool on {@code device}. */
    private Tensor forbidden(int layer, long pos, Device device) {
        int window = windowed(layer, pos) ? c.attentionWindow(layer) : 0;
        int chunk = windowed(layer, pos) ? c.attentionChunk(layer) : 0;
        record Key(int window, int chunk, long pos, Device device) {
        }
        return tables.get(new Key(window, chunk, pos, device), () -> List.of(mask(layer, pos, device))).getFirst();
    }

    /**
     * The queries {@code [batch, pos, heads, d_head]} of a layer times the family's temperature at each position, the
     * factors rounded to the queries' dtype first as ministral3 multiplies them, or in float32, the product rounded
     * once, as llama4 does; the queries themselves where the factor is 1 throughout, or where the layer rotates and
     * the temperature is for the others (llama4).
     */
    private Tensor tempered(int layer, Tensor q) {
        QueryTemperature t = c.queryTemperature();
        long pos = q.size(1);
        if (t == null || !t.scales(pos) || t.unrotatedOnly() && c.rope(layer) != null) {
            return q;
        }
        DType dtype = t.inFloat32() ? DType.FLOAT32 : q.dtype();
        record Key(QueryTemperature t, long pos, DType dtype, Device device) {
        }
        Tensor factors = tables.get(new Key(t, pos, dtype, q.device()), () -> {
            if (tables.capturing()) {
                throw new IllegalStateException("the query temperatures for " + pos + " positions are not built, and"
                        + " building them copies from the host, which a CUDA graph capture cannot contain: run a pass"
                        + " of this length before capturing one (HookedAutoModel.capture does)");
            }
            double[] values = new double[(int) pos];
            for (int p = 0; p < pos; p++) {
                values[p] = t.at(p);
            }
            try (Tensor host = Tensor.of(values, 1, pos, 1, 1)) {
                return List.of(host.to(dtype, q.device()));
            }
        }).getFirst();
        return dtype == q.dtype() ? q.mul(factors) : then(q.mul(factors), p -> p.to(q.dtype()));
    }

    /** The rotary tables of {@code rope} for this length, in the family's dtype for them, on the weights' device. */
    private Rotary rotary(Rope rope, long pos) {
        record Key(Rope rope, boolean interleaved, boolean reversed, long pos, DType dtype, Device device) {
        }
        DType dtype = Rotary.tableDtype(c, w.embed.dtype());
        Device device = w.embed.device();
        Key key = new Key(rope, c.rotaryInterleaved(), c.rotaryReversed(), pos, dtype, device);
        List<Tensor> cosSin = tables.get(key, () -> {
            if (tables.capturing()) {
                throw new IllegalStateException("the rotary tables for " + pos + " positions are not built, and"
                        + " building them copies from the host, which a CUDA graph capture cannot contain: run a pass"
                        + " of this length before capturing one (HookedAutoModel.capture does)");
            }
            return Rotary.tables(rope, c.rotaryInterleaved(), c.rotaryReversed(), pos, dtype, device);
        });
        return Rotary.of(c, rope, cosSin);
    }

    /**
     * The softmax of {@code scores} over their keys, with gpt-oss's {@code sinks} where not null. Where
     * {@code hooked}, a row a hook masked whole (-inf for every key) has a NaN softmax, which is set to 0 as
     * TransformerLens sets it (without a hook the causal mask always leaves a query its own key).
     */
    static Tensor pattern(Tensor scores, Tensor sinks, boolean hooked) {
        Tensor pattern = sinks == null ? scores.softmax(-1) : softmaxWithSink(scores, sinks);
        if (!hooked) {
            return pattern;
        }
        try (Tensor nan = pattern.isNan()) {
            return pattern.maskedFill(nan, 0);
        }
    }

    /**
     * gpt-oss's attention sinks: each head's learned logit joins every query's softmax as one more key, which has no
     * value; the pattern leaves its column out, so a row sums to less than 1 by the share the sink took. As in its
     * model, each row's maximum is subtracted first, in the scores' dtype (which rounds in float16 and bfloat16).
     */
    static Tensor softmaxWithSink(Tensor scores, Tensor sinks) {
        long batch = scores.size(0);
        long heads = scores.size(1);
        long queries = scores.size(2);
        Tensor sinkColumn = sinks.view(1, heads, 1, 1).expand(batch, heads, queries, 1);
        Tensor combined = Tensor.cat(List.of(scores, sinkColumn), -1);
        return combined.sub(combined.max(-1, true).getFirst()).softmax(-1).narrow(-1, 0, scores.size(3));
    }

    /**
     * True where a query may not look: the future, keys beyond a local or sliding window, and keys of earlier chunks
     * than the query's.
     */
    Tensor mask(int layer, long pos, Device device) {
        Tensor ones = Tensor.ones(new long[] {pos, pos}, DType.BOOL, device);
        Tensor future = ones.triu(1);
        int chunk = c.attentionChunk(layer);
        if (chunk > 0 && chunk < pos) {
            if (tables.capturing()) {
                throw new IllegalStateException("the chunked mask for " + pos + " positions is not built, and building"
                        + " it copies from the host, which a CUDA graph capture cannot contain: run a pass of this"
                        + " length before capturing one (HookedAutoModel.capture does)");
            }
            double[] chunkOf = new double[(int) pos];
            for (int p = 0; p < pos; p++) {
                chunkOf[p] = p / chunk;
            }
            try (Tensor host = Tensor.of(chunkOf, pos, 1); Tensor chunks = host.to(device);
                 Tensor apart = chunks.sub(chunks.view(1, pos))) {
                // a key at or before the query lies in an earlier chunk where the query's chunk number is larger
                return future.where(future, apart.gt(0.5));
            }
        }
        int window = c.attentionWindow(layer);
        if (window <= 0 || window >= pos) {
            return future;
        }
        // key k is visible from query q when q - window < k <= q
        return future.where(future, ones.tril(-window));
    }

    /** The MLP of {@code x}, its normalised input; {@code resid}, the stream it reads, for Gemma 4's experts. */
    private Tensor mlp(int layer, String b, Weights.Layer l, Weights.Fused f, Tensor x, Tensor resid) {
        if (c.moe() != null && c.moe().sparse(layer)) {
            return hook.at(b + "hook_mlp_out", mlpOutput(l, mixtureOfExperts(layer, b, l, x, resid)));
        }
        if (c.gatedMlp()) {
            List<Tensor> gateUp = w.project(x, f.gateUp(), f.gateUpBias()).chunk(2, -1);
            Tensor gate = hook.at(b + "mlp.hook_pre", gateUp.get(0));
            Tensor up = hook.at(b + "mlp.hook_pre_linear", gateUp.get(1));
            Tensor post = hook.at(b + "mlp.hook_post", activation(gate).mul(up));
            return hook.at(b + "hook_mlp_out", mlpOutput(l, w.project(post, l.wout(), l.bout())));
        }
        Architecture.Activation act = c.activationFunction();
        Tensor post;
        if ((act == Architecture.Activation.GELU || act == Architecture.Activation.GELU_TANH)
                && x.dtype() == DType.FLOAT32 && !hook.observes(b + "mlp.hook_pre")) {
            // the product applies the activation as it writes (in narrower dtypes the family's own rounding is kept)
            post = w.projectGelu(x, l.win(), l.bin(), act == Architecture.Activation.GELU_TANH);
        } else {
            Tensor pre = hook.at(b + "mlp.hook_pre", w.project(x, l.win(), l.bin()));
            post = act == Architecture.Activation.XIELU ? xielu(w.xielu.get(layer), pre) : activation(pre);
        }
        post = hook.at(b + "mlp.hook_post", post);
        return hook.at(b + "hook_mlp_out", mlpOutput(l, w.project(post, l.wout(), l.bout())));
    }

    /** The MLP's output as the block adds it: normalised where the family normalises sublayer outputs. */
    private Tensor mlpOutput(Weights.Layer l, Tensor out) {
        return toResidual(c.outputNorms() ? norm(out, l.mlpOutNorm(), null) : out);
    }

    /**
     * The query or key norm of {@code x [batch, pos, heads, d_head]}: over each head's features (qwen3, gemma3) or
     * over all heads' features together (olmo2), the family's kind of RMSNorm.
     */
    Tensor qkNorm(Tensor x, Tensor weight) {
        if (c.qkNorm() == Architecture.QkNorm.ROTATED_UNWEIGHTED) { // llama4's L2 norm, computed as an RMS norm
            return x.rmsNorm(null, c.normEps());
        }
        if (c.qkNorm() == Architecture.QkNorm.PER_HEAD_OWN_WEIGHTS) { // cohere: in float32, rounded once
            if (!reducedPrecision(x)) {
                return x.layerNorm(null, null, c.normEps()).mul(weight);
            }
            try (TensorScope steps = TensorScope.open()) {
                Tensor normed = x.to(DType.FLOAT32).layerNorm(null, null, c.normEps());
                return steps.keep(normed.mul(weight.to(DType.FLOAT32)).to(x.dtype()));
            }
        }
        if (c.qkNorm() == Architecture.QkNorm.PER_HEAD) {
            return norm(x, weight, null);
        }
        long[] shape = x.shape();
        return norm(x.reshape(shape[0], shape[1], shape[2] * shape[3]), weight, null).view(shape);
    }

    /** Tanh soft-capping, {@code cap · tanh(x / cap)}: smooth, and bounded by ±cap. */
    private static Tensor softcap(Tensor x, double cap) {
        return x.div(cap).tanh().mul(cap);
    }

    /** An attention or MLP output as the block adds it to the residual stream (granite scales it first). */
    private Tensor toResidual(Tensor out) {
        return c.residualMultiplier() == 1.0 ? out : out.mul(c.residualMultiplier());
    }

    /**
     * A sparse mixture of experts: the router's logits choose each token's experts and their weights; each expert
     * runs on the tokens routed to it (in token order; on none when no token chose it), its outputs multiplied by
     * their weights; a token's output is the sum of its experts' outputs in one reduction, as the grouped experts
     * that {@code transformers} 5 runs by default sum them (its eager experts add them one by one, which in reduced
     * precision rounds at each step). Gemma 4's router and experts read the residual stream {@code resid} through
     * norms of their own ({@link MixtureOfExperts.Shared#NORMED}), the others the MLP's input {@code x}.
     */
    private Tensor mixtureOfExperts(int layer, String b, Weights.Layer l, Tensor x, Tensor resid) {
        MixtureOfExperts moe = c.moe();
        Weights.NormedExperts normed = l.normedExperts();
        Tensor routerIn = normed == null ? x
                : resid.rmsNorm(null, c.normEps()).mul(normed.routerScale()).mul(1 / Math.sqrt(c.dModel()));
        Tensor expertsIn = normed == null ? x : norm(resid, normed.inNorm(), null);
        long batch = x.size(0);
        long pos = x.size(1);
        long tokens = batch * pos;
        int k = moe.topK();
        MixtureOfExperts.Routing routing = moe.routing();
        Tensor logits = hook.at(b + "mlp.hook_router_logits", moe.float32Logits()
                ? float32RouterLogits(layer, routerIn, l) : w.project(routerIn, l.wrouter(), l.brouter()));
        List<Tensor> top;
        Tensor weights;
        long[] picks = null; // the experts as read back to the host, where the routing needed them
        if (moe.grouped() != null || routing == MixtureOfExperts.Routing.SIGMOID_BIASED
                || routing == MixtureOfExperts.Routing.SOFTMAX_BIASED
                || routing == MixtureOfExperts.Routing.SPARSE_MIXER) {
            Choice choice = routing == MixtureOfExperts.Routing.SPARSE_MIXER ? sparseMixer(logits)
                    : scoredChoice(logits, l.expertScoreBias(), x.dtype());
            top = List.of(choice.weights(), choice.experts());
            weights = choice.weights();
            picks = choice.picks();
        } else if (routing == MixtureOfExperts.Routing.TOP_K_THEN_SOFTMAX) {
            top = logits.topk(k, -1, true);
            weights = top.get(0).softmax(-1);
        } else if (routing == MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID
                || routing == MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID_NORMALIZED
                || routing == MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID_ON_INPUTS) {
            top = logits.topk(k, -1, true);
            weights = top.get(0).sigmoid();
            if (routing == MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID_NORMALIZED) {
                weights = weights.div(weights.sum(-1, true));
            }
        } else {
            Tensor wide = logits.to(DType.FLOAT32);
            if (routing == MixtureOfExperts.Routing.TOP_K_THEN_FLOAT32_SOFTMAX) {
                top = wide.topk(k, -1, true);
                weights = top.get(0).softmax(-1);
            } else {
                top = wide.softmax(-1).topk(k, -1, true);
                weights = routing == MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K_AS_IS ? top.get(0)
                        : top.get(0).div(top.get(0).sum(-1, true));
                if (normed != null) {
                    weights = weights.mul(normed.expertScale().indexSelect(0, top.get(1).reshape(-1)).view(
                            top.get(1).shape()));
                }
            }
        }
        weights = moe.float32Weights() || weights.dtype() == x.dtype() ? weights : weights.to(x.dtype());
        Tensor chosen = hook.at(b + "mlp.hook_expert_indices", top.get(1));
        weights = hook.at(b + "mlp.hook_expert_weights", weights).reshape(tokens * k, 1);
        ExpertRoutes routes = ExpertRoutes.of(chosen == top.get(1) && picks != null ? picks : chosen.toLongArray(), k,
                moe.experts(), b + "mlp.hook_expert_indices");
        Tensor flat = expertsIn.reshape(tokens, c.dModel());
        List<Tensor> outputs = new ArrayList<>(moe.experts());
        for (int e = 0; e < moe.experts(); e++) {
            try (TensorScope expert = TensorScope.open()) { // each expert's work freed once its output is weighted
                Tensor rows = indices(routes.tokens()[e], x.device());
                Tensor weight = weights.indexSelect(0, indices(routes.slots()[e], x.device()));
                Tensor in = flat.indexSelect(0, rows);
                if (routing == MixtureOfExperts.Routing.TOP_K_THEN_SIGMOID_ON_INPUTS) { // llama4 weighs the input
                    outputs.add(expert.keep(expert(b + "mlp.experts." + e + ".", l, e, in.mul(weight))));
                    continue;
                }
                Tensor out = expert(b + "mlp.experts." + e + ".", l, e, in);
                // mixtral's float32 routing weights promote the weighted outputs, which are summed so, as in
                // transformers, and rounded to the model's dtype once
                outputs.add(expert.keep(out.mul(weight)));
            }
        }
        Tensor perToken = Tensor.cat(outputs, 0).indexSelect(0, indices(routes.order(), x.device()))
                .view(tokens, k, c.dModel());
        Tensor summed = perToken.sum(1, false);
        Tensor routed = (summed.dtype() == x.dtype() ? summed : summed.to(x.dtype())).view(batch, pos, c.dModel());
        if (!moe.hasSharedExpert()) {
            return routed;
        }
        if (normed != null) {
            return norm(sharedExpert(b, l, x), normed.sharedOutNorm(), null).add(norm(routed, normed.outNorm(), null));
        }
        Tensor both = routed.add(sharedExpert(b, l, x));
        return moe.shared() == MixtureOfExperts.Shared.AVERAGED ? both.div(2.0) : both;
    }

    /**
     * The router logits of {@link MixtureOfExperts#float32Logits}: from the token and the router's weight in float32,
     * whatever the model's dtype (the weight's float32 copy made when the model loaded, or the weight itself where the
     * model holds it in float32).
     */
    private Tensor float32RouterLogits(int layer, Tensor x, Weights.Layer l) {
        Tensor router = w.float32Routers.get(layer);
        Tensor wide = x.dtype() == DType.FLOAT32 ? x : x.to(DType.FLOAT32);
        return router == null ? w.project(wide, l.wrouter(), null) : wide.matmul(router);
    }

    /** Each token's routing weights and experts {@code [batch, pos, topK]}, and the experts read back to the host. */
    private record Choice(Tensor weights, Tensor experts, long[] picks) {
    }

    /**
     * The choice of the scored routings from {@code logits [batch, pos, experts]}: the experts with the largest
     * (biased) scores first, as {@link Tensor#topk} gives them. The groups a token may choose from, and the weights,
     * are found with the experts read back to the host, where the routes are read anyway.
     * {@link MixtureOfExperts.Routing#SIGMOID_BIASED}'s correction bias is rounded to the model's {@code dtype} before
     * it is added to the float32 scores, as transformers holds it in that dtype;
     * {@link MixtureOfExperts.Routing#SOFTMAX_GROUPED}'s scores are the softmax over the experts, unbiased,
     * {@link MixtureOfExperts.Routing#SOFTMAX_GROUPED_IN_MODEL_DTYPE}'s the same in the logits' dtype,
     * {@link MixtureOfExperts.Routing#SOFTMAX_BIASED}'s the softmax with the float32 bias added to choose, and
     * {@link MixtureOfExperts.Routing#SIGMOID_BIASED_IN_MODEL_DTYPE}'s the sigmoid in the logits' dtype, the float32
     * bias added to choose.
     */
    private Choice scoredChoice(Tensor logits, Tensor scoreBias, DType dtype) {
        MixtureOfExperts moe = c.moe();
        MixtureOfExperts.Grouped g = moe.grouped(); // null for SOFTMAX_BIASED and MiniMax-M2's SIGMOID_BIASED
        boolean sigmoidInModelDtype = moe.routing() == MixtureOfExperts.Routing.SIGMOID_BIASED_IN_MODEL_DTYPE;
        boolean inModelDtype = moe.routing() == MixtureOfExperts.Routing.SOFTMAX_GROUPED_IN_MODEL_DTYPE
                || sigmoidInModelDtype;
        boolean softmaxBiased = moe.routing() == MixtureOfExperts.Routing.SOFTMAX_BIASED;
        boolean softmax = moe.routing() == MixtureOfExperts.Routing.SOFTMAX_GROUPED
                || moe.routing() == MixtureOfExperts.Routing.SOFTMAX_GROUPED_IN_MODEL_DTYPE || softmaxBiased;
        Tensor wide = inModelDtype || logits.dtype() == DType.FLOAT32 ? logits : logits.to(DType.FLOAT32);
        Tensor scores = softmax ? wide.softmax(-1) : wide.sigmoid();
        Tensor biased = scores;
        if (!softmax || softmaxBiased) {
            // added as libtorch promotes, float32 or wider
            DType biasDtype = moe.routing() == MixtureOfExperts.Routing.SIGMOID_BIASED ? dtype : DType.FLOAT32;
            biased = scores.add(scoreBias.dtype() == biasDtype ? scoreBias : scoreBias.to(biasDtype));
        }
        if (g != null && g.topGroups() < g.groups()) {
            biased = biased.add(groupMask(biased, g, softmax && !inModelDtype));
        }
        // ERNIE's, AfMoE's and LFM2-MoE's routers sort their top k; the others take libtorch's unsorted top k, which
        // decides the order in which they sum the chosen scores, and so how the sum rounds
        boolean sortedChoice = softmaxBiased || sigmoidInModelDtype
                || moe.routing() == MixtureOfExperts.Routing.SIGMOID_BIASED && g != null;
        int k = moe.topK();
        List<Tensor> top = biased.topk(k, -1, true, sortedChoice);
        long[] shape = logits.shape();
        long[] chosen = top.get(1).toLongArray();
        long[] bestFirst = sortedChoice ? chosen : bestFirst(chosen, top.get(0).toDoubleArray(), k);
        Tensor experts = sortedChoice ? top.get(1) : indices(bestFirst, logits.device()).view(shape[0], shape[1], k);
        Tensor inChoiceOrder = chosenScores(scores, chosen, shape);
        Tensor weights = sortedChoice ? inChoiceOrder : chosenScores(scores, bestFirst, shape);
        Tensor sum = inChoiceOrder.sum(-1, true);
        if (g == null) {
            return new Choice(weights.div(softmaxBiased ? sum.clamp(moe.normMin(), null) : sum), experts, bestFirst);
        }
        if (g.normalized()) {
            weights = weights.div(sum.add(sigmoidInModelDtype ? 1e-6 : 1e-20));
        }
        return new Choice(g.routedScale() == 1.0 ? weights : weights.mul(g.routedScale()), experts, bestFirst);
    }

    /** Each token's chosen experts {@code [tokens · k]} reordered by their (biased) scores, best first. */
    private static long[] bestFirst(long[] chosen, double[] values, int k) {
        long[] ordered = new long[chosen.length];
        Integer[] slots = new Integer[k];
        for (int t = 0; t < chosen.length / k; t++) {
            int from = t * k;
            for (int j = 0; j < k; j++) {
                slots[j] = from + j;
            }
            java.util.Arrays.sort(slots, (a, b) -> Double.compare(values[b], values[a])); // stable: ties keep order
            for (int j = 0; j < k; j++) {
                ordered[from + j] = chosen[slots[j]];
            }
        }
        return ordered;
    }

    /** The {@code scores} at each token's {@code experts [tokens · k]}, {@code [batch, pos, k]}. */
    private Tensor chosenScores(Tensor scores, long[] experts, long[] shape) {
        int k = c.moe().topK();
        int count = c.moe().experts();
        long[] flat = new long[experts.length];
        for (int i = 0; i < experts.length; i++) {
            flat[i] = (long) (i / k) * count + experts[i];
        }
        return scores.reshape(shape[0] * shape[1] * count).indexSelect(0, indices(flat, scores.device()))
                .view(shape[0], shape[1], k);
    }

    /**
     * {@link MixtureOfExperts.Routing#SPARSE_MIXER}'s choice from {@code logits [batch, pos, experts]}, in their dtype,
     * as {@code sparsemixer} of transformers' PhiMoE computes it outside training: the best expert, then the best of
     * the others, each weighted by its share of a softmax over the logits close enough to its own.
     */
    private Choice sparseMixer(Tensor logits) {
        long[] shape = logits.shape();
        int experts = (int) shape[2];
        long tokens = shape[0] * shape[1];
        Tensor magnitude = logits.abs();
        List<Tensor> first = logits.max(-1, true);
        long[] firstPicks = first.get(1).toLongArray();
        Tensor firstWeight = sparseMixerWeight(logits, logits, magnitude, first.get(0), firstPicks);
        boolean[] taken = new boolean[(int) tokens * experts];
        for (int t = 0; t < tokens; t++) {
            taken[t * experts + (int) firstPicks[t]] = true;
        }
        Tensor takenMask = Tensor.of(taken, shape);
        Tensor others = logits.maskedFill(logits.device().isCpu() ? takenMask : takenMask.to(logits.device()),
                Double.NEGATIVE_INFINITY);
        List<Tensor> second = others.max(-1, true);
        long[] secondPicks = second.get(1).toLongArray();
        Tensor secondWeight = sparseMixerWeight(others, logits, magnitude, second.get(0), secondPicks);
        long[] picks = new long[(int) tokens * 2];
        for (int t = 0; t < tokens; t++) {
            picks[2 * t] = firstPicks[t];
            picks[2 * t + 1] = secondPicks[t];
        }
        Tensor chosen = Tensor.cat(List.of(first.get(1), second.get(1)), -1);
        return new Choice(Tensor.cat(List.of(firstWeight, secondWeight), -1), chosen, picks);
    }

    /**
     * The softmax of {@code candidates} over the experts whose logit lies within {@code 2 · jitterEps} of
     * {@code best}, relative to the larger of its magnitude and {@code best}, at each token's {@code picks}
     * {@code [batch, pos, 1]}.
     */
    private Tensor sparseMixerWeight(Tensor candidates, Tensor logits, Tensor magnitude, Tensor best, long[] picks) {
        long[] shape = logits.shape();
        int experts = (int) shape[2];
        Tensor factor = magnitude.where(magnitude.sub(best).gt(0.0), best); // abs().clamp(min=best)
        Tensor far = best.sub(logits).div(factor).gt(2 * c.moe().jitterEps());
        Tensor gates = candidates.maskedFill(far, Double.NEGATIVE_INFINITY).softmax(-1);
        long[] flat = new long[picks.length];
        for (int t = 0; t < picks.length; t++) {
            flat[t] = (long) t * experts + picks[t];
        }
        return gates.reshape(picks.length * (long) experts).indexSelect(0, indices(flat, logits.device()))
                .view(shape[0], shape[1], 1);
    }

    /**
     * 0 for the experts of each token's {@code topGroups} groups whose two best biased scores sum highest (or, where
     * {@code byBest}, whose best score is highest), -inf for the others, in the shape of
     * {@code choice [batch, pos, experts]}. The groups' scores are summed in {@code choice}'s dtype and ranked by
     * libtorch's unsorted top-k, as transformers' routers rank them, so that equal scores, frequent in bfloat16, keep
     * the groups they keep.
     */
    private static Tensor groupMask(Tensor choice, MixtureOfExperts.Grouped g, boolean byBest) {
        long[] shape = choice.shape();
        int experts = (int) shape[2];
        int size = experts / g.groups();
        long[] kept;
        try (TensorScope scope = TensorScope.open()) {
            Tensor best = choice.view(shape[0], shape[1], g.groups(), size).topk(byBest ? 1 : 2, -1, true).get(0);
            kept = best.sum(-1, false).topk(g.topGroups(), -1, true, false).get(1).toLongArray();
        }
        float[] mask = new float[(int) (shape[0] * shape[1] * experts)];
        Arrays.fill(mask, Float.NEGATIVE_INFINITY);
        for (int token = 0; token < kept.length / g.topGroups(); token++) {
            for (int j = 0; j < g.topGroups(); j++) {
                int from = token * experts + (int) kept[token * g.topGroups() + j] * size;
                Arrays.fill(mask, from, from + size, 0f);
            }
        }
        Tensor host = Tensor.of(mask, shape);
        return choice.device().isCpu() ? host : host.to(choice.device());
    }

    /**
     * The shared expert, a gated MLP every token goes to: its output weighted by the sigmoid of a linear gate on the
     * token (qwen2-moe), or as it is (DeepSeek-V3's, GLM-4.5's).
     */
    private Tensor sharedExpert(String b, Weights.Layer l, Tensor x) {
        String name = b + "mlp.shared_expert.";
        Tensor gate = hook.at(name + "hook_pre", w.project(x, l.sharedGate(), null));
        Tensor up = hook.at(name + "hook_pre_linear", w.project(x, l.sharedIn(), null));
        Tensor post = hook.at(name + "hook_post", activation(gate).mul(up));
        Tensor out = w.project(post, l.sharedOut(), null);
        if (!c.moe().sharedGated()) {
            return out;
        }
        Tensor weight = hook.at(b + "mlp.hook_shared_expert_gate", w.project(x, l.sharedExpertGate(), null).sigmoid());
        return weight.mul(out);
    }

    /** One expert of layer {@code l}, a gated MLP, on the rows {@code x [tokens, d_model]} routed to it. */
    private Tensor expert(String name, Weights.Layer l, int e, Tensor x) {
        Tensor gate = hook.at(name + "hook_pre", w.project(x, l.wgate().select(0, e), expertSlice(l.bgate(), e)));
        Tensor up = hook.at(name + "hook_pre_linear", w.project(x, l.win().select(0, e), expertSlice(l.bin(), e)));
        MixtureOfExperts.ClampedSwiglu clamped = c.moe().clampedSwiglu();
        Tensor post = hook.at(name + "hook_post", clamped == null ? activation(gate).mul(up) : clampedSwiglu(clamped, gate, up));
        return w.project(post, l.wout().select(0, e), expertSlice(l.bout(), e));
    }

    /**
     * gpt-oss: {@code (clamp(up, -limit, limit) + 1) * g * sigmoid(alpha * g)} with {@code g = clamp(gate, max = limit)}.
     */
    private static Tensor clampedSwiglu(MixtureOfExperts.ClampedSwiglu s, Tensor gate, Tensor up) {
        try (TensorScope steps = TensorScope.open()) { // the steps' tensors freed once the result is made
            Tensor g = gate.clamp(null, s.limit());
            Tensor glu = g.mul(g.mul(s.alpha()).sigmoid());
            return steps.keep(up.clamp(-s.limit(), s.limit()).add(1.0).mul(glu));
        }
    }

    private static Tensor expertSlice(Tensor perExpert, int e) {
        return perExpert == null ? null : perExpert.select(0, e);
    }

    private static Tensor indices(long[] values, Device device) {
        Tensor host = Tensor.of(values, values.length);
        return device.isCpu() ? host : host.to(device);
    }

    private Tensor activation(Tensor x) {
        return switch (c.activationFunction()) {
            case GELU_TANH -> reducedPrecision(x) ? tanhGeluAsWritten(x) : x.gelu(true);
            case GELU -> reducedPrecision(x) && c.activation().equals("gelu_python") ? erfGeluAsWritten(x)
                    : x.gelu(false);
            case SILU -> x.silu();
            case RELU -> x.relu();
            case RELU2 -> then(x.relu(), relu -> relu.mul(relu));
            case XIELU -> throw new IllegalStateException("xIELU needs its layer's parameters: see xielu");
        };
    }

    /**
     * Apertus's xIELU of {@code x} with its layer's factors {@code f}, op by op in {@code x}'s dtype as transformers'
     * {@code XIELUActivation} computes it without its CUDA kernel: {@code alpha_p x x + beta x} where {@code x > 0},
     * else {@code (expm1(min(x, eps)) - x) alpha_n + beta x}.
     */
    private static Tensor xielu(Weights.XieluFactors f, Tensor x) {
        // each step freed as soon as the next is made: at most the two sides, the linear term and a step at once
        Tensor positive;
        Tensor negative;
        try (Tensor linear = x.mul(f.beta())) {
            positive = then(then(x.mul(f.alphaP()), t -> t.mul(x)), t -> t.add(linear));
            negative = then(then(then(then(x.clamp(null, f.eps()), Tensor::expm1), t -> t.sub(x)),
                    t -> t.mul(f.alphaN())), t -> t.add(linear));
        }
        try (positive; negative; Tensor mask = x.gt(0)) {
            return positive.where(mask, negative);
        }
    }

    private static boolean reducedPrecision(Tensor x) {
        return x.dtype() == DType.BFLOAT16 || x.dtype() == DType.FLOAT16;
    }

    /**
     * The tanh GELU as the family's {@code transformers} activation computes it, op by op in {@code x}'s dtype, each
     * op rounding in float16 and bfloat16: {@code gelu_new} and {@code gelu_python_tanh} are
     * {@code 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))}, {@code gelu_fast}
     * {@code 0.5 x (1 + tanh(0.7978845608 x (1 + 0.044715 x x)))}; {@code gelu_pytorch_tanh} is libtorch's one op.
     */
    private Tensor tanhGeluAsWritten(Tensor x) {
        if (c.activation().equals("gelu_pytorch_tanh")) {
            return x.gelu(true);
        }
        // each step's input closed as the next is made, so the formula holds few tensors of x's size at once
        Tensor inner = c.activation().equals("gelu_fast")
                ? then(then(x.mul(0.7978845608), t -> {
                    try (Tensor cubic = then(then(x.mul(0.044715), s -> s.mul(x)), s -> s.add(1.0))) {
                        return t.mul(cubic);
                    }
                }), Tensor::tanh)
                : then(then(then(then(x.pow(3.0), t -> t.mul(0.044715)), t -> t.add(x)),
                        t -> t.mul(Math.sqrt(2.0 / Math.PI))), Tensor::tanh);
        try (Tensor half = x.mul(0.5); Tensor plusOne = then(inner, t -> t.add(1.0))) {
            return half.mul(plusOne);
        }
    }

    /**
     * {@code gelu_python} as {@code transformers} writes it, {@code x * 0.5 * (1 + erf(x / sqrt(2)))}, op by op in
     * {@code x}'s dtype, each op rounding in float16 and bfloat16; {@code gelu} is libtorch's one op.
     */
    private static Tensor erfGeluAsWritten(Tensor x) {
        try (Tensor half = x.mul(0.5);
             Tensor plusOne = then(then(x.div(Math.sqrt(2.0)), Tensor::erf), t -> t.add(1.0))) {
            return half.mul(plusOne);
        }
    }

    /**
     * The family's norm of the residual stream {@code x} at hook points {@code name + "hook_scale"} (what each position
     * is divided by, {@code [batch, pos, 1]}) and {@code name + "hook_normalized"} (the output, weight and bias
     * applied). The scale is computed only where something observes it; where a hook runs there, the output is
     * computed from the scale the hook leaves, so a replaced scale (a frozen norm) changes what follows.
     */
    private Tensor hookedNorm(String name, Tensor x, Tensor weight, Tensor bias) {
        String scaleName = name + "hook_scale";
        String outName = name + "hook_normalized";
        if (hook.hooks(scaleName)) {
            return hook.at(outName, dividedBy(x, hook.at(scaleName, scale(x)), weight, bias));
        }
        if (!hook.observes(scaleName)) {
            return hook.at(outName, norm(x, weight, bias));
        }
        List<Tensor> normed = normAndScale(x, weight, bias);
        hook.at(scaleName, normed.get(1));
        return hook.at(outName, normed.get(0));
    }

    /**
     * What the family's norm divides each position of {@code x} by, {@code [batch, pos, 1]}: the standard deviation
     * (LayerNorm) or the root mean square (RMSNorm), the norm's eps added under the root; in float32 for float16 and
     * bfloat16 input, as the norms compute their statistics (TransformerLens's {@code hook_scale} likewise).
     */
    private Tensor scale(Tensor x) {
        try (TensorScope scope = TensorScope.open()) {
            if (!c.norm().centres()) {
                return scope.keep(x.rmsNormAndScale(null, c.normEps()).get(1));
            }
            // libtorch's CPU kernel keeps a reduced-precision input's statistics in that dtype
            Tensor wide = reducedPrecision(x) ? x.to(DType.FLOAT32) : x;
            return scope.keep(wide.layerNormAndScale(null, null, c.normEps()).get(1));
        }
    }

    /** {@link #norm} and its {@link #scale}: [output, scale], each from the same op where libtorch's gives both. */
    private List<Tensor> normAndScale(Tensor x, Tensor weight, Tensor bias) {
        double eps = c.normEps();
        if (reducedPrecision(x) && (c.norm().centres() || c.norm() == Architecture.Norm.RMS_NORM_PLUS_ONE)) {
            return List.of(norm(x, weight, bias), scale(x));
        }
        return switch (c.norm()) {
            case LAYER_NORM -> x.layerNormAndScale(weight, bias, eps);
            case LAYER_NORM_PLUS_ONE -> x.layerNormAndScale(weight.add(1.0), bias, eps);
            case RMS_NORM_WEIGHT_IN_FLOAT32 -> x.rmsNormAndScale(weight, eps);
            case RMS_NORM -> {
                if (!reducedPrecision(x)) {
                    yield x.rmsNormAndScale(weight, eps);
                }
                List<Tensor> normed = x.rmsNormAndScale(null, eps); // llama: back in the dtype before the weight
                yield List.of(normed.get(0).mul(weight), normed.get(1));
            }
            case RMS_NORM_PLUS_ONE -> {
                List<Tensor> normed = x.rmsNormAndScale(null, eps);
                yield List.of(normed.get(0).mul(weight.add(1.0)), normed.get(1));
            }
        };
    }

    /**
     * The norm's output from {@code scale} (see {@link #scale}): {@code (x - mean) / scale · w + b} for a LayerNorm,
     * {@code x / scale · w} for an RMSNorm ({@code · (1 + w)} for gemma's and nemotron's), in float32 and rounded
     * where {@link #norm} rounds.
     */
    private Tensor dividedBy(Tensor x, Tensor scale, Tensor weight, Tensor bias) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor x32 = reducedPrecision(x) ? x.to(DType.FLOAT32) : x;
            return scope.keep(switch (c.norm()) {
                case LAYER_NORM, LAYER_NORM_PLUS_ONE -> {
                    Tensor w = c.norm() == Architecture.Norm.LAYER_NORM ? weight : weight.add(1.0);
                    Tensor scaled = x32.sub(x32.mean(-1, true)).div(scale).mul(as(w, x32));
                    yield as(bias == null ? scaled : scaled.add(as(bias, x32)), x);
                }
                case RMS_NORM -> as(x32.div(scale), x).mul(weight); // llama: back in the dtype before the weight
                case RMS_NORM_WEIGHT_IN_FLOAT32 -> as(x32.div(scale).mul(as(weight, x32)), x);
                case RMS_NORM_PLUS_ONE -> as(x32.div(scale).mul(as(weight, x32).add(1.0)), x);
            });
        }
    }

    /** {@code t} in the dtype of {@code like}: itself where it already is. */
    private static Tensor as(Tensor t, Tensor like) {
        return t.dtype() == like.dtype() ? t : t.to(like.dtype());
    }

    /**
     * The family's norm (LayerNorm, RMSNorm, or gemma's and nemotron's with (1 + w)) of {@code x} with these
     * parameters, rounded in float16 and bfloat16 where the family's model rounds.
     */
    Tensor norm(Tensor x, Tensor weight, Tensor bias) {
        return norm(x, weight, bias, c.normEps());
    }

    /** {@link #norm(Tensor, Tensor, Tensor)} with {@code eps} in place of the configuration's. */
    private Tensor norm(Tensor x, Tensor weight, Tensor bias, double eps) {
        if (c.norm() == Architecture.Norm.LAYER_NORM) {
            return x.layerNorm(weight, bias, eps);
        }
        if (c.norm() == Architecture.Norm.LAYER_NORM_PLUS_ONE) {
            try (Tensor scale = weight.add(1.0)) { // nemotron: 1 + w in the model's dtype, then libtorch's LayerNorm
                return x.layerNorm(scale, bias, eps);
            }
        }
        if (c.norm() == Architecture.Norm.RMS_NORM_PLUS_ONE) {
            // gemma: x · rsqrt(mean(x²) + eps) · (1 + w), all in float32, cast back once
            if (x.dtype() == DType.FLOAT32 || x.dtype() == DType.FLOAT64) {
                return x.rmsNorm(null, eps).mul(weight.add(1.0));
            }
            try (Tensor x32 = x.to(DType.FLOAT32); Tensor w32 = weight.to(DType.FLOAT32);
                 Tensor scale = w32.add(1.0); Tensor normed = x32.rmsNorm(null, eps);
                 Tensor out = normed.mul(scale)) {
                return out.to(x.dtype());
            }
        }
        if (c.norm() == Architecture.Norm.RMS_NORM && reducedPrecision(x)) {
            return x.rmsNorm(null, eps).mul(weight); // llama: back in the dtype before the weight
        }
        return x.rmsNorm(weight, eps);
    }

    /**
     * Rotary position embeddings: the first {@code rotaryDim} features of each head are rotated, the rest pass through;
     * in latent attention the last ones are, those before them passing through, and where its rotated features are
     * stored in adjacent pairs they are first laid out as halves, {@code (x0, x2, ..., x1, x3, ...)}, as DeepSeek-V3's
     * attention lays them out. Frequency {@code i} turns the pair {@code (i, i + rotaryDim / 2)} in the
     * {@code rotate_half} convention of Llama and GPT-NeoX, the adjacent pair {@code (2i, 2i + 1)} in GPT-J's
     * {@code rotate_every_two} (interleaved). cos and sin carry the rope's attention factor (YaRN's), so it scales the
     * attention scores twice, once through queries and once through keys. A pair {@code (a, b)} becomes
     * {@code (a·cos − b·sin, b·cos + a·sin)}: the features swapped within their pairs times {@code sin} with the sign
     * of the pair's first feature flipped (of its second where the family turns pairs the other way, nanochat).
     *
     * @param inFloat32 whether float16 and bfloat16 inputs are rotated in float32 and converted back
     * @param last whether the last {@code rotaryDim} features rotate rather than the first (latent attention)
     * @param pairsToHalves whether those features are laid out from adjacent pairs as halves before they rotate
     * @param cos {@code [1, pos, 1, rotaryDim]}, in the dtype {@link #tableDtype} gives
     * @param signedSin the same shape, {@code -sin} at each pair's first feature and {@code sin} at its second (the
     *     other way round where the rotation is reversed)
     */
    record Rotary(int rotaryDim, boolean interleaved, boolean inFloat32, boolean last, boolean pairsToHalves,
                  Tensor cos, Tensor signedSin) {

        static Rotary of(Architecture a, Rope rope, long pos, DType dtype, Device device) {
            return of(a, rope, tables(rope, a.rotaryInterleaved(), a.rotaryReversed(), pos, tableDtype(a, dtype),
                    device));
        }

        /** The rotation of {@code rope} in {@code a}'s layout, with these tables [cos, signed sin]. */
        static Rotary of(Architecture a, Rope rope, List<Tensor> cosSin) {
            LatentAttention latent = a.latentAttention();
            return new Rotary(rope.dim(), a.rotaryInterleaved(), inFloat32(a), latent != null,
                    latent != null && latent.ropeInterleaved(), cosSin.get(0), cosSin.get(1));
        }

        /** The dtype of cos and sin in a model of {@code dtype}. */
        static DType tableDtype(Architecture a, DType dtype) {
            boolean reduced = dtype == DType.BFLOAT16 || dtype == DType.FLOAT16;
            return reduced && a.rotaryPrecision() == RotaryPrecision.FLOAT32 ? DType.FLOAT32 : dtype;
        }

        static boolean inFloat32(Architecture a) {
            return a.rotaryPrecision() != RotaryPrecision.MODEL_DTYPE;
        }

        /**
         * cos and signed sin for positions {@code 0 .. pos-1}, in float32 and then rounded to {@code dtype}, as
         * Hugging Face's rotary embeddings compute them: the angle, its cos and sin, and their product with the
         * attention factor each rounded to float32.
         */
        static List<Tensor> tables(Rope rope, boolean interleaved, boolean reversed, long pos, DType dtype,
                                   Device device) {
            int rotaryDim = rope.dim();
            int half = rotaryDim / 2;
            float[] invFreq = rope.inverseFrequencies(pos);
            float scale = (float) rope.attentionFactor(pos);
            float[] cosValues = new float[(int) pos * rotaryDim];
            float[] sinValues = new float[(int) pos * rotaryDim];
            for (int p = 0; p < pos; p++) {
                for (int i = 0; i < half; i++) {
                    float angle = (float) p * invFreq[i];
                    float cv = (float) Math.cos(angle) * scale;
                    float sv = (float) Math.sin(angle) * scale;
                    int first = interleaved ? 2 * i : i; // the two features frequency i turns
                    int second = interleaved ? 2 * i + 1 : i + half;
                    cosValues[p * rotaryDim + first] = cv;
                    cosValues[p * rotaryDim + second] = cv;
                    sinValues[p * rotaryDim + first] = reversed ? sv : -sv;
                    sinValues[p * rotaryDim + second] = reversed ? -sv : sv;
                }
            }
            try (Tensor cosHost = Tensor.of(cosValues, 1, pos, 1, rotaryDim);
                 Tensor sinHost = Tensor.of(sinValues, 1, pos, 1, rotaryDim)) {
                return List.of(cosHost.to(dtype, device), sinHost.to(dtype, device));
            }
        }

        /** Rotates {@code x [batch, pos, heads, d_head]}. */
        Tensor apply(Tensor x) {
            if (inFloat32 && reducedPrecision(x)) {
                try (TensorScope steps = TensorScope.open()) { // the float32 steps freed once the result is made
                    return steps.keep(rotate(x.to(DType.FLOAT32)).to(x.dtype()));
                }
            }
            return rotate(x);
        }

        private Tensor rotate(Tensor x) {
            long dHead = x.size(-1);
            long passing = dHead - rotaryDim;
            Tensor rot = passing == 0 ? x : x.narrow(-1, last ? passing : 0, rotaryDim);
            if (pairsToHalves) {
                long[] shape = rot.shape();
                long[] pairs = Arrays.copyOf(shape, shape.length + 1);
                pairs[shape.length - 1] = rotaryDim / 2;
                pairs[shape.length] = 2;
                rot = rot.reshape(pairs).transpose(-1, -2).reshape(shape);
            }
            Tensor out = rot.mul(cos).add(swapWithinPairs(rot).mul(signedSin));
            if (passing == 0) {
                return out;
            }
            Tensor through = x.narrow(-1, last ? 0 : rotaryDim, passing);
            return Tensor.cat(last ? List.of(through, out) : List.of(out, through), -1);
        }

        /** Each pair {@code (a, b)} that a frequency turns becomes {@code (b, a)}. */
        private Tensor swapWithinPairs(Tensor rot) {
            if (!interleaved) {
                return rot.roll(rotaryDim / 2, -1);
            }
            long[] shape = rot.shape();
            long[] pairs = Arrays.copyOf(shape, shape.length + 1);
            pairs[shape.length - 1] = rotaryDim / 2;
            pairs[shape.length] = 2;
            return rot.reshape(pairs).roll(1, -1).view(shape);
        }
    }
}

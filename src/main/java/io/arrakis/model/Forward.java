package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.Rope;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One forward pass, top to bottom, for every family: the differences (norm, positions, rotary, MLP kind, residual
 * wiring, attention scaling and windows) are read from the config's {@link Architecture}. All tensors made here
 * belong to the caller's {@link io.arrakis.torch.TensorScope}; what the cache keeps is handed out by
 * {@link HookedAutoModel.Pass}.
 */
final class Forward {
    private final Architecture c;
    private final Weights w;
    private final HookedAutoModel.Pass hook;

    Forward(HookedAutoConfig config, Weights weights, HookedAutoModel.Pass pass) {
        this.c = config.architecture();
        this.w = weights;
        this.hook = pass;
    }

    /** Logits {@code [batch, pos, vocab]} for int64 ids {@code [batch, pos]} on the model's device. */
    Tensor run(Tensor ids) {
        long batch = ids.size(0);
        long pos = ids.size(1);
        Tensor x = hook.at("hook_embed", w.embed.embedding(ids));
        if (c.embeddingScale() != 1.0) {
            // gemma: the scale is a tensor in the weights' dtype (sqrt(2048) is 45.25 in bfloat16); after hook_embed,
            // as in TransformerLens, so it is part of blocks.0.hook_resid_pre
            try (Tensor scale = Tensor.scalar(c.embeddingScale()).to(w.embed.dtype())) {
                x = x.mul(scale.item());
            }
        }
        if (!c.rotary()) {
            Tensor positions = hook.at("hook_pos_embed", w.posEmbed.narrow(0, 0, pos).unsqueeze(0).expand(batch, pos, c.dModel()));
            x = x.add(positions);
        }
        Map<Rope, Rotary> rotaries = new HashMap<>(); // one per distinct rope: gemma3's sliding layers have their own
        for (int i = 0; i < c.nLayers(); i++) {
            Rope rope = c.rope(i);
            Rotary rotary = rope == null ? null
                    : rotaries.computeIfAbsent(rope, r -> new Rotary(r, c.rotaryInterleaved(), pos, w.embed.dtype(),
                            w.embed.device()));
            x = block(i, x, rotary);
        }
        Tensor normalized = hook.at("ln_final.hook_normalized", norm(x, w.lnfw, w.lnfb));
        Tensor logits = normalized.matmul(w.unembed);
        if (w.unembedBias != null) {
            logits = logits.add(w.unembedBias);
        }
        if (c.logitScale() != 1.0) {
            logits = logits.mul(c.logitScale());
        }
        if (c.logitSoftcap() > 0) {
            logits = softcap(logits, c.logitSoftcap());
        }
        return hook.at("logits", logits);
    }

    private Tensor block(int i, Tensor x, Rotary rotary) {
        String b = "blocks." + i + ".";
        Weights.Layer l = w.layers.get(i);
        Tensor residPre = hook.at(b + "hook_resid_pre", x);
        Tensor attnIn = c.inputNorms() ? norm(residPre, l.ln1w(), l.ln1b()) : residPre;
        Tensor attnOut = attention(i, b, l, attnIn, rotary);
        if (c.outputNorms()) { // gemma2, olmo2: the output is normalised before the residual sum
            attnOut = norm(attnOut, l.attnOutNorm(), null);
        }
        attnOut = hook.at(b + "hook_attn_out", toResidual(attnOut));
        if (c.parallelResidual()) {
            // gpt-neox normalises the MLP's input on its own; stable-lm feeds it the attention's (no ln2)
            Tensor mlpOut = mlp(b, l, l.ln2w() == null ? attnIn : norm(residPre, l.ln2w(), l.ln2b()));
            return hook.at(b + "hook_resid_post", residPre.add(attnOut).add(mlpOut));
        }
        Tensor residMid = hook.at(b + "hook_resid_mid", residPre.add(attnOut));
        Tensor mlpOut = mlp(b, l, c.inputNorms() ? norm(residMid, l.ln2w(), l.ln2b()) : residMid);
        return hook.at(b + "hook_resid_post", residMid.add(mlpOut));
    }

    private Tensor attention(int layer, String b, Weights.Layer l, Tensor x, Rotary rotary) {
        long batch = x.size(0);
        long pos = x.size(1);
        int heads = c.nHeads();
        int kvHeads = c.nKvHeads();
        int dHead = c.dHead();
        Tensor q = hook.at(b + "attn.hook_q", project(x, l.wq(), l.bq()).view(batch, pos, heads, dHead));
        Tensor k = hook.at(b + "attn.hook_k", project(x, l.wk(), l.bk()).view(batch, pos, kvHeads, dHead));
        Tensor v = hook.at(b + "attn.hook_v", project(x, l.wv(), l.bv()).view(batch, pos, kvHeads, dHead));
        if (c.qkNorm() != Architecture.QkNorm.NONE) {
            q = hook.at(b + "attn.hook_q_normed", qkNorm(q, l.qNorm()));
            k = hook.at(b + "attn.hook_k_normed", qkNorm(k, l.kNorm()));
        }
        if (rotary != null) {
            q = hook.at(b + "attn.hook_rot_q", rotary.apply(q));
            k = hook.at(b + "attn.hook_rot_k", rotary.apply(k));
        }
        if (kvHeads != heads) { // grouped-query attention: query head h reads key/value head h / (heads / kvHeads)
            k = k.repeatInterleave(heads / kvHeads, 2);
            v = v.repeatInterleave(heads / kvHeads, 2);
        }
        Tensor scores = hook.at(b + "attn.hook_attn_scores", scores(layer, q, k));
        Tensor pattern = hook.at(b + "attn.hook_pattern", l.sinks() == null ? scores.softmax(-1)
                : softmaxWithSink(scores, l.sinks()));
        Tensor z = hook.at(b + "attn.hook_z", Tensor.einsum("bhqk,bkhd->bqhd", pattern, v));
        return project(z.reshape(batch, pos, (long) heads * dHead), l.wo(), l.bo());
    }

    /**
     * Attention scores {@code [batch, head, query, key]} of queries and keys {@code [batch, pos, head, d_head]} (after
     * rotary embeddings, one key head per query head): scaled (by {@code attentionScalar^-1/2} where the family
     * scales, times granite's attention multiplier), soft-capped where the family caps them, -inf where the layer's
     * mask forbids.
     */
    Tensor scores(int layer, Tensor q, Tensor k) {
        Tensor scores = Tensor.einsum("bqhd,bkhd->bhqk", q, k);
        if (c.scaleAttention()) {
            scores = scores.div(Math.sqrt(c.attentionScalar()));
        }
        if (c.attentionMultiplier() != 1.0) {
            scores = scores.mul(c.attentionMultiplier());
        }
        if (c.attentionSoftcap() > 0) {
            scores = softcap(scores, c.attentionSoftcap());
        }
        return scores.maskedFill(mask(layer, q.size(1), q.device()), Double.NEGATIVE_INFINITY);
    }

    /**
     * gpt-oss's attention sinks: each head's learned logit joins every query's softmax as one more key, which has no
     * value; the pattern leaves its column out, so a row sums to less than 1 by the share the sink took.
     */
    private static Tensor softmaxWithSink(Tensor scores, Tensor sinks) {
        long batch = scores.size(0);
        long heads = scores.size(1);
        long queries = scores.size(2);
        Tensor sinkColumn = sinks.view(1, heads, 1, 1).expand(batch, heads, queries, 1);
        return Tensor.cat(List.of(scores, sinkColumn), -1).softmax(-1).narrow(-1, 0, scores.size(3));
    }

    /** True where a query may not look: the future, and keys beyond a local or sliding window. */
    Tensor mask(int layer, long pos, Device device) {
        Tensor ones = Tensor.ones(new long[] {pos, pos}, DType.BOOL, device);
        Tensor future = ones.triu(1);
        int window = c.attentionWindow(layer);
        if (window <= 0 || window >= pos) {
            return future;
        }
        // key k is visible from query q when q - window < k <= q
        return future.where(future, ones.tril(-window));
    }

    private Tensor mlp(String b, Weights.Layer l, Tensor x) {
        if (c.moe() != null) {
            return hook.at(b + "hook_mlp_out", mlpOutput(l, mixtureOfExperts(b, l, x)));
        }
        if (c.gatedMlp()) {
            Tensor gate = hook.at(b + "mlp.hook_pre", project(x, l.wgate(), l.bgate()));
            Tensor up = hook.at(b + "mlp.hook_pre_linear", project(x, l.win(), l.bin()));
            Tensor post = hook.at(b + "mlp.hook_post", activation(gate).mul(up));
            return hook.at(b + "hook_mlp_out", mlpOutput(l, project(post, l.wout(), l.bout())));
        }
        Tensor pre = hook.at(b + "mlp.hook_pre", project(x, l.win(), l.bin()));
        Tensor post = hook.at(b + "mlp.hook_post", activation(pre));
        return hook.at(b + "hook_mlp_out", mlpOutput(l, project(post, l.wout(), l.bout())));
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
     * their weights; a token's output is the sum of its experts' in expert order, the order in which Hugging Face
     * accumulates them.
     */
    private Tensor mixtureOfExperts(String b, Weights.Layer l, Tensor x) {
        MixtureOfExperts moe = c.moe();
        long batch = x.size(0);
        long pos = x.size(1);
        long tokens = batch * pos;
        int k = moe.topK();
        Tensor logits = hook.at(b + "mlp.hook_router_logits", project(x, l.wrouter(), l.brouter()));
        List<Tensor> top;
        Tensor weights;
        if (moe.routing() == MixtureOfExperts.Routing.SOFTMAX_THEN_TOP_K) {
            top = logits.to(DType.FLOAT32).softmax(-1).topk(k, -1, true);
            weights = top.get(0).div(top.get(0).sum(-1, true));
        } else {
            top = logits.topk(k, -1, true);
            weights = top.get(0).softmax(-1);
        }
        Tensor chosen = hook.at(b + "mlp.hook_expert_indices", top.get(1));
        weights = hook.at(b + "mlp.hook_expert_weights", weights).reshape(tokens * k, 1);
        ExpertRoutes routes = ExpertRoutes.of(chosen.toLongArray(), k, moe.experts(), b + "mlp.hook_expert_indices");
        Tensor flat = x.reshape(tokens, c.dModel());
        List<Tensor> outputs = new ArrayList<>(moe.experts());
        for (int e = 0; e < moe.experts(); e++) {
            Tensor rows = indices(routes.tokens()[e], x.device());
            Tensor out = expert(b + "mlp.experts." + e + ".", l, e, flat.indexSelect(0, rows));
            Tensor weight = weights.indexSelect(0, indices(routes.slots()[e], x.device()));
            outputs.add(out.mul(weight).to(x.dtype())); // mixtral's float32 weights promote, as in Hugging Face
        }
        Tensor perToken = Tensor.cat(outputs, 0).indexSelect(0, indices(routes.order(), x.device()))
                .view(tokens, k, c.dModel());
        Tensor sum = perToken.select(1, 0);
        for (int j = 1; j < k; j++) {
            sum = sum.add(perToken.select(1, j));
        }
        return sum.view(batch, pos, c.dModel());
    }

    /** One expert of layer {@code l}, a gated MLP, on the rows {@code x [tokens, d_model]} routed to it. */
    private Tensor expert(String name, Weights.Layer l, int e, Tensor x) {
        Tensor gate = hook.at(name + "hook_pre", project(x, l.wgate().select(0, e), expertSlice(l.bgate(), e)));
        Tensor up = hook.at(name + "hook_pre_linear", project(x, l.win().select(0, e), expertSlice(l.bin(), e)));
        MixtureOfExperts.ClampedSwiglu clamped = c.moe().clampedSwiglu();
        Tensor post = hook.at(name + "hook_post", clamped == null ? activation(gate).mul(up) : clampedSwiglu(clamped, gate, up));
        return project(post, l.wout().select(0, e), expertSlice(l.bout(), e));
    }

    /**
     * gpt-oss: {@code (clamp(up, -limit, limit) + 1) * g * sigmoid(alpha * g)} with {@code g = clamp(gate, max = limit)}.
     */
    private static Tensor clampedSwiglu(MixtureOfExperts.ClampedSwiglu s, Tensor gate, Tensor up) {
        Tensor g = gate.clamp(null, s.limit());
        Tensor glu = g.mul(g.mul(s.alpha()).sigmoid());
        return up.clamp(-s.limit(), s.limit()).add(1.0).mul(glu);
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
            case GELU_TANH -> x.gelu(true);
            case GELU -> x.gelu(false);
            case SILU -> x.silu();
            case RELU -> x.relu();
        };
    }

    /** The family's norm (LayerNorm, RMSNorm, or gemma's (1 + w) RMSNorm) of {@code x} with these parameters. */
    Tensor norm(Tensor x, Tensor weight, Tensor bias) {
        if (c.norm() == Architecture.Norm.LAYER_NORM) {
            return x.layerNorm(weight, bias, c.normEps());
        }
        if (c.norm() == Architecture.Norm.RMS_NORM_PLUS_ONE) {
            // gemma: x · rsqrt(mean(x²) + eps) · (1 + w), all in float32, cast back once
            if (x.dtype() == DType.FLOAT32 || x.dtype() == DType.FLOAT64) {
                return x.rmsNorm(null, c.normEps()).mul(weight.add(1.0));
            }
            try (Tensor x32 = x.to(DType.FLOAT32); Tensor w32 = weight.to(DType.FLOAT32);
                 Tensor scale = w32.add(1.0); Tensor normed = x32.rmsNorm(null, c.normEps());
                 Tensor out = normed.mul(scale)) {
                return out.to(x.dtype());
            }
        }
        return x.rmsNorm(weight, c.normEps());
    }

    private static Tensor project(Tensor x, Tensor weight, Tensor bias) {
        Tensor y = x.matmul(weight);
        return bias == null ? y : y.add(bias);
    }

    /**
     * Rotary position embeddings: the first {@code rotaryDim} features of each head are rotated, the rest pass
     * through. Frequency {@code i} turns the pair {@code (i, i + rotaryDim / 2)} in the {@code rotate_half} convention
     * of Llama and GPT-NeoX, the adjacent pair {@code (2i, 2i + 1)} in GPT-J's {@code rotate_every_two} (interleaved).
     * cos and sin carry the rope's attention factor (YaRN's), so it scales the attention scores twice, once through
     * queries and once through keys.
     */
    static final class Rotary {
        private final int rotaryDim;
        private final boolean interleaved;
        private final Tensor cos; // [1, pos, 1, rotaryDim]
        private final Tensor sin;

        Rotary(Rope rope, boolean interleaved, long pos, DType dtype, Device device) {
            rotaryDim = rope.dim();
            this.interleaved = interleaved;
            int half = rotaryDim / 2;
            float[] invFreq = rope.inverseFrequencies();
            double scale = rope.attentionFactor();
            double[] cosValues = new double[(int) pos * rotaryDim];
            double[] sinValues = new double[(int) pos * rotaryDim];
            for (int p = 0; p < pos; p++) {
                for (int i = 0; i < half; i++) {
                    float angle = (float) p * invFreq[i]; // in float32, as Hugging Face computes it
                    double cv = Math.cos(angle) * scale;
                    double sv = Math.sin(angle) * scale;
                    int first = interleaved ? 2 * i : i; // the two features frequency i turns
                    int second = interleaved ? 2 * i + 1 : i + half;
                    cosValues[p * rotaryDim + first] = cv;
                    cosValues[p * rotaryDim + second] = cv;
                    sinValues[p * rotaryDim + first] = sv;
                    sinValues[p * rotaryDim + second] = sv;
                }
            }
            try (Tensor cosHost = Tensor.of(cosValues, 1, pos, 1, rotaryDim);
                 Tensor sinHost = Tensor.of(sinValues, 1, pos, 1, rotaryDim)) {
                cos = cosHost.to(dtype, device);
                sin = sinHost.to(dtype, device);
            }
        }

        /** Rotates {@code x [batch, pos, heads, d_head]}. */
        Tensor apply(Tensor x) {
            long dHead = x.size(-1);
            Tensor rot = rotaryDim == dHead ? x : x.narrow(-1, 0, rotaryDim);
            Tensor out = rot.mul(cos).add(rotatePairs(rot).mul(sin));
            return rotaryDim == dHead ? out : Tensor.cat(List.of(out, x.narrow(-1, rotaryDim, dHead - rotaryDim)), -1);
        }

        /** Each pair {@code (a, b)} that a frequency turns becomes {@code (-b, a)}. */
        private Tensor rotatePairs(Tensor rot) {
            if (!interleaved) {
                List<Tensor> halves = rot.chunk(2, -1);
                return Tensor.cat(List.of(halves.get(1).neg(), halves.get(0)), -1);
            }
            long[] shape = rot.shape();
            long[] pairs = Arrays.copyOf(shape, shape.length + 1);
            pairs[shape.length - 1] = rotaryDim / 2;
            pairs[shape.length] = 2;
            List<Tensor> ab = rot.reshape(pairs).chunk(2, -1);
            return Tensor.cat(List.of(ab.get(1).neg(), ab.get(0)), -1).reshape(shape);
        }
    }
}

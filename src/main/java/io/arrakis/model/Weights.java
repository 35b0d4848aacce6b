package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.LinearWeight;
import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's parameters in one layout for every family, the layout the forward pass multiplies with (row-vector
 * convention, {@code x @ W}): attention projections flattened over heads, {@code wq [d_model, heads·d_head]},
 * {@code wo [heads·d_head, d_model]}, MLP {@code win/wgate [d_model, d_mlp]}, {@code wout [d_mlp, d_model]}. Optional
 * parameters are null. The TransformerLens per-head views ({@code W_Q [head, d_model, d_head]}, ...) are reshapes of
 * these, made on request by {@link HookedAutoModel}. Each 2-d projection is stored as the transpose of a contiguous
 * {@code [out, in]} tensor, {@code nn.Linear}'s layout, which linear layers read.
 */
final class Weights implements AutoCloseable {

    /**
     * One block's parameters. {@code ln2w}/{@code ln2b} are null where the MLP reads the attention's normalised input
     * (stable-lm's parallel residual); {@code win}/{@code bin} are the up projection of a gated MLP, {@code wgate}/
     * {@code bgate} its gate (null for two-layer MLPs). {@code ln1w}/{@code ln2w} are null where attention and MLP read
     * the residual stream as it is (olmo2). {@code qNorm}/{@code kNorm} are the weights of the query and key norms
     * ({@code [d_head]} per head, or {@code [heads·d_head]} over the whole projection), {@code attnOutNorm}/
     * {@code mlpOutNorm} those of the norms of the attention and MLP outputs; null where the family has none. In a
     * mixture of experts the MLP weights hold every expert's with a leading expert dimension
     * ({@code win [experts, d_model, d_mlp]}, {@code bin [experts, d_mlp]}, ...) and {@code wrouter [d_model, experts]}/
     * {@code brouter} is the router; {@code sinks [heads]} are attention sinks' logits; {@code attnGate
     * [d_model, heads·d_head]} gates the heads' outputs ({@link io.arrakis.model.family.Slot#W_ATTN_GATE}); a shared
     * expert beside the routed ones has {@code sharedGate}, {@code sharedIn} {@code [d_model, d_shared]},
     * {@code sharedOut} {@code [d_shared, d_model]} and {@code sharedExpertGate [d_model, 1]}; all null where the
     * family has none. {@code layerScalar [1]} multiplies the residual stream the block outputs (null where the family
     * has none). A linear-attention layer has {@code linear} in place of the attention's weights, a short-convolution
     * layer {@code conv}, a Mamba-2 layer {@code mamba}; Gemma 4's experts beside the MLP have {@code normedExperts}
     * besides the mixture's weights, its MLP in the shared expert's.
     */
    record Layer(Tensor ln1w, Tensor ln1b, Tensor ln2w, Tensor ln2b,
                 Tensor wq, Tensor bq, Tensor wk, Tensor bk, Tensor wv, Tensor bv, Tensor wo, Tensor bo,
                 Tensor win, Tensor bin, Tensor wgate, Tensor bgate, Tensor wout, Tensor bout,
                 Tensor qNorm, Tensor kNorm, Tensor attnOutNorm, Tensor mlpOutNorm, Tensor wrouter, Tensor brouter,
                 Tensor sinks, Tensor attnGate, Tensor sharedGate, Tensor sharedIn, Tensor sharedOut,
                 Tensor sharedExpertGate, Tensor expertScoreBias, Tensor xieluAlphaP, Tensor xieluAlphaN,
                 Tensor xieluBeta, Tensor xieluEps, Tensor layerScalar, Latent latent, Linear linear, Conv conv,
                 Mamba mamba, PerLayerInput perLayerInput, NormedExperts normedExperts) {
        List<Tensor> all() {
            List<Tensor> list = new ArrayList<>();
            for (Tensor t : new Tensor[] {ln1w, ln1b, ln2w, ln2b, wq, bq, wk, bk, wv, bv, wo, bo, win, bin, wgate, bgate, wout, bout,
                    qNorm, kNorm, attnOutNorm, mlpOutNorm, wrouter, brouter, sinks, attnGate, sharedGate, sharedIn,
                    sharedOut, sharedExpertGate, expertScoreBias, xieluAlphaP, xieluAlphaN, xieluBeta, xieluEps,
                    layerScalar}) {
                if (t != null) {
                    list.add(t);
                }
            }
            if (latent != null) {
                list.addAll(latent.all());
            }
            if (linear != null) {
                list.addAll(linear.all());
            }
            if (conv != null) {
                list.addAll(conv.all());
            }
            if (mamba != null) {
                list.addAll(mamba.all());
            }
            if (perLayerInput != null) {
                list.addAll(perLayerInput.all());
            }
            if (normedExperts != null) {
                list.addAll(normedExperts.all());
            }
            return list;
        }
    }

    /**
     * A block's use of its per-layer input ({@link io.arrakis.model.family.Architecture.PerLayerInputs}),
     * {@code [in, out]} like the others: the gate {@code gate [d_model, width]}, the projection back
     * {@code out [width, d_model]} and its norm's weight {@code norm [d_model]}.
     */
    record PerLayerInput(Tensor gate, Tensor out, Tensor norm) {
        List<Tensor> all() {
            return List.of(gate, out, norm);
        }

        private PerLayerInput inLinearLayout() {
            return new PerLayerInput(linearLayout(gate), linearLayout(out), norm);
        }
    }

    /**
     * The parts of Gemma 4's experts beside the block's MLP
     * ({@link io.arrakis.model.family.MixtureOfExperts.Shared#NORMED}): the router's scale {@code routerScale
     * [d_model]} and the experts' factors on their weights {@code expertScale [experts]}, and the weights
     * {@code [d_model]} of the experts' input norm and of the norms of the shared expert's and the experts' outputs.
     */
    record NormedExperts(Tensor routerScale, Tensor expertScale, Tensor inNorm, Tensor sharedOutNorm, Tensor outNorm) {
        List<Tensor> all() {
            return List.of(routerScale, expertScale, inNorm, sharedOutNorm, outNorm);
        }
    }

    /**
     * The per-layer embeddings' shared weights: the embedding {@code embed [vocab, layers · width]}, the projection of
     * the token embeddings {@code projection [d_model, layers · width]} ({@code [in, out]}) and the weight of the norm
     * of each layer's slice of it, {@code norm [width]}.
     */
    record PerLayerEmbedding(Tensor embed, Tensor projection, Tensor norm) {
        List<Tensor> all() {
            return List.of(embed, projection, norm);
        }
    }

    /**
     * A short-convolution layer's token mixer ({@link io.arrakis.model.family.ShortConvolution}), {@code [in, out]}
     * like the others: the input projection {@code win [d_model, 3·d_model]} (the gates B, C and x side by side), the
     * depthwise kernel {@code kernel [d_model, 1, length]}, the output projection {@code wout [d_model, d_model]}, and
     * their biases, null without {@code conv_bias}.
     */
    record Conv(Tensor win, Tensor bin, Tensor kernel, Tensor kernelBias, Tensor wout, Tensor bout) {
        List<Tensor> all() {
            return java.util.stream.Stream.of(win, bin, kernel, kernelBias, wout, bout)
                    .filter(java.util.Objects::nonNull).toList();
        }

        private Conv inLinearLayout() {
            return new Conv(linearLayout(win), bin, kernel, kernelBias, linearLayout(wout), bout);
        }
    }

    /**
     * A Mamba-2 layer's token mixer ({@link io.arrakis.model.family.Mamba2}), {@code [in, out]} like the others: the
     * input projection {@code win [d_model, inner + channels + heads]} (gate, x, B, C, time steps) and its bias
     * {@code bin}, the convolution {@code conv [channels, 1, kernel]} and its bias {@code convBias}, {@code dtBias},
     * {@code aLog} and {@code skip} (the {@code D}) {@code [heads]}, the gated norm's weight {@code norm [inner]}, the
     * output projection {@code wout [inner, d_model]} and its bias {@code bout}; biases null where the model has none.
     */
    record Mamba(Tensor win, Tensor bin, Tensor conv, Tensor convBias, Tensor dtBias, Tensor aLog, Tensor skip,
                 Tensor norm, Tensor wout, Tensor bout) {
        List<Tensor> all() {
            return java.util.stream.Stream.of(win, bin, conv, convBias, dtBias, aLog, skip, norm, wout, bout)
                    .filter(java.util.Objects::nonNull).toList();
        }

        private Mamba inLinearLayout() {
            return new Mamba(linearLayout(win), bin, conv, convBias, dtBias, aLog, skip, norm, linearLayout(wout),
                    bout);
        }
    }

    /**
     * A linear-attention layer's token mixer ({@link io.arrakis.model.family.LinearAttention}), {@code [in, out]}
     * like the others: the projections of queries {@code wq}, keys {@code wk} and values {@code wv}, of the output gate
     * {@code wz}, of {@code beta} {@code wb} and of the decay rate {@code wa}; the convolution over queries, keys and
     * values {@code conv [channels, 1, kernel]};
     * {@code dtBias} and {@code aLog} {@code [value_heads]}; the gated norm's weight {@code norm [value_dim]}; the
     * output projection {@code wout [value_heads·value_dim, d_model]}.
     */
    record Linear(Tensor wq, Tensor wk, Tensor wv, Tensor wz, Tensor wb, Tensor wa, Tensor conv, Tensor dtBias,
                  Tensor aLog, Tensor norm, Tensor wout) {
        List<Tensor> all() {
            return List.of(wq, wk, wv, wz, wb, wa, conv, dtBias, aLog, norm, wout);
        }

        private Linear withInputs(Tensor[] inputs) {
            return new Linear(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], inputs[5], conv, dtBias, aLog,
                    norm, wout);
        }

        private Tensor[] inputs() {
            return new Tensor[] {wq, wk, wv, wz, wb, wa};
        }
    }

    /**
     * A block's latent attention ({@link io.arrakis.model.family.LatentAttention}), {@code [in, out]} like the
     * others: the queries' down-projection {@code wqa}, its bias {@code bqa}, their latent's norm {@code qaNorm} and
     * up-projection {@code wqb} (all four null where the layer's {@code wq} projects the queries), the keys' and
     * values' down-projection {@code wkva} with the shared rotated key and its bias {@code bkva}, their latent's norm
     * {@code kvaNorm} and up-projection {@code wkvb}; biases null where the family has none.
     */
    record Latent(Tensor wqa, Tensor bqa, Tensor qaNorm, Tensor wqb, Tensor wkva, Tensor bkva, Tensor kvaNorm,
                  Tensor wkvb) {
        List<Tensor> all() {
            return java.util.stream.Stream.of(wqa, bqa, qaNorm, wqb, wkva, bkva, kvaNorm, wkvb)
                    .filter(java.util.Objects::nonNull).toList();
        }

        private Latent inLinearLayout() {
            return new Latent(linearLayout(wqa), bqa, qaNorm, linearLayout(wqb), linearLayout(wkva), bkva, kvaNorm,
                    linearLayout(wkvb));
        }
    }

    /**
     * A layer's xIELU factors as numbers, each exact in the model's dtype, the parameters' ({@code alpha_p} and
     * {@code alpha_n} are the softplus of the learned ones, {@code alpha_n} plus {@code beta}, each rounded there as
     * transformers' XIELUActivation computes them in the parameters' dtype). Read once, when the weights load.
     */
    record XieluFactors(double alphaP, double alphaN, double beta, double eps) {
        static XieluFactors of(Layer l) {
            DType dtype = l.xieluAlphaP.dtype();
            double beta = l.xieluBeta.to(DType.FLOAT64).item();
            double alphaP = dtype.round(softplus(l.xieluAlphaP.to(DType.FLOAT64).item()));
            double alphaN = dtype.round(beta + dtype.round(softplus(l.xieluAlphaN.to(DType.FLOAT64).item())));
            return new XieluFactors(alphaP, alphaN, beta, l.xieluEps.to(DType.FLOAT64).item());
        }

        /** {@code log(1 + e^x)}, as torch's softplus computes it (x itself above 20). */
        private static double softplus(double x) {
            return x > 20 ? x : Math.log1p(Math.exp(x));
        }
    }

    /**
     * One block's projections fused for the forward pass, {@code [in, out]} like the others: {@code qkv} is
     * {@code [d_model, (heads + 2·kv_heads)·d_head]} (queries, keys, values side by side) with {@code qkvBias} (null
     * where the family has no attention biases), {@code gateUp} {@code [d_model, 2·d_mlp]} (gate, then up) with
     * {@code gateUpBias}, null where the MLP is not gated or is a mixture of experts; {@code linearIn}
     * {@code [d_model, channels + value_heads·value_dim + 2·value_heads]} is a linear-attention layer's input
     * projections side by side (queries, keys, values, gate, beta, decay rate), null elsewhere. The layer's
     * {@code wq}, {@code wk}, {@code wv}, {@code wgate}, {@code win}, their biases and its linear attention's input
     * projections are views of these, so fusing costs no memory.
     */
    record Fused(Tensor qkv, Tensor qkvBias, Tensor gateUp, Tensor gateUpBias, Tensor linearIn) {
    }

    final Tensor embed;      // [vocab, d_model]
    final Tensor posEmbed;   // [n_ctx, d_model], or null without learned positions
    final List<Layer> layers;
    final List<Fused> fused;
    final Tensor lnfw;
    final Tensor lnfb;       // null for RMSNorm
    final Tensor unembed;    // [d_model, vocab]
    final Tensor unembedBias; // [vocab] or null
    final PerLayerEmbedding perLayerEmbedding; // null where blocks have no input of their own
    /** Per layer, its xIELU factors (Apertus), or null where its MLP has no xIELU. */
    final List<XieluFactors> xielu;
    /**
     * Per layer, its router's weight in float32 where the model's routing makes its logits in float32
     * ({@link io.arrakis.model.family.MixtureOfExperts#float32Logits}, from a float32 copy of the weight, as
     * transformers makes them) and its dtype is another; null elsewhere, and where the model holds the router in
     * float32 ({@link io.arrakis.model.family.MixtureOfExperts#float32Router}). Copied once, here, not in every pass.
     */
    final List<Tensor> float32Routers;
    /** Each 2-d {@code [in, out]} weight's products, through its {@code [out, in]} view, which linear layers take. */
    private final Map<Tensor, LinearWeight> linear = new IdentityHashMap<>();

    /** @param float32Routing whether routers make their logits in float32 ({@link #float32Routers}) */
    Weights(Tensor embed, Tensor posEmbed, List<Layer> layers, Tensor lnfw, Tensor lnfb, Tensor unembed,
            Tensor unembedBias, PerLayerEmbedding perLayerEmbedding, boolean float32Routing) {
        this.embed = embed;
        this.perLayerEmbedding = perLayerEmbedding == null ? null : new PerLayerEmbedding(perLayerEmbedding.embed(),
                linearLayout(perLayerEmbedding.projection()), perLayerEmbedding.norm());
        this.posEmbed = posEmbed;
        List<Layer> fusedLayers = new ArrayList<>();
        List<Fused> fusedParts = new ArrayList<>();
        for (Layer l : layers) {
            Layer rows = inLinearLayout(l);
            Fused f = fuse(rows);
            fusedParts.add(f);
            fusedLayers.add(viewsOf(rows, f));
        }
        this.layers = List.copyOf(fusedLayers);
        this.fused = List.copyOf(fusedParts);
        this.lnfw = lnfw;
        this.lnfb = lnfb;
        this.unembed = linearLayout(unembed);
        this.unembedBias = unembedBias;
        List<XieluFactors> factors = new ArrayList<>();
        for (Layer l : this.layers) {
            factors.add(l.xieluAlphaP == null ? null : XieluFactors.of(l));
        }
        this.xielu = java.util.Collections.unmodifiableList(factors);
        List<Tensor> routers = new ArrayList<>();
        for (Layer l : this.layers) {
            boolean copied = float32Routing && l.wrouter != null && l.wrouter.dtype() != DType.FLOAT32;
            routers.add(copied ? l.wrouter.to(DType.FLOAT32) : null);
        }
        this.float32Routers = java.util.Collections.unmodifiableList(routers);
        for (int i = 0; i < this.layers.size(); i++) {
            Layer l = this.layers.get(i);
            Fused f = this.fused.get(i);
            for (Tensor w : new Tensor[] {f.qkv, f.gateUp, l.wq, l.wk, l.wv, l.wo, l.win, l.wgate, l.wout, l.wrouter,
                    l.attnGate, l.sharedGate, l.sharedIn, l.sharedOut, l.sharedExpertGate}) {
                addLinearView(w);
            }
            if (l.latent != null) {
                l.latent.all().forEach(this::addLinearView);
            }
            if (l.linear != null) {
                addLinearView(f.linearIn);
                addLinearView(l.linear.wout);
            }
            if (l.conv != null) {
                addLinearView(l.conv.win);
                addLinearView(l.conv.wout);
            }
            if (l.mamba != null) {
                addLinearView(l.mamba.win);
                addLinearView(l.mamba.wout);
            }
            if (l.perLayerInput != null) {
                addLinearView(l.perLayerInput.gate());
                addLinearView(l.perLayerInput.out());
            }
        }
        addLinearView(this.unembed);
        if (this.perLayerEmbedding != null) {
            addLinearView(this.perLayerEmbedding.projection());
        }
    }

    private void addLinearView(Tensor w) {
        if (w != null && w.dim() == 2 && !linear.containsKey(w)) {
            linear.put(w, new LinearWeight(w.transpose(0, 1)));
        }
    }

    /** {@code x @ weight + bias} for an {@code [in, out]} weight, as one libtorch op where the weight is a model's. */
    Tensor project(Tensor x, Tensor weight, Tensor bias) {
        LinearWeight products = linear.get(weight);
        if (products != null) {
            return products.apply(x, bias);
        }
        Tensor y = x.matmul(weight); // an expert's slice of a mixture's stacked weights
        return bias == null ? y : y.add(bias);
    }

    /** {@code gelu(x @ weight + bias)} for an {@code [in, out]} weight, as one libtorch op where it can be. */
    Tensor projectGelu(Tensor x, Tensor weight, Tensor bias, boolean tanhApproximation) {
        LinearWeight products = linear.get(weight);
        if (products != null) {
            return products.applyGelu(x, bias, tanhApproximation);
        }
        return project(x, weight, bias).gelu(tanhApproximation);
    }

    /**
     * An {@code [in, out]} weight as the transpose of a contiguous {@code [out, in]} one: the layout linear layers
     * read, and the only one oneDNN's takes. A weight laid out otherwise is copied once, and closed.
     */
    private static Tensor linearLayout(Tensor w) {
        if (w == null || w.dim() != 2) {
            return w;
        }
        try (Tensor rows = w.transpose(0, 1)) {
            if (rows.isContiguous()) {
                return w;
            }
            try (Tensor copy = rows.contiguous()) {
                Tensor view = copy.transpose(0, 1);
                w.close();
                return view;
            }
        }
    }

    /** The layer with its unfused projections in the linear layout; Q, K and V are laid out when they are fused. */
    private static Layer inLinearLayout(Layer l) {
        Tensor wq = l.latent == null ? l.wq : linearLayout(l.wq); // latent attention's queries are not fused
        return new Layer(l.ln1w, l.ln1b, l.ln2w, l.ln2b, wq, l.bq, l.wk, l.bk, l.wv, l.bv, linearLayout(l.wo), l.bo,
                linearLayout(l.win), l.bin, linearLayout(l.wgate), l.bgate, linearLayout(l.wout), l.bout, l.qNorm,
                l.kNorm, l.attnOutNorm, l.mlpOutNorm, linearLayout(l.wrouter), l.brouter, l.sinks,
                linearLayout(l.attnGate), linearLayout(l.sharedGate), linearLayout(l.sharedIn),
                linearLayout(l.sharedOut), linearLayout(l.sharedExpertGate), l.expertScoreBias, l.xieluAlphaP,
                l.xieluAlphaN, l.xieluBeta, l.xieluEps, l.layerScalar,
                l.latent == null ? null : l.latent.inLinearLayout(),
                l.linear == null ? null : new Linear(l.linear.wq, l.linear.wk, l.linear.wv, l.linear.wz, l.linear.wb,
                        l.linear.wa, l.linear.conv, l.linear.dtBias, l.linear.aLog, l.linear.norm,
                        linearLayout(l.linear.wout)), l.conv == null ? null : l.conv.inLinearLayout(),
                l.mamba == null ? null : l.mamba.inLinearLayout(),
                l.perLayerInput == null ? null : l.perLayerInput.inLinearLayout(), l.normedExperts);
    }

    /** {@code [in, out]} weights side by side, {@code [in, Σ out]}, in the linear layout. */
    private static Tensor sideBySide(Tensor... weights) {
        List<Tensor> rows = new ArrayList<>();
        for (Tensor w : weights) {
            rows.add(w.transpose(0, 1));
        }
        try (Tensor stacked = Tensor.cat(rows, 0)) {
            return stacked.transpose(0, 1);
        } finally {
            rows.forEach(Tensor::close);
        }
    }

    /** The block's projections concatenated, once, at load. */
    private static Fused fuse(Layer l) {
        // gemma4's layers that share an earlier layer's keys and values project queries alone
        boolean perHead = l.wq != null && l.wk != null && l.latent == null;
        Tensor qkv = perHead ? sideBySide(l.wq, l.wk, l.wv) : null;
        Tensor qkvBias = !perHead || l.bq == null && l.bk == null && l.bv == null ? null
                : Tensor.cat(List.of(biasOrZeros(l.bq, l.wq), biasOrZeros(l.bk, l.wk), biasOrZeros(l.bv, l.wv)), 0);
        Linear m = l.linear;
        Tensor linearIn = m == null ? null : sideBySide(m.inputs());
        if (l.wgate == null || l.wgate.dim() != 2) {
            return new Fused(qkv, qkvBias, null, null, linearIn);
        }
        Tensor gateUp = sideBySide(l.wgate, l.win);
        Tensor gateUpBias = l.bgate == null && l.bin == null ? null
                : Tensor.cat(List.of(biasOrZeros(l.bgate, l.wgate), biasOrZeros(l.bin, l.win)), 0);
        return new Fused(qkv, qkvBias, gateUp, gateUpBias, linearIn);
    }

    private static Tensor biasOrZeros(Tensor bias, Tensor weight) {
        return bias != null ? bias : Tensor.zeros(new long[] {weight.size(1)}, weight.dtype(), weight.device());
    }

    /** The layer with its fused weights replaced by views of {@code f}; the separate copies are freed. */
    private static Layer viewsOf(Layer l, Fused f) {
        Tensor wq = l.wq;
        Tensor wk = l.wk;
        Tensor wv = l.wv;
        Tensor bq = l.bq;
        Tensor bk = l.bk;
        Tensor bv = l.bv;
        if (f.qkv != null) {
            long q = l.wq.size(1);
            long k = l.wk.size(1);
            long v = l.wv.size(1);
            wq = f.qkv.narrow(1, 0, q);
            wk = f.qkv.narrow(1, q, k);
            wv = f.qkv.narrow(1, q + k, v);
            bq = l.bq == null ? null : f.qkvBias.narrow(0, 0, q);
            bk = l.bk == null ? null : f.qkvBias.narrow(0, q, k);
            bv = l.bv == null ? null : f.qkvBias.narrow(0, q + k, v);
            closeAll(l.wq, l.wk, l.wv, l.bq, l.bk, l.bv);
        }
        Tensor wgate = l.wgate;
        Tensor win = l.win;
        Tensor bgate = l.bgate;
        Tensor bin = l.bin;
        if (f.gateUp != null) {
            long mlp = l.wgate.size(1);
            wgate = f.gateUp.narrow(1, 0, mlp);
            win = f.gateUp.narrow(1, mlp, mlp);
            bgate = l.bgate == null ? null : f.gateUpBias.narrow(0, 0, mlp);
            bin = l.bin == null ? null : f.gateUpBias.narrow(0, mlp, mlp);
            closeAll(l.wgate, l.win, l.bgate, l.bin);
        }
        Linear linear = l.linear;
        if (f.linearIn != null) {
            Tensor[] inputs = linear.inputs();
            Tensor[] views = new Tensor[inputs.length];
            long from = 0;
            for (int i = 0; i < inputs.length; i++) {
                views[i] = f.linearIn.narrow(1, from, inputs[i].size(1));
                from += inputs[i].size(1);
            }
            closeAll(inputs);
            linear = linear.withInputs(views);
        }
        return new Layer(l.ln1w, l.ln1b, l.ln2w, l.ln2b, wq, bq, wk, bk, wv, bv, l.wo, l.bo, win, bin, wgate, bgate,
                l.wout, l.bout, l.qNorm, l.kNorm, l.attnOutNorm, l.mlpOutNorm, l.wrouter, l.brouter, l.sinks,
                l.attnGate, l.sharedGate, l.sharedIn, l.sharedOut, l.sharedExpertGate, l.expertScoreBias, l.xieluAlphaP,
                l.xieluAlphaN, l.xieluBeta, l.xieluEps, l.layerScalar, l.latent, linear, l.conv, l.mamba,
                l.perLayerInput, l.normedExperts);
    }

    private static void closeAll(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null) {
                t.close();
            }
        }
    }

    /** Every tensor this holds, views included. */
    List<Tensor> all() {
        List<Tensor> list = new ArrayList<>();
        for (Layer l : layers) {
            list.addAll(l.all());
        }
        for (Fused f : fused) {
            for (Tensor t : new Tensor[] {f.qkv, f.qkvBias, f.gateUp, f.gateUpBias, f.linearIn}) {
                if (t != null) {
                    list.add(t);
                }
            }
        }
        linear.values().forEach(products -> list.add(products.weight()));
        float32Routers.stream().filter(java.util.Objects::nonNull).forEach(list::add);
        for (Tensor t : new Tensor[] {embed, posEmbed, lnfw, lnfb, unembed, unembedBias}) {
            if (t != null) {
                list.add(t);
            }
        }
        if (perLayerEmbedding != null) {
            list.addAll(perLayerEmbedding.all());
        }
        return list;
    }

    @Override
    public void close() {
        linear.values().forEach(LinearWeight::close);
        all().forEach(Tensor::close);
    }
}

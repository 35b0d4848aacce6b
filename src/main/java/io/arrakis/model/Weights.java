package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * A model's parameters in one layout for every family, the layout the forward pass multiplies with (row-vector
 * convention, {@code x @ W}): attention projections flattened over heads, {@code wq [d_model, heads·d_head]},
 * {@code wo [heads·d_head, d_model]}, MLP {@code win/wgate [d_model, d_mlp]}, {@code wout [d_mlp, d_model]}. Optional
 * parameters are null. The TransformerLens per-head views ({@code W_Q [head, d_model, d_head]}, ...) are reshapes of
 * these, made on request by {@link HookedAutoModel}.
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
     * {@code brouter} is the router; {@code sinks [heads]} are attention sinks' logits; all three null where the family
     * has none.
     */
    record Layer(Tensor ln1w, Tensor ln1b, Tensor ln2w, Tensor ln2b,
                 Tensor wq, Tensor bq, Tensor wk, Tensor bk, Tensor wv, Tensor bv, Tensor wo, Tensor bo,
                 Tensor win, Tensor bin, Tensor wgate, Tensor bgate, Tensor wout, Tensor bout,
                 Tensor qNorm, Tensor kNorm, Tensor attnOutNorm, Tensor mlpOutNorm, Tensor wrouter, Tensor brouter,
                 Tensor sinks) {
        List<Tensor> all() {
            List<Tensor> list = new ArrayList<>();
            for (Tensor t : new Tensor[] {ln1w, ln1b, ln2w, ln2b, wq, bq, wk, bk, wv, bv, wo, bo, win, bin, wgate, bgate, wout, bout,
                    qNorm, kNorm, attnOutNorm, mlpOutNorm, wrouter, brouter, sinks}) {
                if (t != null) {
                    list.add(t);
                }
            }
            return list;
        }
    }

    final Tensor embed;      // [vocab, d_model]
    final Tensor posEmbed;   // [n_ctx, d_model], or null without learned positions
    final List<Layer> layers;
    final Tensor lnfw;
    final Tensor lnfb;       // null for RMSNorm
    final Tensor unembed;    // [d_model, vocab]
    final Tensor unembedBias; // [vocab] or null

    Weights(Tensor embed, Tensor posEmbed, List<Layer> layers, Tensor lnfw, Tensor lnfb, Tensor unembed, Tensor unembedBias) {
        this.embed = embed;
        this.posEmbed = posEmbed;
        this.layers = List.copyOf(layers);
        this.lnfw = lnfw;
        this.lnfb = lnfb;
        this.unembed = unembed;
        this.unembedBias = unembedBias;
    }

    @Override
    public void close() {
        for (Layer l : layers) {
            l.all().forEach(Tensor::close);
        }
        for (Tensor t : new Tensor[] {embed, posEmbed, lnfw, lnfb, unembed, unembedBias}) {
            if (t != null) {
                t.close();
            }
        }
    }
}

package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.layerNorm;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An OPT reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights and
 * biases drawn around 1 and its other biases around 0, so that every one counts) and the activations of
 * {@code OPTForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double precision
 * in plain Java, apart from the library's forward pass ({@link ReferenceMath}): token embeddings plus the learned
 * positions, position {@code p} reading row {@code p + 2} of {@code embed_positions} (its {@code offset}); pre-norm
 * blocks with LayerNorm {@code (x - mean) / sqrt(var + 1e-5) * w + b}; biases on the four attention projections, the
 * queries multiplied by {@code head_dim^-1/2}; a causal softmax; an MLP {@code fc2(relu(fc1(x)))} with its biases; the
 * final LayerNorm and a head tied to the token embeddings.
 */
final class OptReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int HD = D / HEADS;
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5;
    private static final int OFFSET = 2;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private OptReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("opt").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("ffn_dim", MLP), Map.entry("num_hidden_layers", LAYERS),
                Map.entry("num_attention_heads", HEADS), Map.entry("init_std", 0.2),
                Map.entry("max_position_embeddings", 16), Map.entry("word_embed_proj_dim", D)));
        ReferenceMath.write(config, 47, BATCH, POS, dir, OptReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        String m = "model.decoder.";
        double[] x = embed(w.get(m + "embed_tokens.weight"), ids, D);
        long[] rows = new long[n];
        for (int t = 0; t < n; t++) {
            rows[t] = t % POS + OFFSET;
        }
        double[] positions = embed(w.get(m + "embed_positions.weight"), rows, D);
        out.put("hook_pos_embed", tensor(positions, BATCH, POS, D));
        add(x, positions);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = m + "layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = layerNorm(x, n, D, w.get(p + "self_attn_layer_norm.weight"),
                    w.get(p + "self_attn_layer_norm.bias"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, D, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, D, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, D, D, true);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, HEADS, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.out_proj", z, n, D, D, true));
            double[] h2 = layerNorm(x, n, D, w.get(p + "final_layer_norm.weight"), w.get(p + "final_layer_norm.bias"),
                    EPS);
            double[] act = projection(w, p + "fc1", h2, n, MLP, D, true);
            for (int i = 0; i < act.length; i++) {
                act[i] = Math.max(0, act[i]);
            }
            out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, MLP));
            add(x, projection(w, p + "fc2", act, n, D, MLP, true));
        }
        double[] last = layerNorm(x, n, D, w.get(m + "final_layer_norm.weight"), w.get(m + "final_layer_norm.bias"),
                EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get(m + "embed_tokens.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}

package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateInterleaved;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A GLM-4 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights drawn
 * around 1 and its biases around 0, so that every one counts) and the activations of {@code Glm4ForCausalLM}'s forward
 * pass as transformers' modeling file defines it, computed here in double precision in plain Java, apart from the
 * library's forward pass ({@link ReferenceMath}). Each decoder layer adds
 * {@code post_self_attn_layernorm(attention(input_layernorm(x)))}, then
 * {@code post_mlp_layernorm(down(silu(gate h) * up h))} with {@code h = post_attention_layernorm(x)} and gate and up
 * the two halves of {@code gate_up_proj}, to its input; RMSNorm is {@code x / sqrt(mean(x^2) + eps) * w}; the
 * attention adds biases to its queries, keys and values, turns the first {@value #ROTARY} features of each query and
 * key head by the rotary embedding in the interleaved convention (frequency i, over {@value #ROTARY} dimensions, turns
 * the pair {@code (2i, 2i + 1)}), and takes a causal softmax over grouped key/value heads. GLM's
 * ({@code GlmForCausalLM}) is the same without {@code post_self_attn_layernorm} and {@code post_mlp_layernorm}.
 */
final class Glm4Reference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final int ROTARY = HD / 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private Glm4Reference() {
    }

    /** Writes the config, checkpoint and reference of {@code family} (glm4 or glm) into {@code dir}. */
    static void write(Path dir, String family) throws IOException {
        boolean outputNorms = family.equals("glm4");
        HookedAutoConfig config = HookedAutoConfig.of(family).with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("rms_norm_eps", EPS), Map.entry("pad_token_id", 0)));
        ReferenceMath.write(config, 17, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, out, outputNorms));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out, boolean outputNorms) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotateInterleaved(q, BATCH, POS, HEADS, HD, ROTARY, THETA);
            rotateInterleaved(k, BATCH, POS, KV, HD, ROTARY, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            double[] attention = linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD);
            add(x, outputNorms ? rmsNorm(attention, n, D, w.get(p + "post_self_attn_layernorm.weight"), EPS)
                    : attention);
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] gateUp = linear(h2, n, w.get(p + "mlp.gate_up_proj.weight"), 2 * MLP, D);
            double[] act = new double[n * MLP];
            for (int t = 0; t < n; t++) {
                for (int i = 0; i < MLP; i++) {
                    double gate = gateUp[t * 2 * MLP + i];
                    double up = gateUp[t * 2 * MLP + MLP + i];
                    act[t * MLP + i] = gate / (1 + Math.exp(-gate)) * up;
                }
            }
            double[] mlp = linear(act, n, w.get(p + "mlp.down_proj.weight"), D, MLP);
            add(x, outputNorms ? rmsNorm(mlp, n, D, w.get(p + "post_mlp_layernorm.weight"), EPS) : mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}

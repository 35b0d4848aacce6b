package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An EXAONE 4 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1, so that every norm's weight counts) and the activations of {@code Exaone4ForCausalLM}'s forward pass
 * as transformers' modeling file defines it, computed here in double precision in plain Java, apart from the library's
 * forward pass ({@link ReferenceMath}). Each decoder layer adds {@code post_attention_layernorm(attention(x))}, then
 * {@code post_feedforward_layernorm(down(silu(gate x) * up x))}, to its input; the attention normalises each query and
 * key head by RMSNorm ({@code x / sqrt(mean(x^2) + eps) * w}), turns them by {@code rotate_half} rotary embeddings on
 * the sliding layers only (the full layers use no position embedding, "global NoPE"), and takes a causal softmax over
 * grouped key/value heads, the sliding layers over their last {@value #WINDOW} positions. With {@value #LAYERS} layers
 * and {@code sliding_window_pattern} 4, layers 0 to 2 slide and layer 3 is full.
 */
final class Exaone4Reference {
    static final int WINDOW = 3;
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = D / HEADS;
    private static final int MLP = 24;
    private static final int LAYERS = 4;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private Exaone4Reference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("exaone4").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("sliding_window", WINDOW),
                Map.entry("sliding_window_pattern", 4), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA)));
        ReferenceMath.write(config, 13, BATCH, POS, dir, Exaone4Reference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            boolean sliding = layer != 3;
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] q = rmsNorm(linear(x, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D), n * HEADS, HD,
                    w.get(p + "self_attn.q_norm.weight"), EPS);
            double[] k = rmsNorm(linear(x, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D), n * KV, HD,
                    w.get(p + "self_attn.k_norm.weight"), EPS);
            double[] v = linear(x, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            if (sliding) {
                rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
                rotateHalf(k, BATCH, POS, KV, HD, THETA);
            }
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, sliding ? WINDOW : Integer.MAX_VALUE, layer,
                    out);
            double[] attention = linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD);
            add(x, rmsNorm(attention, n, D, w.get(p + "post_attention_layernorm.weight"), EPS));
            double[] act = silu(linear(x, n, w.get(p + "mlp.gate_proj.weight"), MLP, D),
                    linear(x, n, w.get(p + "mlp.up_proj.weight"), MLP, D));
            double[] mlp = linear(act, n, w.get(p + "mlp.down_proj.weight"), D, MLP);
            add(x, rmsNorm(mlp, n, D, w.get(p + "post_feedforward_layernorm.weight"), EPS));
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}

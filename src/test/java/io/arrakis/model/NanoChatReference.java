package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.reluSquared;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A nanochat reference model for which no Hugging Face run was at hand: a tiny random checkpoint and the activations
 * of {@code NanoChatForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): the embeddings normalised by
 * {@code NanoChatRMSNorm} ({@code x / sqrt(mean(x^2) + eps)}, no weight) before the first block; Llama's pre-norm
 * blocks with that norm; queries and keys rotated as its {@code apply_rotary_pos_emb} with its own
 * {@code rotate_half}, {@code x * cos + cat(x2, -x1) * sin}, then each head normalised by the same norm; a causal
 * softmax over grouped key/value heads scaled by {@code head_dim^-1/2}; the MLP {@code fc2(relu(fc1(x))^2)}; the final
 * norm, an untied head and logits soft-capped at {@value #SOFTCAP} (which bends the reference's logits).
 */
final class NanoChatReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 40;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5; // not the default, so that rms_norm_eps counts
    private static final double THETA = 1000.0; // not the default, so that rope_theta counts
    private static final double SOFTCAP = 2.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private NanoChatReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("nanochat").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("rms_norm_eps", EPS), Map.entry("final_logit_softcapping", SOFTCAP)));
        ReferenceMath.write(config, 37, BATCH, POS, dir, NanoChatReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = normalised(embed(w, ids, D), n, D);
        out.put("ln_embed.hook_normalized", tensor(x, BATCH, POS, D));
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = normalised(x, n, D);
            double[] q = linear(h, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D);
            double[] k = linear(h, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D);
            double[] v = linear(h, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            q = rotated(q, HEADS);
            k = rotated(k, KV);
            out.put(b + "attn.hook_rot_q", tensor(q, BATCH, POS, HEADS, HD));
            q = normalised(q, n * HEADS, HD);
            k = normalised(k, n * KV, HD);
            out.put(b + "attn.hook_q_normed", tensor(q, BATCH, POS, HEADS, HD));
            out.put(b + "attn.hook_k_normed", tensor(k, BATCH, POS, KV, HD));
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD));
            double[] act = reluSquared(linear(normalised(x, n, D), n, w.get(p + "mlp.fc1.weight"), MLP, D));
            out.put(b + "mlp.hook_post", tensor(act, BATCH, POS, MLP));
            add(x, linear(act, n, w.get(p + "mlp.fc2.weight"), D, MLP));
        }
        double[] last = normalised(x, n, D);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        double[] logits = linear(last, n, w.get("lm_head.weight"), VOCAB, D);
        for (int i = 0; i < logits.length; i++) {
            logits[i] = SOFTCAP * Math.tanh(logits[i] / SOFTCAP);
        }
        out.put("logits", tensor(logits, BATCH, POS, VOCAB));
    }

    /** NanoChatRMSNorm over rows of {@code width}: no weight. */
    private static double[] normalised(double[] x, int rows, int width) {
        double[] ones = new double[width];
        Arrays.fill(ones, 1);
        return rmsNorm(x, rows, width, ones, EPS);
    }

    /**
     * {@code x [batch, pos, heads, HD]} rotated as nanochat's {@code apply_rotary_pos_emb}: {@code x * cos +
     * rotate_half(x) * sin} with {@code rotate_half(x) = cat(x2, -x1)}, cos and sin of {@code pos * theta^(-2i/HD)}
     * repeated over both halves.
     */
    private static double[] rotated(double[] x, int heads) {
        double[] y = new double[x.length];
        int half = HD / 2;
        for (int t = 0; t < BATCH * POS; t++) {
            int position = t % POS;
            for (int head = 0; head < heads; head++) {
                int at = (t * heads + head) * HD;
                for (int i = 0; i < HD; i++) {
                    double angle = position * Math.pow(THETA, -2.0 * (i % half) / HD);
                    double turned = i < half ? x[at + i + half] : -x[at + i - half];
                    y[at + i] = x[at + i] * Math.cos(angle) + turned * Math.sin(angle);
                }
            }
        }
        return y;
    }
}

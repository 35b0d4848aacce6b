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
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A HunYuan dense reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1) and the activations of {@code HunYuanDenseV1ForCausalLM}'s forward pass as transformers' modeling
 * file defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): Llama's pre-norm blocks with RMSNorm {@code x / sqrt(mean(x^2) + eps) * w}; biased query,
 * key, value and output projections ({@code attention_bias}); queries and keys rotated in the {@code rotate_half}
 * convention with the base of its dynamic rope with an {@code alpha},
 * {@code rope_theta · alpha^(head_dim / (head_dim - 2))}, then each head normalised by {@code query_layernorm} and
 * {@code key_layernorm}; a causal softmax over grouped key/value heads; a gated SiLU MLP; an untied head.
 */
final class HunYuanDenseReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 40;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 1000.0;
    private static final double ALPHA = 50.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private HunYuanDenseReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        // as transformers 5 writes the published files' rope: the entries other than alpha and the base are not read
        Map<String, Object> rope = Map.of("rope_type", "dynamic", "rope_theta", THETA, "alpha", ALPHA, "factor", 1.0,
                "beta_fast", 32, "beta_slow", 1, "mscale", 1.0, "mscale_all_dim", 1.0);
        HookedAutoConfig config = HookedAutoConfig.of("hunyuan_v1_dense").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_parameters", rope),
                Map.entry("rms_norm_eps", EPS), Map.entry("attention_bias", true)));
        ReferenceMath.write(config, 41, BATCH, POS, dir, HunYuanDenseReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double base = THETA * Math.pow(ALPHA, (double) HD / (HD - 2));
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotateHalf(q, BATCH, POS, HEADS, HD, base);
            rotateHalf(k, BATCH, POS, KV, HD, base);
            out.put(b + "attn.hook_rot_q", tensor(q, BATCH, POS, HEADS, HD));
            q = rmsNorm(q, n * HEADS, HD, w.get(p + "self_attn.query_layernorm.weight"), EPS);
            k = rmsNorm(k, n * KV, HD, w.get(p + "self_attn.key_layernorm.weight"), EPS);
            out.put(b + "attn.hook_q_normed", tensor(q, BATCH, POS, HEADS, HD));
            out.put(b + "attn.hook_k_normed", tensor(k, BATCH, POS, KV, HD));
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, true));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] gate = linear(h2, n, w.get(p + "mlp.gate_proj.weight"), MLP, D);
            double[] up = linear(h2, n, w.get(p + "mlp.up_proj.weight"), MLP, D);
            add(x, linear(silu(gate, up), n, w.get(p + "mlp.down_proj.weight"), D, MLP));
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}

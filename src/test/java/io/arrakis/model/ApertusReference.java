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
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An Apertus reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1, its xIELU parameters {@code alpha_p} and {@code alpha_n} apart from their initial values and from
 * each other, layer by layer) and the activations of {@code ApertusForCausalLM}'s forward pass as transformers'
 * modeling file defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): RMSNorm blocks ({@code attention_layernorm}, {@code feedforward_layernorm}); query, key and
 * value projections, an RMSNorm on each query and key head, the rotary embedding over the whole head (head_dim not
 * hidden / heads); a causal softmax over grouped key/value heads; an MLP {@code down(xielu(up(x)))} with
 * {@code xielu(x) = softplus(alpha_p) x^2 + beta x} for {@code x > 0}, else
 * {@code (expm1(min(x, eps)) - x)(beta + softplus(alpha_n)) + beta x}; the final norm and an untied head.
 */
final class ApertusReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 1000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private ApertusReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("apertus").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rms_norm_eps", EPS),
                Map.entry("rope_parameters", Map.of("rope_type", "default", "rope_theta", THETA))));
        ReferenceMath.write(config, 83, BATCH, POS, dir, ApertusReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "attention_layernorm.weight"), EPS);
            double[] q = rmsNorm(projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, false), n * HEADS, HD,
                    w.get(p + "self_attn.q_norm.weight"), EPS);
            double[] k = rmsNorm(projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, false), n * KV, HD,
                    w.get(p + "self_attn.k_norm.weight"), EPS);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, false);
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, false));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "feedforward_layernorm.weight"), EPS);
            double[] act = projection(w, p + "mlp.up_proj", h2, n, MLP, D, false);
            String f = p + "mlp.act_fn.";
            double beta = w.get(f + "beta")[0];
            double eps = w.get(f + "eps")[0];
            double alphaP = Math.log1p(Math.exp(w.get(f + "alpha_p")[0]));
            double alphaN = beta + Math.log1p(Math.exp(w.get(f + "alpha_n")[0]));
            for (int i = 0; i < act.length; i++) {
                double a = act[i];
                act[i] = a > 0 ? alphaP * a * a + beta * a : (Math.expm1(Math.min(a, eps)) - a) * alphaN + beta * a;
            }
            out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, MLP));
            add(x, projection(w, p + "mlp.down_proj", act, n, D, MLP, false));
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}

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
import static io.arrakis.model.ReferenceMath.reluSquared;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A Jais 2 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights and
 * biases drawn around 1 and its other biases around 0, so that every one counts) and the activations of
 * {@code Jais2ForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double precision
 * in plain Java, apart from the library's forward pass ({@link ReferenceMath}): pre-norm blocks with LayerNorm
 * {@code (x - mean) / sqrt(var + eps) * w + b}, biases on the four attention projections and the MLP's two (the
 * defaults), the rotary embedding over the whole head in the {@code rotate_half} convention, a causal softmax over
 * grouped key/value heads, an MLP without a gate, {@code down(relu(up(x))^2)}, whose activation the reference holds,
 * and an untied head.
 */
final class Jais2Reference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 1000.0; // not the default, so that rope_theta counts
    private static final int BATCH = 2;
    private static final int POS = 10;

    private Jais2Reference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("jais2").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("layer_norm_eps", EPS)));
        ReferenceMath.write(config, 43, BATCH, POS, dir, Jais2Reference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = layerNorm(x, n, D, w.get(p + "input_layernorm.weight"), w.get(p + "input_layernorm.bias"),
                    EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, true));
            double[] h2 = layerNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"),
                    w.get(p + "post_attention_layernorm.bias"), EPS);
            double[] act = projection(w, p + "mlp.up_proj", h2, n, MLP, D, true);
            reluSquared(act);
            out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, MLP));
            add(x, projection(w, p + "mlp.down_proj", act, n, D, MLP, true));
        }
        double[] last = layerNorm(x, n, D, w.get("model.norm.weight"), w.get("model.norm.bias"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}

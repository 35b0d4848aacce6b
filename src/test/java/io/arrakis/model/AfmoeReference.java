package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.gatedExpert;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An AFMoE reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights drawn
 * around 1, its biases, {@code expert_bias} included, around 0) and the activations of {@code AfmoeForCausalLM}'s
 * forward pass as transformers' modeling file defines it, computed here in double precision in plain Java, apart from
 * the library's forward pass ({@link ReferenceMath}): RMSNorms before and after attention and MLP; queries and keys
 * each normalised per head; {@code rotate_half} rotary embeddings on the sliding layers 0 and 2 only (window
 * {@value #WINDOW}, {@code global_attn_every_n_layers} 2), none on the full layer 1; each head's output times
 * {@code sigmoid(gate_proj x)} before {@code o_proj}; experts chosen by their router logits' sigmoids plus
 * {@code expert_bias}, weighted by the sigmoids divided by their sum and times {@code route_scale}, beside a shared
 * expert. {@link Kind#ROUTE_SCALED}: a dense first layer, route_scale {@value #ROUTE_SCALE}, no biases;
 * {@link Kind#MUP_BIASED}: every layer sparse, no shared expert, attention biases, the embeddings times
 * {@code sqrt(hidden_size)} ({@code mup_enabled}).
 */
final class AfmoeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int EXPERT = 16;
    private static final int DENSE = 40;
    private static final int LAYERS = 3;
    private static final int EXPERTS = 5;
    private static final int TOP_K = 2;
    static final int WINDOW = 4;
    static final double ROUTE_SCALE = 2.5;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    /** The two configurations the reference is written in. */
    enum Kind {
        /** A dense first layer, a shared expert, {@code route_scale} {@value #ROUTE_SCALE}, no biases, no muP. */
        ROUTE_SCALED,
        /** Every layer sparse, no shared expert, route_scale 1, attention biases, {@code mup_enabled}. */
        MUP_BIASED
    }

    private AfmoeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir, Kind kind) throws IOException {
        boolean scaled = kind == Kind.ROUTE_SCALED;
        HookedAutoConfig config = HookedAutoConfig.of("afmoe").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", DENSE),
                Map.entry("moe_intermediate_size", EXPERT), Map.entry("num_hidden_layers", LAYERS),
                Map.entry("num_dense_layers", scaled ? 1 : 0), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rms_norm_eps", EPS),
                Map.entry("sliding_window", WINDOW), Map.entry("global_attn_every_n_layers", 2),
                Map.entry("num_experts", EXPERTS), Map.entry("num_experts_per_tok", TOP_K),
                Map.entry("num_shared_experts", scaled ? 1 : 0), Map.entry("route_scale", scaled ? ROUTE_SCALE : 1.0),
                Map.entry("mup_enabled", !scaled), Map.entry("attention_bias", !scaled)));
        ReferenceMath.write(config, 71, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, out, scaled));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out, boolean scaled) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        if (!scaled) { // mup_enabled
            for (int i = 0; i < x.length; i++) {
                x[i] *= Math.sqrt(D);
            }
        }
        boolean biased = !scaled;
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            boolean sliding = layer != 1;
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = rmsNorm(projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, biased), n * HEADS, HD,
                    w.get(p + "self_attn.q_norm.weight"), EPS);
            double[] k = rmsNorm(projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, biased), n * KV, HD,
                    w.get(p + "self_attn.k_norm.weight"), EPS);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, biased);
            if (sliding) {
                rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
                rotateHalf(k, BATCH, POS, KV, HD, THETA);
            }
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, sliding ? WINDOW : Integer.MAX_VALUE, layer,
                    out);
            double[] gate = linear(h, n, w.get(p + "self_attn.gate_proj.weight"), HEADS * HD, D);
            for (int i = 0; i < z.length; i++) {
                gate[i] = 1 / (1 + Math.exp(-gate[i]));
                z[i] *= gate[i];
            }
            out.put(b + "attn.hook_gate", tensor(gate, BATCH, POS, HEADS, HD));
            out.put(b + "attn.hook_z", tensor(z, BATCH, POS, HEADS, HD));
            double[] attn = rmsNorm(projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, biased), n, D,
                    w.get(p + "post_attention_layernorm.weight"), EPS);
            add(x, attn);
            double[] h2 = rmsNorm(x, n, D, w.get(p + "pre_mlp_layernorm.weight"), EPS);
            double[] mlp = scaled && layer == 0 ? dense(w, p + "mlp.", h2, n) : mixture(w, p + "mlp.", h2, n, b, scaled,
                    out);
            mlp = rmsNorm(mlp, n, D, w.get(p + "post_mlp_layernorm.weight"), EPS);
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The dense layer's gated MLP on every row. */
    private static double[] dense(Map<String, double[]> w, String p, double[] h, int n) {
        double[] y = new double[n * D];
        for (int t = 0; t < n; t++) {
            double[] o = gatedExpert(w, p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight",
                    Arrays.copyOfRange(h, t * D, (t + 1) * D), D, DENSE);
            System.arraycopy(o, 0, y, t * D, D);
        }
        return y;
    }

    /** The routed experts' weighted outputs plus the shared expert's, recording the router's choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b, boolean scaled,
                                    Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "router.gate.weight"), EXPERTS, D);
        double[] bias = w.get(p + "expert_bias");
        double scale = scaled ? ROUTE_SCALE : 1.0;
        double[] y = new double[n * D];
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] scores = new double[EXPERTS];
            double[] choice = new double[EXPERTS];
            for (int e = 0; e < EXPERTS; e++) {
                scores[e] = 1 / (1 + Math.exp(-logits[t * EXPERTS + e]));
                choice[e] = scores[e] + bias[e];
            }
            int[] chosen = ReferenceMath.topExperts(choice, TOP_K, 1, 1, false);
            double sum = 0;
            for (int e : chosen) {
                sum += scores[e];
            }
            double[] row = Arrays.copyOfRange(h, t * D, (t + 1) * D);
            for (int j = 0; j < TOP_K; j++) {
                double weight = scores[chosen[j]] / sum * scale;
                chosenOut[t * TOP_K + j] = chosen[j];
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + chosen[j] + ".";
                double[] o = gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
                        expert + "down_proj.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight * o[i];
                }
            }
            if (scaled) { // one shared expert
                double[] o = gatedExpert(w, p + "shared_experts.gate_proj.weight", p + "shared_experts.up_proj.weight",
                        p + "shared_experts.down_proj.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += o[i];
                }
            }
        }
        out.put(b + "mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put(b + "mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}

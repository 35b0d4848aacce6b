package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * What the reference models written by hand share ({@link OlmoeReference}, {@link Exaone4Reference},
 * {@link Glm4Reference}, {@link Ernie45Reference}, {@link SeedOssReference}, {@link ArceeReference},
 * {@link HeliumReference}, {@link VaultGemmaReference}, {@link NemotronReference}, {@link Jais2Reference},
 * {@link HyperClovaxReference}, {@link OptReference}, {@link GptBigCodeReference}, {@link Glm4MoeReference},
 * {@link ApertusReference}): a tiny random checkpoint, and the steps of a forward pass in double precision in plain
 * Java, apart from the library's. Activations are {@code [tokens, features]} row-major arrays; the references are
 * named and shaped as those of {@code shared/fixtures-hf-more}.
 */
final class ReferenceMath {
    private ReferenceMath() {
    }

    /** A forward pass: the reference activations of {@code ids} under the checkpoint's weights {@code w}. */
    interface Pass {
        void run(Map<String, double[]> w, long[] ids, Map<String, Tensor> out);
    }

    /**
     * Writes config.json and model.safetensors of {@code config}'s random weights, its norm weights drawn around 1 and
     * its biases around 0 (so that every one counts), then reference.safetensors: random {@code input_ids [batch,
     * pos]} and what {@code pass} computes from them.
     */
    static void write(HookedAutoConfig config, long seed, int batch, int pos, Path dir, Pass pass) throws IOException {
        Random random = new Random(seed);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, double[]> w = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, seed, DType.FLOAT32);
            for (String name : source.names()) {
                Tensor t = source.load(name);
                float[] values = t.toFloatArray();
                boolean norm = name.contains("norm") || name.contains(".ln_"); // GPT-2's names: ln_1, ln_f
                if (norm || name.endsWith(".bias") || name.endsWith("_bias")) { // e_score_correction_bias too
                    for (int i = 0; i < values.length; i++) {
                        values[i] = (float) ((norm ? 1 : 0) + 0.2 * random.nextGaussian());
                    }
                }
                if (name.contains("act_fn.alpha")) { // Apertus's xIELU parameters, apart from their initial values
                    for (int i = 0; i < values.length; i++) {
                        values[i] += (float) (0.5 * random.nextGaussian());
                    }
                }
                tensors.put(name, Tensor.of(values, t.shape()));
                double[] asDouble = new double[values.length];
                for (int i = 0; i < values.length; i++) {
                    asDouble[i] = values[i];
                }
                w.put(name, asDouble);
            }
            Fixtures.writeCheckpoint(config, tensors, dir);
            long[] ids = new long[batch * pos];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = random.nextInt(config.vocabSize());
            }
            Map<String, Tensor> reference = new LinkedHashMap<>();
            reference.put("input_ids", Tensor.of(ids, batch, pos));
            pass.run(w, ids, reference);
            SafeTensorsWriter.write(dir.resolve("reference.safetensors"), reference, Map.of("format", "pt"));
        }
    }

    /** The rows of {@code model.embed_tokens.weight} that {@code ids} pick, {@code [ids, d]}. */
    static double[] embed(Map<String, double[]> w, long[] ids, int d) {
        return embed(w.get("model.embed_tokens.weight"), ids, d);
    }

    /** The rows of {@code table [rows, d]} that {@code ids} pick, {@code [ids, d]}. */
    static double[] embed(double[] table, long[] ids, int d) {
        double[] x = new double[ids.length * d];
        for (int t = 0; t < ids.length; t++) {
            System.arraycopy(table, (int) ids[t] * d, x, t * d, d);
        }
        return x;
    }

    /** {@code x [n, in] · w[out, in]ᵀ}. */
    static double[] linear(double[] x, int n, double[] w, int out, int in) {
        double[] y = new double[n * out];
        for (int r = 0; r < n; r++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int i = 0; i < in; i++) {
                    s += x[r * in + i] * w[o * in + i];
                }
                y[r * out + o] = s;
            }
        }
        return y;
    }

    /** {@code x [n, width]} plus {@code bias [width]} on each row. */
    static double[] plus(double[] x, double[] bias) {
        double[] y = x.clone();
        for (int i = 0; i < y.length; i++) {
            y[i] += bias[i % bias.length];
        }
        return y;
    }

    /** RMSNorm {@code x / sqrt(mean(x^2) + eps) * w} of each of the {@code n} rows of {@code width} features. */
    static double[] rmsNorm(double[] x, int n, int width, double[] weight, double eps) {
        double[] y = new double[x.length];
        for (int r = 0; r < n; r++) {
            double squares = 0;
            for (int i = 0; i < width; i++) {
                squares += x[r * width + i] * x[r * width + i];
            }
            double scale = 1 / Math.sqrt(squares / width + eps);
            for (int i = 0; i < width; i++) {
                y[r * width + i] = x[r * width + i] * scale * weight[i];
            }
        }
        return y;
    }

    /**
     * The {@code nn.Linear} {@code name} of the checkpoint {@code w} ({@code name.weight [out, in]}) on the {@code n}
     * rows of {@code x}, plus {@code name.bias} where {@code biased}, which the checkpoint must then hold.
     */
    static double[] projection(Map<String, double[]> w, String name, double[] x, int n, int out, int in,
                               boolean biased) {
        double[] y = linear(x, n, w.get(name + ".weight"), out, in);
        if (!biased) {
            return y;
        }
        double[] bias = w.get(name + ".bias");
        if (bias == null) {
            throw new IllegalStateException("the checkpoint has no " + name + ".bias");
        }
        return plus(y, bias);
    }

    /** {@code relu(x)^2} ({@code relu2}), written into {@code x}. */
    static double[] reluSquared(double[] x) {
        for (int i = 0; i < x.length; i++) {
            double relu = Math.max(x[i], 0);
            x[i] = relu * relu;
        }
        return x;
    }

    /** LayerNorm {@code (x - mean) / sqrt(var + eps) * w + b} of each of the {@code n} rows of {@code width} values. */
    static double[] layerNorm(double[] x, int n, int width, double[] weight, double[] bias, double eps) {
        double[] y = new double[x.length];
        for (int r = 0; r < n; r++) {
            double mean = 0;
            for (int i = 0; i < width; i++) {
                mean += x[r * width + i] / width;
            }
            double variance = 0;
            for (int i = 0; i < width; i++) {
                double centred = x[r * width + i] - mean;
                variance += centred * centred / width;
            }
            double scale = 1 / Math.sqrt(variance + eps);
            for (int i = 0; i < width; i++) {
                y[r * width + i] = (x[r * width + i] - mean) * scale * weight[i] + bias[i];
            }
        }
        return y;
    }

    /** {@code silu(gate) * up}, written into {@code gate}. */
    static double[] silu(double[] gate, double[] up) {
        for (int i = 0; i < gate.length; i++) {
            gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
        }
        return gate;
    }

    /**
     * Causal softmax attention of block {@code layer}'s queries {@code [batch, pos, heads, hd]} over keys and values
     * {@code [batch, pos, kv, hd]} (query head h reads key head {@code h / (heads / kv)}), scaled by {@code hd^-1/2},
     * each query seeing its last {@code window} positions ({@link Integer#MAX_VALUE}: all); returns z
     * {@code [batch, pos, heads, hd]} and puts the probabilities {@code [batch, heads, pos, pos]} into {@code out} as
     * {@code blocks.{layer}.attn.hook_pattern}.
     */
    static double[] attention(double[] q, double[] k, double[] v, int batch, int pos, int heads, int kv, int hd,
                              int window, int layer, Map<String, Tensor> out) {
        return attention(q, k, v, batch, pos, heads, kv, hd, window, hd, 0, layer, out);
    }

    /**
     * {@link #attention} with the scores divided by {@code sqrt(scalar)} (gemma2's {@code query_pre_attn_scalar}) and,
     * where {@code softcap > 0}, soft-capped ({@code softcap * tanh(score / softcap)}) before the softmax.
     */
    static double[] attention(double[] q, double[] k, double[] v, int batch, int pos, int heads, int kv, int hd,
                              int window, double scalar, double softcap, int layer, Map<String, Tensor> out) {
        double[] pattern = new double[batch * heads * pos * pos];
        double[] z = attend(q, k, v, batch, pos, heads, kv, hd, window, scalar, softcap, pattern);
        out.put("blocks." + layer + ".attn.hook_pattern", tensor(pattern, batch, heads, pos, pos));
        return z;
    }

    private static double[] attend(double[] q, double[] k, double[] v, int batch, int pos, int heads, int kv, int hd,
                                   int window, double scalar, double softcap, double[] pattern) {
        double[] z = new double[batch * pos * heads * hd];
        for (int b = 0; b < batch; b++) {
            for (int head = 0; head < heads; head++) {
                int kvHead = head / (heads / kv);
                for (int i = 0; i < pos; i++) {
                    int first = Math.max(0, i - window + 1);
                    double[] scores = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    int qAt = ((b * pos + i) * heads + head) * hd;
                    for (int j = first; j <= i; j++) {
                        int kAt = ((b * pos + j) * kv + kvHead) * hd;
                        double dot = 0;
                        for (int e = 0; e < hd; e++) {
                            dot += q[qAt + e] * k[kAt + e];
                        }
                        double score = dot / Math.sqrt(scalar);
                        scores[j] = softcap > 0 ? softcap * Math.tanh(score / softcap) : score;
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = first; j <= i; j++) {
                        scores[j] = Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int j = first; j <= i; j++) {
                        double prob = scores[j] / sum;
                        pattern[((b * heads + head) * pos + i) * pos + j] = prob;
                        int vAt = ((b * pos + j) * kv + kvHead) * hd;
                        for (int e = 0; e < hd; e++) {
                            z[qAt + e] += prob * v[vAt + e];
                        }
                    }
                }
            }
        }
        return z;
    }

    /**
     * {@code rotate_half} rotary embeddings on {@code x [batch, pos, heads, hd]} in place, at positions 0..: frequency
     * i turns the pair {@code (i, i + hd / 2)}.
     */
    static void rotateHalf(double[] x, int batch, int pos, int heads, int hd, double theta) {
        rotateHalf(x, batch, pos, heads, hd, hd, theta);
    }

    /**
     * {@link #rotateHalf} on the first {@code rotary} features of each head, the others left as they are: frequency i
     * of {@code rotary} dimensions turns the pair {@code (i, i + rotary / 2)}.
     */
    static void rotateHalf(double[] x, int batch, int pos, int heads, int hd, int rotary, double theta) {
        int half = rotary / 2;
        for (int b = 0; b < batch; b++) {
            for (int p = 0; p < pos; p++) {
                for (int head = 0; head < heads; head++) {
                    int at = ((b * pos + p) * heads + head) * hd;
                    for (int i = 0; i < half; i++) {
                        double angle = p / Math.pow(theta, 2.0 * i / rotary);
                        double first = x[at + i];
                        double second = x[at + i + half];
                        x[at + i] = first * Math.cos(angle) - second * Math.sin(angle);
                        x[at + i + half] = second * Math.cos(angle) + first * Math.sin(angle);
                    }
                }
            }
        }
    }

    /**
     * Interleaved rotary embeddings on the first {@code rotary} features of each head of {@code x [batch, pos, heads,
     * hd]} in place, at positions 0..: frequency i of {@code rotary} dimensions turns the pair {@code (2i, 2i + 1)}.
     */
    static void rotateInterleaved(double[] x, int batch, int pos, int heads, int hd, int rotary, double theta) {
        for (int b = 0; b < batch; b++) {
            for (int p = 0; p < pos; p++) {
                for (int head = 0; head < heads; head++) {
                    int at = ((b * pos + p) * heads + head) * hd;
                    for (int i = 0; i < rotary / 2; i++) {
                        double angle = p / Math.pow(theta, 2.0 * i / rotary);
                        double first = x[at + 2 * i];
                        double second = x[at + 2 * i + 1];
                        x[at + 2 * i] = first * Math.cos(angle) - second * Math.sin(angle);
                        x[at + 2 * i + 1] = second * Math.cos(angle) + first * Math.sin(angle);
                    }
                }
            }
        }
    }

    /**
     * The {@code k} experts with the largest {@code choice}, best first, among those of the {@code topGroups} of the
     * {@code groups} groups of consecutive experts that rank highest by their best choice ({@code byBest}) or by the
     * sum of their two best (the lower group first where they tie); with every group allowed, among all.
     */
    static int[] topExperts(double[] choice, int k, int groups, int topGroups, boolean byBest) {
        int size = choice.length / groups;
        boolean[] allowed = new boolean[groups];
        if (topGroups == groups) {
            java.util.Arrays.fill(allowed, true);
        } else {
            double[] groupScore = new double[groups];
            for (int g = 0; g < groups; g++) {
                double[] members = java.util.Arrays.copyOfRange(choice, g * size, (g + 1) * size);
                java.util.Arrays.sort(members);
                groupScore[g] = members[size - 1] + (byBest ? 0 : members[size - 2]);
            }
            for (int pick = 0; pick < topGroups; pick++) {
                int best = -1;
                for (int g = 0; g < groups; g++) {
                    if (!allowed[g] && (best < 0 || groupScore[g] > groupScore[best])) {
                        best = g;
                    }
                }
                allowed[best] = true;
            }
        }
        int[] chosen = new int[k];
        boolean[] taken = new boolean[choice.length];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < choice.length; e++) {
                if (allowed[e / size] && !taken[e] && (best < 0 || choice[e] > choice[best])) {
                    best = e;
                }
            }
            taken[best] = true;
            chosen[j] = best;
        }
        return chosen;
    }

    /**
     * An expert's gated SiLU MLP {@code down(silu(gate x) * up x)} on one row {@code x [d]}, of {@code width} hidden
     * units, its weights named {@code gate}, {@code up} and {@code down}.
     */
    static double[] gatedExpert(Map<String, double[]> w, String gate, String up, String down, double[] x, int d,
                                int width) {
        double[] act = silu(linear(x, 1, w.get(gate), width, d), linear(x, 1, w.get(up), width, d));
        return linear(act, 1, w.get(down), d, width);
    }

    /** The softmax of {@code size} values of {@code x} from {@code from}, the largest subtracted first. */
    static double[] softmax(double[] x, int from, int size) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < size; i++) {
            max = Math.max(max, x[from + i]);
        }
        double[] y = new double[size];
        double sum = 0;
        for (int i = 0; i < size; i++) {
            y[i] = Math.exp(x[from + i] - max);
            sum += y[i];
        }
        for (int i = 0; i < size; i++) {
            y[i] /= sum;
        }
        return y;
    }

    static void add(double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
    }

    static Tensor tensor(double[] values, long... shape) {
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) values[i];
        }
        return Tensor.of(f, shape);
    }
}

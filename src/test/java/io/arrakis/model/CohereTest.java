package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.testing.Bfloat16;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Cohere (Command-R): CohereConfig's defaults, Command R+'s query and key norms ({@code use_qk_norm}) against the
 * {@code cohere-qk-norm} fixture of transformers, and its interleaved rotary embedding over the whole head against the
 * rotation worked out by hand (the forward pass itself is checked against Hugging Face by {@link ModelParityTest}).
 */
class CohereTest {

    @Test
    void defaultsAreCommandR() {
        HookedAutoConfig c = HookedAutoConfig.of("cohere");
        assertEquals(0.0625, c.raw().get("logit_scale"));
        assertEquals(500000.0, c.ropeTheta(), "CohereConfig.default_theta");
        assertEquals(64, c.nKvHeads());
        assertEquals(128, c.rotaryDim(), "the whole head");
        assertFalse(c.rmsNorm());
        Architecture a = c.architecture();
        assertTrue(a.parallelResidual() && a.sharedNorm() && a.rotaryInterleaved());
        assertEquals(0.0625, a.logitScale());
        // tied 256000 x 8192 embedding; per layer q/k/v/o 4 x 8192², gate/up/down 3 x 8192 x 22528, one bias-free
        // LayerNorm 8192; the final LayerNorm 8192
        assertEquals(256000L * 8192 + 40L * (4L * 8192 * 8192 + 3L * 8192 * 22528 + 8192) + 8192, c.parameterCount());
        assertEquals(34_980_831_232L, c.parameterCount());
    }

    /**
     * Command R+'s norms: a LayerNorm over each query and key head with a weight per head and feature, before the
     * rotary embedding; every hook as transformers computes it, the bfloat16 pass as transformers' rounds, every
     * tensor of the checkpoint counted, and the per-head weights as the effective scales the composition reads.
     */
    @Test
    void commandRPlusQueryAndKeyNormsAreTransformers() {
        java.nio.file.Path fixture = Fixtures.HF.resolve("cohere-qk-norm");
        ModelParityTest.assertParity(fixture, "cohere-qk-norm", 16);
        double[] d = Fixtures.bfloat16Distances(fixture, "logits");
        assertTrue(d[0] <= d[1] / 10, "mean distance " + d[0] + ", float32's " + d[1]);
        HookedAutoConfig c = HookedAutoConfig.fromJson(fixture.resolve("config.json"));
        assertEquals(Architecture.QkNorm.PER_HEAD_OWN_WEIGHTS, c.architecture().qkNorm());
        try (TensorScope scope = TensorScope.open();
             io.arrakis.model.safetensors.SafeTensorsFile weights = io.arrakis.model.safetensors.SafeTensorsFile.open(
                     fixture.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(fixture)) {
            assertEquals(weights.names().stream().mapToLong(n -> weights.info(n).numel()).sum(), c.parameterCount());
            org.junit.jupiter.api.Assertions.assertArrayEquals(
                    weights.tensor("model.layers.1.self_attn.k_norm.weight").toFloatArray(),
                    model.keyNormWeights(1, false).toFloatArray());
            // with repeated key heads, query head 3 reads key head 1's scales
            org.junit.jupiter.api.Assertions.assertArrayEquals(
                    weights.tensor("model.layers.1.self_attn.k_norm.weight").select(0, 1).toFloatArray(),
                    model.keyNormWeights(1, true).select(0, 3).toFloatArray());
            try (io.arrakis.model.safetensors.SafeTensorsFile reference = io.arrakis.model.safetensors.SafeTensorsFile
                    .open(fixture.resolve("reference.safetensors"))) {
                Tensor q = reference.tensor("blocks.1.attn.hook_q");
                io.arrakis.testing.Close.assertAllClose(reference.tensor("blocks.1.attn.hook_q_normed").toDoubleArray(),
                        model.normalizeQueries(1, q).toDoubleArray(), 1e-5, 1e-5, "queries normalised");
                String m = assertThrows(IllegalArgumentException.class, () -> model.normalizeQueries(1,
                        q.narrow(2, 0, 2))).getMessage();
                assertTrue(m.contains("weights of its own"), m);
            }
        }
    }

    /** Position p turns the pair (2i, 2i+1) of each head by p · theta^(-2i / d_head). */
    @Test
    void rotaryTurnsAdjacentPairs() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("cohere"))) {
            int dHead = model.config().dHead();
            double theta = model.config().ropeTheta();
            assertEquals(500000.0, theta);
            int pos = 4;
            double[] x = new double[pos * dHead];
            for (int i = 0; i < x.length; i++) {
                x[i] = Math.cos(1.3 * i - 0.2);
            }
            double[] expected = InterleavedRotation.of(x, pos, dHead, dHead, theta);
            double[] actual = model.rotate(0, Tensor.of(x, 1, pos, 1, dHead)).toDoubleArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(expected[i], actual[i], 1e-6, "feature " + i % dHead + " at position " + i / dHead);
            }
        }
    }

    /**
     * Cohere's {@code apply_rotary_pos_emb} turns bfloat16 queries and keys in float32, with cos and sin rounded to
     * bfloat16, and rounds the result once: each pair {@code (a, b)} becomes {@code Bfloat16.round(a·c − b·s)},
     * {@code Bfloat16.round(b·c + a·s)} with float32 products and sums. Rotating in bfloat16 rounds three times.
     */
    @Test
    void bfloat16RotatesInFloat32AsCoheresModelDoes() {
        HookedAutoConfig config = HookedAutoConfig.of("cohere").with(java.util.Map.of("hidden_size", 64,
                "num_hidden_layers", 1, "num_attention_heads", 2, "intermediate_size", 32, "vocab_size", 16));
        int dHead = config.dHead();
        int pos = 6;
        float[] x = new float[pos * dHead];
        for (int i = 0; i < x.length; i++) {
            x[i] = Bfloat16.round((float) (3 * Math.sin(0.7 * i + 0.1)));
        }
        float[] invFreq = config.architecture().rope().inverseFrequencies();
        float[] inFloat32 = new float[x.length];
        float[] inBfloat16 = new float[x.length];
        for (int p = 0; p < pos; p++) {
            for (int i = 0; i < dHead / 2; i++) {
                float angle = (float) p * invFreq[i];
                float c = Bfloat16.round((float) Math.cos(angle));
                float s = Bfloat16.round((float) Math.sin(angle));
                int first = p * dHead + 2 * i;
                float a = x[first];
                float b = x[first + 1];
                inFloat32[first] = Bfloat16.round(a * c + b * -s);
                inFloat32[first + 1] = Bfloat16.round(b * c + a * s);
                inBfloat16[first] = Bfloat16.round(Bfloat16.round(a * c) + Bfloat16.round(b * -s));
                inBfloat16[first + 1] = Bfloat16.round(Bfloat16.round(b * c) + Bfloat16.round(a * s));
            }
        }
        assertFalse(java.util.Arrays.equals(inFloat32, inBfloat16), "the input tells the two apart");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, io.arrakis.torch.DType.BFLOAT16,
                     io.arrakis.torch.Device.CPU)) {
            Tensor rotated = model.rotate(0, Tensor.of(x, 1, pos, 1, dHead).to(io.arrakis.torch.DType.BFLOAT16));
            assertEquals(io.arrakis.torch.DType.BFLOAT16, rotated.dtype());
            float[] actual = rotated.toFloatArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(inFloat32[i], actual[i], 0.0f, "feature " + i % dHead + " at position " + i / dHead);
            }
        }
    }
}

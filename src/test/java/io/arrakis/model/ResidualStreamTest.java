package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link ResidualStream} on every family's Hugging Face fixture ({@link Fixtures#huggingFace}): the decomposition
 * sums to the cached final residual stream; through {@link ResidualStream#applyLnToStack} and the unembedding it gives
 * Hugging Face's final norm output and logits (from {@code reference.safetensors}); the accumulated stream is Hugging
 * Face's input of each block and, normalised, its final norm output; logit attributions sum to Hugging Face's logits
 * less the unembedding bias; per-head results sum to each block's attention output less its bias. Tolerances: 1e-5
 * (relative where values exceed 1) where a sum of float32 components is compared with the forward pass's own sum,
 * 1e-4 against Hugging Face's tensors, as {@link ModelParityTest}.
 */
class ResidualStreamTest {

    static List<String> families() {
        return HookedAutoConfig.supportedFamilies();
    }

    @ParameterizedTest
    @MethodSource("families")
    void decompositionSumsToTheFinalStreamAndThroughTheFinalNormToHuggingFacesLogits(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            Architecture a = model.config().architecture();
            int layers = a.nLayers();
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor finalResid = out.cache().get("blocks." + (layers - 1) + ".hook_resid_post");

            ResidualStream.Components parts = resid.decomposeResid(false);
            List<String> labels = new ArrayList<>(a.rotary() ? List.of("embed") : List.of("embed", "pos_embed"));
            for (int l = 0; l < layers; l++) {
                labels.addAll(List.of(l + "_attn_out", l + "_mlp_out"));
                if (a.perLayerInputs() != null) { // gemma4's per-layer embeddings add a third term
                    labels.add(l + "_per_layer_out");
                }
            }
            assertEquals(labels, parts.labels());
            assertClose(finalResid.toDoubleArray(), sumOverComponents(parts.stack()), 1e-5, family + " decomposition");

            // the final norm's bias is no component's: the normalised components sum to the norm's output less it
            Tensor normalized = withFinalNormBias(model, resid.applyLnToStack(parts.stack()).sum(0, false));
            assertClose(reference.tensor("ln_final.hook_normalized").toDoubleArray(), normalized.toDoubleArray(), 1e-4,
                    family + " normalised decomposition");
            assertClose(reference.tensor("logits").toDoubleArray(), logits(model, normalized).toDoubleArray(), 1e-4,
                    family + " logits of the normalised decomposition");
            assertClose(reference.tensor("ln_final.hook_normalized").toDoubleArray(),
                    withFinalNormBias(model, resid.decomposeResid(true).stack().sum(0, false)).toDoubleArray(), 1e-4,
                    family + " decomposeResid(true)");

            ResidualStream.Components accumulated = resid.accumulatedResid(false, false);
            assertEquals(layers + 1, accumulated.labels().size());
            assertEquals("0_pre", accumulated.labels().getFirst());
            assertEquals("final_post", accumulated.labels().getLast());
            for (int l = 0; l < layers; l++) {
                assertClose(reference.tensor("blocks." + l + ".hook_resid_pre").toDoubleArray(),
                        accumulated.stack().select(0, l).toDoubleArray(), 1e-4, family + " accumulated " + l);
            }
            Tensor lens = resid.accumulatedResid(false, true).stack();
            assertClose(reference.tensor("ln_final.hook_normalized").toDoubleArray(), lens.select(0, layers).toDoubleArray(),
                    1e-4, family + " accumulatedResid(applyLn) at the end");
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void logitAttributionsSumToHuggingFacesLogitsLessTheBias(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            Architecture a = model.config().architecture();
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor ids = reference.tensor("input_ids");
            long[] shape = ids.shape();
            Tensor tokens = ids.roll(1, 1); // any ids: each position's previous one
            Tensor parts = resid.decomposeResid(false).stack();
            double[] attrs = resid.logitAttrs(parts, tokens).sum(0, false).toDoubleArray();
            double[] difference = resid.logitAttrs(parts, tokens, ids).sum(0, false).toDoubleArray();
            assertArrayEquals(new long[] {parts.size(0), shape[0], shape[1]}, resid.logitAttrs(parts, tokens).shape());
            double[] logits = reference.tensor("logits").toDoubleArray();
            // what the biases give each token: b_U, and the final norm's bias through W_U
            Tensor normBias = model.weights().lnfb;
            double[] bias = (normBias == null ? model.b_U() : normBias.div(a.headInputDivisor()).unsqueeze(0)
                    .matmul(model.W_U()).squeeze(0).add(model.b_U())).toDoubleArray();
            long[] t = tokens.toLongArray();
            long[] u = ids.toLongArray();
            int vocab = a.vocabSize();
            double[] expected = new double[t.length];
            double[] expectedDifference = new double[t.length];
            for (int i = 0; i < t.length; i++) {
                double logit = uncapped(a, logits[i * vocab + (int) t[i]]) - a.logitScale() * bias[(int) t[i]];
                double other = uncapped(a, logits[i * vocab + (int) u[i]]) - a.logitScale() * bias[(int) u[i]];
                expected[i] = logit;
                expectedDifference[i] = logit - other;
            }
            assertClose(expected, attrs, 1e-4, family + " logit attributions");
            assertClose(expectedDifference, difference, 1e-4, family + " logit difference attributions");
        }
    }

    /** One term per head and position: a long pass's cache fits where its heads' stack cannot. */
    @Test
    void aHeadStackThatCannotFitIsRefusedBeforeAnythingIsAllocated() {
        long available = io.arrakis.torch.HostMemory.availableBytes();
        org.junit.jupiter.api.Assumptions.assumeTrue(available > 0, "skipped: memory unknown or full here");
        HookedAutoConfig config = TinyConfigs.of("gpt2");
        Architecture a = config.architecture();
        long each = (long) a.nHeads() * a.nLayers() * config.dModel() * Float.BYTES; // a position's heads
        long positions = available / each + 1;
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 1, DType.FLOAT32, Device.CPU)) {
            ActivationCache cache = new ActivationCache(a.nLayers());
            // broadcast views: as large as a real cache's entries, without their memory
            for (int l = 0; l < a.nLayers(); l++) {
                cache.put("blocks." + l + ".attn.hook_z", Tensor.zeros(1).expand(1, positions, a.nHeads(), a.dHead()));
            }
            String message = assertThrows(IllegalArgumentException.class,
                    () -> new ResidualStream(model, cache).stackHeadResults(false, false)).getMessage();
            assertTrue(message.startsWith("stackHeadResults stacks " + a.nLayers() * a.nHeads() + " components")
                    && message.contains("fewer sequences or positions"), message);
        }
    }

    /**
     * A component's attribution is its own: the same alone, among the heads, or with the remainder too (the final
     * norm of this fixture has a bias, which belongs to no component).
     */
    @Test
    void aComponentsAttributionDoesNotDependOnTheRestOfTheStack() {
        Path dir = Fixtures.huggingFace("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            assertTrue(model.weights().lnfb.abs().max().item() > 0.1, "the fixture's final norm has a bias");
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor heads = resid.stackHeadResults(false, false).stack();
            Tensor withRemainder = resid.stackHeadResults(true, false).stack();
            Tensor tokens = Tensor.of(new long[] {7});
            Tensor wrong = Tensor.of(new long[] {3});
            float[] alone = resid.logitAttrs(heads.narrow(0, 0, 1), tokens, wrong).toFloatArray();
            float[] amongHeads = resid.logitAttrs(heads, tokens, wrong).select(0, 0).toFloatArray();
            float[] amongAll = resid.logitAttrs(withRemainder, tokens, wrong).select(0, 0).toFloatArray();
            assertTrue(Math.abs(alone[0]) > 1e-3, "L0H0 matters: " + alone[0]);
            for (int i = 0; i < alone.length; i++) {
                assertEquals(alone[i], amongHeads[i], 1e-6);
                assertEquals(alone[i], amongAll[i], 1e-6);
            }
        }
    }

    /** A hand-built stack of a GPT-2 with unit norm weights and zero biases, whose attributions follow by hand. */
    @Test
    void logitAttributionsOfAHandBuiltStack() {
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_layer", 2, "n_embd", 32, "n_head", 4,
                "vocab_size", 50));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {1, 7, 3, 9, 4, 4}, 2, 3))) {
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor x = out.cache().get("blocks.1.hook_resid_post");
            Tensor constant = Tensor.full(x.shape(), 5.0, DType.FLOAT32, Device.CPU);
            // a quarter and three quarters of the stream share its scale; a constant vector is centred away
            Tensor stack = Tensor.stack(List.of(x.mul(0.25), x.mul(0.75), constant), 0);
            Tensor tokens = Tensor.of(new long[] {11, 12, 13, 14, 15, 16}, 2, 3);
            Tensor wrong = Tensor.of(new long[] {20, 21, 22, 23, 24, 25}, 2, 3);
            float[] attrs = resid.logitAttrs(stack, tokens, wrong).toFloatArray();
            float[] logits = out.logits().toFloatArray();
            for (int i = 0; i < 6; i++) {
                double difference = logits[i * 50 + 11 + i] - logits[i * 50 + 20 + i];
                assertEquals(0.25 * difference, attrs[i], 1e-5, "the quarter at " + i);
                assertEquals(0.75 * difference, attrs[6 + i], 1e-5, "three quarters at " + i);
                assertEquals(0.0, attrs[12 + i], 1e-5, "the constant at " + i);
            }
            // one token per example, and one for all, broadcast over positions
            float[] perExample = resid.logitAttrs(stack, Tensor.of(new long[] {8, 9}, 2)).toFloatArray();
            float[] perPosition = resid.logitAttrs(stack, Tensor.of(new long[] {8, 8, 8, 9, 9, 9}, 2, 3)).toFloatArray();
            assertArrayEquals(perPosition, perExample);
            float[] forAll = resid.logitAttrs(stack, Tensor.of(new long[] {8})).toFloatArray();
            assertArrayEquals(resid.logitAttrs(stack, Tensor.full(new long[] {2, 3}, 8, DType.INT64, Device.CPU))
                    .toFloatArray(), forAll);
            assertEquals(0.25 * logits[8], perExample[0], 1e-5);
            IllegalArgumentException badTokens = assertThrows(IllegalArgumentException.class,
                    () -> resid.logitAttrs(stack, Tensor.of(new long[] {1, 2, 3}, 3)));
            assertTrue(badTokens.getMessage().contains("[batch, pos] = [2, 3]"), badTokens.getMessage());
            IllegalArgumentException badStack = assertThrows(IllegalArgumentException.class,
                    () -> resid.applyLnToStack(x));
            assertTrue(badStack.getMessage().contains("[component, batch, pos, d_model] = [n, 2, 3, 32]"),
                    badStack.getMessage());
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void headResultsSumToEachAttentionOutputLessItsBias(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            Architecture a = model.config().architecture();
            ResidualStream resid = new ResidualStream(model, out.cache());
            if (a.outputNorms()) {
                UnsupportedOperationException refused = assertThrows(UnsupportedOperationException.class,
                        () -> resid.stackHeadResults(false, false));
                assertTrue(refused.getMessage().contains("normalises each attention output"), refused.getMessage());
                return;
            }
            ResidualStream.Components heads = resid.stackHeadResults(true, false);
            // a linear-attention layer's heads are its value heads, a short convolution is one head, a Mamba-2 layer's
            // heads are its state space's
            int[] perLayer = java.util.stream.IntStream.range(0, a.nLayers()).map(l -> switch (a.mixer(l)) {
                case SOFTMAX_ATTENTION -> a.nHeads();
                case LINEAR_ATTENTION -> a.linearAttention().valueHeads();
                case SHORT_CONVOLUTION -> 1;
                case MAMBA2 -> a.mamba2().heads();
            }).toArray();
            int all = java.util.Arrays.stream(perLayer).sum();
            assertEquals(all + 1, heads.labels().size());
            assertEquals("L0H0", heads.labels().getFirst());
            assertEquals("L" + (a.nLayers() - 1) + "H" + (perLayer[a.nLayers() - 1] - 1), heads.labels().get(all - 1));
            assertEquals("remainder", heads.labels().getLast());
            for (int l = 0, first = 0; l < a.nLayers(); first += perLayer[l], l++) {
                Tensor sum = heads.stack().narrow(0, first, perLayer[l]).sum(0, false)
                        .add(model.b_O(l).mul(a.residualMultiplier()));
                assertClose(out.cache().get("blocks." + l + ".hook_attn_out").toDoubleArray(), sum.toDoubleArray(), 1e-5,
                        family + " heads of layer " + l);
            }
            assertClose(out.cache().get("blocks." + (a.nLayers() - 1) + ".hook_resid_post").toDoubleArray(),
                    sumOverComponents(heads.stack()), 1e-5, family + " heads and remainder");
            assertClose(out.cache().get("ln_final.hook_normalized").toDoubleArray(),
                    withFinalNormBias(model, resid.stackHeadResults(true, true).stack().sum(0, false)).toDoubleArray(),
                    1e-5, family + " normalised heads and remainder");
        }
    }

    /** Blocks with a mid point give it after their input; parallel blocks (gpt-j, gpt-neox, falcon, ...) refuse. */
    @ParameterizedTest
    @MethodSource("families")
    void midPointsFollowEachBlocksInputWhereBlocksHaveOne(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            ResidualStream resid = new ResidualStream(model, out.cache());
            if (model.config().parallelResidual()) {
                UnsupportedOperationException refused = assertThrows(UnsupportedOperationException.class,
                        () -> resid.accumulatedResid(true, false));
                assertTrue(refused.getMessage().contains("no mid point"), refused.getMessage());
                return;
            }
            ResidualStream.Components streams = resid.accumulatedResid(true, false);
            List<String> labels = new java.util.ArrayList<>();
            for (int layer = 0; layer < model.config().nLayers(); layer++) {
                labels.addAll(List.of(layer + "_pre", layer + "_mid"));
            }
            labels.add("final_post");
            assertEquals(labels, streams.labels());
            assertArrayEquals(out.cache().get("blocks.1.hook_resid_mid").toFloatArray(),
                    streams.stack().select(0, 3).toFloatArray());
        }
    }

    @Test
    void missingCacheEntriesAreNamedWithTheCacheSpecThatKeepsThem() {
        Path dir = Fixtures.huggingFace("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            Tensor ids = Fixtures.referenceInputIds(dir);
            try (ModelOutput out = model.forward(ids, CacheSpec.only("hook_embed", "blocks.0.hook_attn_out"))) {
                ResidualStream resid = new ResidualStream(model, out.cache());
                String decompose = assertThrows(IllegalArgumentException.class, () -> resid.decomposeResid(true))
                        .getMessage();
                assertTrue(decompose.startsWith("decomposeResid needs the cache entries hook_pos_embed,"
                        + " blocks.0.hook_mlp_out, blocks.1.hook_attn_out, blocks.1.hook_mlp_out,"
                        + " blocks.1.hook_resid_post, which this cache lacks"), decompose);
                assertTrue(decompose.contains("CacheSpec.all()"), decompose);
                assertTrue(decompose.contains("CacheSpec.only(\"hook_embed\", \"hook_pos_embed\", \"blocks.0.hook_attn_out\""),
                        decompose);
                assertMissing("blocks.1.hook_resid_post", () -> resid.applyLnToStack(Tensor.zeros(1, 2, 11, 32)));
                assertMissing("blocks.0.hook_resid_pre, blocks.1.hook_resid_pre, blocks.1.hook_resid_post",
                        () -> resid.accumulatedResid(false, false));
                assertMissing("blocks.0.hook_resid_pre, blocks.0.hook_resid_mid, blocks.1.hook_resid_pre,"
                        + " blocks.1.hook_resid_mid, blocks.1.hook_resid_post", () -> resid.accumulatedResid(true, true));
                assertMissing("blocks.0.attn.hook_z, blocks.1.attn.hook_z", () -> resid.stackHeadResults(false, false));
                assertMissing("blocks.0.attn.hook_z, blocks.1.attn.hook_z, blocks.1.hook_resid_post",
                        () -> resid.stackHeadResults(true, false));
                assertMissing("blocks.1.hook_resid_post", () -> resid.logitAttrs(Tensor.zeros(1, 2, 11, 32), ids));
            }
            // what the message names is enough
            try (ModelOutput out = model.forward(ids, CacheSpec.only("hook_embed", "hook_pos_embed",
                    "blocks.0.hook_attn_out", "blocks.0.hook_mlp_out", "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out",
                    "blocks.1.hook_resid_post"))) {
                assertEquals(6, new ResidualStream(model, out.cache()).decomposeResid(true).labels().size());
            }
        }
    }

    /**
     * As TransformerLens's {@code apply_ln_to_stack}, the stack is divided by the final norm's scale the pass cached,
     * a hook's replacement included (here, doubled): the normalised decomposition still sums to the pass's own
     * {@code ln_final.hook_normalized}, which is far from the unhooked reference's.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama"})
    void aStackIsDividedByTheFinalScaleThePassCached(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.runWithHooks(reference.tensor("input_ids").copy(), CacheSpec.all(),
                     HookedAutoModel.HookSpec.at("ln_final.hook_scale", (scale, name) -> scale.mul(2.0)))) {
            ResidualStream resid = new ResidualStream(model, out.cache());
            double[] normalized = withFinalNormBias(model, resid.decomposeResid(true).stack().sum(0, false)).toDoubleArray();
            double[] cached = out.cache().get("ln_final.hook_normalized").toDoubleArray();
            assertClose(cached, normalized, 1e-5, family + ": decomposition with the cached scale");
            double[] unhooked = reference.tensor("ln_final.hook_normalized").toDoubleArray();
            double furthest = 0;
            for (int i = 0; i < cached.length; i++) {
                furthest = Math.max(furthest, Math.abs(cached[i] - unhooked[i]));
            }
            assertTrue(furthest > 0.1, family + ": the doubled scale did not reach ln_final.hook_normalized");
        }
    }

    @Test
    void aBfloat16StackIsNormalisedInFloat32AndRoundedOnce() {
        Path dir = Fixtures.huggingFace("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor stack = resid.decomposeResid(false).stack();
            Tensor normalised = resid.applyLnToStack(stack);
            assertEquals(DType.BFLOAT16, normalised.dtype());
            int d = (int) stack.size(3);
            int rows = (int) (stack.numel() / d);
            int positions = rows / (int) stack.size(0);
            double[] parts = stack.toDoubleArray();
            double[] got = normalised.toDoubleArray();
            double[] fin = out.cache().get("blocks.1.hook_resid_post").toDoubleArray();
            double[] weight = model.weights().lnfw.toDoubleArray();
            double eps = model.config().architecture().normEps();
            for (int r = 0; r < rows; r++) {
                int p = r % positions; // the final stream's row that scales this component's row
                double scale = Math.sqrt(variance(fin, p * d, d) + eps);
                double mean = mean(parts, r * d, d);
                for (int j = 0; j < d; j++) {
                    double expected = (parts[r * d + j] - mean) / scale * weight[j];
                    double error = Math.abs(got[r * d + j] - expected);
                    // one rounding to bfloat16 (8 significant bits), plus float32's own
                    assertTrue(error <= Math.abs(expected) / 256 + 1e-6, "row " + r + " column " + j + ": " + got[r * d + j]
                            + " for " + expected);
                }
            }
        }
    }

    private static double mean(double[] x, int from, int n) {
        double sum = 0;
        for (int i = from; i < from + n; i++) {
            sum += x[i];
        }
        return sum / n;
    }

    private static double variance(double[] x, int from, int n) {
        double mean = mean(x, from, n);
        double sum = 0;
        for (int i = from; i < from + n; i++) {
            sum += (x[i] - mean) * (x[i] - mean);
        }
        return sum / n;
    }

    /** Was: an id past the vocabulary was refused by "embedding", naming neither logitAttrs nor its argument. */
    @Test
    void logitAttrsRefusesIdsOutsideTheVocabularyByName() {
        Path dir = Fixtures.huggingFace("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor parts = resid.decomposeResid(false).stack();
            int vocab = model.config().architecture().vocabSize();
            String message = assertThrows(IndexOutOfBoundsException.class,
                    () -> resid.logitAttrs(parts, oneId(vocab), oneId(0))).getMessage();
            assertTrue(message.startsWith("logitAttrs: the tokens must be ids of the vocabulary, [0, " + vocab + ")"),
                    message);
            message = assertThrows(IndexOutOfBoundsException.class,
                    () -> resid.logitAttrs(parts, oneId(0), oneId(-1))).getMessage();
            assertTrue(message.startsWith("logitAttrs: the incorrect tokens must be ids"), message);
        }
    }

    /** A 0-dim int64 id. */
    private static Tensor oneId(long id) {
        return Tensor.of(new long[] {id}).reshape();
    }

    @Test
    void aCacheOfAModelOfAnotherDepthIsRefused() {
        Path dir = Fixtures.huggingFace("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel two = HookedAutoModel.fromPretrained(dir);
             HookedAutoModel one = HookedAutoModel.create(two.config().with("n_layer", 1), 0, DType.FLOAT32, Device.CPU);
             ModelOutput out = two.forward(Fixtures.referenceInputIds(dir))) {
            String message = assertThrows(IllegalArgumentException.class, () -> new ResidualStream(one, out.cache()))
                    .getMessage();
            assertTrue(message.contains("through 2 blocks, the model has 1"), message);
        }
    }

    /** Of the same depth and head shape, but another width: its streams would meet this model's weights. */
    @Test
    void aCacheOfAModelOfAnotherWidthIsRefused() {
        HookedAutoConfig narrow = TinyConfigs.of("llama");
        HookedAutoConfig wide = narrow.with(Map.of("hidden_size", 64, "head_dim", narrow.dHead()));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel a = HookedAutoModel.create(narrow, 0, DType.FLOAT32, Device.CPU);
             HookedAutoModel b = HookedAutoModel.create(wide, 0, DType.FLOAT32, Device.CPU);
             ModelOutput out = b.forward(Tensor.of(new long[] {1, 2, 3}, 1, 3))) {
            String message = assertThrows(IllegalArgumentException.class, () -> new ResidualStream(a, out.cache()))
                    .getMessage();
            assertTrue(message.contains("[1, 3, 64]") && message.contains("d_model 32"), message);
        }
    }

    /**
     * gemma's final norm scales by 1 + w, which the pass forms in float32: a bfloat16 stream normalised as a stack of
     * one component is the norm's output to the bit (was: 1 + w rounded to bfloat16 first, a fifth of it off by one).
     */
    @Test
    void aReducedPrecisionGemmaStackIsRoundedOnce() {
        Path dir = Fixtures.huggingFace("gemma");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(Fixtures.referenceInputIds(dir))) {
            ResidualStream resid = new ResidualStream(model, out.cache());
            Tensor last = out.cache().get("blocks." + (model.config().nLayers() - 1) + ".hook_resid_post");
            Tensor normalized = resid.applyLnToStack(last.unsqueeze(0)).select(0, 0);
            assertEquals(0.0, normalized.to(DType.FLOAT32).sub(out.cache().get("ln_final.hook_normalized")
                    .to(DType.FLOAT32)).abs().max().item());
        }
    }

    private static void assertMissing(String names, org.junit.jupiter.api.function.Executable call) {
        String message = assertThrows(IllegalArgumentException.class, call).getMessage();
        assertTrue(message.contains("needs the cache entries " + names + ", which this cache lacks"), message);
    }

    /** The sum of normalised components plus the final norm's bias, where it has one: the norm's output. */
    private static Tensor withFinalNormBias(HookedAutoModel model, Tensor normalized) {
        Tensor bias = model.weights().lnfb;
        return bias == null ? normalized : normalized.add(bias);
    }

    /**
     * The logits of a normalised stream as the forward pass makes them: MiniCPM3's division, unembedding, bias, scale,
     * soft-cap.
     */
    private static Tensor logits(HookedAutoModel model, Tensor normalized) {
        Architecture a = model.config().architecture();
        Tensor logits = normalized.div(a.headInputDivisor()).matmul(model.W_U()).add(model.b_U()).mul(a.logitScale());
        return a.logitSoftcap() > 0 ? logits.div(a.logitSoftcap()).tanh().mul(a.logitSoftcap()) : logits;
    }

    /** A logit before the family's soft-cap, where it has one. */
    private static double uncapped(Architecture a, double logit) {
        double cap = a.logitSoftcap();
        if (cap <= 0) {
            return logit;
        }
        double x = logit / cap;
        return cap * 0.5 * Math.log((1 + x) / (1 - x));
    }

    /** The sum over the leading dimension, in double. */
    private static double[] sumOverComponents(Tensor stack) {
        double[] all = stack.toDoubleArray();
        int n = (int) stack.size(0);
        double[] sum = new double[all.length / n];
        for (int c = 0; c < n; c++) {
            for (int i = 0; i < sum.length; i++) {
                sum[i] += all[c * sum.length + i];
            }
        }
        return sum;
    }

    private static void assertClose(double[] expected, double[] actual, double tolerance, String what) {
        assertEquals(expected.length, actual.length, what + ": sizes");
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs(expected[i] - actual[i]) / Math.max(1.0, Math.abs(expected[i]));
            if (!(diff <= tolerance)) {
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}

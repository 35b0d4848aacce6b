package io.arrakis.model;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.CompositionScores.Mode;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.LayerShape;
import io.arrakis.model.family.MixtureOfExperts;
import io.arrakis.model.family.Rope;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Gemma 4's text model: {@code Gemma4TextConfig}'s defaults (their parameters counted by transformers on the meta
 * device), the full layers' heads from {@code per_layer_config} or the older keys, the refusals, the bfloat16 passes
 * against transformers', and the tools on layers whose heads differ in width. The float32 hooks of the {@code gemma4}
 * fixture (per-layer embeddings, full layers with values of their own) are checked by {@link ModelParityTest}, its
 * residual stream's decomposition by {@link ResidualStreamTest}; the hooks of {@code gemma4-k-eq-v} (full layers whose
 * values are their keys) and {@code gemma4-moe} (experts beside each block's MLP) here.
 */
class Gemma4Test {
    private static final Path FIXTURE = Fixtures.huggingFace("gemma4");
    private static final Path KEYS_AS_VALUES = Fixtures.HF.resolve("gemma4-k-eq-v");
    private static final Path EXPERTS = Fixtures.HF.resolve("gemma4-moe");
    private static final int D_MODEL = 32;
    private static final int HEADS = 4;

    @TempDir
    Path dir;

    /**
     * The defaults describe a 30-layer model whose every sixth layer is full, with heads of 512 there (global_head_dim)
     * and per-layer embeddings of 256. Its parameter count is transformers' ({@code Gemma4ForCausalLM} of the default
     * config on the meta device: 5,077,177,856) plus the 30 {@code layer_scalar} buffers its checkpoint holds.
     */
    @Test
    void defaultsAreGemma4TextConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("gemma4");
        Architecture a = c.architecture();
        assertEquals(List.of(2304, 30, 8, 4, 256, 9216), List.of(a.dModel(), a.nLayers(), a.nHeads(), a.nKvHeads(),
                a.dHead(), a.dMlp()));
        for (int l = 0; l < 30; l++) {
            boolean full = l % 6 == 5;
            assertEquals(full ? LayerAttention.FULL : LayerAttention.SLIDING, a.layerAttention().get(l), "layer " + l);
            // attention_k_eq_v is false by default, so num_global_key_value_heads does not apply
            assertEquals(new LayerShape(4, full ? 512 : 256, false, -1, 9216), a.layerShapes().get(l), "layer " + l);
        }
        assertEquals(new Architecture.PerLayerInputs(262_144, 256), a.perLayerInputs());
        assertEquals(512, c.widestHead());
        assertEquals(5_077_177_856L + 30, c.parameterCount());

        Rope sliding = a.rope(0);
        assertEquals(new Rope(256, 10_000.0, new Rope.Unscaled()), sliding);
        Rope full = a.rope(5);
        assertEquals(new Rope(512, 1_000_000.0, new Rope.Proportional(0.25, 1.0)), full);
        float[] inv = full.inverseFrequencies();
        assertEquals(256, inv.length);
        for (int i = 0; i < inv.length; i++) { // int(0.25 * 512 // 2) = 64 frequencies turn, over the whole head
            float expected = i < 64 ? (float) (1 / Math.pow(1_000_000.0, (float) (2 * i) / 512)) : 0f;
            assertEquals(expected, inv[i], Math.ulp(expected), "frequency " + i);
        }
    }

    @Test
    void theFullLayersKeysAreTheirValuesAsTransformersComputes() {
        ModelParityTest.assertParity(KEYS_AS_VALUES, "gemma4-k-eq-v", 20);
        HookedAutoConfig c = HookedAutoConfig.fromJson(KEYS_AS_VALUES.resolve("config.json"));
        assertTrue(c.architecture().valuesAreKeys(2) && !c.architecture().valuesAreKeys(1));
        try (SafeTensorsFile weights = SafeTensorsFile.open(KEYS_AS_VALUES.resolve("model.safetensors"))) {
            assertFalse(weights.names().contains("model.layers.2.self_attn.v_proj.weight"));
            assertEquals(weights.names().stream().mapToLong(n -> weights.info(n).numel()).sum(), c.parameterCount());
        }
    }

    /**
     * The experts beside each block's MLP: the router's logits, experts and weights (the per-expert scales make them
     * sum to other than 1), the block's MLP as their shared expert and the normalised sum as transformers computes
     * them; every tensor of the checkpoint read, the parameters counted as the file holds them.
     */
    @Test
    void theExpertsBesideEachMlpAreTransformers() {
        ModelParityTest.assertParity(EXPERTS, "gemma4-moe", 80);
        HookedAutoConfig c = HookedAutoConfig.fromJson(EXPERTS.resolve("config.json"));
        MixtureOfExperts moe = c.architecture().moe();
        assertEquals(List.of(4, 2, 48, 16, 16), List.of(moe.experts(), moe.topK(), moe.sharedWidth(), c.dMlp(),
                c.dMlp(4)));
        try (SafeTensorsFile weights = SafeTensorsFile.open(EXPERTS.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(EXPERTS)) {
            assertEquals(weights.names().stream().mapToLong(n -> weights.info(n).numel()).sum(), c.parameterCount());
            assertTrue(model.hookNames().containsAll(List.of("blocks.4.mlp.shared_expert.hook_post",
                    "blocks.4.mlp.experts.3.hook_pre", "blocks.4.mlp.hook_expert_weights")));
            assertFalse(model.hookNames().contains("blocks.4.mlp.hook_shared_expert_gate"));
            assertFalse(model.hookNames().contains("blocks.4.mlp.hook_pre"));
        }
    }

    /**
     * The default config with the 26B A4B model's experts (128 of 704, 8 per token; no per-layer embeddings, the full
     * layers' values their keys): transformers counts 21,670,120,960 parameters on the meta device, and the
     * checkpoint holds the 30 layer scalars besides. Each setting the experts need is asked for;
     * {@code use_double_wide_mlp}, which would widen their shared expert in the layers that share keys and values, is
     * refused where some do; Gemma 4's routing goes with its shared expert only.
     */
    @Test
    void theMixtureOfExpertsConfigsAreCountedAndChecked() {
        HookedAutoConfig c = HookedAutoConfig.of("gemma4").with(Map.of("enable_moe_block", true, "num_experts", 128,
                "top_k_experts", 8, "moe_intermediate_size", 704, "hidden_size_per_layer_input", 0,
                "attention_k_eq_v", true, "num_global_key_value_heads", 2));
        assertEquals(21_670_120_960L + 30, c.parameterCount());
        MixtureOfExperts moe = c.architecture().moe();
        assertEquals(List.of(128, 8, 9216, 704), List.of(moe.experts(), moe.topK(), moe.sharedWidth(), c.dMlp()));

        Map<String, Object> experts = Map.of("enable_moe_block", true, "num_experts", 4, "top_k_experts", 2,
                "moe_intermediate_size", 16);
        HookedAutoConfig tiny = TinyConfigs.of("gemma4");
        for (String key : experts.keySet()) {
            if (!key.equals("enable_moe_block")) {
                Map<String, Object> without = new LinkedHashMap<>(experts);
                without.remove(key);
                String m = assertThrows(IllegalArgumentException.class, () -> tiny.with(without)).getMessage();
                assertTrue(m.contains(key) && m.contains("enable_moe_block"), m);
            }
        }
        String m = assertThrows(IllegalArgumentException.class, () -> tiny.with(experts).with("top_k_experts", 5))
                .getMessage();
        assertTrue(m.contains("top_k_experts") && m.contains("num_experts = 4"), m);
        // three layers, the last full one sharing the first one's keys and values: valid, doubled, without experts
        HookedAutoConfig sharing = tiny.with(Map.of("num_hidden_layers", 3, "layer_types", List.of("full_attention",
                "sliding_attention", "full_attention"), "num_kv_shared_layers", 1, "use_double_wide_mlp", true));
        assertEquals(96, sharing.architecture().dMlp(2));
        m = assertThrows(IllegalArgumentException.class, () -> sharing.with(experts)).getMessage();
        assertTrue(m.contains("use_double_wide_mlp") && m.contains("shared expert"), m);
        assertEquals(48, tiny.with(experts).with("use_double_wide_mlp", true).architecture().moe().sharedWidth());
        assertThrows(IllegalArgumentException.class, () -> MixtureOfExperts.besideNormedMlp(4, 2, 48)
                .withSharedExpert(48));
    }

    /** transformers 5.17's model loaded in bfloat16, against ours: far closer than float32's logits are. */
    @Test
    void theBfloat16PassesAreTransformers() {
        for (Path fixture : List.of(FIXTURE, KEYS_AS_VALUES, EXPERTS)) {
            double[] d = Fixtures.bfloat16Distances(fixture, "logits");
            assertTrue(d[0] <= d[1] / 10, fixture + ": mean distance " + d[0] + ", float32's " + d[1]);
        }
    }

    /**
     * A file written before {@code per_layer_config} gives the full layers' heads by {@code global_head_dim} and, with
     * {@code attention_k_eq_v}, {@code num_global_key_value_heads}, as Gemma4TextConfig fills them in; transformers
     * counts 167,894 parameters, layer scalars included, for such a config of six layers.
     */
    @Test
    void anOlderConfigGivesTheFullLayersHeadsByItsGlobalKeys() throws Exception {
        Map<String, Object> file = config(KEYS_AS_VALUES);
        file.remove("per_layer_config");
        file.putAll(Map.of("global_head_dim", 16, "num_global_key_value_heads", 1));
        assertEquals(HookedAutoConfig.fromJson(KEYS_AS_VALUES.resolve("config.json")).architecture().layerShapes(),
                read(file).architecture().layerShapes());
        file.put("attention_k_eq_v", false); // the kv-head override is gated by it
        assertEquals(new LayerShape(2, 16, false, -1, 48), read(file).architecture().layerShapes().get(2));
        // given, even empty, the overrides are all there is: the full layers keep head_dim
        file.put("per_layer_config", Map.of());
        assertEquals(new LayerShape(2, 8, false, -1, 48), read(file).architecture().layerShapes().get(2));
        file.put("per_layer_config", null); // so would null be in transformers, which this library reads as absent
        String m = assertThrows(IllegalArgumentException.class, () -> read(file)).getMessage();
        assertTrue(m.contains("per_layer_config") && m.contains("{}"), m);

        Map<String, Object> older = new LinkedHashMap<>(Map.of("model_type", "gemma4_text", "hidden_size", 64,
                "num_hidden_layers", 6, "num_attention_heads", 4, "num_key_value_heads", 2, "head_dim", 8,
                "global_head_dim", 32, "num_global_key_value_heads", 1, "attention_k_eq_v", true));
        older.putAll(Map.of("hidden_size_per_layer_input", 0, "vocab_size", 100, "intermediate_size", 96));
        HookedAutoConfig c = read(older);
        assertEquals(167_894, c.parameterCount());
        assertEquals(new LayerShape(1, 32, true, -1, 96), c.architecture().layerShapes().get(5));
        assertEquals(new LayerShape(2, 8, false, -1, 96), c.architecture().layerShapes().get(4));
    }

    /** Forced full, the last layer gets the full layers' heads too (TinyConfigs' global_head_dim, 16). */
    @Test
    void theLastLayerAttendsToEverythingWhateverLayerTypesSays() {
        Architecture a = TinyConfigs.of("gemma4").with(Map.of("layer_types",
                List.of("sliding_attention", "sliding_attention"))).architecture();
        assertEquals(List.of(LayerAttention.SLIDING, LayerAttention.FULL), a.layerAttention());
        assertEquals(List.of(new LayerShape(2, 8, false, -1, 48), new LayerShape(2, 16, false, -1, 48)),
                a.layerShapes());
    }

    /** A top-level {@code partial_rotary_factor} fills in the proportional rope's, as standardize_rope_params does. */
    @Test
    void aTopLevelRotaryFractionIsTheProportionalRopes() {
        HookedAutoConfig c = TinyConfigs.of("gemma4");
        Map<String, Object> rope = Map.of("full_attention", Map.of("rope_type", "proportional", "rope_theta", 1e4),
                "sliding_attention", Map.of("rope_type", "default", "rope_theta", 1e4));
        assertEquals(new Rope.Proportional(0.5, 1.0), c.with(Map.of("rope_parameters", rope,
                "partial_rotary_factor", 0.5)).architecture().rope(1).scaling());
        assertEquals(new Rope.Proportional(1.0, 1.0), c.with(Map.of("rope_parameters", rope)).architecture().rope(1)
                .scaling());
    }

    /**
     * Path patching's default mode freezes every intermediate attention output and MLP, and the per-layer terms
     * beside the MLPs, which read the stream as they do: the effect on the receiver's query is what hooks that freeze
     * them all give, and differs from what they give with the per-layer terms left to recompute.
     */
    @Test
    void pathPatchingFreezesThePerLayerTermsWithTheMlps() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            Tensor clean = Tensor.of(new long[] {3, 14, 15, 9, 26, 5, 35, 8}, 1, 8);
            Tensor corrupted = Tensor.of(new long[] {3, 14, 15, 9, 26, 5, 35, 60}, 1, 8);
            PathPatching.Metric metric = PathPatching.Metric.logitDiff(7, 21);
            double patched = PathPatching.patch(model, clean, corrupted, Head.of(0, 2), Head.of(3, 1),
                    PathPatching.Route.Q, metric);
            assertEquals(byHooks(model, clean, corrupted, metric, true), patched, 1e-9);
            assertTrue(Math.abs(byHooks(model, clean, corrupted, metric, false) - patched) > 1e-6, "" + patched);
        }
    }

    /** Sender L0H2's corrupted z, to receiver L3H1's normalised query, what lies between frozen to clean. */
    private static double byHooks(HookedAutoModel model, Tensor clean, Tensor corrupted, PathPatching.Metric metric,
                                  boolean freezePerLayerTerms) {
        List<String> frozen = new ArrayList<>();
        for (int l = 0; l < 3; l++) {
            frozen.add("blocks." + l + ".hook_mlp_out");
            if (l > 0) {
                frozen.add("blocks." + l + ".hook_attn_out");
            }
            if (freezePerLayerTerms) {
                frozen.add("blocks." + l + ".hook_per_layer_out");
            }
        }
        return PathPatchingByHooks.queryEffect(model, clean, corrupted, metric, Head.of(0, 2), Head.of(3, 1), frozen);
    }

    /**
     * The scores of heads of different widths, sliding layers' of 8 and full layers' of 16, are the definition's,
     * computed in float64 from the checkpoint's tensors (query and key maps times their norms' weights, the output
     * map times the attention output norm's; a full layer's value map is its key projection).
     */
    @Test
    void compositionScoresAreTheDefinitionAcrossHeadWidths() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile t = SafeTensorsFile.open(KEYS_AS_VALUES.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(KEYS_AS_VALUES)) {
            int layers = model.config().nLayers();
            for (Mode mode : Mode.values()) {
                double[] s = CompositionScores.allPairs(model, mode).toDoubleArray();
                int checked = 0;
                for (int l1 = 0; l1 < layers; l1++) {
                    for (int l2 = l1 + 1; l2 < layers; l2++) {
                        for (int h1 = 0; h1 < HEADS; h1++) {
                            for (int h2 = 0; h2 < HEADS; h2++) {
                                double v = s[((l1 * HEADS + h1) * layers + l2) * HEADS + h2];
                                assertEquals(definition(t, model.config(), mode, l1, h1, l2, h2), v, 1e-6,
                                        mode + " L" + l1 + "H" + h1 + " -> L" + l2 + "H" + h2);
                                checked++;
                            }
                        }
                    }
                }
                assertEquals(10 * HEADS * HEADS, checked);
                assertEquals(definition(t, model.config(), mode, 1, 3, 2, 0),
                        CompositionScores.pair(model, Head.of(1, 3), Head.of(2, 0), mode), 1e-7, mode.name());
            }
        }
    }

    /**
     * The baseline of heads of two widths (sliding layers' 2, full layers' 32) samples each pair of widths as often
     * as the model's pairs of layers have it (the shares: {@code CompositionScoresTest}): its mean lies between those
     * of models whose heads all have one of the widths, and is neither.
     */
    @Test
    void theBaselineSamplesThePairsOfWidthsTheModelHas() {
        HookedAutoConfig mixed = TinyConfigs.of("gemma4").with(Map.of("num_hidden_layers", 5, "layer_types",
                List.of("sliding_attention", "sliding_attention", "full_attention", "sliding_attention",
                        "full_attention"), "head_dim", 2, "global_head_dim", 32));
        double narrow = baselineMean(mixed.with(Map.of("per_layer_config", Map.of())));
        double wide = baselineMean(mixed.with(Map.of("head_dim", 32, "per_layer_config", Map.of())));
        double both = baselineMean(mixed);
        // random heads compose nearly alike whatever their rank: the pure models' means are close, and the mixed one's,
        // drawn in shares by the same generator, is neither of them (it would be one where its samples took one width)
        assertTrue(narrow < both && both < wide, narrow + " < " + both + " < " + wide);
        assertTrue(both - narrow > 1e-4 && wide - both > 1e-4, narrow + " < " + both + " < " + wide);
    }

    private static double baselineMean(HookedAutoConfig config) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 3, DType.FLOAT32, io.arrakis.torch.Device.CPU);
             CompositionScores.Result r = CompositionScores.compute(model, Mode.Q,
                     CompositionScores.Options.builder().baseline(true).baselineSamples(400).build())) {
            return r.baselineMean();
        }
    }

    /**
     * In the {@code gemma4} fixture the last two layers attend to the keys and values of layers 1 and 2 (the last
     * earlier sliding and full ones), project none and have MLPs twice as wide; their scores take those layers' key
     * and value maps, and their K- and V-composition scores are 0 from senders at or after those layers, whose output
     * the keys and values never see. Their own key and value weights, composites and K and V path patching are
     * refused, naming the layer they share.
     */
    @Test
    void layersThatShareKeysAndValuesReadThemFromTheLayerTheyShare() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile t = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            HookedAutoConfig c = model.config();
            assertEquals(List.of(0, 1, 2, 1, 2), java.util.stream.IntStream.range(0, 5).map(c::keysFrom).boxed()
                    .toList());
            assertEquals(List.of(48, 48, 48, 96, 96), java.util.stream.IntStream.range(0, 5)
                    .map(c.architecture()::dMlp).boxed().toList());
            for (Mode mode : Mode.values()) {
                double[] s = CompositionScores.allPairs(model, mode).toDoubleArray();
                int zero = 0;
                for (int l1 = 0; l1 < 5; l1++) {
                    for (int l2 = l1 + 1; l2 < 5; l2++) {
                        boolean unseen = mode != Mode.Q && l1 >= c.keysFrom(l2);
                        for (int h1 = 0; h1 < HEADS; h1++) {
                            for (int h2 = 0; h2 < HEADS; h2++) {
                                double v = s[((l1 * HEADS + h1) * 5 + l2) * HEADS + h2];
                                String pair = mode + " L" + l1 + "H" + h1 + " -> L" + l2 + "H" + h2;
                                assertEquals(unseen ? 0.0 : definition(t, c, mode, l1, h1, l2, h2), v, 1e-6, pair);
                                zero += unseen ? 1 : 0;
                            }
                        }
                    }
                }
                // senders 1 and 2 to layer 3 (which reads layer 1), 2 and 3 to layer 4 (which reads layer 2)
                assertEquals(mode == Mode.Q ? 0 : 4 * HEADS * HEADS, zero, mode.name());
                assertEquals(mode == Mode.Q ? definition(t, c, mode, 2, 1, 3, 0) : 0.0,
                        CompositionScores.pair(model, Head.of(2, 1), Head.of(3, 0), mode), 1e-7, mode.name());
            }
            String m = assertThrows(UnsupportedOperationException.class, () -> model.W_K(3, false)).getMessage();
            assertTrue(m.contains("layer 1's"), m);
            m = assertThrows(IllegalArgumentException.class, () -> new AttentionComposer(model)
                    .headComposition(Head.of(4, 0), Head.of(4, 1))).getMessage();
            assertTrue(m.contains("layer 2's"), m);
            Tensor ids = Tensor.of(new long[] {3, 14, 15, 9, 26}, 1, 5);
            m = assertThrows(IllegalArgumentException.class, () -> PathPatching.patch(model, ids, ids, Head.of(0, 0),
                    Head.of(3, 0), PathPatching.Route.K, PathPatching.Metric.logitDiff(7, 21))).getMessage();
            assertTrue(m.contains("layer 1's"), m);
            assertFalse(model.hookNames().contains("blocks.3.attn.hook_k"));
        }
    }

    /**
     * With the attention-input norms folded in, a sharing layer's keys carry the norm of the layer whose stream they
     * are made from (layer 1's for layer 3), its queries its own; the attention page patches, by default, the last
     * layer with keys and values of its own, every route.
     */
    @Test
    void aSharingLayersKeysFoldTheNormOfTheLayerTheyAreMadeIn() {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile t = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(FIXTURE)) {
            HookedAutoConfig c = model.config();
            Tensor ov = wv(t, c, 0, 0).mul(norm(t, 0)).matmul(wo(t, c, 0, 0));
            Tensor qk = wq(t, c, 3, 0).mul(norm(t, 3)).matmul(wk(t, c, 3, 0).mul(norm(t, 1)).transpose(0, 1));
            double expected = ov.matmul(qk.transpose(0, 1)).norm().item() / (ov.norm().item() * qk.norm().item());
            assertEquals(expected, CompositionScores.pair(model, Head.of(0, 0), Head.of(3, 0), Mode.K,
                    CompositionScores.Options.builder().foldLn(true).build()), 1e-7);

            Tensor ids = Tensor.of(new long[] {3, 14, 15, 9, 26}, 1, 5);
            Tensor corrupted = Tensor.of(new long[] {3, 14, 15, 9, 60}, 1, 5);
            io.arrakis.view.AttentionView view = io.arrakis.view.AttentionView.of(model, ids,
                    io.arrakis.view.AttentionView.Options.defaults().withPatching(corrupted, 7, 21, List.of(),
                            List.of()));
            List<?> effects = (List<?>) ((Map<?, ?>) view.data().get("patching")).get("effects");
            assertEquals(HEADS * 3, effects.size());
            assertTrue(effects.stream().allMatch(e -> ((String) ((Map<?, ?>) e).get("receiver")).startsWith("L2H")),
                    effects.toString());
        }
    }

    /** A layer's attention-input norm weight as a column {@code [d_model, 1]}, which multiplies a map's rows. */
    private static Tensor norm(SafeTensorsFile t, int layer) {
        return tensor(t, layer, "input_layernorm.weight").view(D_MODEL, 1);
    }

    /**
     * Sharing layers' MLPs are twice as wide only with use_double_wide_mlp; a checkpoint that still holds their key
     * and value projections and norms loads (transformers ignores them too) and computes the same logits.
     */
    @Test
    void sharingLayersMlpWidthAndLeftoverProjections() throws Exception {
        Map<String, Object> file = config(FIXTURE);
        file.put("use_double_wide_mlp", false);
        assertEquals(48, read(file).architecture().dMlp(3));
        Path copy = dir.resolve("leftovers");
        Files.createDirectories(copy);
        Files.copy(FIXTURE.resolve("config.json"), copy.resolve("config.json"));
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"))) {
            for (String name : weights.names()) {
                tensors.put(name, weights.tensor(name));
            }
            for (String left : List.of("k_proj.weight", "v_proj.weight", "k_norm.weight")) {
                Tensor own = weights.tensor("model.layers.1.self_attn." + left);
                tensors.put("model.layers.3.self_attn." + left, own);
            }
            SafeTensorsWriter.write(copy.resolve("model.safetensors"), tensors, Map.of());
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(copy)) {
                assertArrayEquals(reference.tensor("logits").toFloatArray(),
                        model.runWithHooks(reference.tensor("input_ids")).toFloatArray(), 1e-4f);
            }
        }
    }

    /** The score of one pair from the checkpoint's tensors, as the published definition states it, in float64. */
    private static double definition(SafeTensorsFile t, HookedAutoConfig c, Mode mode, int l1, int h1, int l2,
                                      int h2) {
        Tensor ov = wv(t, c, l1, h1).matmul(wo(t, c, l1, h1));
        Tensor qk = wq(t, c, l2, h2).matmul(wk(t, c, l2, h2).transpose(0, 1));
        Tensor r = switch (mode) {
            case Q -> qk;
            case K -> qk.transpose(0, 1);
            case V -> wv(t, c, l2, h2).matmul(wo(t, c, l2, h2));
        };
        return ov.matmul(r).norm().item() / (ov.norm().item() * r.norm().item());
    }

    private static Tensor tensor(SafeTensorsFile t, int layer, String name) {
        return t.tensor("model.layers." + layer + "." + name).to(DType.FLOAT64);
    }

    /** Rows {@code [d_head, d_model]} of head {@code h} of a projection with {@code heads} heads. */
    private static Tensor rows(SafeTensorsFile t, HookedAutoConfig c, int layer, String name, int heads, int h) {
        return tensor(t, layer, "self_attn." + name).view(heads, c.dHead(layer), D_MODEL).select(0, h);
    }

    private static Tensor wq(SafeTensorsFile t, HookedAutoConfig c, int layer, int h) {
        return rows(t, c, layer, "q_proj.weight", HEADS, h).transpose(0, 1)
                .mul(tensor(t, layer, "self_attn.q_norm.weight").view(1, -1));
    }

    /** The key map of head h's key/value head, times the key norm's weight: the layer's whose keys it reads. */
    private static Tensor wk(SafeTensorsFile t, HookedAutoConfig c, int layer, int h) {
        int from = c.keysFrom(layer);
        int kv = c.nKvHeads(from);
        return rows(t, c, from, "k_proj.weight", kv, h / (HEADS / kv)).transpose(0, 1)
                .mul(tensor(t, from, "self_attn.k_norm.weight").view(1, -1));
    }

    private static Tensor wv(SafeTensorsFile t, HookedAutoConfig c, int layer, int h) {
        int from = c.keysFrom(layer);
        int kv = c.nKvHeads(from);
        String values = c.architecture().valuesAreKeys(from) ? "k_proj.weight" : "v_proj.weight";
        return rows(t, c, from, values, kv, h / (HEADS / kv)).transpose(0, 1);
    }

    /** Head h's output map {@code [d_head, d_model]}, times the attention output norm's weight. */
    private static Tensor wo(SafeTensorsFile t, HookedAutoConfig c, int layer, int h) {
        int d = c.dHead(layer);
        return tensor(t, layer, "self_attn.o_proj.weight").narrow(1, (long) h * d, d).transpose(0, 1)
                .mul(tensor(t, layer, "post_attention_layernorm.weight").view(1, D_MODEL));
    }

    /**
     * Per-layer weights keep each layer's width, stacked ones are refused, and so are composites and weight swaps of
     * two heads of different widths.
     */
    @Test
    void headsOfDifferentWidthsAreNotMixed() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(KEYS_AS_VALUES)) {
            assertArrayEquals(new long[] {HEADS, D_MODEL, 16}, model.W_Q(2).shape());
            assertArrayEquals(new long[] {1, D_MODEL, 16}, model.W_K(2, false).shape());
            assertArrayEquals(new long[] {HEADS, D_MODEL, 16}, model.W_V(2, true).shape());
            assertArrayEquals(new long[] {HEADS, 8, D_MODEL}, model.W_O(1).shape());
            assertArrayEquals(model.W_K(2, false).toFloatArray(), model.W_V(2, false).toFloatArray());
            String m = assertThrows(UnsupportedOperationException.class, model::W_Q).getMessage();
            assertTrue(m.contains("different widths"), m);
            AttentionComposer composer = new AttentionComposer(model);
            m = assertThrows(IllegalArgumentException.class, () -> composer.headComposition(Head.of(1, 0),
                    Head.of(2, 0))).getMessage();
            assertTrue(m.contains("8 and 16"), m);
            Tensor ids = Tensor.of(new long[] {5, 17, 2, 40, 9, 33}, 1, 6);
            assertThrows(IllegalArgumentException.class, () -> composer.attentionPathPatching(ids, Head.of(2, 1),
                    Head.of(0, 1)));
            // a composite of one head with itself is that head's term of the attention output, values normalised
            try (AttentionComposer.HeadComposition self = composer.headComposition(Head.of(2, 1), Head.of(2, 1), 1.0);
                 ModelOutput out = model.forward(ids)) {
                Tensor z = out.cache().get("blocks.2.attn.hook_z").select(2, 1); // [batch, pos, d_head]
                Tensor expected = z.matmul(model.W_O(2).select(0, 1));
                assertArrayEquals(expected.toFloatArray(), composer.applyComposedHead(ids, self).toFloatArray(), 1e-5f);
            }
        }
    }

    /**
     * Gemma4ForConditionalGeneration's checkpoint (its config's text model in {@code text_config}, its tensors under
     * {@code model.language_model.} beside the vision tower's and its embedder's, the head tied by the whole model's
     * key) runs text as its text model does, but for its media placeholders, which its model embeds as the padding
     * token in every pass.
     */
    @Test
    void theMultimodalCheckpointRunsAsItsTextModel() throws Exception {
        Map<String, Object> top = new LinkedHashMap<>(Map.of("model_type", "gemma4", "text_config", config(FIXTURE),
                "vision_config", Map.of("model_type", "gemma4_vision", "hidden_size", 16), "image_token_id", 95,
                "audio_token_id", 91, "video_token_id", 92)); // none of them among the reference's ids
        Files.writeString(dir.resolve("config.json"), Json.write(top));
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(FIXTURE.resolve("model.safetensors"));
             SafeTensorsFile reference = SafeTensorsFile.open(FIXTURE.resolve("reference.safetensors"))) {
            for (String name : weights.names()) {
                tensors.put("model.language_model." + name.substring("model.".length()), weights.tensor(name));
            }
            tensors.put("model.vision_tower.encoder.weight", Tensor.zeros(new long[] {2}, DType.FLOAT32,
                    io.arrakis.torch.Device.CPU));
            tensors.put("model.embed_vision.embedding_projection.weight", Tensor.zeros(new long[] {2},
                    DType.FLOAT32, io.arrakis.torch.Device.CPU));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of());
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                assertEquals("gemma4", model.config().family());
                assertArrayEquals(reference.tensor("logits").toFloatArray(),
                        model.runWithHooks(reference.tensor("input_ids")).toFloatArray(), 1e-4f);
                // its media placeholders are embedded as the padding token, per-layer embeddings too
                Tensor asPadding = model.runWithHooks(Tensor.of(new long[] {5, 0, 11, 0, 13, 0}, 1, 6));
                assertArrayEquals(asPadding.toFloatArray(), model.runWithHooks(Tensor.of(new long[] {5, 95, 11, 91, 13,
                        92}, 1, 6)).toFloatArray());
                assertFalse(asPadding.allclose(model.runWithHooks(Tensor.of(new long[] {5, 95, 11, 91, 13, 93}, 1, 6)),
                        1e-3, 1e-3), "a token that is no placeholder");
            }
        }
    }

    private static Map<String, Object> config(Path fixture) throws Exception {
        @SuppressWarnings("unchecked")
        Map<String, Object> file = (Map<String, Object>) Json.parse(Files.readString(fixture.resolve("config.json")));
        return new LinkedHashMap<>(file);
    }

    private HookedAutoConfig read(Map<String, Object> file) throws Exception {
        Path json = dir.resolve("config.json");
        Files.writeString(json, Json.write(file));
        return HookedAutoConfig.fromJson(json);
    }
}

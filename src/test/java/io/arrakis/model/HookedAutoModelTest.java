package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HookedAutoModelTest {

    private static HookedAutoConfig tinyLlama(int kvHeads) {
        return HookedAutoConfig.of("llama").with(Map.of("hidden_size", 32, "num_hidden_layers", 2, "num_attention_heads", 4,
                "num_key_value_heads", kvHeads, "intermediate_size", 48, "vocab_size", 64, "max_position_embeddings", 16));
    }

    private static HookedAutoConfig tinyGpt2() {
        return HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 32, "n_layer", 2, "n_head", 4, "vocab_size", 64,
                "n_positions", 16));
    }

    private static Tensor ids(long... values) {
        return Tensor.of(values, 1, values.length);
    }

    @Test
    void drawingRandomWeightsReportsEveryParameterOnce() {
        HookedAutoConfig config = TinyConfigs.of("llama");
        List<long[]> reports = new java.util.ArrayList<>();
        try (HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU,
                (done, total) -> reports.add(new long[] {done, total}))) {
            assertFalse(reports.isEmpty());
            long total = reports.get(0)[1];
            assertEquals(config.parameterCount(), total);
            for (int i = 1; i < reports.size(); i++) {
                assertTrue(reports.get(i)[0] > reports.get(i - 1)[0], "done only grows");
                assertEquals(total, reports.get(i)[1]);
            }
            assertEquals(total, reports.get(reports.size() - 1)[0], "ends at the total");
        }
    }

    /** Was: "tensor 0x… was closed and can no longer be used", naming neither the hook point nor the scope. */
    @Test
    void aCacheReadAfterTheScopeAroundItsPassClosedSaysSo() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 0, DType.FLOAT32, Device.CPU);
             Tensor input = ids(1, 2, 3)) {
            ModelOutput out;
            try (io.arrakis.torch.TensorScope scope = io.arrakis.torch.TensorScope.open()) {
                out = model.forward(input);
                out.cache().get("blocks.0.hook_resid_post").close(); // one entry closed by hand
                IllegalStateException one = assertThrows(IllegalStateException.class,
                        () -> out.cache().get("blocks.0.hook_resid_post"));
                assertEquals("the activation cache's entry 'blocks.0.hook_resid_post' was closed", one.getMessage());
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> out.cache().stack("hook_resid_pre"));
            assertTrue(e.getMessage().contains("'blocks.0.hook_resid_pre' among them, were freed when the TensorScope"
                    + " open around its forward pass closed"), e.getMessage());
            out.close();
        }
    }

    @Test
    void aClosedModelSaysSoWhenRun() {
        HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 0, DType.FLOAT32, Device.CPU);
        model.close();
        try (Tensor ids = Tensor.of(new long[] {1, 2}, 1, 2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.forward(ids));
            assertTrue(e.getMessage().contains("model is closed"), e.getMessage());
        }
    }

    @Test
    void cacheSpecKeepsWhatItNames() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 1, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3, 4);
            try (ModelOutput all = model.forward(input)) {
                assertEquals(model.hookNames(), all.cache().names());
                List<String> order = List.copyOf(model.hookNames()); // in the order the forward pass reaches them
                assertEquals("hook_embed", order.get(0));
                assertEquals(List.of("ln_final.hook_normalized", "logits"), order.subList(order.size() - 2, order.size()));
                assertTrue(order.indexOf("blocks.0.hook_resid_pre") < order.indexOf("blocks.0.attn.hook_pattern"));
                assertTrue(order.indexOf("blocks.0.hook_resid_post") < order.indexOf("blocks.1.hook_resid_pre"));
                assertArrayEquals(new long[] {1, 4, 64}, all.logits().shape());
                try (Tensor stacked = all.cache().stack("hook_resid_post")) {
                    assertArrayEquals(new long[] {2, 1, 4, 32}, stacked.shape());
                }
                // resid_post of block 0 is resid_pre of block 1: removing one entry must leave the other readable
                all.cache().remove("blocks.0.hook_resid_post");
                assertEquals(4 * 32, all.cache().toFloatArray("blocks.1.hook_resid_pre").length);
            }
            try (ModelOutput none = model.forward(input, CacheSpec.none())) {
                assertEquals(0, none.cache().size());
            }
            try (ModelOutput one = model.forward(input, CacheSpec.only("blocks.1.attn.hook_pattern",
                    "blocks.1.attn.hook_pattern"))) { // a name given twice is cached once
                assertEquals(Set.of("blocks.1.attn.hook_pattern"), one.cache().names());
                assertArrayEquals(new long[] {1, 4, 4, 4}, one.cache().get("blocks.1.attn.hook_pattern").shape());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.forward(input, CacheSpec.only("blocks.9.hook_resid_post")));
            assertTrue(e.getMessage().contains("blocks.9.hook_resid_post"), e.getMessage());
        }
    }

    /** With every attention and MLP output zeroed, the logits are the unembedded final norm of the embeddings alone. */
    @Test
    void ablatingEveryBlockLeavesTheDirectPath() {
        HookedAutoConfig config = tinyGpt2();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(config, 2, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(5, 9, 2);
            Hook zero = (activation, name) -> Tensor.zeros(activation.shape(), activation.dtype(), activation.device());
            Tensor ablated = model.runWithHooks(input,
                    HookedAutoModel.HookSpec.matching(n -> n.endsWith("hook_attn_out") || n.endsWith("hook_mlp_out"), zero));
            try (ModelOutput out = model.forward(input)) {
                Tensor embedded = out.cache().get("hook_embed").add(out.cache().get("hook_pos_embed"));
                Weights w = model.weights();
                Tensor expected = embedded.layerNorm(w.lnfw, w.lnfb, config.normEps()).matmul(w.unembed);
                assertTrue(ablated.allclose(expected, 1e-5, 1e-5), "ablated logits are not the direct path");
                assertFalse(ablated.allclose(out.logits(), 1e-3, 1e-3), "ablation changed nothing");
            }
        }
    }

    @Test
    void hooksReplaceActivationsOnlyWhileTheyAreAdded() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyLlama(2), 3, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3, 4, 5);
            Tensor clean = model.runWithHooks(input);
            // uniform causal attention in block 0
            Hook uniform = (pattern, name) -> {
                long n = pattern.size(-1);
                Tensor causal = Tensor.ones(new long[] {n, n}, DType.FLOAT32, Device.CPU).tril(0);
                return causal.div(causal.sum(-1, true)).expand(pattern.shape()).contiguous();
            };
            int[] calls = {0};
            try (HookedAutoModel.HookHandle handle = model.addHook(HookedAutoModel.HookSpec.at("blocks.0.attn.hook_pattern",
                    (a, name) -> {
                        calls[0]++;
                        return uniform.apply(a, name);
                    }))) {
                try (ModelOutput out = model.forward(input)) {
                    Tensor p = out.cache().get("blocks.0.attn.hook_pattern");
                    assertEquals(1.0 / 3, p.select(0, 0).select(0, 0).select(0, 2).narrow(0, 0, 1).item(), 1e-6);
                    assertFalse(out.logits().allclose(clean, 1e-4, 1e-4));
                }
            }
            assertEquals(1, calls[0]);
            assertTrue(model.runWithHooks(input).allclose(clean, 0, 0), "a closed hook still runs");
            IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class, () -> model.runWithHooks(input,
                    HookedAutoModel.HookSpec.at("blocks.1.hook_mlp_out", (a, n) -> Tensor.zeros(2, 2))));
            assertTrue(wrong.getMessage().contains("blocks.1.hook_mlp_out"), wrong.getMessage());
            assertThrows(IllegalArgumentException.class, () -> model.addHook(HookedAutoModel.HookSpec.at("blocks.7.nothing", uniform)));
        }
    }

    /** Were: NullPointerExceptions from inside the pass ("because this.keep is null"). */
    @Test
    void aNullCacheSpecOrFilterIsNamed() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            assertEquals("filter", assertThrows(NullPointerException.class, () -> CacheSpec.matching(null)).getMessage());
            assertEquals("spec", assertThrows(NullPointerException.class, () -> model.forward(ids(1, 2), null))
                    .getMessage());
            assertEquals("spec", assertThrows(NullPointerException.class, () -> model.runWithHooks(ids(1, 2),
                    (CacheSpec) null)).getMessage());
        }
    }

    /**
     * Was: a hook that masks a query's every key (-inf for key 0, all query 0 may see) made its softmax NaN, which
     * reached every logit through the later queries' attention to key 0. TransformerLens sets such a row of the
     * pattern to 0 ({@code abstract_attention.py}), so the query's z is 0 and the logits stay finite.
     */
    @Test
    void aRowAHookMasksWholeIsAZeroPatternAsInTransformerLens() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            int pos = 4;
            boolean[] firstKey = new boolean[pos * pos];
            for (int q = 0; q < pos; q++) {
                firstKey[q * pos] = true;
            }
            Tensor noFirstKey = Tensor.of(firstKey, 1, 1, pos, pos);
            try (ModelOutput out = model.runWithHooks(ids(5, 6, 7, 8), CacheSpec.all(), HookedAutoModel.HookSpec.at(
                    "blocks.0.attn.hook_attn_scores", (scores, n) -> scores.maskedFill(noFirstKey, Double.NEGATIVE_INFINITY)))) {
                Tensor pattern = out.cache().get("blocks.0.attn.hook_pattern"); // [1, heads, pos, pos]
                assertEquals(0.0, pattern.narrow(2, 0, 1).abs().max().item(), "query 0's row");
                assertEquals(0.0, pattern.narrow(3, 0, 1).abs().max().item(), "key 0's column");
                Tensor rows = pattern.narrow(2, 1, pos - 1).sum(-1, false);
                assertEquals(0.0, rows.sub(1.0).abs().max().item(), 1e-6, "the other rows sum to 1");
                assertEquals(0.0, out.cache().get("blocks.0.attn.hook_z").narrow(1, 0, 1).abs().max().item());
                assertFalse(Double.isNaN(out.logits().abs().max().item()), "finite logits");
            }
        }
    }

    /**
     * Was: a hook that left a scope open failed the pass with a message about keep, and left the pass's scope open on
     * the thread for good, the hook's current: every later tensor of the thread went into it.
     */
    @Test
    void aHookThatLeavesAScopeOpenIsNamedAndTheThreadsScopesAreAsBefore() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3);
            Tensor[] made = new Tensor[1];
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.runWithHooks(input,
                    HookedAutoModel.HookSpec.at("blocks.0.hook_resid_pre", (a, n) -> {
                        TensorScope.open(); // never closed
                        made[0] = Tensor.ones(2);
                        return null;
                    })));
            assertTrue(e.getMessage().startsWith("the hook at blocks.0.hook_resid_pre left 1 TensorScope(s) open"),
                    e.getMessage());
            assertTrue(made[0].isClosed(), "freed with the scope it was made in");
            assertEquals(0, scope.closeInnerScopes(), "this test's scope is the thread's innermost again");
            Tensor after = Tensor.ones(1);
            scope.keep(after); // would fail were it another scope's
            after.close();
            assertTrue(model.runWithHooks(input).allclose(model.runWithHooks(input), 0, 0));
        }
    }

    /**
     * Was: a hook that opened a scope and threw left that scope and the pass's open on the thread, two more a failure:
     * every later tensor of the thread went into the hook's scope, never to be freed before the thread ended.
     */
    @Test
    void aHookThatThrowsWithAScopeOpenLeavesTheThreadsScopesAsBefore() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3);
            Tensor[] made = new Tensor[1];
            IllegalArgumentException thrown = new IllegalArgumentException("the hook's own failure");
            assertSame(thrown, assertThrows(IllegalArgumentException.class, () -> model.runWithHooks(input,
                    HookedAutoModel.HookSpec.at("blocks.0.hook_mlp_out", (a, n) -> {
                        TensorScope.open(); // never closed
                        made[0] = a.mul(3.0);
                        throw thrown;
                    }))));
            assertEquals(0, thrown.getSuppressed().length, "the pass's scope closed in order");
            assertTrue(made[0].isClosed(), "freed with the scope it was made in");
            assertEquals(0, scope.closeInnerScopes(), "this test's scope is the thread's innermost again");
            Tensor after = Tensor.ones(1);
            scope.keep(after); // would fail were it another scope's
            after.close();
        }
    }

    /**
     * Was: a replacement a hook made outside the pass was handed out as the pass's own, so closing the output closed
     * the hook's tensor (the next pass then failed, blaming the hook), and the cached logits were the output's
     * logits, so removing them from the cache closed {@code logits()}.
     */
    @Test
    void closingAnOutputClosesOnlyWhatThePassMade() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3, 4);
            Tensor patch = Tensor.zeros(new long[] {1, 4, 32}, DType.FLOAT32, Device.CPU);
            try (HookedAutoModel.HookHandle handle = model.addHook(HookedAutoModel.HookSpec.at("blocks.0.hook_mlp_out",
                    (a, n) -> patch))) {
                model.forward(input).close();
                assertFalse(patch.isClosed(), "the hook's tensor is its owner's");
                try (ModelOutput again = model.forward(input)) {
                    assertEquals(0.0, again.cache().get("blocks.0.hook_mlp_out").abs().max().item());
                }
            }
            try (ModelOutput clean = model.forward(input);
                 ModelOutput patched = model.runWithHooks(input, CacheSpec.all(),
                         HookedAutoModel.HookSpec.at("blocks.1.hook_resid_pre", (a, n) -> clean.cache().get(n)))) {
                patched.close();
                assertFalse(clean.cache().get("blocks.1.hook_resid_pre").isClosed());
                clean.cache().remove("logits");
                assertFalse(clean.logits().isClosed(), "the logits outlive their cache entry");
                assertEquals(4 * 64, clean.logits().numel());
            }
        }
    }

    /**
     * The cache's JSON keeps float64 entries at full precision and integer ones as integers (were float32 and
     * 3.0), its names are a copy (removing while iterating threw), and a closed cache says it is closed.
     */
    @Test
    void theCacheKeepsPrecisionAndSaysWhenItIsClosed() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT64, Device.CPU)) {
            ModelOutput out = model.forward(ids(1, 2, 3));
            Tensor resid = out.cache().get("blocks.0.hook_resid_post");
            double first = resid.toDoubleArray()[0];
            Map<?, ?> json = (Map<?, ?>) io.arrakis.json.Json.parse(out.cache().toJson(List.of("blocks.0.hook_resid_post")));
            Object value = ((List<?>) ((Map<?, ?>) json.get("blocks.0.hook_resid_post")).get("data")).get(0);
            assertEquals(first, ((Number) value).doubleValue(), 0.0, "float64 at full precision");
            for (String name : out.cache().names()) {
                if (name.startsWith("blocks.1.")) {
                    out.cache().remove(name);
                }
            }
            assertFalse(out.cache().contains("blocks.1.hook_resid_post"));
            out.close();
            ActivationCache closed = out.cache();
            // every read says so: a closed cache must not pass for one without the entry
            for (org.junit.jupiter.api.function.Executable read : List.<org.junit.jupiter.api.function.Executable>of(
                    () -> closed.get("blocks.0.hook_resid_post"), () -> closed.contains("blocks.0.hook_resid_post"),
                    closed::names, closed::size, () -> closed.remove("blocks.0.hook_resid_post"),
                    () -> closed.toJson(List.of()))) {
                IllegalStateException e = assertThrows(IllegalStateException.class, read);
                assertTrue(e.getMessage().contains("closed"), e.getMessage());
            }
        }
        HookedAutoConfig moe = TinyConfigs.of("mixtral");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(moe, 3, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(ids(1, 2, 3))) {
            Map<?, ?> json = (Map<?, ?>) io.arrakis.json.Json.parse(out.cache().toJson(
                    List.of("blocks.0.mlp.hook_expert_indices")));
            Object index = ((List<?>) ((Map<?, ?>) json.get("blocks.0.mlp.hook_expert_indices")).get("data")).get(0);
            assertTrue(index instanceof Long, "an expert index is an integer: " + index);
        }
    }

    /** Was: libtorch's allocation of the logits failed, printing its C++ stack trace. */
    @Test
    void aPassWhoseLogitsCannotFitIsRefusedBeforeAnythingIsAllocated() {
        long available = io.arrakis.torch.HostMemory.availableBytes();
        org.junit.jupiter.api.Assumptions.assumeTrue(available > 0, "skipped: memory unknown or full here");
        int vocab = 1 << 20;
        long ids = available / (4L * vocab) + 1;
        long batch = (ids + 127) / 128;
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(
                     tinyGpt2().with(Map.of("vocab_size", vocab, "n_positions", 128)), 1, DType.FLOAT32, Device.CPU)) {
            Tensor input = Tensor.zeros(new long[] {batch, 128}, DType.INT64, Device.CPU);
            String message = assertThrows(IllegalArgumentException.class, () -> model.forward(input)).getMessage();
            assertTrue(message.contains("GiB for their logits alone") && message.contains("fewer sequences"), message);
        }
    }

    /**
     * Tied embeddings count once, but a file that also stores an unembedding loads it untied where its values differ
     * (transformers 5 keeps both): the check before loading counts it. Was: counted once.
     */
    @Test
    void theMemoryCheckCountsAnUnembeddingStoredBesideTiedEmbeddings() {
        HookedAutoConfig tied = tinyGpt2();
        Set<String> names = tied.checkpoint().tensors().keySet();
        assertEquals(0, HfWeights.storedUntiedCopy(tied, names));
        Set<String> withHead = new java.util.HashSet<>(names);
        withHead.add("lm_head.weight");
        assertEquals(64L * 32, HfWeights.storedUntiedCopy(tied, withHead));
        Set<String> headAlone = new java.util.HashSet<>(withHead);
        headAlone.remove("transformer.wte.weight");
        assertEquals(0, HfWeights.storedUntiedCopy(tied, headAlone), "read as the embedding, as transformers does");
        assertEquals(0, HfWeights.storedUntiedCopy(tied.with(Map.of("tie_word_embeddings", false)), withHead));

        long available = io.arrakis.torch.HostMemory.availableBytes();
        org.junit.jupiter.api.Assumptions.assumeTrue(available > 0, "skipped: memory unknown or full here");
        long vocab = available * 9 / 10 / (4L * 1024); // the embedding alone would fit, twice it would not
        org.junit.jupiter.api.Assumptions.assumeTrue(vocab < Integer.MAX_VALUE, "skipped: more memory than a vocabulary");
        HookedAutoConfig large = HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 1024, "n_layer", 1, "n_head", 8,
                "vocab_size", (int) vocab, "n_positions", 16));
        String message = assertThrows(IllegalStateException.class,
                () -> MemoryCheck.require(large, vocab * 1024, DType.FLOAT32, Device.CPU)).getMessage();
        assertTrue(message.contains("its file stores an unembedding beside its tied embeddings")
                && message.contains("for its weights in float32"), message);
        assertTrue(message.endsWith(String.format(java.util.Locale.ROOT,
                "use a smaller vocabulary or width (vocab_size is %,d, n_embd 1,024)", vocab)), message);
    }

    /**
     * Was: the advice named a quarter of the layers, which need not fit (mixtral's 8 of 32 still needed 43 GiB of
     * 22), and for gpt-neo a layer count its attention_types then refused.
     */
    @Test
    void theWeightsRefusalAdvisesALayerCountThatFits() {
        long available = io.arrakis.torch.HostMemory.availableBytes();
        org.junit.jupiter.api.Assumptions.assumeTrue(available > 0, "skipped: memory unknown or full here");
        // a layer of width 4096 holds 12 · 4096² parameters, 805 MB in float32: 256 of them fit nowhere
        HookedAutoConfig large = HookedAutoConfig.of("gpt2").with(Map.of("n_embd", 4096, "n_layer", 256, "n_head", 32,
                "vocab_size", 1000, "n_positions", 16));
        String message = assertThrows(IllegalStateException.class,
                () -> MemoryCheck.require(large, 0, DType.FLOAT32, Device.CPU)).getMessage();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("use fewer layers \\(n_layer, e\\.g\\. (\\d+)\\)$")
                .matcher(message);
        assertTrue(m.find(), message);
        int layers = Integer.parseInt(m.group(1));
        long needed = large.with(Map.of("n_layer", layers)).parameterCount() * 4;
        long forWeights = available / 4 * 3; // a quarter left for the passes
        assertTrue(needed <= forWeights && needed + 12L * 4096 * 4096 * 4 > forWeights,
                layers + " layers need " + needed + " bytes, " + available + " are available");

        HookedAutoConfig neo = HookedAutoConfig.of("gpt-neo").with(Map.of("hidden_size", 8192, "num_heads", 64));
        String neoMessage = assertThrows(IllegalStateException.class,
                () -> MemoryCheck.require(neo.with(Map.of("vocab_size", 1000)), 0, DType.FLOAT32, Device.CPU))
                .getMessage();
        assertTrue(neoMessage.contains(", with attention_types to match)") || neoMessage.contains("smaller vocabulary"),
                neoMessage);
    }

    /** Attention patterns grow with the square of the positions: caching them can need far more than the logits. */
    @Test
    void aPassWhoseCacheCannotFitIsRefusedBeforeAnythingIsAllocated() {
        long available = io.arrakis.torch.HostMemory.availableBytes();
        org.junit.jupiter.api.Assumptions.assumeTrue(available > 0, "skipped: memory unknown or full here");
        int layers = 8;
        int heads = 8;
        int pos = 1024;
        long patternBytes = (long) layers * heads * pos * pos * Float.BYTES; // per sequence, each of scores and pattern
        long batch = available / patternBytes + 1; // the patterns alone exceed what is available
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2().with(Map.of("n_layer", layers, "n_head", heads,
                     "n_embd", 64, "n_positions", pos)), 1, DType.FLOAT32, Device.CPU)) {
            Tensor input = Tensor.zeros(new long[] {batch, pos}, DType.INT64, Device.CPU);
            String message = assertThrows(IllegalArgumentException.class, () -> model.forward(input,
                    CacheSpec.matching(name -> name.endsWith("hook_pattern")))).getMessage();
            assertTrue(message.contains("caching this pass's activations over [" + batch + ", 1024] input ids")
                    && message.contains("cache fewer hook points"), message);
            org.junit.jupiter.api.Assumptions.assumeTrue(available > 4 * patternBytes, "one sequence would not fit");
            try (ModelOutput one = model.forward(Tensor.zeros(new long[] {1, pos}, DType.INT64, Device.CPU),
                    CacheSpec.matching(name -> name.endsWith("hook_pattern")))) {
                assertArrayEquals(new long[] {1, heads, pos, pos}, one.cache().get("blocks.7.attn.hook_pattern").shape());
            }
        }
    }

    /** Entries larger than the block writeJson reads at a time come out whole and in order, non-finite values named. */
    @Test
    void writeJsonStreamsLargeEntriesAsToJsonWritesThem() throws Exception {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tinyGpt2().with("vocab_size", 30_000), 3, DType.FLOAT32,
                     Device.CPU);
             ModelOutput out = model.forward(ids(1, 2, 3), CacheSpec.only("logits", "blocks.0.attn.hook_attn_scores"))) {
            List<String> names = List.of("logits", "blocks.0.attn.hook_attn_scores");
            java.io.StringWriter streamed = new java.io.StringWriter();
            out.cache().writeJson(names, streamed);
            assertEquals(out.cache().toJson(names), streamed.toString());
            Map<?, ?> json = (Map<?, ?>) io.arrakis.json.Json.parse(streamed.toString());
            float[] logits = out.cache().get("logits").toFloatArray();
            List<?> data = (List<?>) ((Map<?, ?>) json.get("logits")).get("data");
            assertEquals(90_000, logits.length);
            assertEquals(logits.length, data.size());
            for (int i = 0; i < logits.length; i += 997) {
                assertEquals(logits[i], ((Number) data.get(i)).floatValue(), 0f, "value " + i);
            }
            assertEquals(logits[logits.length - 1], ((Number) data.getLast()).floatValue(), 0f);
            List<?> scores = (List<?>) ((Map<?, ?>) json.get("blocks.0.attn.hook_attn_scores")).get("data");
            assertEquals("-Infinity", scores.get(1), "a masked score: query 0 does not see key 1");
        }
    }

    /**
     * attentionScores takes queries and keys of one length and the model's head size. Was: keys of one position
     * broadcast against the [pos, pos] mask and gave [batch, head, pos, pos] scores without a word; queries and keys of
     * another head size were scaled as the model's heads without a word.
     */
    @Test
    void attentionScoresRefusesQueriesAndKeysThatDoNotMatch() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyLlama(2), 3, DType.FLOAT32, Device.CPU)) {
            Tensor q = Tensor.zeros(1, 5, 4, 8);
            assertArrayEquals(new long[] {1, 4, 5, 5}, model.attentionScores(0, q, Tensor.zeros(1, 5, 2, 8)).shape());
            for (Tensor k : List.of(Tensor.zeros(1, 1, 2, 8), Tensor.zeros(1, 5, 3, 8), Tensor.zeros(1, 5, 2, 4),
                    Tensor.zeros(5, 2, 8))) {
                assertThrows(IllegalArgumentException.class, () -> model.attentionScores(0, q, k), k.toString());
            }
            Tensor q7 = Tensor.zeros(1, 5, 4, 7);
            assertThrows(IllegalArgumentException.class, () -> model.attentionScores(0, q7, Tensor.zeros(1, 5, 2, 7)));
            String message = assertThrows(IllegalArgumentException.class, () -> model.attentionMask(0, -1))
                    .getMessage();
            assertEquals("attentionMask: pos must not be negative, got -1", message); // was: Tensor.ones's refusal
        }
    }

    /** Was: closing a hook's handle twice removed another registration of the same spec. */
    @Test
    void closingAHookHandleTwiceRemovesOnlyItsOwnRegistration() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            int[] calls = {0};
            HookedAutoModel.HookSpec spec = HookedAutoModel.HookSpec.at("blocks.0.hook_mlp_out", (a, n) -> {
                calls[0]++;
                return a;
            });
            HookedAutoModel.HookHandle first = model.addHook(spec);
            try (HookedAutoModel.HookHandle second = model.addHook(spec)) {
                first.close();
                first.close();
                model.runWithHooks(ids(1, 2, 3)).close();
                assertEquals(1, calls[0], "the second registration still runs");
            }
            model.runWithHooks(ids(1, 2, 3)).close();
            assertEquals(1, calls[0]);
        }
    }

    /**
     * Closing a handle removes its own registration and keeps the others in order (PyTorch's handles do). Was: the
     * first registration equal to it was removed, so closing the third of (times 2, plus 1, times 2) left
     * (plus 1, times 2).
     */
    @Test
    void closingAHookHandleKeepsTheOtherHooksInTheirOrder() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            java.util.function.Predicate<String> at = "blocks.0.hook_mlp_out"::equals;
            Hook times2 = (a, n) -> a.mul(2.0);
            Hook plus1 = (a, n) -> a.add(1.0);
            Tensor plain;
            try (ModelOutput out = model.forward(ids(1, 2, 3), CacheSpec.only("blocks.0.hook_mlp_out"))) {
                plain = out.cache().get("blocks.0.hook_mlp_out").copy();
            }
            model.addHook(HookedAutoModel.HookSpec.matching(at, times2));
            model.addHook(HookedAutoModel.HookSpec.matching(at, plus1));
            model.addHook(HookedAutoModel.HookSpec.matching(at, times2)).close();
            try (ModelOutput out = model.forward(ids(1, 2, 3), CacheSpec.only("blocks.0.hook_mlp_out"))) {
                assertEquals(0.0, out.cache().get("blocks.0.hook_mlp_out").sub(plain.mul(2.0).add(1.0)).abs().max().item(),
                        1e-6, "2x + 1, not (x + 1) * 2");
            }
        }
    }

    /** Was: {@code hook_pos_embed} was a view of the position embeddings, so writing into it rewrote the model. */
    @Test
    void writingIntoTheCachedPositionEmbeddingLeavesTheModelAlone() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyGpt2(), 3, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3, 4);
            Tensor before = model.runWithHooks(input);
            try (ModelOutput out = model.forward(input)) {
                Tensor positions = out.cache().get("hook_pos_embed");
                positions.copyFrom(Tensor.zeros(positions.shape()));
            }
            model.runWithHooks(input, HookedAutoModel.HookSpec.at("hook_pos_embed", (a, n) -> a.copyFrom(a.mul(3.0)))).close();
            assertTrue(model.runWithHooks(input).allclose(before, 0, 0), "the position embeddings changed");
        }
    }

    @Test
    void badInputIsRejectedBeforeTheForwardPass() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyLlama(4), 4, DType.FLOAT32, Device.CPU)) {
            assertTrue(assertThrows(IllegalArgumentException.class, () -> model.forward(ids(1, 64))).getMessage().contains("vocabulary"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> model.forward(ids(-1))).getMessage().contains("vocabulary"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> model.forward(Tensor.arange(0, 17, 1, DType.INT64, Device.CPU)))
                    .getMessage().contains("positions"));
            assertThrows(IllegalArgumentException.class, () -> model.forward(Tensor.zeros(new long[] {1, 0}, DType.INT64, Device.CPU)));
            assertThrows(IllegalArgumentException.class, () -> model.forward(Tensor.of(new float[] {1, 2}, 1, 2)));
            try (ModelOutput out = model.forward(Tensor.of(new long[] {3, 4}, 2))) {
                assertArrayEquals(new long[] {1, 2, 64}, out.logits().shape());
            }
        }
    }

    @Test
    void theSameSeedGivesTheSameModel() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel a = HookedAutoModel.create(tinyLlama(2), 7, DType.FLOAT32, Device.CPU);
             HookedAutoModel b = HookedAutoModel.create(tinyLlama(2), 7, DType.FLOAT32, Device.CPU);
             HookedAutoModel c = HookedAutoModel.create(tinyLlama(2), 8, DType.FLOAT32, Device.CPU)) {
            Tensor input = ids(1, 2, 3);
            assertTrue(a.runWithHooks(input).allclose(b.runWithHooks(input), 0, 0));
            assertFalse(a.runWithHooks(input).allclose(c.runWithHooks(input), 1e-3, 1e-3));
        }
    }

    /** With one key/value head, grouped-query attention is multi-query attention: every head reads the same keys. */
    @Test
    void oneKeyValueHeadIsMultiQueryAttention() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(tinyLlama(1), 5, DType.FLOAT32, Device.CPU)) {
            Tensor wk = model.W_K(true);
            assertArrayEquals(new long[] {2, 4, 32, 8}, wk.shape());
            for (int h = 1; h < 4; h++) {
                assertTrue(wk.select(1, h).allclose(wk.select(1, 0), 0, 0));
            }
            try (ModelOutput out = model.forward(ids(1, 2, 3))) {
                assertArrayEquals(new long[] {1, 3, 1, 8}, out.cache().get("blocks.0.attn.hook_k").shape());
                assertArrayEquals(new long[] {1, 3, 4, 8}, out.cache().get("blocks.0.attn.hook_q").shape());
            }
        }
    }

    /**
     * YaRN multiplies cos and sin by its attention factor, {@code 0.1 ln(factor) + 1}: a rotation keeps each pair's
     * length, so the rotated queries are that factor longer.
     */
    @Test
    void yarnScalesRotatedQueriesByItsAttentionFactor() {
        HookedAutoConfig config = tinyLlama(2).with("rope_scaling", Map.of("rope_type", "yarn", "factor", 4.0,
                "original_max_position_embeddings", 8));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(config, 1, DType.FLOAT32, Device.CPU)) {
            Tensor x = Tensor.normal(new io.arrakis.torch.Generator(3), new long[] {1, 6, 4, 8}, 0.0, 1.0, DType.FLOAT32, Device.CPU);
            Tensor rotated = model.rotate(0, x);
            for (int p = 0; p < 6; p++) {
                double ratio = rotated.select(1, p).norm().item() / x.select(1, p).norm().item();
                assertEquals(0.1 * Math.log(4.0) + 1, ratio, 1e-5, "position " + p);
            }
            Tensor unscaled = HookedAutoModel.create(tinyLlama(2), 1, DType.FLOAT32, Device.CPU).rotate(0, x);
            assertEquals(1.0, unscaled.norm().item() / x.norm().item(), 1e-5);
        }
    }

    /** Mistral's sliding window: a query sees only the last {@code window} keys. */
    @Test
    void mistralsSlidingWindowMasksOlderKeys() {
        HookedAutoConfig config = HookedAutoConfig.of("mistral").with(Map.of("hidden_size", 32, "num_hidden_layers", 1,
                "num_attention_heads", 4, "num_key_value_heads", 2, "intermediate_size", 48, "vocab_size", 64,
                "max_position_embeddings", 16, "sliding_window", 3));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(config, 6, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(ids(1, 2, 3, 4, 5, 6))) {
            float[] pattern = out.cache().get("blocks.0.attn.hook_pattern").select(0, 0).select(0, 0).toFloatArray(); // [q, k]
            for (int q = 0; q < 6; q++) {
                for (int k = 0; k < 6; k++) {
                    boolean visible = k <= q && k > q - 3;
                    assertEquals(visible, pattern[q * 6 + k] > 0, "query " + q + " key " + k);
                }
            }
        }
    }

    /** A tiny config of each registered family, and variants that switch on the optional parts of the layouts. */
    static Stream<Arguments> tinyConfigs() {
        return Stream.concat(HookedAutoConfig.supportedFamilies().stream()
                .map(family -> Arguments.of("tiny " + family, TinyConfigs.of(family))), variants());
    }

    private static Stream<Arguments> variants() {
        Map<String, Object> common = Map.of("hidden_size", 32, "num_attention_heads", 4, "vocab_size", 64,
                "max_position_embeddings", 16);
        Map<String, Map<String, Object>> own = new java.util.LinkedHashMap<>();
        own.put("gpt2", Map.of("n_layer", 2, "n_inner", 48));
        own.put("gpt-neo", Map.of("num_layers", 2, "attention_types", List.of(List.of(List.of("global", "local"), 1)),
                "window_size", 3, "intermediate_size", 48));
        own.put("gpt-neox", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "rotary_pct", 0.5));
        own.put("gpt-neox sequential, no attention bias, tied", Map.of("num_hidden_layers", 2, "intermediate_size", 48,
                "use_parallel_residual", false, "attention_bias", false, "tie_word_embeddings", true));
        own.put("llama", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2));
        own.put("llama with biases", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "attention_bias", true,
                "mlp_bias", true));
        own.put("gemma", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 1, "head_dim", 16));
        own.put("phi3", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2,
                "partial_rotary_factor", 0.5, "sliding_window", 3, "pad_token_id", 63));
        own.put("qwen2", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2));
        own.put("mistral", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2));
        own.put("stable-lm", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 4,
                "use_qkv_bias", true));
        own.put("stable-lm parallel", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2,
                "use_parallel_residual", true));
        own.put("qwen3", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2,
                "head_dim", 12, "attention_bias", true));
        own.put("olmo2", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2));
        own.put("gemma2", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 2,
                "head_dim", 12, "sliding_window", 3, "query_pre_attn_scalar", 10));
        own.put("gemma3", Map.of("num_hidden_layers", 2, "intermediate_size", 48, "num_key_value_heads", 1,
                "head_dim", 16, "sliding_window", 3, "sliding_window_pattern", 2, "attn_logit_softcapping", 5.0));
        own.put("mixtral with a sliding window, three experts, top 1", Map.of("num_hidden_layers", 2,
                "intermediate_size", 48, "num_key_value_heads", 2, "num_local_experts", 3, "num_experts_per_tok", 1,
                "sliding_window", 3));
        own.put("qwen3-moe with attention biases and a sliding window, three experts, top 2", Map.of(
                "num_hidden_layers", 2, "moe_intermediate_size", 40, "num_key_value_heads", 2, "head_dim", 12,
                "num_local_experts", 3, "num_experts_per_tok", 2, "attention_bias", true, "use_sliding_window", true,
                "sliding_window", 3));
        own.put("smollm3 with a sliding NoPE layer and biases", Map.of("num_hidden_layers", 2, "intermediate_size", 48,
                "num_key_value_heads", 2, "no_rope_layer_interval", 2, "use_sliding_window", true, "sliding_window", 3,
                "attention_bias", true, "mlp_bias", true, "pad_token_id", 0));
        own.put("gpt-oss without attention biases, full layers, three experts, top 1", Map.of("num_hidden_layers", 2,
                "intermediate_size", 48, "num_key_value_heads", 2, "head_dim", 8, "num_local_experts", 3,
                "num_experts_per_tok", 1, "attention_bias", false, "layer_types",
                List.of("full_attention", "full_attention")));
        return own.entrySet().stream().map(e -> {
            String family = e.getKey().split(" ")[0];
            Map<String, Object> overrides = new HashMap<>(e.getValue());
            common.forEach((k, v) -> overrides.putIfAbsent(family.equals("gpt2") ? switch (k) {
                case "hidden_size" -> "n_embd";
                case "num_attention_heads" -> "n_head";
                case "max_position_embeddings" -> "n_positions";
                default -> k;
            } : family.equals("gpt-neo") && k.equals("num_attention_heads") ? "num_heads" : k, v));
            return Arguments.of(e.getKey(), HookedAutoConfig.of(family).with(overrides));
        });
    }

    /**
     * {@link HookedAutoModel#create} works for every family: the forward pass reaches every hook point with the
     * documented shapes, and the logits are finite.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("tinyConfigs")
    void everyFamilyCanBeCreatedAndRun(String name, HookedAutoConfig config) {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(config, 11, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5))) {
            assertEquals(model.hookNames(), out.cache().names());
            assertArrayEquals(new long[] {2, 5, 64}, out.logits().shape());
            for (float v : out.logits().toFloatArray()) {
                assertTrue(Float.isFinite(v), "logits are not finite");
            }
            int heads = config.nHeads();
            int d = config.dHead(1); // gemma4's full layer 1 has heads of its own width
            int dv = config.dHeadV(1); // deepseek-v3's value heads are narrower than its query and key heads
            assertArrayEquals(new long[] {2, 5, heads, d}, out.cache().get("blocks.1.attn.hook_q").shape());
            assertArrayEquals(new long[] {2, 5, config.nKvHeads(1), d},
                    out.cache().get("blocks.1.attn.hook_k").shape());
            assertArrayEquals(new long[] {2, 5, config.nKvHeads(1), dv},
                    out.cache().get("blocks.1.attn.hook_v").shape());
            assertArrayEquals(new long[] {2, 5, heads, dv}, out.cache().get("blocks.1.attn.hook_z").shape());
            assertArrayEquals(new long[] {2, heads, 5, 5}, out.cache().get("blocks.1.attn.hook_pattern").shape());
            assertArrayEquals(new long[] {2, 5, 32}, out.cache().get("blocks.1.hook_resid_post").shape());
            if (!config.attentionHeads(0)) { // layer 0's linear attention or convolution (Qwen35Test, Lfm2Test)
                assertArrayEquals(new long[] {heads, 32, d}, model.W_Q(1).shape());
                assertArrayEquals(new long[] {heads, dv, 32}, model.W_O(1).shape());
                return;
            }
            if (config.architecture().layerShapes() != null) { // gemma4's layers' heads differ: per layer (Gemma4Test)
                assertArrayEquals(new long[] {heads, 32, d}, model.W_Q(1).shape());
                assertArrayEquals(new long[] {heads, dv, 32}, model.W_O(1).shape());
                return;
            }
            if (config.architecture().latentAttention() == null) { // which has no per-head W_Q (DeepseekV3Test)
                assertArrayEquals(new long[] {2, heads, 32, d}, model.W_Q().shape());
            }
            assertArrayEquals(new long[] {2, heads, dv, 32}, model.W_O().shape());
        }
    }

    /**
     * The families whose Hugging Face embedding is {@code nn.Embedding(vocab, d_model, padding_idx=pad_token_id)}
     * (transformers 5.17's modeling files; GPT-2, GPT-Neo, GPT-NeoX, GPT-J and Falcon pass no padding_idx), whose
     * {@code _init_weights} zeroes that row.
     */
    private static final Set<String> PADDED_EMBEDDINGS = Set.of("cohere", "cohere2", "gemma", "gemma2", "gemma3",
            "gpt-oss", "granite", "llama", "mistral", "mixtral", "olmo2", "phi", "phi3", "qwen2", "qwen3", "qwen3-moe",
            "qwen3-vl-moe", "smollm3", "olmoe", "qwen2-moe", "olmo3", "ministral3", "ministral", "exaone4", "glm4",
            "ernie4_5", "glm", "seed-oss", "arcee", "helium", "vaultgemma", "granitemoe", "nemotron", "jais2",
            "hyperclovax", "opt", "cwm", "glm4-moe", "solar-open", "exaone-moe", "granitemoeshared",
            "apertus", "minimax-m2", "deepseek-v3", "glm4-moe-lite", "deepseek-v2", "olmo", "nanochat", "dots1",
            "mistral4", "hunyuan-v1-dense", "hunyuan-v1-moe", "ernie4_5-moe", "flex-olmo", "phimoe", "gemma4",
            "cohere2-moe", "youtu", "mellum", "afmoe", "deepseek-v32", "glm-moe-dsa", "hy-v3", "stable-lm",
            "starcoder2", "qwen3-5", "qwen3-5-moe", "qwen3-next", "lfm2",
            "lfm2-moe", "minicpm3", "llama4", "granitemoehybrid", "bamba");

    @ParameterizedTest
    @MethodSource("families")
    void createZeroesThePaddingRowWhereTheFamilysEmbeddingHasOne(String family) {
        HookedAutoConfig config = TinyConfigs.of(family).with("pad_token_id", 5);
        try (HookedAutoModel model = HookedAutoModel.create(config, 3, DType.FLOAT32, Device.CPU)) {
            Tensor embed = model.weights().embed;
            assertEquals(PADDED_EMBEDDINGS.contains(family), embed.select(0, 5).abs().max().item() == 0, family);
            assertTrue(embed.select(0, 4).abs().max().item() > 0, family);
            assertTrue(embed.select(0, 6).abs().max().item() > 0, family);
        }
    }

    @Test
    void paddingTokenCountsFromTheEndWhenNegativeAndIsRefusedOutsideTheVocabulary() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("llama").with("pad_token_id", -1), 3,
                DType.FLOAT32, Device.CPU)) {
            assertEquals(0.0, model.weights().embed.select(0, 63).abs().max().item());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("llama").with("pad_token_id", 64).dModel());
        assertTrue(e.getMessage().contains("pad_token_id") && e.getMessage().contains("vocab_size 64"), e.getMessage());
    }

    static Stream<String> families() {
        return HookedAutoConfig.supportedFamilies().stream();
    }

    /** Was: an Error from a hook (an assertion, say) skipped closing the pass's cache, which then leaked. */
    @Test
    void anErrorFromAHookStillFreesThePassesActivations() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 1, DType.FLOAT32, Device.CPU)) {
            List<Tensor> seen = new java.util.ArrayList<>();
            Tensor ids = ids(1, 2, 3);
            assertThrows(AssertionError.class, () -> model.runWithHooks(ids, CacheSpec.all(),
                    HookedAutoModel.HookSpec.at("blocks.0.hook_resid_pre", (a, n) -> {
                        seen.add(a);
                        return null;
                    }),
                    HookedAutoModel.HookSpec.at("blocks.1.hook_resid_pre", (a, n) -> {
                        throw new AssertionError("a failing check inside a hook");
                    })));
            assertTrue(seen.getFirst().isClosed(), "the cached activation was freed");
            assertEquals(3, model.runWithHooks(ids).size(1), "the model runs on");
        }
    }

    /** Was: a checked exception thrown through a hook (as Kotlin or a sneaky throw can) left the cache to the GC. */
    @Test
    void aCheckedExceptionFromAHookStillFreesThePassesActivations() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 1, DType.FLOAT32, Device.CPU)) {
            List<Tensor> seen = new java.util.ArrayList<>();
            java.io.IOException thrown = new java.io.IOException("a file the hook wanted to write");
            Throwable caught = assertThrows(java.io.IOException.class, () -> model.runWithHooks(ids(1, 2, 3),
                    CacheSpec.all(),
                    HookedAutoModel.HookSpec.at("blocks.0.hook_resid_pre", (a, n) -> {
                        seen.add(a);
                        return null;
                    }),
                    HookedAutoModel.HookSpec.at("blocks.1.hook_resid_pre", (a, n) -> sneakyThrow(thrown))));
            assertSame(thrown, caught);
            assertTrue(seen.getFirst().isClosed(), "the cached activation was freed");
        }
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> Tensor sneakyThrow(Throwable t) throws E {
        throw (E) t;
    }

    @Test
    void aHookThatClosesItsActivationIsNamedAndANullHookRefused() {
        try (HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of("gpt2"), 1, DType.FLOAT32, Device.CPU)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.runWithHooks(ids(1, 2),
                    HookedAutoModel.HookSpec.at("blocks.0.hook_resid_mid", (a, n) -> {
                        a.close();
                        return null;
                    })));
            assertTrue(e.getMessage().contains("the hook at blocks.0.hook_resid_mid closed the activation"), e.getMessage());
            assertThrows(NullPointerException.class, () -> HookedAutoModel.HookSpec.at("logits", null));
        }
    }

    /** Gemma's (1 + w) norms start at w = 0, and it runs in bfloat16 (its norms compute in float32). */
    @Test
    void gemmaRunsInBfloat16CloseToFloat32() {
        HookedAutoConfig config = HookedAutoConfig.of("gemma").with(Map.of("hidden_size", 32, "num_hidden_layers", 2,
                "num_attention_heads", 4, "num_key_value_heads", 1, "head_dim", 16, "intermediate_size", 48,
                "vocab_size", 64, "max_position_embeddings", 16));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel f32 = HookedAutoModel.create(config, 3, DType.FLOAT32, Device.CPU);
             HookedAutoModel bf16 = HookedAutoModel.create(config, 3, DType.BFLOAT16, Device.CPU)) {
            for (float v : f32.weights().lnfw.toFloatArray()) {
                assertEquals(0f, v, "gemma norm weights must start at zero");
            }
            Tensor input = ids(1, 2, 3, 4, 5);
            Tensor a = f32.runWithHooks(input);
            Tensor b = bf16.runWithHooks(input).to(DType.FLOAT32);
            assertEquals(DType.FLOAT32, a.dtype());
            assertTrue(a.allclose(b, 0.1, 0.1), "bfloat16 logits are far from float32");
        }
    }

    /** GPT-Neo's local layers see the last {@code window_size} positions; its global layers see everything before. */
    @Test
    void gptNeoLocalLayersSeeOnlyTheirWindow() {
        HookedAutoConfig config = HookedAutoConfig.of("gpt-neo").with(Map.of("hidden_size", 32, "num_layers", 2,
                "num_heads", 4, "attention_types", List.of(List.of(List.of("global", "local"), 1)), "window_size", 3,
                "vocab_size", 64, "max_position_embeddings", 16));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.create(config, 6, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(ids(1, 2, 3, 4, 5, 6))) {
            for (int layer = 0; layer < 2; layer++) {
                float[] pattern = out.cache().get("blocks." + layer + ".attn.hook_pattern").select(0, 0).select(0, 0).toFloatArray();
                for (int q = 0; q < 6; q++) {
                    for (int k = 0; k < 6; k++) {
                        boolean visible = k <= q && (layer == 0 || k > q - 3);
                        assertEquals(visible, pattern[q * 6 + k] > 0, "layer " + layer + " query " + q + " key " + k);
                    }
                }
            }
        }
    }

    @Test
    void aSevenBillionParameterLlamaInFloat32FailsFastWithTheFigure() {
        long available = io.arrakis.torch.HostMemory.availableBytes();
        HookedAutoConfig llama = HookedAutoConfig.of("llama");
        org.junit.jupiter.api.Assumptions.assumeTrue(available > 0 && available < llama.weightBytes(4),
                "skipped: this machine has room for a 7B float32 model");
        long start = System.nanoTime();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> HookedAutoModel.create(llama, 0, DType.FLOAT32, Device.CPU));
        assertTrue((System.nanoTime() - start) / 1e9 < 5, "did not fail fast");
        assertTrue(e.getMessage().contains("6,738,415,616") && e.getMessage().contains("bfloat16"), e.getMessage());
    }

    /** Was: a handle came back from a closed model, and its hook never ran. */
    @Test
    void addingAHookToAClosedModelIsRefused() {
        HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.SHARED.resolve("gpt2-tiny"));
        model.close();
        assertThrows(IllegalStateException.class,
                () -> model.addHook(HookedAutoModel.HookSpec.at("logits", (a, n) -> null)));
    }

    /** Were: a bare NullPointerException for a null spec, and a refusal of a dead replacement that named no hook. */
    @Test
    void aNullSpecAndAReplacementOverAClosedArenaAreNamed() {
        java.nio.file.Path gpt2 = Fixtures.SHARED.resolve("gpt2-tiny");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(gpt2)) {
            NullPointerException npe = assertThrows(NullPointerException.class, () -> model.addHook(null));
            assertTrue(npe.getMessage().startsWith("hook spec"), npe.getMessage());
            Tensor ids = Fixtures.referenceInputIds(gpt2);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.runWithHooks(ids,
                    HookedAutoModel.HookSpec.at("blocks.0.hook_resid_mid", (a, n) -> {
                        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                            return Tensor.fromSegment(arena.allocate(a.numel() * 4, 64), DType.FLOAT32, a.shape());
                        }
                    })));
            assertTrue(e.getMessage().contains("the hook at blocks.0.hook_resid_mid"), e.getMessage());
        }
    }
}

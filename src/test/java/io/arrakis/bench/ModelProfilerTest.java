package io.arrakis.bench;

import io.arrakis.model.Fixtures;
import io.arrakis.json.Json;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelProfilerTest {
    private static final int BATCH = 2;
    private static final int POS = 11;

    private static Tensor ids(int vocab) {
        return Tensor.randint(new Generator(7), 0, Math.min(vocab, 50), new long[] {BATCH, POS}, Device.CPU);
    }

    private static ModelProfile.HookTiming timing(ModelProfile p, String name) {
        return p.hooks().stream().filter(t -> t.hookName().equals(name)).findFirst().orElseThrow();
    }

    /** Checks every invariant that holds for any model: names, order, times, sums. */
    private static void checkConsistent(HookedAutoModel model, ModelProfile p) {
        List<String> fired = p.hooks().stream().map(ModelProfile.HookTiming::hookName).toList();
        // but the norms' scales: a hook there would make the norm divide by what it leaves, ops no other pass runs
        List<String> profiled = model.hookNames().stream().filter(n -> !n.endsWith("hook_scale")).toList();
        assertTrue(profiled.size() < model.hookNames().size(), "a model without norm scales");
        assertEquals(Set.copyOf(profiled), Set.copyOf(fired), "a timing at every hook point but the scales");
        assertEquals(profiled.size(), fired.size(), "one timing per hook point");
        try (ModelOutput cached = model.forward(ids(model.config().vocabSize()))) {
            assertEquals(cached.cache().names().stream().filter(n -> !n.endsWith("hook_scale")).toList(), fired,
                    "in the order the forward pass reaches them");
        }
        long sum = 0;
        for (ModelProfile.HookTiming t : p.hooks()) {
            assertTrue(t.nanos() >= 0, t.toString());
            assertTrue(t.bytes() > 0, t.toString());
            sum += t.nanos();
        }
        assertTrue(p.hookOverheadNanos() >= 0 && p.tailNanos() >= 0);
        assertTrue(sum <= p.totalNanos(), sum + " > " + p.totalNanos());
        assertEquals(p.totalNanos(), sum + p.hookOverheadNanos() + p.tailNanos(), "every nanosecond accounted for once");
        assertEquals(sum, p.attributedNanos());
        assertEquals(sum, p.byComponent().values().stream().mapToLong(ModelProfile.Totals::nanos).sum());
        assertEquals(sum, p.byLayer().values().stream().mapToLong(ModelProfile.Totals::nanos).sum());
        assertEquals(sum, p.groups().stream().mapToLong(g -> g.totals().nanos()).sum());
        assertEquals(p.activationBytes(), p.groups().stream().mapToLong(g -> g.totals().bytes()).sum());
        assertEquals(p.hooks().size(), p.byComponent().values().stream().mapToInt(ModelProfile.Totals::hooks).sum());
    }

    /**
     * Was: waiting for an empty activation (an expert of a mixture no token chose, on a GPU) selected element 0 of a
     * size-0 dimension and failed the whole profile.
     */
    @Test
    void waitingForAnEmptyActivationIsANoOp() {
        try (TensorScope scope = TensorScope.open()) {
            ModelProfiler.sync(Tensor.zeros(0, 4));
            ModelProfiler.sync(Tensor.zeros(2, 0, 3));
            ModelProfiler.sync(Tensor.ones(2, 3));
        }
    }

    @Test
    void gpt2FixtureTimesAndBytes() {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.dir("gpt2-tiny"));
             Tensor ids = ids(96)) {
            ModelProfile p = ModelProfiler.profile(model, ids);
            checkConsistent(model, p);
            // gpt2-tiny: 2 layers, 4 heads, d_model 32 (d_head 8), MLP 4 × 32, vocab 96; float32 (4 bytes)
            assertEquals(BATCH * 4 * POS * POS * 4L, timing(p, "blocks.0.attn.hook_pattern").bytes());
            assertEquals(BATCH * 4 * POS * POS * 4L, timing(p, "blocks.1.attn.hook_attn_scores").bytes());
            assertEquals(BATCH * POS * 32 * 4L, timing(p, "hook_embed").bytes());
            assertEquals(BATCH * POS * 32 * 4L, timing(p, "hook_pos_embed").bytes());   // logical size of the expanded view
            assertEquals(BATCH * POS * 4 * 8 * 4L, timing(p, "blocks.1.attn.hook_q").bytes());
            assertEquals(BATCH * POS * 128 * 4L, timing(p, "blocks.0.mlp.hook_post").bytes());
            assertEquals(BATCH * POS * 96 * 4L, timing(p, "logits").bytes());

            assertEquals(List.of("embed", "resid", "attn", "mlp", "ln", "unembed"), List.copyOf(p.byComponent().keySet()));
            assertEquals(List.of(-1, 0, 1), List.copyOf(p.byLayer().keySet()));
            assertEquals("attn", timing(p, "blocks.0.hook_attn_out").component());
            assertEquals(1, timing(p, "blocks.1.mlp.hook_pre").layer());
            assertEquals(2 * 7, p.byComponent().get("attn").hooks());                      // q k v scores pattern z out
            assertEquals(2 * 3, p.byComponent().get("mlp").hooks());                       // pre post out
            assertEquals(2 * 3, p.byComponent().get("resid").hooks());                     // pre mid post
            // each layer's attention groups: the same bytes in both layers
            long attn0 = p.groups().stream().filter(g -> g.layer() == 0 && g.component().equals("attn")).findFirst()
                    .orElseThrow().totals().bytes();
            long attn1 = p.groups().stream().filter(g -> g.layer() == 1 && g.component().equals("attn")).findFirst()
                    .orElseThrow().totals().bytes();
            assertEquals(attn0, attn1);
            assertEquals("embed", p.groups().get(0).component());
            assertEquals("unembed", p.groups().get(p.groups().size() - 1).component());

            String table = p.toTable();
            assertTrue(table.startsWith("gpt2 forward, input [2, 11]\n"), table);
            assertTrue(table.contains("total (wall)") && table.contains("hook overhead"), table);
            assertTrue(table.lines().anyMatch(l -> l.matches("0\\s+attn\\s+7\\s.*")), table);

            @SuppressWarnings("unchecked")
            Map<String, Object> json = (Map<String, Object>) Json.parse(p.toJson());
            assertEquals("gpt2", json.get("family"));
            assertEquals(p.totalNanos(), ((Number) json.get("total_ns")).longValue());
            assertEquals(p.hooks().size(), ((List<?>) json.get("hooks")).size());
            @SuppressWarnings("unchecked")
            Map<String, Object> first = (Map<String, Object>) ((List<?>) json.get("hooks")).get(0);
            assertEquals("hook_embed", first.get("name"));
            assertEquals(List.of(2L, 11L, 32L), first.get("shape"));
            assertEquals(p.activationBytes(), ((Number) json.get("activation_bytes")).longValue());
            assertEquals(Set.of("embed", "resid", "attn", "mlp", "ln", "unembed"),
                    ((Map<?, ?>) json.get("components")).keySet());
        }
    }

    @Test
    void llamaGqaFixture() {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.dir("llama-tiny-gqa"));
             Tensor ids = ids(96)) {
            ModelProfile p = ModelProfiler.profile(model, ids, 1);
            checkConsistent(model, p);
            // 4 query heads, 2 key/value heads, d_head 8; rotary: no hook_pos_embed
            assertEquals(BATCH * 4 * POS * POS * 4L, timing(p, "blocks.1.attn.hook_pattern").bytes());
            assertEquals(BATCH * POS * 2 * 8 * 4L, timing(p, "blocks.0.attn.hook_k").bytes());
            assertEquals(BATCH * POS * 2 * 8 * 4L, timing(p, "blocks.0.attn.hook_rot_k").bytes());
            assertEquals(BATCH * POS * 4 * 8 * 4L, timing(p, "blocks.0.attn.hook_rot_q").bytes());
            assertTrue(p.hooks().stream().noneMatch(t -> t.hookName().equals("hook_pos_embed")));
            assertEquals(1, p.byComponent().get("embed").hooks());
            assertEquals(2 * 4, p.byComponent().get("mlp").hooks());  // pre, pre_linear, post, out per layer
        }
    }

    @Test
    void elementSizeFollowsTheDtype() {
        HookedAutoConfig config = HookedAutoConfig.of("llama").with(Map.of(
                "num_hidden_layers", 1, "hidden_size", 16, "intermediate_size", 32,
                "num_attention_heads", 2, "num_key_value_heads", 2, "vocab_size", 50));
        try (HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT64, Device.CPU);
             Tensor ids = Tensor.of(new long[] {1, 2, 3, 4, 5}, 1, 5)) {
            ModelProfile p = ModelProfiler.profile(model, ids);
            checkConsistent(model, p);
            assertEquals(1 * 2 * 5 * 5 * 8L, timing(p, "blocks.0.attn.hook_pattern").bytes());
            assertEquals(1 * 5 * 50 * 8L, timing(p, "logits").bytes());
            assertEquals(DType.FLOAT64, timing(p, "logits").dtype());
        }
    }

    @Test
    void totalIsCloseToAnUnhookedForward() {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.dir("gpt2-tiny"));
             Tensor ids = ids(96)) {
            long best = Long.MAX_VALUE;
            for (int i = 0; i < 5; i++) {
                long t0 = System.nanoTime();
                try (ModelOutput out = model.forward(ids, CacheSpec.none())) {
                    out.logits().numel();
                }
                best = Math.min(best, System.nanoTime() - t0);
            }
            long profiled = Long.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                profiled = Math.min(profiled, ModelProfiler.profile(model, ids, 1).totalNanos());
            }
            // a loose bound (a 2-core machine shared with other work): the hooks add bookkeeping, not computation
            assertTrue(profiled < 10 * best + 50_000_000L, "profiled " + profiled + " ns, unhooked " + best + " ns");
        }
    }

    @Test
    void badArgumentsAreRefused() {
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.dir("gpt2-tiny"));
             Tensor ids = ids(96);
             Tensor tooBig = Tensor.of(new long[] {1, 96}, 1, 2)) {
            assertThrows(IllegalArgumentException.class, () -> ModelProfiler.profile(model, ids, -1));
            assertThrows(IllegalArgumentException.class, () -> ModelProfiler.profile(model, tooBig));
            assertThrows(NullPointerException.class, () -> ModelProfiler.profile(null, ids));
        }
    }

    /** Was: a record compares an array component by identity, and the constructor copies it: never equal. */
    @Test
    void hookTimingsOfEqualValuesAreEqual() {
        ModelProfile.HookTiming a = new ModelProfile.HookTiming("blocks.0.hook_resid_pre", 0, "resid", 5, 64,
                new long[] {1, 4, 4}, DType.FLOAT32);
        ModelProfile.HookTiming b = new ModelProfile.HookTiming("blocks.0.hook_resid_pre", 0, "resid", 5, 64,
                new long[] {1, 4, 4}, DType.FLOAT32);
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, new ModelProfile.HookTiming("blocks.0.hook_resid_pre", 0, "resid", 5, 64,
                new long[] {1, 4, 5}, DType.FLOAT32));
    }

    @Test
    void componentsOfHookNames() {
        assertEquals("embed", ModelProfile.componentOf("hook_embed"));
        assertEquals("embed", ModelProfile.componentOf("hook_pos_embed"));
        assertEquals("resid", ModelProfile.componentOf("blocks.12.hook_resid_mid"));
        assertEquals("attn", ModelProfile.componentOf("blocks.3.attn.hook_rot_q"));
        assertEquals("mlp", ModelProfile.componentOf("blocks.3.mlp.hook_pre_linear"));
        assertEquals("mlp", ModelProfile.componentOf("blocks.3.hook_mlp_out"));
        assertEquals("ln", ModelProfile.componentOf("ln_final.hook_normalized"));
        assertEquals("unembed", ModelProfile.componentOf("logits"));
        assertEquals("other", ModelProfile.componentOf("something_else"));
        assertEquals(12, ModelProfile.layerOf("blocks.12.hook_resid_mid"));
        assertEquals(-1, ModelProfile.layerOf("ln_final.hook_normalized"));
    }
}

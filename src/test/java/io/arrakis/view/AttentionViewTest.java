package io.arrakis.view;

import io.arrakis.bench.BaseInterpretabilityBench;
import io.arrakis.composer.CompositionScores;
import io.arrakis.json.Json;
import io.arrakis.model.CacheSpec;
import io.arrakis.composer.Head;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.text.Tokenizer;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The view's data and page without a browser ({@link AttentionViewBrowserTest} opens the page in one). */
class AttentionViewTest {
    private static final Path MODEL = Fixtures.huggingFace("gpt2");

    private static Tensor ids(long... values) {
        return Tensor.of(values, 1, values.length);
    }

    /** A tokenizer of 1,000 ids that only labels them, each as {@code label} gives it. */
    private static Tokenizer labelling(java.util.function.LongFunction<String> label) {
        return new Tokenizer() {
            public int vocabSize() {
                return 1000;
            }

            public java.util.OptionalLong addedBos() {
                throw new UnsupportedOperationException();
            }

            public long[] encode(String text) {
                throw new UnsupportedOperationException();
            }

            public String decode(long[] ids) {
                throw new UnsupportedOperationException();
            }

            public List<String> tokenStrings(long[] ids) {
                return java.util.Arrays.stream(ids).mapToObj(label).toList();
            }
        };
    }

    @Test
    void thePatternsAreForwardsAndTheStepsAreReported() {
        List<long[]> steps = new ArrayList<>();
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            Tensor input = ids(3, 1, 4, 1, 5, 9);
            AttentionView view = AttentionView.of(model, input, AttentionView.Options.defaults()
                    .withProgress((done, total) -> steps.add(new long[] {done, total})));
            Map<String, Object> data = view.data();
            assertEquals(List.of("#3", "#1", "#4", "#1", "#5", "#9"), data.get("tokens"), "ids label tokens without a tokenizer");
            List<?> patterns = (List<?>) data.get("patterns");
            // both layers observed, as the view observes them: each layer then computes its pattern explicitly
            ModelOutput out = model.forward(input, CacheSpec.only("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"));
            float[] expected = out.cache().get("blocks.1.attn.hook_pattern").toFloatArray();
            List<?> layer1 = (List<?>) patterns.get(1);
            assertEquals(expected.length, layer1.size());
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i], (Float) layer1.get(i), 0f);
            }
            assertNull(data.get("patching"));
            assertEquals(5, steps.size(), "the pass, three compositions, the detectors");
            assertEquals(5, steps.get(4)[0]);
            assertEquals(5, steps.get(4)[1]);
            Map<?, ?> k = (Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) data.get("composition")).get("modes")).get("K");
            try (Tensor scores = CompositionScores.allPairs(model, CompositionScores.Mode.K)) {
                assertEquals(scores.select(0, 0).select(0, 1).select(0, 1).select(0, 3).item(),
                        (Double) ((List<?>) ((List<?>) ((List<?>) ((List<?>) k.get("scores")).get(0)).get(1)).get(1)).get(3), 0.0);
            }
        }
    }

    /** Was: a NaN or infinite weight in any pattern (a model being debugged) made the page impossible to write. */
    @Test
    void aPatternThatIsNotFiniteShowsAsNoValue() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL);
             HookedAutoModel.HookHandle broken = model.addHook(HookedAutoModel.HookSpec.at("blocks.1.attn.hook_pattern",
                     (p, name) -> {
                         float[] v = p.toFloatArray();
                         v[0] = Float.NaN;
                         v[1] = Float.POSITIVE_INFINITY;
                         return Tensor.of(v, p.shape());
                     }))) {
            AttentionView view = AttentionView.of(model, ids(3, 1, 4), AttentionView.Options.defaults());
            String html = view.html();
            String json = html.substring(html.indexOf("id=\"arrakis-data\">") + 18, html.indexOf("</script>"));
            List<?> layer1 = (List<?>) ((List<?>) ((Map<?, ?>) Json.parse(json)).get("patterns")).get(1);
            assertNull(layer1.get(0));
            assertNull(layer1.get(1));
            assertTrue(layer1.get(2) instanceof Double, "the rest stay numbers");
        }
    }

    /** Was: a page for a folder not yet there failed with the temporary file's name and no reason. */
    @Test
    void thePageIsWrittenIntoFoldersItCreatesAndTheSameTokenTwiceIsNamed(@org.junit.jupiter.api.io.TempDir Path dir) {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            Path page = dir.resolve("new/folder/view.html");
            AttentionView.of(model, ids(3, 1, 4), AttentionView.Options.defaults()).writeHtml(page);
            assertTrue(java.nio.file.Files.isRegularFile(page));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model,
                    ids(3, 1, 4), AttentionView.Options.defaults().withPatching(ids(3, 2, 4), 5, 5, List.of(),
                            List.of())));
            assertTrue(e.getMessage().contains("the answer and the wrong token are both 5"), e.getMessage());
        }
    }

    /**
     * The page's passes run under the hooks the model had when it began: a hook another thread adds after the first
     * step (here from the progress callback) changes neither its detectors nor its patching.
     */
    @Test
    void aHookAddedWhileThePageIsMadeIsNotInIt() throws Exception {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            AttentionView.Options options = AttentionView.Options.defaults().withDetectors(4, 2, 0)
                    .withPatching(ids(3, 2, 4), 5, 6, List.of(), List.of());
            String plain = Json.write(AttentionView.of(model, ids(3, 1, 4), options).data());
            java.util.concurrent.atomic.AtomicReference<HookedAutoModel.HookHandle> added =
                    new java.util.concurrent.atomic.AtomicReference<>();
            String whileAdded = Json.write(AttentionView.of(model, ids(3, 1, 4), options.withProgress((done, total) -> {
                if (added.get() == null) {
                    Thread other = Thread.ofPlatform().start(() -> added.set(model.addHook(
                            HookedAutoModel.HookSpec.at("blocks.0.hook_mlp_out", (a, name) -> a.mul(3.0)))));
                    try {
                        other.join();
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                }
            })).data());
            assertEquals(plain, whileAdded);
            assertFalse(plain.equals(Json.write(AttentionView.of(model, ids(3, 1, 4), options).data())),
                    "the next page has the hook");
            added.get().close();
        }
    }

    /** Was: a detector length the model cannot take, or a title no page can carry, failed after all the other work. */
    @Test
    void badDetectorLengthsAndTitlesAreRefusedBeforeTheWork() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            for (int seqLen : new int[] {1, (int) model.config().maxPositions()}) {
                boolean[] worked = {false};
                AttentionView.Options options = AttentionView.Options.defaults().withDetectors(seqLen, 4, 0)
                        .withProgress((done, total) -> worked[0] = true);
                assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model, ids(3, 1, 4), options),
                        "length " + seqLen);
                assertFalse(worked[0], "refused before the first step, at length " + seqLen);
            }
            // was: "size: needs a tensor with at least 1 dim"
            IllegalArgumentException scalar = assertThrows(IllegalArgumentException.class,
                    () -> AttentionView.of(model, Tensor.of(new long[] {3}, 1).view(), AttentionView.Options.defaults()));
            assertEquals("the input ids must be [pos] or [1, pos], got shape []", scalar.getMessage());
            IllegalArgumentException title = assertThrows(IllegalArgumentException.class,
                    () -> AttentionView.Options.defaults().withTitle("x\uD800"));
            assertTrue(title.getMessage().contains("the title has an unpaired surrogate U+D800 at index 1"),
                    title.getMessage());
            // was: refused only when the page was written, after all the work
            Tokenizer lone = labelling(id -> id == 1 ? "a\uDC00" : "ok");
            boolean[] worked = {false};
            AttentionView.Options withLone = AttentionView.Options.defaults().withTokens(lone)
                    .withProgress((done, total) -> worked[0] = true);
            IllegalArgumentException label = assertThrows(IllegalArgumentException.class,
                    () -> AttentionView.of(model, ids(3, 1, 4), withLone));
            assertEquals("the tokenizer's label of the input's token 1 (id 1) has an unpaired surrogate U+DC00 at"
                    + " index 1", label.getMessage());
            assertFalse(worked[0], "refused before the first step");
            try (Tensor corrupted = ids(3, 1, 4)) {
                AttentionView.Options patching = withLone.withPatching(corrupted, 2, 3, List.of(), List.of());
                IllegalArgumentException corruptedLabel = assertThrows(IllegalArgumentException.class,
                        () -> AttentionView.of(model, ids(3, 5, 4), patching));
                assertEquals("the tokenizer's label of the corrupted input's token 1 (id 1) has an unpaired"
                        + " surrogate U+DC00 at index 1", corruptedLabel.getMessage());
                assertFalse(worked[0], "the corrupted input's labels are refused before the first step too");
            }
        }
    }

    @Test
    void thePageInlinesItsDataAndNoStringCanEndItsScript() {
        Tokenizer hostile = labelling(id -> id == 2 ? "<!--<script>" : "</script><b>" + id + "</b>");
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            // "<!--<script>" in the data would keep the data's own </script> from ending it (the HTML parser's
            // script data escape), and "@DATA@" in the title was once filled in with the data, unescaped
            String html = AttentionView.of(model, ids(1, 2, 3), AttentionView.Options.defaults().withTokens(hostile)
                    .withTitle("a <b>bold</b> & title @DATA@")).html();
            assertEquals(2, html.split("</script>", -1).length - 1, "the page's two scripts end where they should");
            assertTrue(html.contains("<title>arrakis-jvm view: a &lt;b&gt;bold&lt;/b&gt; &amp; title @DATA@</title>"),
                    "escaped title");
            String data0 = html.substring(html.indexOf("id=\"arrakis-data\">"));
            assertFalse(data0.substring(0, data0.indexOf("</script>")).contains("<!--"), "no comment opener in the data");
            assertFalse(html.replace("title @DATA@", "").contains("@DATA@") || html.contains("@TITLE@"));
            assertFalse(html.matches("(?s).*(src|href)\\s*=\\s*\"(https?:)?//.*"), "nothing from the network");
            String json = html.substring(html.indexOf("id=\"arrakis-data\">") + 18, html.indexOf("</script>"));
            Map<?, ?> data = (Map<?, ?>) Json.parse(json);
            assertEquals("</script><b>1</b>", ((List<?>) data.get("tokens")).get(0));
            assertEquals("<!--<script>", ((List<?>) data.get("tokens")).get(1));
        }
    }

    /** Was: the seed was written as a JSON number, which a browser reads as a double, rounding seeds past 2^53. */
    @Test
    void theDetectorSeedReachesThePageExactly() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            AttentionView view = AttentionView.of(model, ids(1, 2, 3),
                    AttentionView.Options.defaults().withDetectors(4, 1, 1234567890123456789L));
            assertEquals("1234567890123456789", ((Map<?, ?>) view.data().get("heads")).get("seed"));
        }
    }

    /** Was: a model too short for any repeated sequence refused the whole page, not only the detectors. */
    @Test
    void aContextTooShortForTheDetectorsShowsTheRestWithoutScores() {
        HookedAutoConfig tiny = HookedAutoConfig.of("gpt2").with(java.util.Map.of("n_layer", 1, "n_embd", 32, "n_head", 2,
                "vocab_size", 50, "n_positions", 3));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(tiny, 0, DType.FLOAT32, Device.CPU)) {
            AttentionView view = AttentionView.of(model, ids(1, 2, 3), AttentionView.Options.defaults());
            Map<?, ?> heads = (Map<?, ?>) view.data().get("heads");
            assertEquals(List.of(java.util.Arrays.asList(null, null)), heads.get("induction"), "one layer of two heads");
            assertNull(heads.get("seq_len"), "was: the length the detectors would have run at, on a page saying they ran");
            // asked for explicitly, a length the context cannot hold is still refused
            assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model, ids(1, 2, 3),
                    AttentionView.Options.defaults().withDetectors(2, 1, 0)));
        }
    }

    @Test
    void badInputsAreRefusedNamingTheProblem() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            AttentionView.Options options = AttentionView.Options.defaults();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionView.of(model, Tensor.of(new long[] {1, 2, 3, 4}, 2, 2), options));
            assertTrue(e.getMessage().contains("one sequence"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model, ids(1, 2, 3),
                    options.withPatching(ids(1, 2), -1, -1, List.of(), List.of())));
            assertTrue(e.getMessage().contains("same shape"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model, ids(1, 2, 3),
                    options.withPatching(ids(1, 2, 3), -1, -1, List.of(), List.of())));
            assertTrue(e.getMessage().contains("both predict token"), e.getMessage());
            // was: a negative answer other than -1 meant "the top token" without a word
            e = assertThrows(IllegalArgumentException.class, () -> options.withPatching(ids(1, 2, 3), -5, -1, List.of(),
                    List.of()));
            assertTrue(e.getMessage().contains("-5"), e.getMessage());
        }
        HookedAutoConfig wide = HookedAutoConfig.of("gpt2").with(java.util.Map.of("n_layer", 2, "n_embd", 32, "n_head", 2,
                "vocab_size", 50, "n_positions", 2048));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(wide, 0, DType.FLOAT32, Device.CPU)) {
            Tensor many = Tensor.zeros(new long[] {1, 1415}, DType.INT64, Device.CPU); // 4 heads x 1415^2 > 8M weights
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionView.of(model, many, AttentionView.Options.defaults()));
            assertTrue(e.getMessage().contains("give at most 1414 tokens"), e.getMessage());
        }
        HookedAutoConfig oneLayer = HookedAutoConfig.of("gpt2").with(java.util.Map.of("n_layer", 1, "n_embd", 32, "n_head", 2,
                "vocab_size", 50, "n_positions", 16));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(oneLayer, 0, DType.FLOAT32, Device.CPU)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model,
                    ids(1, 2, 3), AttentionView.Options.defaults().withPatching(ids(3, 2, 1), 1, 2, List.of(), List.of())));
            assertTrue(e.getMessage().contains("one layer"), e.getMessage());
        }
    }

    /** Were: a page of 1 to 2 GB for a model of many heads (the cap counted patterns only), and late refusals. */
    @Test
    void compositionCountsTowardsThePagesSizeAndPatchingIsCheckedBeforeTheWork(@TempDir Path dir) {
        HookedAutoConfig manyHeads = HookedAutoConfig.of("gpt2").with(java.util.Map.of("n_layer", 48, "n_embd", 40,
                "n_head", 40, "vocab_size", 50, "n_positions", 16)); // 1,920 heads: 3 x 1920^2 > 8M scores
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(manyHeads, 0, DType.FLOAT32, Device.CPU)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionView.of(model, ids(1, 2), AttentionView.Options.defaults()));
            assertTrue(e.getMessage().contains("11059200 scores"), e.getMessage());
        }
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL)) {
            int[] steps = {0};
            AttentionView.Options counted = AttentionView.Options.defaults().withProgress((done, total) -> steps[0]++);
            int layers = model.config().nLayers();
            for (AttentionView.Options bad : List.of(
                    counted.withPatching(ids(3, 2, 1), 1, 2, List.of(Head.of(0, 1)), List.of()),
                    counted.withPatching(ids(3, 2, 1), 1, 2, List.of(Head.of(layers - 1, 99)), List.of()),
                    counted.withPatching(ids(3, 2, 1), model.config().vocabSize(), 2, List.of(), List.of()),
                    counted.withPatching(ids(3, 2, 1), 5, 5, List.of(), List.of()),
                    counted.withPatching(ids(3, 2, model.config().vocabSize()), 1, 2, List.of(), List.of()),
                    counted.withPatching(ids(3, -2, 1), 1, 2, List.of(), List.of()),
                    counted.withPatching(Tensor.of(new float[] {3, 2, 1}, 1, 3), 1, 2, List.of(), List.of()))) {
                assertThrows(IllegalArgumentException.class, () -> AttentionView.of(model, ids(1, 2, 3), bad));
            }
            assertEquals(0, steps[0], "refused before any step of the page's work");
            AttentionView view = AttentionView.of(model, ids(1, 2, 3), AttentionView.Options.defaults());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> view.writeHtml(dir));
            assertTrue(e.getMessage().contains("it is a folder"), e.getMessage());
        }
    }

    @Test
    void theBenchWritesAViewUnderItsSaveDir(@TempDir Path dir) throws IOException {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(MODEL);
             BaseInterpretabilityBench bench = new BaseInterpretabilityBench(model, dir)) {
            Path page = bench.view(ids(5, 6, 7, 8), "first look");
            assertEquals(dir.resolve("views").resolve("first look.html"), page);
            String html = Files.readString(page);
            assertTrue(html.startsWith("<!DOCTYPE html>") && html.contains("first look"));
            // a name is one file name: the page stays under views/ (was: written wherever "../" led)
            for (String bad : new String[] {"../outside", "a/b", ""}) {
                assertThrows(IllegalArgumentException.class, () -> bench.view(ids(5, 6, 7, 8), bad), bad);
            }
            assertFalse(Files.exists(dir.resolve("outside.html")));
        }
    }
}

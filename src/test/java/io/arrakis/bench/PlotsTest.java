package io.arrakis.bench;

import io.arrakis.text.Gpt2Tokenizer;
import io.arrakis.model.Fixtures;
import io.arrakis.composer.ScoreReport;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.plot.Heatmap;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class PlotsTest {
    private static HookedAutoModel gpt2;
    private static Tensor ids;
    private static ModelOutput out;

    @BeforeAll
    static void run() {
        gpt2 = HookedAutoModel.fromPretrained(Fixtures.dir("gpt2-tiny"));
        ids = Tensor.randint(new Generator(3), 0, 96, new long[] {2, 6}, Device.CPU);
        out = gpt2.forward(ids);
    }

    @AfterAll
    static void close() {
        if (out != null) {
            out.close();
            ids.close();
            gpt2.close();
        }
    }

    /** Was: a plot set java.awt.headless to true even where the JVM was started with it false (a desktop application). */
    @Test
    void aPlotKeepsTheHeadlessSettingTheJvmWasGiven() {
        assertTrue(io.arrakis.testing.ChildJvm.of(HeadlessSetting.class).property("java.awt.headless", "false").run()
                .contains("headless false"));
        assertTrue(io.arrakis.testing.ChildJvm.of(HeadlessSetting.class).run().contains("headless true"),
                "where nothing chose, the drawing is off-screen, whatever DISPLAY says");
    }

    /** Asks whether text can be drawn, then prints java.awt.headless. */
    public static final class HeadlessSetting {
        public static void main(String[] args) {
            Heatmap.canRenderText();
            System.out.println("headless " + System.getProperty("java.awt.headless"));
        }
    }

    private static void assumeFonts() {
        assumeTrue(Plots.canRenderText(), "skipped: this machine has no fonts (fontconfig), so no heatmap can be drawn");
    }

    /** Reads the PNG and checks its size and that it is not blank: several colours, some dark or coloured pixels. */
    private static BufferedImage readPng(Path file, int width, int height) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        assertTrue(bytes.length > 8 && (bytes[0] & 0xFF) == 0x89 && bytes[1] == 'P' && bytes[2] == 'N' && bytes[3] == 'G',
                "not a PNG: " + file);
        BufferedImage image = ImageIO.read(file.toFile());
        assertNotNull(image, "ImageIO cannot read " + file);
        assertEquals(width, image.getWidth());
        assertEquals(height, image.getHeight());
        Set<Integer> colours = new HashSet<>();
        int dark = 0;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int rgb = image.getRGB(x, y) & 0xFFFFFF;
                colours.add(rgb);
                Color c = new Color(rgb);
                if (c.getRed() + c.getGreen() + c.getBlue() < 3 * 160
                        || Math.max(c.getRed(), Math.max(c.getGreen(), c.getBlue()))
                        - Math.min(c.getRed(), Math.min(c.getGreen(), c.getBlue())) > 60) {
                    dark++;
                }
            }
        }
        assertTrue(colours.size() >= 10, "only " + colours.size() + " colours");
        assertTrue(dark > width * height / 20, "only " + dark + " dark or coloured pixels");
        return image;
    }

    private static Color cell(BufferedImage image, Rectangle2D area, int n, int row, int col) {
        int x = (int) Math.round(area.getX() + (col + 0.5) / n * area.getWidth());
        int y = (int) Math.round(area.getY() + (row + 0.5) / n * area.getHeight());
        return new Color(image.getRGB(x, y) & 0xFFFFFF);
    }

    private static double distance(Color a, Color b) {
        return Math.abs(a.getRed() - b.getRed()) + Math.abs(a.getGreen() - b.getGreen()) + Math.abs(a.getBlue() - b.getBlue());
    }

    @Test
    void attentionPatternWithTokensIsAPngOfTheStatedSize(@TempDir Path dir) throws Exception {
        assumeFonts();
        List<String> tokens = List.of("The", " cat", " sat", "\n", "", " mat");
        Path file = Plots.attentionPattern(out.cache(), 1, 2, tokens, dir.resolve("sub/p.png"), 640, 480);
        assertEquals(dir.resolve("sub/p.png"), file);
        readPng(file, 640, 480);
    }

    @Test
    void cellsHaveThePatternsColours(@TempDir Path dir) throws Exception {
        assumeFonts();
        Path file = dir.resolve("p.png");
        Rectangle2D area = Plots.renderAttention(out.cache(), 0, 1, 1, null, file, 600, 600);
        BufferedImage image = readPng(file, 600, 600);
        float[] pattern = out.cache().toFloatArray("blocks.0.attn.hook_pattern");   // [2, 4, 6, 6]
        Heatmap scale = new Heatmap(null, "", "", new String[] {"a"}, new String[] {"a"}, new double[][] {{0}}, "", 0, 1, 10);
        for (int q = 0; q < 6; q++) {
            for (int k = 0; k < 6; k++) {
                double p = pattern[((1 * 4 + 1) * 6 + q) * 6 + k];
                assertTrue(distance(scale.colour(p), cell(image, area, 6, q, k)) <= 6,
                        "cell " + q + "," + k + " (" + p + "): " + cell(image, area, 6, q, k) + " vs " + scale.colour(p));
            }
        }
        assertEquals(scale.colour(1), cell(image, area, 6, 0, 0));   // the first query attends only to itself
        assertEquals(scale.colour(0), cell(image, area, 6, 0, 5));   // the future is masked
    }

    @Test
    void manyPatternsFromACacheAndFromAModel(@TempDir Path dir) throws Exception {
        assumeFonts();
        List<Path> files = Plots.attentionPatterns(out.cache(), new int[] {0, 1}, new int[] {3, 0}, null,
                dir.resolve("cache"), 320, 300);
        assertEquals(List.of(dir.resolve("cache/attention_L0H3.png"), dir.resolve("cache/attention_L0H0.png"),
                dir.resolve("cache/attention_L1H3.png"), dir.resolve("cache/attention_L1H0.png")), files);
        for (Path f : files) {
            readPng(f, 320, 300);
        }
        // text input: a small random GPT-2 with GPT-2's vocabulary, token strings as labels
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_layer", 2, "n_head", 4, "n_embd", 32));
        assertEquals(Gpt2Tokenizer.VOCAB_SIZE, config.vocabSize());
        try (HookedAutoModel small = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU);
             Tensor text = Gpt2Tokenizer.get().encodeAsTensor(" a b c d")) {
            List<String> tokens = Gpt2Tokenizer.get().tokenStrings(Gpt2Tokenizer.get().encode(" a b c d"));
            assertEquals(List.of(" a", " b", " c", " d"), tokens);
            List<Path> fromModel = Plots.attentionPatterns(small, text, new int[] {1}, new int[] {3}, tokens,
                    dir.resolve("model"), 400, 400);
            assertEquals(List.of(dir.resolve("model/attention_L1H3.png")), fromModel);
            readPng(fromModel.get(0), 400, 400);
        }
        // grouped-query attention: the pattern has a row per query head
        try (HookedAutoModel llama = HookedAutoModel.fromPretrained(Fixtures.dir("llama-tiny-gqa"))) {
            List<Path> gqa = Plots.attentionPatterns(llama, ids, new int[] {0}, new int[] {3}, null, dir.resolve("gqa"),
                    300, 300);
            readPng(gqa.get(0), 300, 300);
        }
    }

    @Test
    void compositionScoresAtTheStatedSize(@TempDir Path dir) throws Exception {
        assumeFonts();
        double[] s = new double[16];
        s[0 * 4 + 2] = 0.9;   // L0H0 → L1H0
        s[1 * 4 + 3] = 0.4;   // L0H1 → L1H1
        Path file = Plots.compositionScores(ScoreReport.ofComposition(s, null, 2, 2), "K", dir.resolve("k.png"), 500, 420);
        readPng(file, 500, 420);
        Path heads = Plots.compositionScores(ScoreReport.ofHeads(new double[] {0, 1, 0.5, 0.2}, 2, 2), "induction",
                dir.resolve("h.png"), 300, 260);
        readPng(heads, 300, 260);
    }

    @Test
    void badArgumentsAreClearErrors(@TempDir Path dir) {
        Path f = dir.resolve("x.png");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPattern(out.cache(), 2, 0, null, f, 400, 400));
        assertTrue(e.getMessage().contains("blocks.2.attn.hook_pattern") && e.getMessage().contains("blocks.0.attn.hook_pattern"),
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Plots.attentionPattern(out.cache(), 0, 4, null, f, 400, 400));
        assertTrue(e.getMessage().contains("heads 0 to 3"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Plots.attentionPattern(out.cache(), -1, 0, null, f, 400, 400));
        assertThrows(IllegalArgumentException.class, () -> Plots.attentionPattern(out.cache(), 0, -1, null, f, 400, 400));
        assertThrows(IllegalArgumentException.class, () -> Plots.attentionPattern(out.cache(), 0, 0, 2, null, f, 400, 400));
        e = assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPattern(out.cache(), 0, 0, List.of("a", "b"), f, 400, 400));
        assertTrue(e.getMessage().contains("2 token labels for 6 positions"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Plots.attentionPattern(out.cache(), 0, 0, null, f, 10, 400));
        assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPatterns(out.cache(), new int[] {0}, new int[] {0, 9}, null, dir, 400, 400));
        assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPatterns(out.cache(), new int[0], new int[] {0}, null, dir, 400, 400));
        assertTrue(!Files.exists(dir.resolve("attention_L0H0.png")), "nothing is written when an argument is bad");
        try (ModelOutput embedOnly = gpt2.forward(ids, CacheSpec.only("hook_embed"))) {
            e = assertThrows(IllegalArgumentException.class,
                    () -> Plots.attentionPattern(embedOnly.cache(), 0, 0, null, f, 400, 400));
            assertTrue(e.getMessage().contains("none"), e.getMessage());
        }
        e = assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPatterns(gpt2, ids, new int[] {2}, new int[] {0}, null, dir, 400, 400));
        assertTrue(e.getMessage().contains("layers 0 to 1"), e.getMessage());
        // was: four identical files for layers {0, 0} and heads {1, 1}; and a size was checked after the forward pass
        e = assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPatterns(gpt2, ids, new int[] {0, 0}, new int[] {1, 1}, null, dir, 400, 400));
        assertTrue(e.getMessage().contains("chosen twice"), e.getMessage());
        // were checked only after the forward pass
        e = assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPatterns(gpt2, ids, new int[] {0}, new int[] {9}, null, dir, 400, 400));
        assertTrue(e.getMessage().contains("heads 0 to 3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Plots.attentionPatterns(gpt2, ids, new int[] {0}, new int[] {0}, List.of("a"), dir, 400, 400));
        assertTrue(e.getMessage().contains("1 token labels for 6 positions"), e.getMessage());
        int[] passes = {0};
        try (HookedAutoModel.HookHandle counting = gpt2.addHook(HookedAutoModel.HookSpec.at("hook_embed", (t, name) -> {
            passes[0]++;
            return t;
        }))) {
            assertThrows(IllegalArgumentException.class,
                    () -> Plots.attentionPatterns(gpt2, ids, new int[] {0}, new int[] {0}, null, dir, 10, 10));
            assertThrows(IllegalArgumentException.class,
                    () -> Plots.attentionPatterns(gpt2, ids, new int[] {0}, new int[] {9}, null, dir, 400, 400));
            assertThrows(IllegalArgumentException.class,
                    () -> Plots.attentionPatterns(gpt2, ids, new int[] {0}, new int[] {0}, List.of("a"), dir, 400, 400));
            // ids of one sequence, [pos]: were checked against the labels only after the pass
            try (Tensor row = ids.select(0, 0)) {
                assertThrows(IllegalArgumentException.class, () -> Plots.attentionPatterns(gpt2, row, new int[] {0},
                        new int[] {0}, List.of("a"), dir, 400, 400));
            }
        }
        assertEquals(0, passes[0], "a bad size, head or labels are refused before the forward pass");
        assertTrue(!Files.exists(f));
    }

    @Test
    void tokenLabelsShowControlCharacters() {
        assertEquals("\\n", Plots.label("\n"));
        assertEquals("∅", Plots.label(""));
        assertEquals(" cat", Plots.label(" cat"));
        assertEquals("a\\u0000b", Plots.label("a\u0000b"), "NUL was drawn as an empty box");
        assertEquals("␣␣", Plots.label("  "), "a token of spaces was an invisible label");
        assertEquals("-".repeat(Plots.LABEL_LENGTH - 1) + "…", Plots.label("-".repeat(64)), "long labels squeezed the cells");
        assertEquals("😀".repeat(Plots.LABEL_LENGTH), Plots.label("😀".repeat(Plots.LABEL_LENGTH)), "counted in characters");
        // were drawn as nothing, or reversed the label
        assertEquals("\\u00a0", Plots.label("\u00a0"), "a no-break space");
        assertEquals("a\\u200bb", Plots.label("a\u200bb"), "a zero-width space");
        assertEquals("\\u202eabc", Plots.label("\u202eabc"), "a right-to-left override");
        assertEquals("\\t␣", Plots.label("\t "));
        // was: cut inside an escape, "\u0001\u0001\u0001\…"
        assertEquals("\\u0001".repeat(3) + "…", Plots.label("\u0001".repeat(10)));
    }

    /** Was: labels, or a small image, could leave the cells no room, and the PNG showed only the legend. */
    @Test
    void anImageThatLeavesTheCellsNoRoomIsRefused(@TempDir Path dir) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Heatmap.canRenderText(), "no fonts");
        String[] labels = new String[40];
        java.util.Arrays.fill(labels, "x".repeat(60));
        double[][] values = new double[40][40];
        Heatmap map = new Heatmap("t", "r", "c", labels, labels, values, "v", 0, 1, 10);
        Path png = dir.resolve("squeezed.png");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> map.writePng(png, 400, 400));
        assertTrue(e.getMessage().contains("for 40 × 40 cells"), e.getMessage());
        assertTrue(!Files.exists(png));
        assertThrows(IllegalArgumentException.class, () -> map.writePng(png, 50000, 50000));
    }

    /** Was: a cell's worth of chart entities per value, and the size checked only after drawing: out of memory. */
    @Test
    void aGridLargerThanItsImageIsRefusedBeforeDrawing(@TempDir Path dir) {
        org.junit.jupiter.api.Assumptions.assumeTrue(Heatmap.canRenderText(), "no fonts");
        String[] labels = new String[4000];
        java.util.Arrays.fill(labels, "x");
        Heatmap map = new Heatmap("t", "r", "c", labels, labels, new double[4000][4000], "v", 0, 1, 6);
        long start = System.nanoTime();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> map.writePng(dir.resolve("big.png"), 800, 800));
        assertTrue(e.getMessage().contains("for 4000 × 4000 cells"), e.getMessage());
        assertTrue(System.nanoTime() - start < 10_000_000_000L, "refused without drawing the cells");
    }

    /** Was: the accessors handed out the arrays the checks had passed, and equal heatmaps were not equal. */
    @Test
    void aHeatmapCannotBeChangedThroughItsAccessors() {
        String[] two = {"a", "b"};
        Heatmap map = new Heatmap(null, "", "", two, two, new double[][] {{0, 1}, {2, 3}}, "", 0, 3, 10);
        map.values()[0] = new double[0];
        map.values()[1][1] = 7;
        map.rowLabels()[0] = null;
        assertEquals(3, map.values()[1][1]);
        assertEquals("a", map.rowLabels()[0]);
        Heatmap same = new Heatmap(null, "", "", two, two, new double[][] {{0, 1}, {2, 3}}, "", 0, 3, 10);
        assertEquals(map, same);
        assertEquals(map.hashCode(), same.hashCode());
        assertTrue(!map.equals(new Heatmap(null, "", "", two, two, new double[][] {{0, 1}, {2, 4}}, "", 0, 4, 10)));
    }

    /** Was: "cannot write the heatmap x/y.png: x", the bare path. */
    @Test
    void aFileWhereTheFolderGoesIsNamedAsTheReason(@TempDir Path dir) throws java.io.IOException {
        org.junit.jupiter.api.Assumptions.assumeTrue(Heatmap.canRenderText(), "no fonts");
        Path file = Files.writeString(dir.resolve("afile"), "x");
        String[] two = {"a", "b"};
        Heatmap map = new Heatmap(null, "", "", two, two, new double[][] {{0, 1}, {2, 3}}, "", 0, 3, 10);
        java.io.UncheckedIOException e = assertThrows(java.io.UncheckedIOException.class,
                () -> map.writePng(file.resolve("x.png"), 200, 200));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    }

    @Test
    void heatmapShapeIsChecked() {
        String[] two = {"a", "b"};
        assertThrows(IllegalArgumentException.class,
                () -> new Heatmap(null, "", "", two, two, new double[][] {{0, 1}}, "", 0, 1, 10));
        assertThrows(IllegalArgumentException.class,
                () -> new Heatmap(null, "", "", two, two, new double[][] {{0, 1}, {0}}, "", 0, 1, 10));
        assertThrows(IllegalArgumentException.class,
                () -> new Heatmap(null, "", "", two, two, new double[][] {{0, 1}, {0, 1}}, "", 1, 1, 10));
        assertThrows(IllegalArgumentException.class,
                () -> new Heatmap(null, "", "", new String[0], two, new double[0][], "", 0, 1, 10));
        double[][] square = {{0, 1}, {0, 1}};
        // a scale JFreeChart cannot draw: it hung on the first, threw from inside on the second
        assertThrows(IllegalArgumentException.class, () -> new Heatmap(null, "", "", two, two, square, "", 0, 1e-307, 10));
        assertThrows(IllegalArgumentException.class,
                () -> new Heatmap(null, "", "", two, two, square, "", -1e308, 1e308, 10));
        assertThrows(NullPointerException.class,
                () -> new Heatmap(null, "", "", new String[] {"a", null}, two, square, "", 0, 1, 10));
        // was: the arrays were kept as given, so a row changed after the checks went unnoticed
        Heatmap kept = new Heatmap(null, "", "", two, two, square, "", 0, 1, 10);
        square[0] = new double[] {5, 5, 5};
        two[1] = null;
        assertEquals(2, kept.values()[0].length);
        assertEquals("b", kept.columnLabels()[1]);
    }
}

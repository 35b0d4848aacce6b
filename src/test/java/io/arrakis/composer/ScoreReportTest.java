package io.arrakis.composer;

import io.arrakis.json.Json;
import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Dimension;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class ScoreReportTest {

    /** [2, 2, 2, 2]: the four valid pairs L0Hx → L1Hy, plus large values where l1 >= l2 that must be ignored. */
    private static double[] handMade() {
        double[] s = new double[16];
        s[idx(0, 0, 1, 0)] = 0.0;
        s[idx(0, 0, 1, 1)] = 0.9;
        s[idx(0, 1, 1, 0)] = 0.5;
        s[idx(0, 1, 1, 1)] = 0.3;
        s[idx(1, 0, 0, 0)] = 5;   // backwards: invalid
        s[idx(0, 0, 0, 1)] = 7;   // same layer: invalid
        s[idx(1, 1, 1, 1)] = 9;   // same layer: invalid
        return s;
    }

    private static int idx(int l1, int h1, int l2, int h2) {
        return ((l1 * 2 + h1) * 2 + l2) * 2 + h2;
    }

    @Test
    void topRanksOnlyForwardPairsWithLabels() {
        ScoreReport r;
        try (Tensor t = Tensor.of(handMade(), 2, 2, 2, 2)) {
            r = ScoreReport.ofComposition(t, null);
        }
        List<ScoreReport.Entry> top = r.top(10);
        assertEquals(List.of("L0H0 → L1H1", "L0H1 → L1H0", "L0H1 → L1H1", "L0H0 → L1H0"),
                top.stream().map(ScoreReport.Entry::label).toList());
        assertEquals(List.of(0.9, 0.5, 0.3, 0.0), top.stream().map(ScoreReport.Entry::score).toList());
        assertEquals(List.of(1, 2, 3, 4), top.stream().map(ScoreReport.Entry::rank).toList());
        assertEquals(Head.of(0, 1), top.get(1).sender());
        assertEquals(Head.of(1, 0), top.get(1).receiver());
        assertTrue(Double.isNaN(top.getFirst().corrected()));
        assertEquals(2, r.top(2).size());
        assertEquals(0, r.top(0).size());
        assertThrows(IllegalArgumentException.class, () -> r.top(-1));
    }

    /** -0.0 and 0.0 are one score: their tie keeps index order, as any other tie does. */
    @Test
    void signedZerosTie() {
        double[] v = new double[16];
        v[idx(0, 0, 1, 0)] = -0.0;
        v[idx(0, 0, 1, 1)] = 0.0;
        try (Tensor t = Tensor.of(v, 2, 2, 2, 2)) {
            assertEquals(List.of("L0H0 → L1H0", "L0H0 → L1H1", "L0H1 → L1H0", "L0H1 → L1H1"),
                    ScoreReport.ofComposition(t, null).top(4).stream().map(ScoreReport.Entry::label).toList());
        }
    }

    @Test
    void baselineCorrectedScoresTravelWithTheirPair() {
        double[] s = handMade();
        double[] c = new double[16];
        for (int i = 0; i < 16; i++) {
            c[i] = s[i] - 0.25;
        }
        ScoreReport r = ScoreReport.ofComposition(s, c, 2, 2);
        assertTrue(r.hasBaseline());
        assertEquals(0.65, r.top(1).getFirst().corrected(), 1e-12);
        assertTrue(r.table(1).lines().findFirst().orElseThrow().endsWith("corrected"));
    }

    @Test
    void tableIsAligned() {
        String table = ScoreReport.ofComposition(handMade(), null, 2, 2).table(2);
        assertEquals("""
                rank  sender → receiver     score
                   1  L0H0 → L1H1        0.900000
                   2  L0H1 → L1H0        0.500000
                """, table);
        String heads = ScoreReport.ofHeads(new double[] {0.1, 0.7, 0.2, 0.4, 0.05, 0.3}, 2, 3).table(3);
        assertEquals("""
                rank  head     score
                   1  L0H1  0.700000
                   2  L1H0  0.400000
                   3  L1H2  0.300000
                """, heads);
        // heads a detector cannot measure are counted, not left out without a word
        String unmeasured = ScoreReport.ofHeads(new double[] {Double.NaN, 0.7, Double.NaN, 0.4}, 2, 2).table(5);
        assertEquals("""
                rank  head     score
                   1  L0H1  0.700000
                   2  L1H1  0.400000
                2 heads without a score (NaN) left out
                """, unmeasured);
        // was: "16 pairs", counting the 12 of a sender not below its receiver, which are never ranked
        double[] none = new double[16];
        java.util.Arrays.fill(none, Double.NaN);
        assertTrue(ScoreReport.ofComposition(none, null, 2, 2).table(5).endsWith("4 pairs without a score (NaN) left out\n"));
    }

    @Test
    void jsonIsNestedLayersAndHeads() {
        double[] s = handMade();
        double[] c = s.clone();
        c[idx(0, 1, 1, 0)] = -1.5;
        ScoreReport r = ScoreReport.ofComposition(s, c, 2, 2);
        Map<?, ?> json = (Map<?, ?>) Json.parse(Json.write(r.json()));
        assertEquals(2L, json.get("n_layers"));
        assertEquals(2L, json.get("n_heads"));
        List<?> scores = (List<?>) json.get("scores");
        assertEquals(2, scores.size());
        for (Object l1 : scores) {
            assertEquals(2, ((List<?>) l1).size());
            for (Object h1 : (List<?>) l1) {
                assertEquals(2, ((List<?>) h1).size());
                for (Object l2 : (List<?>) h1) {
                    assertEquals(2, ((List<?>) l2).size());
                }
            }
        }
        assertEquals(0.9, at(scores, 0, 0, 1, 1), 0);
        assertEquals(5.0, at(scores, 1, 0, 0, 0), 0);
        assertEquals(-1.5, at((List<?>) json.get("baseline_corrected"), 0, 1, 1, 0), 0);
        assertNull(((Map<?, ?>) ScoreReport.ofComposition(s, null, 2, 2).json()).get("baseline_corrected"));

        Map<?, ?> heads = (Map<?, ?>) ScoreReport.ofHeads(new double[] {1, 2, 3, 4, 5, 6}, 2, 3).json();
        assertEquals(List.of(List.of(1.0, 2.0, 3.0), List.of(4.0, 5.0, 6.0)), heads.get("scores"));
        // a score a detector cannot measure (NaN) is null, which JSON can write
        Map<?, ?> unmeasured = (Map<?, ?>) Json.parse(Json.write(ScoreReport.ofHeads(
                new double[] {Double.NaN, 2, 3, 4}, 2, 2).json()));
        assertEquals(java.util.Arrays.asList(java.util.Arrays.asList(null, 2.0), List.of(3.0, 4.0)),
                unmeasured.get("scores"));
        // an infinite score is written as the activations' JSON writes it, not refused
        Map<?, ?> infinite = (Map<?, ?>) Json.parse(Json.write(ScoreReport.ofHeads(
                new double[] {Double.POSITIVE_INFINITY, 2, 3, Double.NEGATIVE_INFINITY}, 2, 2).json()));
        assertEquals(List.of(List.of("Infinity", 2.0), List.of(3.0, "-Infinity")), infinite.get("scores"));
    }

    private static double at(List<?> nested, int... index) {
        Object o = nested;
        for (int i : index) {
            o = ((List<?>) o).get(i);
        }
        return ((Number) o).doubleValue();
    }

    @Test
    void wrongShapesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> ScoreReport.ofComposition(new double[15], null, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> ScoreReport.ofComposition(new double[16], new double[4], 2, 2));
        assertThrows(IllegalArgumentException.class, () -> ScoreReport.ofHeads(new double[5], 2, 3));
        try (Tensor t = Tensor.of(new double[8], 2, 2, 2)) {
            assertThrows(IllegalArgumentException.class, () -> ScoreReport.ofComposition(t, null));
            assertThrows(IllegalArgumentException.class, () -> ScoreReport.ofHeads(t));
        }
    }

    /** Was: a one-layer model's composition heatmap was blank, its columns labelled with heads it does not have. */
    @Test
    void aOneLayerCompositionHeatmapIsRefused(@TempDir Path dir) {
        ScoreReport oneLayer = ScoreReport.ofComposition(new double[4], null, 1, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> oneLayer.writeHeatmapPng(dir.resolve("none.png"), "K"));
        assertTrue(e.getMessage().contains("one-layer"), e.getMessage());
    }

    /** Was: cells of at least 6 pixels made a 46-layer, 64-head model's heatmap too large to draw, after its scores. */
    @Test
    void aLargeModelsHeatmapShrinksItsCellsToStayDrawable() {
        int layers = 46;
        int heads = 64;
        ScoreReport r = ScoreReport.ofComposition(new double[layers * heads * layers * heads], null, layers, heads);
        Dimension size = r.heatmapSize();
        int cells = (layers - 1) * heads;
        assertTrue(size.width <= 8192 && size.width >= cells && size.height >= cells, size.toString());
        ScoreReport small = ScoreReport.ofComposition(handMade(), null, 2, 2);
        assertEquals(new Dimension(480, 400), small.heatmapSize(), "small ones keep their minimum size");
    }

    @Test
    void heatmapIsAReadablePngWithDistinctCells(@TempDir Path dir) throws Exception {
        assumeTrue(ScoreReport.canRenderText(), "skipped: this machine has no fonts (fontconfig), so no heatmap can be drawn");
        ScoreReport r = ScoreReport.ofComposition(handMade(), null, 2, 2);
        Path file = dir.resolve("sub/heat.png");
        Rectangle2D area = r.renderHeatmap(file, "K-composition");
        assertTrue(Files.size(file) > 0);
        byte[] magic = Files.readAllBytes(file);
        assertEquals((byte) 0x89, magic[0]);
        assertEquals('P', magic[1]);
        BufferedImage image = ImageIO.read(file.toFile());
        assertNotNull(image, "ImageIO cannot read the PNG");
        Dimension size = r.heatmapSize();
        assertEquals(size.width, image.getWidth());
        assertEquals(size.height, image.getHeight());
        // rows: L0H0, L0H1 (senders); columns: L1H0, L1H1 (receivers)
        Color high = pixel(image, area, 2, 2, 0, 1);   // 0.9, the top of the scale
        Color zero = pixel(image, area, 2, 2, 0, 0);   // 0.0, the bottom
        Color mid = pixel(image, area, 2, 2, 1, 0);    // 0.5
        assertNotEquals(high, zero);
        assertNotEquals(mid, zero);
        assertNotEquals(mid, high);
        assertTrue(high.getGreen() > 200 && high.getRed() > 200, "viridis top is yellow: " + high);
        assertTrue(zero.getBlue() > zero.getGreen() && zero.getRed() < 100, "viridis bottom is dark purple: " + zero);

        // three layers of one head: the cell sender L1H0 → receiver L1H0 (same layer) stays blank (white)
        double[] s = new double[9];
        s[(0 * 3 + 1)] = 1;   // L0 → L1
        s[(0 * 3 + 2)] = 0.5; // L0 → L2
        s[(1 * 3 + 2)] = 0.2; // L1 → L2
        ScoreReport three = ScoreReport.ofComposition(s, null, 3, 1);
        Path other = dir.resolve("three.png");
        Rectangle2D a3 = three.renderHeatmap(other, "three layers");
        BufferedImage i3 = ImageIO.read(other.toFile());
        assertEquals(Color.WHITE, pixel(i3, a3, 2, 2, 1, 0));
        assertNotEquals(Color.WHITE, pixel(i3, a3, 2, 2, 1, 1));
        assertNotEquals(Color.WHITE, pixel(i3, a3, 2, 2, 0, 0));
    }

    @Test
    void headHeatmapHasLayersAsRows(@TempDir Path dir) throws Exception {
        assumeTrue(ScoreReport.canRenderText(), "skipped: this machine has no fonts (fontconfig), so no heatmap can be drawn");
        ScoreReport r = ScoreReport.ofHeads(new double[] {0, 1, 0, 0, 0, 0}, 2, 3);
        Path file = dir.resolve("heads.png");
        r.writeHeatmapPng(file, "induction");
        BufferedImage image = ImageIO.read(file.toFile());
        assertNotNull(image);
        assertEquals(r.heatmapSize().width, image.getWidth());
        assertFalse(r.isComposition());
    }

    private static Color pixel(BufferedImage image, Rectangle2D area, int rows, int cols, int row, int col) {
        int x = (int) Math.round(area.getX() + (col + 0.5) / cols * area.getWidth());
        int y = (int) Math.round(area.getY() + (row + 0.5) / rows * area.getHeight());
        return new Color(image.getRGB(x, y) & 0xFFFFFF);
    }
}

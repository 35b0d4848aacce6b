package io.arrakis.composer;

import io.arrakis.plot.Heatmap;
import io.arrakis.torch.Tensor;


import java.awt.Dimension;
import java.awt.geom.Rectangle2D;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * What a person reads of a score tensor: either all-pairs composition scores {@code [L, H, L, H]} (sender
 * {@code [l1, h1]} → receiver {@code [l2, h2]}, optionally with their baseline-corrected version), or per-head scores
 * {@code [L, H]} (e.g. {@link HeadDetectors}).
 *
 * <ul>
 *   <li>{@link #top(int)}: the highest-scoring pairs (only {@code l1 < l2}) or heads, labelled {@code L0H3 → L1H2} or
 *       {@code L0H3};
 *   <li>{@link #table(int)}: the same as an aligned text table;
 *   <li>{@link #json()}: nested lists for {@link io.arrakis.json.Json#write};
 *   <li>{@link #writeHeatmapPng(Path, String)}: a PNG heatmap (JFreeChart, rendered headless, through
 *       {@link Heatmap}).
 * </ul>
 *
 * The values are copied out of the tensors when the report is made; the tensors may be closed afterwards.
 */
public final class ScoreReport {
    /** The heatmap's side beyond which its cells shrink below 6 pixels. */
    private static final int LARGE_SIDE = 8192;
    /** The heatmap's pixels around its cells: labels, title and the colour scale. */
    private static final int MARGIN = 200;

    private final int layers;
    private final int heads;
    private final boolean pairs;
    private final double[] scores;
    private final double[] corrected;

    /** One ranked pair (or head): {@code receiver} is null for per-head scores; {@code corrected} NaN without a baseline. */
    public record Entry(int rank, Head sender, Head receiver, String label, double score, double corrected) {
    }

    private ScoreReport(int layers, int heads, boolean pairs, double[] scores, double[] corrected) {
        this.layers = layers;
        this.heads = heads;
        this.pairs = pairs;
        this.scores = scores;
        this.corrected = corrected;
    }

    /** A report of composition scores {@code [L, H, L, H]}; {@code baselineCorrected} (same shape) may be null. */
    public static ScoreReport ofComposition(Tensor scores, Tensor baselineCorrected) {
        Objects.requireNonNull(scores, "scores");
        long[] shape = scores.shape();
        if (shape.length != 4 || shape[0] != shape[2] || shape[1] != shape[3] || shape[0] < 1 || shape[1] < 1) {
            throw new IllegalArgumentException("composition scores must be [layers, heads, layers, heads], got shape "
                    + Arrays.toString(shape));
        }
        if (baselineCorrected != null && !Arrays.equals(shape, baselineCorrected.shape())) {
            throw new IllegalArgumentException("the baseline-corrected scores have shape "
                    + Arrays.toString(baselineCorrected.shape()) + ", the scores " + Arrays.toString(shape));
        }
        return ofComposition(scores.toDoubleArray(), baselineCorrected == null ? null : baselineCorrected.toDoubleArray(),
                (int) shape[0], (int) shape[1]);
    }

    /** A report of composition scores given row-major {@code [L, H, L, H]} values; {@code baselineCorrected} may be null. */
    public static ScoreReport ofComposition(double[] scores, double[] baselineCorrected, int layers, int heads) {
        Objects.requireNonNull(scores, "scores");
        checkDims(layers, heads);
        long n = (long) layers * heads * layers * heads;
        if (scores.length != n || (baselineCorrected != null && baselineCorrected.length != n)) {
            throw new IllegalArgumentException("composition scores of " + layers + " layers and " + heads
                    + " heads need " + n + " values, got " + scores.length
                    + (baselineCorrected == null ? "" : " and " + baselineCorrected.length));
        }
        return new ScoreReport(layers, heads, true, scores.clone(),
                baselineCorrected == null ? null : baselineCorrected.clone());
    }

    /** A report of per-head scores {@code [L, H]}. */
    public static ScoreReport ofHeads(Tensor scores) {
        Objects.requireNonNull(scores, "scores");
        long[] shape = scores.shape();
        if (shape.length != 2 || shape[0] < 1 || shape[1] < 1) {
            throw new IllegalArgumentException("head scores must be [layers, heads], got shape " + Arrays.toString(shape));
        }
        return ofHeads(scores.toDoubleArray(), (int) shape[0], (int) shape[1]);
    }

    /** A report of per-head scores given row-major {@code [L, H]} values. */
    public static ScoreReport ofHeads(double[] scores, int layers, int heads) {
        Objects.requireNonNull(scores, "scores");
        checkDims(layers, heads);
        if (scores.length != (long) layers * heads) {
            throw new IllegalArgumentException("head scores of " + layers + " layers and " + heads + " heads need "
                    + ((long) layers * heads) + " values, got " + scores.length);
        }
        return new ScoreReport(layers, heads, false, scores.clone(), null);
    }

    private static void checkDims(int layers, int heads) {
        if (layers < 1 || heads < 1) {
            throw new IllegalArgumentException("layers and heads must be positive, got " + layers + " and " + heads);
        }
    }

    public int layers() {
        return layers;
    }

    public int heads() {
        return heads;
    }

    /** Whether this reports pairs ({@code [L, H, L, H]}) rather than heads ({@code [L, H]}). */
    public boolean isComposition() {
        return pairs;
    }

    public boolean hasBaseline() {
        return corrected != null;
    }

    private int index(int l1, int h1, int l2, int h2) {
        return ((l1 * heads + h1) * layers + l2) * heads + h2;
    }

    /**
     * The {@code k} highest scores, best first (ties in index order): pairs with {@code l1 < l2} only for composition
     * scores, every head for head scores. Fewer than {@code k} when there are fewer; NaN scores are left out.
     */
    public List<Entry> top(int k) {
        return ranked(scored(), k);
    }

    /** The entries {@link #top} ranks, in index order: pairs of a sender below its receiver, or every head, not NaN. */
    private List<Entry> scored() {
        List<Entry> all = new ArrayList<>();
        if (pairs) {
            for (int l1 = 0; l1 < layers; l1++) {
                for (int h1 = 0; h1 < heads; h1++) {
                    for (int l2 = l1 + 1; l2 < layers; l2++) {
                        for (int h2 = 0; h2 < heads; h2++) {
                            int i = index(l1, h1, l2, h2);
                            if (!Double.isNaN(scores[i])) {
                                Head s = new Head(l1, h1);
                                Head r = new Head(l2, h2);
                                all.add(new Entry(0, s, r, s + " → " + r, scores[i],
                                        corrected == null ? Double.NaN : corrected[i]));
                            }
                        }
                    }
                }
            }
        } else {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    double v = scores[l * heads + h];
                    if (!Double.isNaN(v)) {
                        Head s = new Head(l, h);
                        all.add(new Entry(0, s, null, s.toString(), v, Double.NaN));
                    }
                }
            }
        }
        return all;
    }

    /** The {@code k} best of {@code scored}, numbered from 1. */
    private static List<Entry> ranked(List<Entry> scored, int k) {
        if (k < 0) {
            throw new IllegalArgumentException("k must be non-negative, got " + k);
        }
        List<Entry> all = new ArrayList<>(scored);
        // stable: ties keep index order; 0.0 + x makes -0.0 the tie of 0.0 it is numerically (Double.compare orders them)
        all.sort(Comparator.comparingDouble((Entry e) -> 0.0 + e.score()).reversed());
        List<Entry> out = new ArrayList<>(Math.min(k, all.size()));
        for (int i = 0; i < Math.min(k, all.size()); i++) {
            Entry e = all.get(i);
            out.add(new Entry(i + 1, e.sender(), e.receiver(), e.label(), e.score(), e.corrected()));
        }
        return out;
    }

    /** How many scores {@link #top} could rank: the pairs of a sender below its receiver, or every head. */
    private long candidates() {
        return pairs ? (long) heads * heads * layers * (layers - 1) / 2 : (long) layers * heads;
    }

    /**
     * The {@link #top(int)} entries as an aligned text table (a header line, then one line per entry; scores with six
     * decimals, right-aligned; a "corrected" column when there is a baseline), and a last line counting the entries
     * without a score, if any. Lines end with {@code \n}.
     */
    public String table(int k) {
        List<Entry> scored = scored();
        List<Entry> entries = ranked(scored, k);
        String what = pairs ? "sender → receiver" : "head";
        List<String[]> rows = new ArrayList<>();
        rows.add(corrected == null ? new String[] {"rank", what, "score"}
                : new String[] {"rank", what, "score", "corrected"});
        for (Entry e : entries) {
            String rank = Integer.toString(e.rank());
            String score = String.format(Locale.ROOT, "%.6f", e.score());
            rows.add(corrected == null ? new String[] {rank, e.label(), score}
                    : new String[] {rank, e.label(), score, String.format(Locale.ROOT, "%.6f", e.corrected())});
        }
        int cols = rows.get(0).length;
        int[] width = new int[cols];
        for (String[] row : rows) {
            for (int c = 0; c < cols; c++) {
                width[c] = Math.max(width[c], row[c].length());
            }
        }
        StringBuilder sb = new StringBuilder();
        for (String[] row : rows) {
            StringBuilder line = new StringBuilder();
            for (int c = 0; c < cols; c++) {
                if (c > 0) {
                    line.append("  ");
                }
                String pad = " ".repeat(width[c] - row[c].length());
                // the label column is left-aligned, the numbers right-aligned
                line.append(c == 1 ? row[c] + pad : pad + row[c]);
            }
            sb.append(line.toString().stripTrailing()).append('\n');
        }
        long unscored = candidates() - scored.size();
        if (unscored > 0) {
            sb.append(unscored).append(pairs ? " pairs" : " heads").append(" without a score (NaN) left out\n");
        }
        return sb.toString();
    }

    /**
     * A structure for {@link io.arrakis.json.Json#write}: for composition scores
     * {@code {"n_layers": L, "n_heads": H, "scores": [L][H][L][H]}} plus {@code "baseline_corrected"} of the same shape
     * when there is a baseline; for head scores {@code {"n_layers": L, "n_heads": H, "scores": [L][H]}}. JSON has no
     * number for NaN or an infinity: a NaN score (a head a detector cannot measure) is {@code null}, an infinite one
     * the string {@code "Infinity"} or {@code "-Infinity"}, as {@link io.arrakis.model.ActivationCache#toJson} writes
     * it.
     */
    public Object json() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("n_layers", (long) layers);
        m.put("n_heads", (long) heads);
        m.put("scores", nested(scores));
        if (corrected != null) {
            m.put("baseline_corrected", nested(corrected));
        }
        return m;
    }

    private static Object jsonScore(double v) {
        return Double.isNaN(v) ? null : Double.isInfinite(v) ? (v > 0 ? "Infinity" : "-Infinity") : (Object) v;
    }

    /** The values as nested lists: {@code [L][H][L][H]} or {@code [L][H]}. */
    private List<Object> nested(double[] values) {
        List<Object> outer = new ArrayList<>(layers);
        for (int l1 = 0; l1 < layers; l1++) {
            List<Object> byHead = new ArrayList<>(heads);
            for (int h1 = 0; h1 < heads; h1++) {
                if (!pairs) {
                    byHead.add(jsonScore(values[l1 * heads + h1]));
                    continue;
                }
                List<Object> byLayer = new ArrayList<>(layers);
                for (int l2 = 0; l2 < layers; l2++) {
                    List<Object> row = new ArrayList<>(heads);
                    for (int h2 = 0; h2 < heads; h2++) {
                        row.add(jsonScore(values[index(l1, h1, l2, h2)]));
                    }
                    byLayer.add(row);
                }
                byHead.add(byLayer);
            }
            outer.add(byHead);
        }
        return outer;
    }

    // ------------------------------------------------------------------------------------------------ heatmap

    /** Rows of the heatmap: senders (l1 < L-1) for composition scores, layers for head scores. */
    int heatmapRows() {
        return pairs ? Math.max(layers - 1, 1) * heads : layers;
    }

    /** Columns of the heatmap: receivers (l2 > 0) for composition scores, heads for head scores. */
    int heatmapColumns() {
        return pairs ? Math.max(layers - 1, 1) * heads : heads;
    }

    /** A cell's side: 6 to 32 pixels, fewer where that would draw more than {@link #LARGE_SIDE} pixels a side. */
    private int cellPixels() {
        int cells = Math.max(heatmapRows(), heatmapColumns());
        int cell = Math.max(6, Math.min(32, 720 / cells));
        return MARGIN + cell * cells <= LARGE_SIDE ? cell : Math.max(1, (LARGE_SIDE - MARGIN) / cells);
    }

    /**
     * The size of the PNG that {@link #writeHeatmapPng} writes: grows with the number of cells, to about
     * {@value #LARGE_SIDE} pixels a side, and beyond that with cells of one pixel.
     *
     * @throws IllegalArgumentException when even cells of one pixel would make it larger than {@link Heatmap#MAX_SIDE}
     */
    public Dimension heatmapSize() {
        int cell = cellPixels();
        Dimension size = new Dimension(Math.max(480, MARGIN + heatmapColumns() * cell),
                Math.max(400, MARGIN - 10 + heatmapRows() * cell));
        if (size.width > Heatmap.MAX_SIDE || size.height > Heatmap.MAX_SIDE) {
            throw new IllegalArgumentException("a heatmap of " + heatmapRows() + " x " + heatmapColumns()
                    + " cells cannot be drawn: images are at most " + Heatmap.MAX_SIDE + " pixels a side");
        }
        return size;
    }

    /**
     * Writes a heatmap PNG of {@link #heatmapSize()} to {@code file}. Composition scores: one row per sender head
     * {@code (l1, h1)} with {@code l1 < L-1}, one column per receiver head {@code (l2, h2)} with {@code l2 > 0}; cells
     * with {@code l1 >= l2} stay blank. Head scores: layers as rows, heads as columns. The baseline-corrected scores are
     * drawn when there are any, else the raw scores; a colour-scale legend is on the right.
     */
    public void writeHeatmapPng(Path file, String title) {
        Dimension size = heatmapSize();
        writeHeatmapPng(file, title, size.width, size.height);
    }

    /** Like {@link #writeHeatmapPng(Path, String)}, as a PNG of {@code width × height} pixels. */
    public void writeHeatmapPng(Path file, String title, int width, int height) {
        Heatmap.requireFonts();
        renderHeatmap(file, title, width, height);
    }

    /**
     * Whether this JVM can draw text: on Linux, Java 2D finds fonts through fontconfig, and minimal servers and
     * containers often have none.
     */
    public static boolean canRenderText() {
        return Heatmap.canRenderText();
    }

    /** Writes the heatmap of {@link #heatmapSize()} and returns the data area (where the cells are) in the image's pixels. */
    Rectangle2D renderHeatmap(Path file, String title) {
        Dimension size = heatmapSize();
        return renderHeatmap(file, title, size.width, size.height);
    }

    /** The heatmap this report draws: cells as described at {@link #writeHeatmapPng(Path, String)}. */
    Heatmap heatmap(String title) {
        if (pairs && layers < 2) {
            throw new IllegalArgumentException("a one-layer model has no head that sends to another layer's: there is"
                    + " no composition to draw");
        }
        int rows = heatmapRows();
        int cols = heatmapColumns();
        String[] rowLabels = new String[rows];
        String[] colLabels = new String[cols];
        double[] values = corrected != null ? corrected : scores;
        double[][] grid = new double[rows][cols];
        for (double[] row : grid) {
            Arrays.fill(row, Double.NaN);
        }
        if (pairs) {
            for (int r = 0; r < rows; r++) {
                rowLabels[r] = new Head(r / heads, r % heads).toString();
            }
            for (int c = 0; c < cols; c++) {
                colLabels[c] = new Head(c / heads + 1, c % heads).toString();
            }
            for (int l1 = 0; l1 < layers - 1; l1++) {
                for (int h1 = 0; h1 < heads; h1++) {
                    for (int l2 = l1 + 1; l2 < layers; l2++) {
                        for (int h2 = 0; h2 < heads; h2++) {
                            grid[l1 * heads + h1][(l2 - 1) * heads + h2] = values[index(l1, h1, l2, h2)];
                        }
                    }
                }
            }
        } else {
            for (int r = 0; r < rows; r++) {
                rowLabels[r] = "L" + r;
            }
            for (int c = 0; c < cols; c++) {
                colLabels[c] = "H" + c;
            }
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    grid[l][h] = values[l * heads + h];
                }
            }
        }
        double lo = 0;
        double hi = 0;
        for (double[] row : grid) {
            for (double v : row) {
                if (Double.isFinite(v)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        if (hi <= lo) {
            hi = lo + 1;
        }
        return new Heatmap(title == null ? "" : title,
                pairs ? "sender (earlier layer)" : "layer", pairs ? "receiver (later layer)" : "head",
                rowLabels, colLabels, grid, corrected != null ? "score − baseline mean" : "score", lo, hi,
                Math.max(7, Math.min(12, cellPixels() - 2)));
    }

    /** Writes the heatmap at {@code width × height} and returns the data area in the image's pixels. */
    Rectangle2D renderHeatmap(Path file, String title, int width, int height) {
        Objects.requireNonNull(file, "file");
        return heatmap(title).writePng(file, width, height);
    }
}

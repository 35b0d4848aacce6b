package io.arrakis.plot;

import io.arrakis.io.IoErrors;
import io.arrakis.io.AtomicFiles;
import org.jfree.chart.ChartRenderingInfo;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.SymbolAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.PaintScale;
import org.jfree.chart.renderer.xy.XYBlockRenderer;
import org.jfree.chart.title.PaintScaleLegend;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.RectangleInsets;
import org.jfree.data.xy.DefaultXYZDataset;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Paint;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * A labelled heatmap written as a PNG with JFreeChart, rendered headless: one cell per value of a
 * {@code rows × columns} grid (the first row at the top), a viridis colour scale with its legend on the right, and the
 * row and column labels as tick labels. {@code NaN} cells stay blank (white).
 *
 * <p>The renderer shared by the composition-score heatmaps of {@link io.arrakis.composer.ScoreReport} and the attention
 * patterns of {@code io.arrakis.bench.Plots}.
 *
 * @param title        the chart's title ({@code null}: none)
 * @param rowAxis      the vertical axis's label
 * @param columnAxis   the horizontal axis's label
 * @param rowLabels    one tick label per row, drawn as given (a caller showing untrusted text escapes its control
 *                     and bidirectional characters first, as {@code Plots} does for tokens)
 * @param columnLabels one tick label per column (drawn vertically), likewise
 * @param values       {@code values[row][column]}; NaN or infinite cells are left blank
 * @param legendTitle  the colour scale's label
 * @param lower        the value drawn with the bottom colour (dark purple); lower values are clamped to it
 * @param upper        the value drawn with the top colour (yellow), greater than {@code lower}
 * @param tickFontSize the tick labels' font size in points
 */
public record Heatmap(String title, String rowAxis, String columnAxis, String[] rowLabels, String[] columnLabels,
                      double[][] values, String legendTitle, double lower, double upper, int tickFontSize) {
    /** The largest image side {@link #writePng} draws, in pixels. */
    public static final int MAX_SIDE = 16384;

    /** Checks the shape: one label per row and column, rectangular values, {@code lower < upper}. */
    public Heatmap {
        Objects.requireNonNull(rowLabels, "rowLabels");
        Objects.requireNonNull(columnLabels, "columnLabels");
        Objects.requireNonNull(values, "values");
        // copies, so that the caller's arrays changing later cannot undo the checks below
        rowLabels = rowLabels.clone();
        columnLabels = columnLabels.clone();
        values = values.clone();
        for (int r = 0; r < values.length; r++) {
            values[r] = values[r] == null ? null : values[r].clone();
        }
        if (rowLabels.length == 0 || columnLabels.length == 0) {
            throw new IllegalArgumentException("a heatmap needs at least one row and one column, got "
                    + rowLabels.length + " × " + columnLabels.length);
        }
        if (values.length != rowLabels.length) {
            throw new IllegalArgumentException(values.length + " rows of values but " + rowLabels.length + " row labels");
        }
        for (int r = 0; r < values.length; r++) {
            if (values[r] == null || values[r].length != columnLabels.length) {
                throw new IllegalArgumentException("row " + r + " has " + (values[r] == null ? 0 : values[r].length)
                        + " values but there are " + columnLabels.length + " column labels");
            }
        }
        if (!(lower < upper) || !Double.isFinite(lower) || !Double.isFinite(upper)) {
            throw new IllegalArgumentException("the colour range must be finite with lower < upper, got [" + lower + ", "
                    + upper + "]");
        }
        double span = upper - lower;
        if (!Double.isFinite(span) || span < 1e-300 || span < 1e-12 * Math.max(Math.abs(lower), Math.abs(upper))) {
            throw new IllegalArgumentException("the colour range [" + lower + ", " + upper + "] is too "
                    + (Double.isFinite(span) ? "narrow" : "wide") + " for its scale to be drawn");
        }
        for (String[] labels : new String[][] {rowLabels, columnLabels}) {
            for (String label : labels) {
                Objects.requireNonNull(label, "a row or column label");
            }
        }
        if (tickFontSize < 1) {
            throw new IllegalArgumentException("the tick font size must be positive, got " + tickFontSize);
        }
    }

    /**
     * Whether this JVM can draw text: on Linux, Java 2D finds fonts through fontconfig, and minimal servers and
     * containers often have none. Like {@link #writePng}, it sets {@code java.awt.headless} to true unless the JVM was
     * given a value for it (see {@link #writePng}).
     */
    public static boolean canRenderText() {
        headlessUnlessChosen();
        try {
            BufferedImage probe = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = probe.createGraphics();
            try {
                g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
                return g.getFontMetrics().stringWidth("L0H0") > 0;
            } finally {
                g.dispose();
            }
        } catch (RuntimeException | Error e) {
            return false;
        }
    }

    private static IllegalArgumentException tooLarge(int width, int height, long heapBytes, String why) {
        return new IllegalArgumentException(String.format(java.util.Locale.ROOT, "a %d × %d image needs about %d MB"
                + " of the JVM's heap to draw and encode, and %s; draw a smaller image", width, height, heapBytes >> 20,
                why));
    }

    /** Sets {@code java.awt.headless} to true where nothing set it (see {@link #writePng}). */
    private static void headlessUnlessChosen() {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    /** Throws {@link IllegalStateException} naming the fix when {@link #canRenderText()} is false. */
    public static void requireFonts() {
        if (!canRenderText()) {
            throw new IllegalStateException("cannot draw the heatmap's labels: Java finds no fonts on this machine"
                    + " (fontconfig has none configured). Install fontconfig and a font, e.g. on Debian/Ubuntu"
                    + " 'apt-get install fontconfig fonts-dejavu-core', or use the JSON output instead");
        }
    }

    /**
     * Writes the heatmap as a PNG of {@code width × height} pixels (creating missing parent folders) and returns the
     * data area (where the cells are) in the image's pixels. Does not check for fonts: call {@link #requireFonts()}
     * first for a clear error on a machine without any.
     *
     * <p>The image is drawn off-screen, and where the JVM was given no {@code java.awt.headless} this sets it to true,
     * so that a {@code DISPLAY} naming no reachable X server does not stop the drawing: AWT reads the property once,
     * so a desktop application that shows windows after a plot starts with {@code -Djava.awt.headless=false}.
     */
    public Rectangle2D writePng(Path file, int width, int height) {
        Objects.requireNonNull(file, "file");
        if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
            throw new IllegalArgumentException("the image size must be 1 to " + MAX_SIDE + " pixels a side, got "
                    + width + " × " + height);
        }
        // the image's pixels (4 bytes each) and the PNG encoder's rows, in the heap
        long heapBytes = 2 * 4L * width * height;
        if (heapBytes > Runtime.getRuntime().maxMemory()) {
            throw tooLarge(width, height, heapBytes, "the JVM's whole heap is "
                    + (Runtime.getRuntime().maxMemory() >> 20) + " MB (-Xmx)");
        }
        headlessUnlessChosen();
        int rows = rowLabels.length;
        int cols = columnLabels.length;
        int finite = 0;
        for (double[] row : values) {
            for (double v : row) {
                if (Double.isFinite(v)) {
                    finite++;
                }
            }
        }
        double[][] series = new double[3][finite];
        int i = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                double v = values[r][c];
                if (Double.isFinite(v)) {
                    series[0][i] = c;
                    series[1][i] = r;
                    series[2][i] = v;
                    i++;
                }
            }
        }

        SymbolAxis xAxis = new SymbolAxis(columnAxis, columnLabels);
        xAxis.setVerticalTickLabels(true);
        xAxis.setGridBandsVisible(false);
        xAxis.setRange(-0.5, cols - 0.5);
        SymbolAxis yAxis = new SymbolAxis(rowAxis, rowLabels);
        yAxis.setGridBandsVisible(false);
        yAxis.setInverted(true);                                    // first row at the top
        yAxis.setRange(-0.5, rows - 0.5);
        Font tickFont = new Font(Font.SANS_SERIF, Font.PLAIN, tickFontSize);
        xAxis.setTickLabelFont(tickFont);
        yAxis.setTickLabelFont(tickFont);

        Viridis scale = new Viridis(lower, upper);
        XYBlockRenderer renderer = new XYBlockRenderer();
        renderer.setPaintScale(scale);
        XYPlot plot = new XYPlot(new DefaultXYZDataset(), xAxis, yAxis, renderer);
        plot.setBackgroundPaint(Color.WHITE);                      // blank cells stay white
        plot.setDomainGridlinesVisible(false);
        plot.setRangeGridlinesVisible(false);
        plot.setOutlinePaint(Color.GRAY);

        JFreeChart chart = new JFreeChart(title == null ? "" : title, JFreeChart.DEFAULT_TITLE_FONT, plot, false);
        chart.setBackgroundPaint(Color.WHITE);
        NumberAxis legendAxis = new NumberAxis(legendTitle);
        legendAxis.setRange(lower, upper);
        PaintScaleLegend legend = new PaintScaleLegend(scale, legendAxis);
        legend.setPosition(RectangleEdge.RIGHT);
        legend.setStripWidth(14);
        legend.setAxisOffset(4);
        legend.setMargin(new RectangleInsets(10, 6, 10, 6));
        legend.setBackgroundPaint(Color.WHITE);
        chart.addSubtitle(legend);

        // laid out first without the cells, whose drawing would be wasted on an image that cannot hold them
        Rectangle2D area = dataArea(chart, width, height);
        if (area.getWidth() < cols || area.getHeight() < rows) {
            throw new IllegalArgumentException("at " + width + " × " + height + " pixels the title, labels and legend"
                    + " leave " + (int) area.getWidth() + " × " + (int) area.getHeight() + " pixels for " + cols + " × "
                    + rows + " cells: make the image larger, or the labels shorter or their font smaller");
        }
        DefaultXYZDataset dataset = new DefaultXYZDataset();
        dataset.addSeries("values", series);
        plot.setDataset(dataset);
        BufferedImage image;
        try {
            image = chart.createBufferedImage(width, height);
        } catch (OutOfMemoryError e) {
            throw tooLarge(width, height, heapBytes, "the JVM's heap has not that much free");
        }
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            // whole or not at all: a reader never finds half a PNG
            AtomicFiles.write(file, (channel, temp) -> ChartUtils.writeBufferedImageAsPNG(
                    Channels.newOutputStream(channel), image));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the heatmap " + file + ": " + IoErrors.reason(e), e);
        }
        return area;
    }

    /** Where {@code chart} puts its plot's data area in an image of {@code width × height}, without drawing it there. */
    private static Rectangle2D dataArea(JFreeChart chart, int width, int height) {
        BufferedImage scratch = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = scratch.createGraphics();
        try {
            ChartRenderingInfo info = new ChartRenderingInfo(null); // no entity per cell: only the area is read
            chart.draw(g, new Rectangle2D.Double(0, 0, width, height), info);
            return info.getPlotInfo().getDataArea();
        } finally {
            g.dispose();
        }
    }

    /** A copy of the row labels. */
    @Override
    public String[] rowLabels() {
        return rowLabels.clone();
    }

    /** A copy of the column labels. */
    @Override
    public String[] columnLabels() {
        return columnLabels.clone();
    }

    /** A copy of the values. */
    @Override
    public double[][] values() {
        double[][] copy = values.clone();
        for (int r = 0; r < copy.length; r++) {
            copy[r] = copy[r].clone();
        }
        return copy;
    }

    /** Equal to a heatmap of the same labels, values and settings. */
    @Override
    public boolean equals(Object o) {
        return o instanceof Heatmap h && Objects.equals(title, h.title) && Objects.equals(rowAxis, h.rowAxis)
                && Objects.equals(columnAxis, h.columnAxis) && Arrays.equals(rowLabels, h.rowLabels)
                && Arrays.equals(columnLabels, h.columnLabels) && Arrays.deepEquals(values, h.values)
                && Objects.equals(legendTitle, h.legendTitle) && Double.compare(lower, h.lower) == 0
                && Double.compare(upper, h.upper) == 0 && tickFontSize == h.tickFontSize;
    }

    @Override
    public int hashCode() {
        return Objects.hash(title, rowAxis, columnAxis, Arrays.hashCode(rowLabels), Arrays.hashCode(columnLabels),
                Arrays.deepHashCode(values), legendTitle, lower, upper, tickFontSize);
    }

    @Override
    public String toString() {
        return "Heatmap[" + title + ", " + rowLabels.length + " × " + columnLabels.length + "]";
    }

    /**
     * The colour {@link #writePng} draws {@code value} with (viridis between {@code lower} and {@code upper}, values
     * and the infinities clamped to its ends); NaN gives the lowest colour, although the cells of NaN and of the
     * infinities are left blank in the image.
     */
    public Color colour(double value) {
        return (Color) new Viridis(lower, upper).getPaint(value);
    }

    /** A perceptually uniform sequential colour scale (viridis, linearly interpolated between 9 stops). */
    private record Viridis(double lower, double upper) implements PaintScale, Serializable {
        private static final int[] STOPS = {
            0x440154, 0x472D7B, 0x3B528B, 0x2C728E, 0x21918C, 0x28AE80, 0x5EC962, 0xADDC30, 0xFDE725};

        @Override
        public double getLowerBound() {
            return lower;
        }

        @Override
        public double getUpperBound() {
            return upper;
        }

        @Override
        public Paint getPaint(double value) {
            double t = Double.isNaN(value) ? 0 : Math.max(0, Math.min(1, (value - lower) / (upper - lower)));
            double pos = t * (STOPS.length - 1);
            int i = Math.min((int) pos, STOPS.length - 2);
            double f = pos - i;
            int a = STOPS[i];
            int b = STOPS[i + 1];
            return new Color(mix(a >> 16, b >> 16, f), mix(a >> 8, b >> 8, f), mix(a, b, f));
        }

        private static int mix(int a, int b, double f) {
            return (int) Math.round((a & 0xFF) * (1 - f) + (b & 0xFF) * f);
        }
    }
}

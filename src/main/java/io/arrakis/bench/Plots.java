package io.arrakis.bench;

import io.arrakis.text.Tokenizer;
import io.arrakis.composer.ScoreReport;
import io.arrakis.model.ActivationCache;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.plot.Heatmap;
import io.arrakis.torch.Tensor;

import java.awt.geom.Rectangle2D;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Arrakis's {@code plot_results}: heatmaps written as PNG files of a stated size (JFreeChart, rendered headless).
 *
 * <ul>
 *   <li>{@link #attentionPattern}: one head's attention pattern {@code [query, key]} from a forward pass's
 *       {@code blocks.L.attn.hook_pattern}, queries as rows (top to bottom), keys as columns, the colour scale fixed
 *       to {@code [0, 1]}; tokens (e.g. from {@link Tokenizer#tokenStrings}) as tick labels, else positions;
 *   <li>{@link #attentionPatterns}: several layers × heads at once, into a folder, from a cache or from a model and
 *       its input ids;
 *   <li>{@link #compositionScores}: a {@link ScoreReport}'s heatmap (composition or head scores) at a stated size.
 * </ul>
 *
 * Drawing labels needs fonts: on a machine without any every method throws {@link IllegalStateException} naming the
 * fix ({@link #canRenderText()} tells beforehand).
 */
public final class Plots {
    private Plots() {
    }

    /** Whether this JVM can draw text, which every plot needs (see {@link Heatmap#canRenderText()}). */
    public static boolean canRenderText() {
        return Heatmap.canRenderText();
    }

    /**
     * Writes the attention pattern of head {@code head} of layer {@code layer}, for the first sequence of the batch,
     * as a PNG of {@code width × height} pixels.
     *
     * @param tokens one label per position (null: the positions {@code 0, 1, …})
     * @return {@code out}
     */
    public static Path attentionPattern(ActivationCache cache, int layer, int head, List<String> tokens, Path out,
                                        int width, int height) {
        return attentionPattern(cache, layer, head, 0, tokens, out, width, height);
    }

    /** Like {@link #attentionPattern(ActivationCache, int, int, List, Path, int, int)}, for sequence {@code batch}. */
    public static Path attentionPattern(ActivationCache cache, int layer, int head, int batch, List<String> tokens,
                                        Path out, int width, int height) {
        Objects.requireNonNull(out, "out");
        checkSize(width, height);
        checkedPattern(cache, layer, head, batch, tokens).close();   // bad arguments first, fonts second
        Heatmap.requireFonts();
        renderAttention(cache, layer, head, batch, tokens, out, width, height);
        return out;
    }

    /**
     * Writes {@code attention_L{layer}H{head}.png} into {@code dir} for every pair of {@code layers} × {@code heads}
     * (first sequence of the batch), in that order; returns the files. Everything is checked before anything is
     * written.
     */
    public static List<Path> attentionPatterns(ActivationCache cache, int[] layers, int[] heads, List<String> tokens,
                                               Path dir, int width, int height) {
        Objects.requireNonNull(layers, "layers");
        Objects.requireNonNull(heads, "heads");
        Objects.requireNonNull(dir, "dir");
        checkChoice(layers, heads);
        checkSize(width, height);
        for (int l : layers) {
            for (int h : heads) {
                checkedPattern(cache, l, h, 0, tokens).close();
            }
        }
        checkFolder(dir, layers, heads);
        Heatmap.requireFonts();
        List<Path> files = new ArrayList<>();
        for (int l : layers) {
            for (int h : heads) {
                Path file = patternFile(dir, l, h);
                renderAttention(cache, l, h, 0, tokens, file, width, height);
                files.add(file);
            }
        }
        return files;
    }

    /**
     * Runs {@code model} on {@code inputIds}, caching only the chosen layers' attention patterns, and writes them as
     * {@link #attentionPatterns(ActivationCache, int[], int[], List, Path, int, int)} does.
     */
    public static List<Path> attentionPatterns(HookedAutoModel model, Tensor inputIds, int[] layers, int[] heads,
                                               List<String> tokens, Path dir, int width, int height) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(layers, "layers");
        Objects.requireNonNull(heads, "heads");
        Objects.requireNonNull(inputIds, "inputIds");
        Objects.requireNonNull(dir, "dir");
        checkChoice(layers, heads); // before the forward pass, as the size, heads and labels are
        checkSize(width, height);
        checkFolder(dir, layers, heads);
        int nHeads = model.config().nHeads();
        for (int h : heads) {
            if (h < 0 || h >= nHeads) {
                throw new IllegalArgumentException("head " + h + " does not exist: this " + model.config().family()
                        + " model has heads 0 to " + (nHeads - 1));
            }
        }
        long[] idShape = inputIds.shape();
        long positions = idShape.length == 0 ? 0 : idShape[idShape.length - 1]; // [batch, pos] or [pos]
        if (tokens != null && tokens.size() != positions) {
            throw new IllegalArgumentException(tokens.size() + " token labels for " + positions + " positions");
        }
        int nLayers = model.config().nLayers();
        String[] names = new String[layers.length];
        for (int i = 0; i < layers.length; i++) {
            if (layers[i] < 0 || layers[i] >= nLayers) {
                throw new IllegalArgumentException("layer " + layers[i] + " does not exist: this " + model.config().family()
                        + " model has layers 0 to " + (nLayers - 1));
            }
            if (!model.config().attentionHeads(layers[i])) {
                throw new IllegalArgumentException("layer " + layers[i] + " of this " + model.config().family()
                        + " model mixes tokens by " + model.config().mixer(layers[i]).description() + ", which has no"
                        + " attention pattern to plot");
            }
            names[i] = patternName(layers[i]);
        }
        try (ModelOutput out = model.forward(inputIds, CacheSpec.only(names))) {
            return attentionPatterns(out.cache(), layers, heads, tokens, dir, width, height);
        }
    }

    /** At least one layer and one head, none twice (each pair names one file). */
    private static void checkChoice(int[] layers, int[] heads) {
        if (layers.length == 0 || heads.length == 0) {
            throw new IllegalArgumentException("choose at least one layer and one head, got layers "
                    + Arrays.toString(layers) + " and heads " + Arrays.toString(heads));
        }
        if (Arrays.stream(layers).distinct().count() < layers.length
                || Arrays.stream(heads).distinct().count() < heads.length) {
            throw new IllegalArgumentException("a layer or head is chosen twice: layers " + Arrays.toString(layers)
                    + ", heads " + Arrays.toString(heads) + " (each pair writes one file)");
        }
    }

    /**
     * Writes {@code report}'s heatmap (see {@link ScoreReport#writeHeatmapPng(Path, String)}) as a PNG of
     * {@code width × height} pixels; returns {@code out}.
     */
    public static Path compositionScores(ScoreReport report, String title, Path out, int width, int height) {
        Objects.requireNonNull(report, "report");
        Objects.requireNonNull(out, "out");
        checkSize(width, height);
        report.writeHeatmapPng(out, title, width, height);   // checks for fonts
        return out;
    }

    // ------------------------------------------------------------------------------------------------ internals

    static String patternName(int layer) {
        return "blocks." + layer + ".attn.hook_pattern";
    }

    private static Path patternFile(Path dir, int layer, int head) {
        return dir.resolve("attention_L" + layer + "H" + head + ".png");
    }

    /** That {@code dir} is not a file and no folder sits where one of the images goes. */
    private static void checkFolder(Path dir, int[] layers, int[] heads) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + " is a file, not a folder for the attention patterns");
        }
        for (int l : layers) {
            for (int h : heads) {
                if (Files.isDirectory(patternFile(dir, l, h))) {
                    throw new IllegalArgumentException("a folder sits where " + patternFile(dir, l, h) + " goes");
                }
            }
        }
    }

    private static void checkSize(int width, int height) {
        if (width < 64 || height < 64 || width > Heatmap.MAX_SIDE || height > Heatmap.MAX_SIDE) {
            throw new IllegalArgumentException("the image size must be between 64 and " + Heatmap.MAX_SIDE
                    + " pixels a side, got " + width + " × " + height);
        }
    }

    /** The pattern {@code [query, key]} of one head and sequence, a new tensor; checks everything first. */
    private static Tensor checkedPattern(ActivationCache cache, int layer, int head, int batch, List<String> tokens) {
        Objects.requireNonNull(cache, "cache");
        if (layer < 0) {
            throw new IllegalArgumentException("layer must be non-negative, got " + layer);
        }
        String name = patternName(layer);
        if (!cache.contains(name)) {
            List<String> cached = cache.names().stream().filter(n -> n.endsWith(".attn.hook_pattern")).toList();
            throw new IllegalArgumentException("the cache has no '" + name + "' (layer " + layer + " does not exist or"
                    + " its pattern was not cached); attention patterns cached: "
                    + (cached.isEmpty() ? "none (cache with CacheSpec.all() or CacheSpec.only(\"" + name + "\"))"
                    : String.join(", ", cached)));
        }
        Tensor pattern = cache.get(name);
        long[] shape = pattern.shape();
        if (shape.length != 4 || shape[2] != shape[3]) {
            throw new IllegalArgumentException(name + " should be [batch, head, query, key], got shape "
                    + Arrays.toString(shape));
        }
        if (head < 0 || head >= shape[1]) {
            throw new IllegalArgumentException("head " + head + " does not exist: layer " + layer + " has heads 0 to "
                    + (shape[1] - 1));
        }
        if (batch < 0 || batch >= shape[0]) {
            throw new IllegalArgumentException("sequence " + batch + " is not in the batch of " + shape[0]);
        }
        if (tokens != null && tokens.size() != shape[2]) {
            throw new IllegalArgumentException(tokens.size() + " token labels for " + shape[2] + " positions");
        }
        try (Tensor b = pattern.select(0, batch)) {
            return b.select(0, head);
        }
    }

    /** Writes the PNG and returns the data area (where the cells are) in the image's pixels. */
    static Rectangle2D renderAttention(ActivationCache cache, int layer, int head, int batch, List<String> tokens,
                                       Path out, int width, int height) {
        Objects.requireNonNull(out, "out");
        checkSize(width, height);
        double[] values;
        int pos;
        try (Tensor p = checkedPattern(cache, layer, head, batch, tokens)) {
            pos = (int) p.size(0);
            values = p.toDoubleArray();
        }
        double[][] grid = new double[pos][pos];
        for (int q = 0; q < pos; q++) {
            System.arraycopy(values, q * pos, grid[q], 0, pos);
        }
        String[] labels = new String[pos];
        for (int i = 0; i < pos; i++) {
            labels[i] = tokens == null ? Integer.toString(i) : label(tokens.get(i));
        }
        int cell = Math.max(1, Math.min(width - 200, height - 190) / pos);
        Heatmap map = new Heatmap("L" + layer + "H" + head + " attention pattern", "query (destination)",
                "key (source)", labels, labels, grid, "attention probability", 0, 1,
                Math.max(6, Math.min(12, cell - 2)));
        return map.writePng(out, width, height);
    }

    /** The longest tick label drawn in full, in characters; a longer one ends in an ellipsis. */
    static final int LABEL_LENGTH = 20;

    /**
     * A token as a tick label: characters that draw nothing or change the drawing's direction escaped (a newline as
     * {@code \n}, control and format characters and spaces other than U+0020 by their code, e.g.
     * <code>&#92;u00a0</code>), spaces shown as ␣ when the token is nothing else, an empty token as ∅, at most
     * {@value #LABEL_LENGTH} characters, cut only between escapes.
     */
    static String label(String token) {
        Objects.requireNonNull(token, "token label");
        if (token.isEmpty()) {
            return "∅";
        }
        boolean onlySpaces = token.isBlank();
        List<String> pieces = token.codePoints().mapToObj(cp -> switch (cp) {
            case '\n' -> "\\n";
            case '\r' -> "\\r";
            case '\t' -> "\\t";
            case ' ' -> onlySpaces ? "␣" : " ";
            default -> drawsNothing(cp) ? String.format("\\u%04x", cp) : Character.toString(cp);
        }).toList();
        if (pieces.stream().mapToInt(p -> p.codePointCount(0, p.length())).sum() <= LABEL_LENGTH) {
            return String.join("", pieces);
        }
        StringBuilder sb = new StringBuilder();
        int length = 0;
        for (String piece : pieces) {
            length += piece.codePointCount(0, piece.length());
            if (length > LABEL_LENGTH - 1) {
                break;
            }
            sb.append(piece);
        }
        return sb.append('…').toString();
    }

    /** Control, format (e.g. a zero-width space or a right-to-left override) and separator characters. */
    private static boolean drawsNothing(int cp) {
        return switch (Character.getType(cp)) {
            case Character.CONTROL, Character.FORMAT, Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR,
                 Character.PARAGRAPH_SEPARATOR, Character.UNASSIGNED, Character.SURROGATE -> true;
            default -> false;
        };
    }
}

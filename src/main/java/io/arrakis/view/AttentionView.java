package io.arrakis.view;

import io.arrakis.Progress;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.composer.PathPatching;
import io.arrakis.composer.ScoreReport;
import io.arrakis.io.AtomicFiles;
import io.arrakis.io.IoErrors;
import io.arrakis.json.Json;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.text.Tokenizer;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.LongStream;

/**
 * A model on one input as one self-contained HTML page: the attention pattern of every layer and head (token labels on
 * both axes, every second or more where a cell is under 8 pixels, past 80 tokens; the weight on hover), Q-, K- and
 * V-composition of every head pair with the strongest pairs ranked, the previous-token, induction and duplicate-token
 * scores of every head, and, given a corrupted input, the path-patching effect of every sender on chosen receivers. All
 * script and style are inline: the page needs no network and opens from {@code file://}.
 *
 * <p>The numbers are those of the library's other outputs for the same inputs: the patterns are
 * {@code blocks.L.attn.hook_pattern} of {@link HookedAutoModel#forward}, the composition scores those of
 * {@link CompositionScores#compute}, the head scores those of {@link HeadDetectors#detect}, the effects those of
 * {@link PathPatching#patchAllSenders}. A value that is no finite number (a head a detector cannot measure, a weight a
 * model computed as NaN or infinite) shows as {@code ·}. A layer without heads (the linear attention of Qwen3.5 and
 * Qwen3-Next, the short convolutions of LFM2) has no pattern and its heads no scores: the page says so, naming what
 * mixes its tokens.
 */
public final class AttentionView {
    private static final String TEMPLATE = "page.html";
    /**
     * The most values (pattern weights and composition scores) one page holds: about 100 MB of JSON, which a browser
     * still opens in seconds.
     */
    static final long MAX_PAGE_VALUES = 8_000_000;

    private final Map<String, Object> data;
    private final String title;

    private AttentionView(Map<String, Object> data, String title) {
        this.data = data;
        this.title = title;
    }

    /**
     * What the page shows beyond the patterns, and how.
     *
     * @param title             the page's title, e.g. the model folder's name
     * @param tokens            a tokenizer for the token labels, or null for the model's own (else the ids)
     * @param baseline          composition scores minus the mean score of random heads of the same shapes
     * @param detectorSeqLen    tokens per repeated half of the head detectors' input; 0 for up to 50
     * @param detectorBatch     sequences of the head detectors' input
     * @param detectorSeed      the head detectors' random seed
     * @param corrupted         the corrupted input for path patching ({@code [1, pos]}, the clean input's shape), or
     *                          null for no path patching
     * @param answer            the token whose logit difference to {@code wrong} the patching measures at the last
     *                          position; -1 for the clean input's top token
     * @param wrong             the other token; -1 for the corrupted input's top token
     * @param receivers         the receiving heads; empty for every head of the last layer attending by softmax with
     *                          keys and values of its own
     * @param routes            the receivers' inputs to patch; empty for Q, K and V
     * @param progress          told how many of the page's steps are done
     */
    public record Options(String title, Tokenizer tokens, boolean baseline, int detectorSeqLen, int detectorBatch,
                          long detectorSeed, Tensor corrupted, long answer, long wrong, List<Head> receivers,
                          List<PathPatching.Route> routes, Progress progress) {
        public Options {
            receivers = List.copyOf(receivers);
            routes = List.copyOf(routes);
            progress = progress == null ? Progress.NONE : progress;
            if (detectorSeqLen < 0 || detectorBatch < 1) {
                throw new IllegalArgumentException("the head detectors need a positive batch and a non-negative"
                        + " length, got batch " + detectorBatch + " and length " + detectorSeqLen);
            }
            int unpaired = title == null ? -1 : Json.unpairedSurrogate(title); // no page can carry it
            if (unpaired >= 0) {
                throw new IllegalArgumentException(String.format("the title has an unpaired surrogate U+%04X at index %d",
                        (int) title.charAt(unpaired), unpaired));
            }
        }

        /** No patching, no baseline, the detectors' defaults (length up to 50, batch 4, seed 0). */
        public static Options defaults() {
            return new Options(null, null, false, 0, 4, 0, null, -1, -1, List.of(), List.of(), Progress.NONE);
        }

        public Options withTitle(String title) {
            return new Options(title, tokens, baseline, detectorSeqLen, detectorBatch, detectorSeed, corrupted, answer,
                    wrong, receivers, routes, progress);
        }

        public Options withTokens(Tokenizer tokens) {
            return new Options(title, tokens, baseline, detectorSeqLen, detectorBatch, detectorSeed, corrupted, answer,
                    wrong, receivers, routes, progress);
        }

        public Options withBaseline(boolean baseline) {
            return new Options(title, tokens, baseline, detectorSeqLen, detectorBatch, detectorSeed, corrupted, answer,
                    wrong, receivers, routes, progress);
        }

        public Options withDetectors(int seqLen, int batch, long seed) {
            return new Options(title, tokens, baseline, seqLen, batch, seed, corrupted, answer, wrong, receivers, routes,
                    progress);
        }

        /** Path patching from {@code corrupted} into {@code receivers} through {@code routes} (see the fields). */
        public Options withPatching(Tensor corrupted, long answer, long wrong, List<Head> receivers,
                                    List<PathPatching.Route> routes) {
            for (long token : new long[] {answer, wrong}) {
                if (token < -1) {
                    throw new IllegalArgumentException("path patching: the answer and the wrong token are token ids, or"
                            + " -1 for the top token; got " + token);
                }
            }
            return new Options(title, tokens, baseline, detectorSeqLen, detectorBatch, detectorSeed,
                    Objects.requireNonNull(corrupted, "corrupted"), answer, wrong, receivers, routes, progress);
        }

        public Options withProgress(Progress progress) {
            return new Options(title, tokens, baseline, detectorSeqLen, detectorBatch, detectorSeed, corrupted, answer,
                    wrong, receivers, routes, progress);
        }
    }

    /** The head detectors' sequence length when none is given: up to 50, and at most half the model's positions. */
    public static int defaultDetectorSeqLen(HookedAutoModel model) {
        return (int) Math.max(2, Math.min(50, model.config().longestPass() / 2));
    }

    /**
     * Runs everything the page shows for {@code model} on {@code ids} ({@code [pos]} or {@code [1, pos]}).
     *
     * @throws IllegalArgumentException for more than one sequence, a corrupted input of another shape, a one-layer
     *     model asked for patching, or patching whose clean and corrupted inputs predict the same token with no
     *     answer and wrong token given
     */
    public static AttentionView of(HookedAutoModel model, Tensor ids, Options options) {
        Objects.requireNonNull(options, "options");
        if (ids.dim() < 1 || ids.dim() > 2) {
            throw new IllegalArgumentException("the input ids must be [pos] or [1, pos], got shape "
                    + Arrays.toString(ids.shape()));
        }
        if (ids.dim() == 2 && ids.size(0) != 1) {
            throw new IllegalArgumentException("a view shows one sequence; got input ids of shape " + Arrays.toString(ids.shape()));
        }
        if (options.corrupted() != null) { // before any of the work the page takes
            long[] clean = asRow(ids.shape());
            long[] corrupted = asRow(options.corrupted().shape());
            if (!Arrays.equals(corrupted, clean)) {
                throw new IllegalArgumentException("the corrupted input has shape " + Arrays.toString(corrupted)
                        + " but the clean input " + Arrays.toString(clean) + "; path patching needs the same shape");
            }
            checkTokenIds(options.corrupted(), model.config().vocabSize());
        }
        int layers = model.config().nLayers();
        int heads = model.config().nHeads();
        long tokens = ids.size(-1);
        long allHeads = (long) layers * heads;
        // every mode's score of every pair of heads, twice with the baseline
        long compositionValues = CompositionScores.Mode.values().length * allHeads * allHeads * (options.baseline() ? 2 : 1);
        if (compositionValues > MAX_PAGE_VALUES) {
            throw new IllegalArgumentException("a page of this model's composition would hold " + compositionValues
                    + " scores (" + CompositionScores.Mode.values().length + " modes x (layers x heads)^2"
                    + (options.baseline() ? " x 2 with the baseline" : "") + "), more than a browser takes in one page"
                    + " (" + MAX_PAGE_VALUES + " values); use the composer's API or the composition command");
        }
        // patterns of the layers that attend by softmax only
        long patternHeads = java.util.stream.IntStream.range(0, layers).filter(model.config()::attentionHeads).count()
                * heads;
        long patternValues = patternHeads * tokens * tokens;
        if (patternValues + compositionValues > MAX_PAGE_VALUES) {
            long most = (long) Math.floor(Math.sqrt((double) (MAX_PAGE_VALUES - compositionValues) / patternHeads));
            throw new IllegalArgumentException("a page of every head's attention pattern on " + tokens + " tokens would"
                    + " hold " + patternValues + " weights (layers x heads x tokens^2) besides " + compositionValues
                    + " composition scores, more than a browser takes in one page (" + MAX_PAGE_VALUES + " values);"
                    + " give at most " + most + " tokens for this model");
        }
        if (options.detectorSeqLen() > 0) {
            HeadDetectors.check(model, options.detectorSeqLen(), options.detectorBatch(), OptionalLong.empty());
        }
        List<Head> receivers = options.corrupted() == null ? List.of() : receivers(model, options.receivers());
        List<PathPatching.Route> routes = options.routes().isEmpty() ? List.of(PathPatching.Route.values())
                : options.routes();
        if (options.corrupted() != null) {
            checkPatching(model, options, receivers, routes);
        }
        long steps = 1 + CompositionScores.Mode.values().length + 1 + (long) receivers.size() * routes.size();
        long[] done = {0};
        Runnable step = () -> options.progress().advanced(++done[0], steps);

        Map<String, Object> data = new LinkedHashMap<>();
        data.put("format", "arrakis-jvm view 1");
        try (HookedAutoModel.HookHandle held = model.holdHooks(); TensorScope scope = TensorScope.open()) {
            Tensor clean = ids.dim() == 1 ? ids.unsqueeze(0) : ids;
            long[] idValues = clean.toLongArray();
            Map<String, Object> about = new LinkedHashMap<>();
            about.put("family", model.config().family());
            about.put("layers", layers);
            about.put("heads", heads);
            // per layer, what mixes its tokens where it has no heads ("linear attention"), else null
            List<String> mixers = new ArrayList<>(layers);
            for (int l = 0; l < layers; l++) {
                mixers.add(model.config().attentionHeads(l) ? null
                        : model.config().mixer(l).name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
            }
            about.put("mixers", mixers);
            about.put("name", options.title());
            data.put("model", about);
            data.put("ids", idValues);
            data.put("tokens", labels(model, options.tokens(), idValues, "input"));
            List<String> corruptedLabels = options.corrupted() == null ? null
                    : labels(model, options.tokens(), options.corrupted().toLongArray(), "corrupted input");
            data.put("patterns", patterns(model, clean));
            step.run();

            Map<String, Object> modes = new LinkedHashMap<>();
            for (CompositionScores.Mode mode : CompositionScores.Mode.values()) {
                try (CompositionScores.Result r = CompositionScores.compute(model, mode,
                        CompositionScores.Options.builder().baseline(options.baseline()).build())) {
                    modes.put(mode.name(), finiteOrNull(ScoreReport.ofComposition(r.scores(), r.baselineCorrected()).json()));
                }
                step.run();
            }
            data.put("composition", Map.of("modes", modes));

            int seqLen = options.detectorSeqLen() > 0 ? options.detectorSeqLen() : defaultDetectorSeqLen(model);
            boolean tooShort = options.detectorSeqLen() <= 0 && model.config().longestPass() < 2L * seqLen;
            Map<String, Object> detectors = new LinkedHashMap<>();
            detectors.put("seq_len", tooShort ? null : seqLen); // null: the detectors did not run
            detectors.put("batch", options.detectorBatch());
            detectors.put("seed", Long.toString(options.detectorSeed())); // JavaScript's numbers hold 53 bits
            if (tooShort) {
                // a context too short for any repeated sequence: no head has a score, as where a window is too short
                try (Tensor none = Tensor.full(new long[] {model.config().nLayers(), model.config().nHeads()}, Double.NaN,
                        DType.FLOAT32, Device.CPU)) {
                    for (String kind : List.of("previous_token", "induction", "duplicate_token")) {
                        detectors.put(kind, headScores(none));
                    }
                }
            } else {
                try (HeadDetectors.Scores s = HeadDetectors.detect(model, seqLen, options.detectorBatch(),
                        options.detectorSeed())) {
                    // null where a layer's window does not reach that far back
                    detectors.put("previous_token", headScores(s.previousToken()));
                    detectors.put("induction", headScores(s.induction()));
                    detectors.put("duplicate_token", headScores(s.duplicateToken()));
                }
            }
            data.put("heads", detectors);
            step.run();

            data.put("patching", options.corrupted() == null ? null
                    : patching(model, clean, options, corruptedLabels, receivers, routes, step));
        }
        return new AttentionView(data, options.title() != null ? options.title() : model.config().family());
    }

    /** The page's data as JSON values: what the page's script reads. */
    public Map<String, Object> data() {
        return data;
    }

    /** The page: the template with the data inlined. */
    public String html() {
        // inside the script element no string may hold markup the HTML parser reads there ("</script>", "<!--"):
        // in JSON, <, > and & only occur inside strings, where their escapes mean the same
        String json = Json.write(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026");
        // one pass, so that a title holding a placeholder stays text
        Matcher placeholder = PLACEHOLDER.matcher(template());
        StringBuilder page = new StringBuilder();
        while (placeholder.find()) {
            placeholder.appendReplacement(page, Matcher.quoteReplacement(
                    placeholder.group().equals("@TITLE@") ? escapeHtml(title) : json));
        }
        return placeholder.appendTail(page).toString();
    }

    private static final Pattern PLACEHOLDER = Pattern.compile("@TITLE@|@DATA@");

    /** Writes {@link #html()} to {@code file} atomically, creating missing parent folders; returns the file. */
    public Path writeHtml(Path file) {
        if (Files.isDirectory(file)) {
            throw new IllegalArgumentException("could not write the view to " + file + ": it is a folder");
        }
        byte[] bytes = html().getBytes(StandardCharsets.UTF_8);
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            AtomicFiles.write(file, (channel, temp) -> AtomicFiles.writeFully(channel, ByteBuffer.wrap(bytes)));
        } catch (IOException e) {
            throw new UncheckedIOException("could not write the view to " + file + ": " + IoErrors.reason(e), e);
        }
        return file;
    }

    // ------------------------------------------------------------------------------------------------ the parts

    /** The token labels of {@code ids}, the {@code input} named in a refusal. */
    private static List<String> labels(HookedAutoModel model, Tokenizer given, long[] ids, String input) {
        Tokenizer tokenizer = given != null ? given : model.tokenizer().orElse(null);
        if (tokenizer == null) {
            return LongStream.of(ids).mapToObj(id -> "#" + id).toList();
        }
        List<String> labels = tokenizer.labels(ids);
        for (int i = 0; i < labels.size(); i++) { // no page can carry it: refused before the work, not when written
            int unpaired = Json.unpairedSurrogate(labels.get(i));
            if (unpaired >= 0) {
                throw new IllegalArgumentException(String.format("the tokenizer's label of the %s's token %d (id %d)"
                        + " has an unpaired surrogate U+%04X at index %d", input, i, ids[i],
                        (int) labels.get(i).charAt(unpaired), unpaired));
            }
        }
        return labels;
    }

    /**
     * Per layer, the pattern {@code [head, query, key]} of the one sequence, flat, as forward's JSON writes it; null
     * for a layer without heads (linear attention, a short convolution), which has none.
     */
    private static List<Object> patterns(HookedAutoModel model, Tensor clean) {
        int layers = model.config().nLayers();
        List<String> names = new ArrayList<>(layers);
        for (int l = 0; l < layers; l++) {
            names.add(model.config().attentionHeads(l) ? "blocks." + l + ".attn.hook_pattern" : null);
        }
        List<Object> out = new ArrayList<>(layers);
        try (ModelOutput result = model.forward(clean, CacheSpec.only(names.stream().filter(Objects::nonNull)
                .toArray(String[]::new)))) {
            for (String name : names) {
                out.add(name == null ? null : floats(result.cache().get(name).toFloatArray()));
            }
        }
        return out;
    }

    private static Object headScores(Tensor scores) {
        return finiteOrNull(((Map<?, ?>) ScoreReport.ofHeads(scores).json()).get("scores"));
    }

    /**
     * A report's JSON with every value that is no finite number as null, which the page shows as such: the report
     * writes infinities as strings, which the page would take for numbers.
     */
    private static Object finiteOrNull(Object json) {
        return switch (json) {
            case Map<?, ?> m -> {
                Map<Object, Object> out = new LinkedHashMap<>();
                m.forEach((k, v) -> out.put(k, finiteOrNull(v)));
                yield out;
            }
            case List<?> l -> l.stream().map(AttentionView::finiteOrNull).toList();
            case Double d when !Double.isFinite(d) -> null;
            case String text when text.equals("Infinity") || text.equals("-Infinity") -> null;
            case null, default -> json;
        };
    }

    /** Refuses corrupted ids that patching, the page's last step, would refuse: of another dtype, or out of the vocabulary. */
    private static void checkTokenIds(Tensor ids, int vocab) {
        if (ids.dtype() != DType.INT64 && ids.dtype() != DType.INT32) {
            throw new IllegalArgumentException("the corrupted input ids must be int64 (or int32), got " + ids);
        }
        for (long id : ids.toLongArray()) {
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("the corrupted input has token id " + id + " but the vocabulary has "
                        + vocab + " tokens (ids 0 to " + (vocab - 1) + ")");
            }
        }
    }

    /** What patching would refuse after the rest of the page's work: its receivers, routes, answer and wrong token. */
    private static void checkPatching(HookedAutoModel model, Options options, List<Head> receivers,
                                      List<PathPatching.Route> routes) {
        receivers.forEach(r -> PathPatching.checkReceiver(model.config(), r));
        receivers.forEach(r -> routes.forEach(route -> PathPatching.checkRoute(model.config(), r, route)));
        long vocab = model.config().vocabSize();
        for (long token : new long[] {options.answer(), options.wrong()}) {
            if (token >= vocab) {
                throw new IllegalArgumentException("path patching: token " + token + " is not one of the model's "
                        + vocab + " tokens");
            }
        }
        if (options.answer() >= 0 && options.answer() == options.wrong()) {
            throw new IllegalArgumentException("the answer and the wrong token are both " + options.answer()
                    + ", so their logit difference measures nothing");
        }
    }

    /**
     * The receivers given, else every head of the last softmax-attention layer with keys and values of its own (not
     * one of gemma4's sharing layers, which have a query route alone).
     */
    private static List<Head> receivers(HookedAutoModel model, List<Head> given) {
        HookedAutoConfig c = model.config();
        int[] softmax = java.util.stream.IntStream.range(0, c.nLayers()).filter(c::attentionHeads).toArray();
        int[] ownKeys = java.util.Arrays.stream(softmax).filter(l -> c.keysFrom(l) == l).toArray();
        if (softmax.length < 2) {
            throw new IllegalArgumentException("path patching needs a sender below the receiver; this model has "
                    + (c.nLayers() == 1 ? "one layer" : softmax.length + " layer attending by softmax, the others"
                    + " mixing tokens by " + c.headlessMixers(0, c.nLayers()) + ", which has no heads"));
        }
        if (!given.isEmpty()) {
            return given;
        }
        List<Head> last = new ArrayList<>();
        for (int h = 0; h < c.nHeads(); h++) {
            last.add(Head.of(ownKeys[ownKeys.length - 1], h));
        }
        return last;
    }

    /** The shape of input ids {@code [pos]} as one row, {@code [1, pos]}; other shapes as they are. */
    private static long[] asRow(long[] shape) {
        return shape.length == 1 ? new long[] {1, shape[0]} : shape;
    }

    private static Map<String, Object> patching(HookedAutoModel model, Tensor clean, Options options,
                                                List<String> corruptedLabels, List<Head> receivers,
                                                List<PathPatching.Route> routes, Runnable step) {
        Tensor corrupted = options.corrupted().dim() == 1 ? options.corrupted().unsqueeze(0) : options.corrupted();
        long answer = options.answer() >= 0 ? options.answer() : topToken(model, clean);
        long wrong = options.wrong() >= 0 ? options.wrong() : topToken(model, corrupted);
        if (answer == wrong) { // two named tokens were checked before the work
            throw new IllegalArgumentException(options.answer() < 0 && options.wrong() < 0
                    ? "the clean and the corrupted input both predict token " + answer + " at the last position, so"
                    + " their logit difference measures nothing: name the answer and the wrong token"
                    : "the answer and the wrong token are both " + answer + ", as the " + (options.answer() >= 0
                    ? "corrupted" : "clean") + " input predicts it at the last position: name the "
                    + (options.answer() >= 0 ? "wrong token" : "answer"));
        }
        PathPatching.Metric metric = PathPatching.Metric.logitDiff(answer, wrong);
        List<Object> effects = new ArrayList<>();
        for (Head receiver : receivers) {
            for (PathPatching.Route route : routes) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("receiver", receiver.toString());
                e.put("route", route.name());
                try (Tensor senders = PathPatching.patchAllSenders(model, clean, corrupted, receiver, route, metric,
                        PathPatching.Mode.PATH)) {
                    e.put("senders", headScores(senders)); // null where a head is not a sender
                }
                effects.add(e);
                step.run();
            }
        }
        long[] corruptedIds = corrupted.toLongArray();
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("metric", "the logit of token " + answer + " minus that of token " + wrong + " at the last position");
        p.put("answer", answer);
        p.put("wrong", wrong);
        p.put("corrupted_ids", corruptedIds);
        p.put("corrupted_tokens", corruptedLabels);
        p.put("effects", effects);
        return p;
    }

    private static long topToken(HookedAutoModel model, Tensor ids) {
        try (TensorScope scope = TensorScope.open()) {
            Tensor logits = model.runWithHooks(ids);
            return logits.select(1, logits.size(1) - 1).select(0, 0).argmax(-1, false).itemLong();
        }
    }

    /** The values, with NaN and the infinities as null, which JSON can hold. */
    private static List<Object> floats(float[] values) {
        List<Object> out = new ArrayList<>(values.length);
        for (float v : values) {
            out.add(Float.isFinite(v) ? v : null);
        }
        return out;
    }

    private static String template() {
        try (InputStream in = AttentionView.class.getResourceAsStream(TEMPLATE)) {
            if (in == null) {
                throw new IllegalStateException("the page template " + TEMPLATE + " is missing from the library's jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String escapeHtml(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}

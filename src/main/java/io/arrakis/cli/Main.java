package io.arrakis.cli;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.composer.ScoreReport;
import io.arrakis.examples.SeedExample;
import io.arrakis.json.Json;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.text.HfTokenizer;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The {@code scripts/arrakis} command line. */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) {
        // the command line has no logging backend: DJL's logs go nowhere, without slf4j's warning that they do
        System.setProperty("slf4j.internal.verbosity", "ERROR");
        // JSON is UTF-8 whatever the locale says (tokens such as "Ġworld" would turn into "?")
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        int status = run(args, out, err);
        if (status != 0) {
            System.exit(status);
        }
    }

    /** Runs one command; returns the exit status (2 for bad usage or input, with one line on {@code err}). */
    static int run(String[] args, PrintStream out, PrintStream err) {
        String command = args.length == 0 ? "help" : args[0];
        try {
            switch (command) {
                case "info" -> out.println(LibTorch.load() + "; CUDA devices: " + LibTorch.cudaDeviceCount());
                case "demo" -> demo(out);
                case "forward" -> forward(Arrays.copyOfRange(args, 1, args.length), out);
                case "tokenize" -> tokenize(Arrays.copyOfRange(args, 1, args.length), out);
                case "composition" -> composition(Arrays.copyOfRange(args, 1, args.length), out);
                case "heads" -> heads(Arrays.copyOfRange(args, 1, args.length), out);
                case "seed-example" -> seedExample(Arrays.copyOfRange(args, 1, args.length), out, err);
                default -> {
                    out.println(USAGE);
                    return command.equals("help") ? 0 : 2;
                }
            }
            return 0;
        } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException
                 | java.io.UncheckedIOException | io.arrakis.model.safetensors.SafeTensorsException e) {
            err.println("arrakis " + command + ": " + e.getMessage().lines().findFirst().orElse(""));
            return 2;
        }
    }

    private static final String USAGE = "usage: scripts/arrakis <command>\n"
            + "  info     which libtorch is loaded, and whether CUDA is available\n"
            + "  demo     a short tour: zero-copy tensors, a hooked model with its cache, and the composer on it\n"
            + "  seed-example [--json] [--config KEY=VALUE[,KEY=VALUE...]] [--seed S]\n"
            + "           the seed page's example: llama defaults (bfloat16 when float32 does not fit), random ids\n"
            + "           (1, 50), an MIExperiment bench, head_composition and attention_path_patching of heads\n"
            + "           (0,0) and (0,1), alpha 0.5; --config overrides Hugging Face keys (e.g. num_hidden_layers=2)\n"
            + "  forward  --model DIR (--input-ids \"1,2,3;4,5,6\" | --text TEXT [--tokenizer PATH])\n"
            + "           [--hooks NAME[,NAME...]] [--json]\n"
            + "           runs a Hugging Face model directory (or hub cache folder models--ORG--NAME) and prints the\n"
            + "           logits and the chosen activations; --text goes through the folder's tokenizer.json\n"
            + "           (or PATH's)\n"
            + "  tokenize --tokenizer PATH (--text TEXT | --decode 1,2,3) [--json]\n"
            + "           a tokenizer.json (or a folder holding one): the ids and tokens of TEXT, or the text of ids\n"
            + "  composition  --model DIR --mode Q|K|V [--baseline] [--fold-ln] [--top K] [--png FILE] [--json]\n"
            + "           all-pairs Q-, K- or V-composition scores: the top K pairs (default 10) as a table, or all\n"
            + "           [layer][head][layer][head] scores as JSON; --fold-ln folds the attention-input norm scales\n"
            + "           into W_Q, W_K, W_V first (and centres them after a LayerNorm, as TransformerLens); --png\n"
            + "           writes a heatmap\n"
            + "  heads    --model DIR [--seq-len N] [--batch B] [--seed S] [--json]\n"
            + "           previous-token, induction and duplicate-token scores of every head on repeated random tokens";

    /** {@code composition --model DIR --mode K [--baseline] [--fold-ln] [--top 10] [--png FILE] [--json]}. */
    private static void composition(String[] args, PrintStream out) {
        String model = null;
        CompositionScores.Mode mode = null;
        boolean baseline = false;
        boolean foldLn = false;
        int top = 10;
        String png = null;
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = value(args, ++i, "--model");
                case "--mode" -> {
                    String m = value(args, ++i, "--mode");
                    try {
                        mode = CompositionScores.Mode.valueOf(m.toUpperCase(Locale.ROOT));
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException("--mode must be Q, K or V, got '" + m + "'");
                    }
                }
                case "--baseline" -> baseline = true;
                case "--fold-ln" -> foldLn = true;
                case "--top" -> top = positiveInt(args, ++i, "--top", 1);
                case "--png" -> png = value(args, ++i, "--png");
                case "--json" -> json = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'\n" + USAGE);
            }
        }
        if (model == null || mode == null) {
            throw new IllegalArgumentException("--model and --mode are required");
        }
        CompositionScores.Options options = CompositionScores.Options.builder().baseline(baseline).foldLn(foldLn)
                .progress(new ProgressBar(System.err, "composition " + mode)).build();
        ScoreReport report;
        try (HookedAutoModel m = HookedAutoModel.fromPretrained(Path.of(model));
             CompositionScores.Result result = CompositionScores.compute(m, mode, options)) {
            report = ScoreReport.ofComposition(result.scores(), result.baselineCorrected());
        }
        if (png != null) {
            report.writeHeatmapPng(Path.of(png), mode + "-composition scores of " + Path.of(model).getFileName()
                    + (foldLn ? ", norms folded" : "") + (baseline ? " (minus the random baseline)" : ""));
        }
        if (json) {
            Map<String, Object> object = new LinkedHashMap<>();
            object.put("mode", mode.name());
            object.putAll(castMap((Map<?, ?>) report.json()));
            out.println(Json.write(object));
        } else {
            out.print(report.table(top));
            if (png != null) {
                out.println("heatmap: " + png);
            }
        }
    }

    /** {@code heads --model DIR [--seq-len 50] [--batch 4] [--seed 0] [--json]}. */
    private static void heads(String[] args, PrintStream out) {
        String model = null;
        Integer seqLen = null;
        int batch = 4;
        long seed = 0;
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = value(args, ++i, "--model");
                case "--seq-len" -> seqLen = positiveInt(args, ++i, "--seq-len", 2);
                case "--batch" -> batch = positiveInt(args, ++i, "--batch", 1);
                case "--seed" -> seed = longValue(args, ++i, "--seed");
                case "--json" -> json = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'\n" + USAGE);
            }
        }
        if (model == null) {
            throw new IllegalArgumentException("--model is required");
        }
        Map<String, ScoreReport> reports = new LinkedHashMap<>();
        try (HookedAutoModel m = HookedAutoModel.fromPretrained(Path.of(model))) {
            int n = seqLen != null ? seqLen : (int) Math.max(2, Math.min(50, m.config().maxPositions() / 2));
            try (HeadDetectors.Scores s = HeadDetectors.detect(m, n, batch, seed)) {
                reports.put("previous_token", ScoreReport.ofHeads(s.previousToken()));
                reports.put("induction", ScoreReport.ofHeads(s.induction()));
                reports.put("duplicate_token", ScoreReport.ofHeads(s.duplicateToken()));
            }
        }
        if (json) {
            Map<String, Object> object = new LinkedHashMap<>();
            reports.forEach((kind, r) -> object.put(kind, ((Map<?, ?>) r.json()).get("scores")));
            out.println(Json.write(object));
        } else {
            int width = "duplicate_token".length();
            out.printf(Locale.ROOT, "%-" + width + "s  %-6s  %s%n", "kind", "top", "score");
            reports.forEach((kind, r) -> {
                ScoreReport.Entry best = r.top(1).getFirst();
                out.printf(Locale.ROOT, "%-" + width + "s  %-6s  %.6f%n", kind, best.label(), best.score());
            });
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> castMap(Map<?, ?> m) {
        return (Map<String, Object>) m;
    }

    private static int positiveInt(String[] args, int i, String option, int min) {
        String v = value(args, i, option);
        int n;
        try {
            n = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " must be an integer, got '" + v + "'");
        }
        if (n < min) {
            throw new IllegalArgumentException(option + " must be at least " + min + ", got " + n);
        }
        return n;
    }

    /** {@code tokenize --tokenizer PATH (--text TEXT | --decode 1,2,3) [--json]}. */
    private static void tokenize(String[] args, PrintStream out) {
        String path = null;
        String text = null;
        String decode = null;
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--tokenizer" -> path = value(args, ++i, "--tokenizer");
                case "--text" -> text = value(args, ++i, "--text");
                case "--decode" -> decode = value(args, ++i, "--decode");
                case "--json" -> json = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'\n" + USAGE);
            }
        }
        if (path == null || (text == null) == (decode == null)) {
            throw new IllegalArgumentException("--tokenizer and one of --text and --decode are required");
        }
        try (HfTokenizer tokenizer = HfTokenizer.load(Path.of(path))) {
            if (decode != null) {
                String decoded = tokenizer.decode(parseIdRow(decode, "--decode"));
                out.println(json ? Json.write(Map.of("text", decoded)) : decoded);
                return;
            }
            HfTokenizer.Tokens t = tokenizer.tokenize(text);
            if (json) {
                Map<String, Object> object = new LinkedHashMap<>();
                object.put("ids", t.ids());
                object.put("tokens", t.tokens());
                out.println(Json.write(object));
            } else {
                out.println(t.ids().length + " tokens");
                out.printf(Locale.ROOT, "%5s  %8s  %s%n", "pos", "id", "token");
                for (int i = 0; i < t.ids().length; i++) {
                    out.printf(Locale.ROOT, "%5d  %8d  %s%n", i, t.ids()[i], Json.quote(t.tokens().get(i)));
                }
            }
        }
    }

    /** {@code forward --model DIR --input-ids "1,2;3,4" --hooks a,b --json}: activations as one JSON object. */
    private static void forward(String[] args, PrintStream out) {
        String model = null;
        String ids = null;
        String text = null;
        String tokenizerPath = null;
        List<String> hooks = new ArrayList<>();
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = value(args, ++i, "--model");
                case "--input-ids" -> ids = value(args, ++i, "--input-ids");
                case "--text" -> text = value(args, ++i, "--text");
                case "--tokenizer" -> tokenizerPath = value(args, ++i, "--tokenizer");
                case "--hooks" -> hooks.addAll(Arrays.stream(value(args, ++i, "--hooks").split(","))
                        .map(String::trim).filter(h -> !h.isEmpty()).toList());
                case "--json" -> json = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'\n" + USAGE);
            }
        }
        if (model == null || (ids == null) == (text == null)) {
            throw new IllegalArgumentException("--model and one of --input-ids and --text are required");
        }
        if (tokenizerPath != null && text == null) {
            throw new IllegalArgumentException("--tokenizer goes with --text");
        }
        List<String> names = new ArrayList<>(hooks);
        if (!names.contains("logits")) {
            names.add("logits");
        }
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel m = HookedAutoModel.fromPretrained(Path.of(model));
             ModelOutput result = m.forward(text == null ? idsTensor(ids) : textTensor(m, text, tokenizerPath),
                     CacheSpec.only(names.toArray(String[]::new)))) {
            if (json) {
                out.println(result.cache().toJson(names));
            } else {
                for (String name : names) {
                    out.println(name + " " + result.cache().get(name));
                }
            }
        }
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    private static long longValue(String[] args, int i, String option) {
        String v = value(args, i, option);
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " must be an integer, got '" + v + "'");
        }
    }

    /** "1,2,3;4,5,6" as a {@code [2, 3]} tensor. */
    private static Tensor idsTensor(String text) {
        long[][] rows = parseIds(text);
        return Tensor.of(Arrays.stream(rows).flatMapToLong(Arrays::stream).toArray(), rows.length, rows[0].length);
    }

    /** {@code text} as {@code [1, pos]} ids through {@code tokenizerPath}'s tokenizer, else the model's. */
    private static Tensor textTensor(HookedAutoModel model, String text, String tokenizerPath) {
        if (tokenizerPath == null) {
            return model.toTokens(text);
        }
        try (HfTokenizer tokenizer = HfTokenizer.load(Path.of(tokenizerPath))) {
            return tokenizer.encodeAsTensor(text);
        }
    }

    /** "1,2,3;4,5,6" → two rows of three ids; rows must be equally long. */
    private static long[][] parseIds(String text) {
        String[] rows = text.split(";");
        long[][] ids = new long[rows.length][];
        for (int r = 0; r < rows.length; r++) {
            ids[r] = parseIdRow(rows[r], "--input-ids");
            if (ids[r].length != ids[0].length) {
                throw new IllegalArgumentException("--input-ids: every row needs the same length (row " + r + " has "
                        + ids[r].length + ", row 0 has " + ids[0].length + ")");
            }
        }
        return ids;
    }

    /** "1,2,3" → three ids. */
    private static long[] parseIdRow(String row, String option) {
        try {
            return Arrays.stream(row.split(",")).map(String::trim).mapToLong(Long::parseLong).toArray();
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + ": '" + row + "' is not a comma-separated list of integers");
        }
    }

    /** {@code seed-example [--json] [--config num_hidden_layers=2,...] [--seed 0]}. */
    private static void seedExample(String[] args, PrintStream out, PrintStream err) {
        boolean json = false;
        long seed = 0;
        Map<String, Object> overrides = new java.util.LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--json" -> json = true;
                case "--seed" -> seed = longValue(args, ++i, "--seed");
                case "--config" -> {
                    for (String pair : value(args, ++i, "--config").split(",")) {
                        String[] kv = pair.split("=", 2);
                        if (kv.length != 2 || kv[0].isBlank()) {
                            throw new IllegalArgumentException("--config takes KEY=VALUE pairs, got '" + pair + "'");
                        }
                        overrides.put(kv[0].trim(), configValue(kv[1].trim()));
                    }
                }
                default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'\n" + USAGE);
            }
        }
        PrintStream notes = json ? err : out;
        try (HookedAutoModel model = SeedExample.buildModel(overrides, seed, notes::println);
             Tensor ids = SeedExample.inputIds(model.config(), seed)) {
            long t0 = System.nanoTime();
            Map<String, Object> result = SeedExample.run(model, ids);
            notes.printf(java.util.Locale.ROOT, "experiment ran in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            out.println(json ? Json.write(result) : Json.writeIndented(result));
        }
    }

    /** A --config value as the JSON scalar it spells (number, boolean, null), else as a string. */
    private static Object configValue(String text) {
        try {
            Object v = Json.parse(text);
            if (!(v instanceof Map) && !(v instanceof List)) {
                return v;
            }
        } catch (Json.ParseException e) {
            // not JSON: a bare string such as silu
        }
        return text;
    }

    /**
     * The main job in one minute: a small random Llama with hooks and a cache, then the composer on it — the seed
     * example's {@code head_composition} and {@code attention_path_patching}, K-composition scores of every head pair,
     * and the head detectors. Zero-copy tensors from Java memory come first, as the library's footing.
     */
    private static void demo(PrintStream out) {
        out.println(LibTorch.load());
        try (TensorScope scope = TensorScope.open(); Arena arena = Arena.ofConfined()) {
            MemorySegment javaMemory = arena.allocate(ValueLayout.JAVA_FLOAT, 6);
            for (int i = 0; i < 6; i++) {
                javaMemory.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            Tensor shared = Tensor.fromSegment(javaMemory, DType.FLOAT32, 2, 3);
            out.printf("%nzero copy: %s lives at 0x%x, the Java segment at 0x%x%n", shared, shared.asSegment().address(),
                    javaMemory.address());

            HookedAutoConfig config = HookedAutoConfig.of("llama").with(Map.of("num_hidden_layers", 2,
                    "hidden_size", 256, "intermediate_size", 688, "num_attention_heads", 8, "num_key_value_heads", 8));
            out.println("\nmodel: " + config + " (the llama defaults, made small), random weights, seed 0");
            HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU);
            Tensor inputIds = Tensor.randint(new Generator(0), 0, config.vocabSize(), new long[] {1, 50}, Device.CPU);
            try (ModelOutput result = model.forward(inputIds)) {
                out.println("forward: logits " + Arrays.toString(result.logits().shape()) + ", "
                        + result.cache().size() + " activations cached, e.g. blocks.0.attn.hook_pattern "
                        + Arrays.toString(result.cache().get("blocks.0.attn.hook_pattern").shape()));
            }

            AttentionComposer composer = new AttentionComposer(model);
            try (AttentionComposer.HeadComposition hc = composer.headComposition(Head.of(0, 0), Head.of(1, 1), 0.5)) {
                out.println("\nhead_composition(L0H0, L1H1, 0.5): " + hc);
            }
            Tensor patched = composer.attentionPathPatching(inputIds, Head.of(0, 0), Head.of(0, 1));
            out.println("attention_path_patching(L0H0 -> L0H1): logits " + Arrays.toString(patched.shape()));
            out.println("\nK-composition, strongest pairs (random weights, so all small):");
            out.print(ScoreReport.ofComposition(composer.compositionScores(CompositionScores.Mode.K), null).table(5));
            HeadDetectors.Scores heads = composer.detectHeads(20, 4, 0);
            out.println("\nhead detectors on repeated random tokens (top head of each kind):");
            out.println("  previous-token " + HeadDetectors.argmax(heads.previousToken())
                    + ", induction " + HeadDetectors.argmax(heads.induction())
                    + ", duplicate-token " + HeadDetectors.argmax(heads.duplicateToken()));
            model.close();
        }
    }
}

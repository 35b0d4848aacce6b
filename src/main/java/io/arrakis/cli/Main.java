package io.arrakis.cli;

import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.composer.ScoreReport;
import io.arrakis.json.Json;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.io.PrintStream;
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
        int status = run(args, System.out, System.err);
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
                case "demo" -> demo();
                case "forward" -> forward(Arrays.copyOfRange(args, 1, args.length), out);
                case "composition" -> composition(Arrays.copyOfRange(args, 1, args.length), out);
                case "heads" -> heads(Arrays.copyOfRange(args, 1, args.length), out);
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
            + "  demo     a short tour: zero-copy tensors and one causal attention head, composed with another\n"
            + "  forward  --model DIR --input-ids \"1,2,3;4,5,6\" [--hooks NAME[,NAME...]] [--json]\n"
            + "           runs a Hugging Face model directory and prints the logits and the chosen activations\n"
            + "  composition  --model DIR --mode Q|K|V [--baseline] [--fold-ln] [--top K] [--png FILE] [--json]\n"
            + "           all-pairs Q-, K- or V-composition scores: the top K pairs (default 10) as a table, or all\n"
            + "           [layer][head][layer][head] scores as JSON; --fold-ln folds the attention-input norm scales\n"
            + "           into W_Q, W_K, W_V first; --png writes a heatmap\n"
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
        CompositionScores.Options options = CompositionScores.Options.builder().baseline(baseline).foldLn(foldLn).build();
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
                case "--seed" -> {
                    String v = value(args, ++i, "--seed");
                    try {
                        seed = Long.parseLong(v.trim());
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("--seed must be an integer, got '" + v + "'");
                    }
                }
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

    /** {@code forward --model DIR --input-ids "1,2;3,4" --hooks a,b --json}: activations as one JSON object. */
    private static void forward(String[] args, PrintStream out) {
        String model = null;
        String ids = null;
        List<String> hooks = new ArrayList<>();
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = value(args, ++i, "--model");
                case "--input-ids" -> ids = value(args, ++i, "--input-ids");
                case "--hooks" -> hooks.addAll(Arrays.stream(value(args, ++i, "--hooks").split(","))
                        .map(String::trim).filter(h -> !h.isEmpty()).toList());
                case "--json" -> json = true;
                default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'\n" + USAGE);
            }
        }
        if (model == null || ids == null) {
            throw new IllegalArgumentException("--model and --input-ids are required");
        }
        long[][] rows = parseIds(ids);
        long[] flat = Arrays.stream(rows).flatMapToLong(Arrays::stream).toArray();
        List<String> names = new ArrayList<>(hooks);
        if (!names.contains("logits")) {
            names.add("logits");
        }
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel m = HookedAutoModel.fromPretrained(Path.of(model));
             ModelOutput result = m.forward(Tensor.of(flat, rows.length, rows[0].length),
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

    /** "1,2,3;4,5,6" → two rows of three ids; rows must be equally long. */
    private static long[][] parseIds(String text) {
        String[] rows = text.split(";");
        long[][] ids = new long[rows.length][];
        for (int r = 0; r < rows.length; r++) {
            try {
                ids[r] = Arrays.stream(rows[r].split(",")).map(String::trim).mapToLong(Long::parseLong).toArray();
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--input-ids: '" + rows[r] + "' is not a comma-separated list of integers");
            }
            if (ids[r].length != ids[0].length) {
                throw new IllegalArgumentException("--input-ids: every row needs the same length (row " + r + " has "
                        + ids[r].length + ", row 0 has " + ids[0].length + ")");
            }
        }
        return ids;
    }

    /** One attention head on a repeated random sequence, and how strongly a second head reads what it writes. */
    private static void demo() {
        System.out.println(LibTorch.load());
        Generator g = new Generator(42);
        int dModel = 64;
        int dHead = 16;
        int seq = 12;
        try (TensorScope scope = TensorScope.open(); Arena arena = Arena.ofConfined()) {
            // Token embeddings written by Java into off-heap memory, then used by libtorch without a copy.
            MemorySegment embeddings = arena.allocate(ValueLayout.JAVA_FLOAT, (long) seq * dModel);
            for (long i = 0; i < seq * (long) dModel; i++) {
                embeddings.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) g.nextGaussian());
            }
            Tensor x = Tensor.fromSegment(embeddings, DType.FLOAT32, seq, dModel);
            System.out.printf("residual stream %s, data at 0x%x = the Java segment at 0x%x%n", x, x.dataAddress(),
                    embeddings.address());

            double init = 1 / Math.sqrt(dModel);
            Tensor wq = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wk = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wv = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wo = Tensor.randn(g, new long[] {dHead, dModel}, DType.FLOAT32, Device.CPU).mul(init);

            Tensor q = x.matmul(wq);
            Tensor k = x.matmul(wk);
            Tensor scores = q.matmul(k.transpose(0, 1)).div(Math.sqrt(dHead));
            Tensor future = Tensor.ones(new long[] {seq, seq}, DType.BOOL, Device.CPU).triu(1);
            Tensor pattern = scores.maskedFill(future, Double.NEGATIVE_INFINITY).softmax(-1);
            Tensor z = pattern.matmul(x.matmul(wv));
            Tensor out = z.matmul(wo);
            System.out.println("attention pattern row 3: " + Arrays.toString(
                    Arrays.copyOf(pattern.select(0, 3).toFloatArray(), 4)) + " (causal: the rest is 0)");
            System.out.println("head output " + out);

            // Q-composition of this head into a second one: |W_OV · W_QK'|_F / (|W_OV|_F |W_QK'|_F).
            Tensor wq2 = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wk2 = Tensor.randn(g, new long[] {dModel, dHead}, DType.FLOAT32, Device.CPU).mul(init);
            Tensor wov = wv.matmul(wo);
            Tensor wqk2 = wq2.matmul(wk2.transpose(0, 1));
            double score = wov.matmul(wqk2).norm().item() / (wov.norm().item() * wqk2.norm().item());
            System.out.printf("Q-composition score of this head into a second random head: %.4f%n", score);
        }
    }
}

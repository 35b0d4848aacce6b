package io.arrakis.examples;

import io.arrakis.json.Json;
import io.arrakis.Progress;
import io.arrakis.bench.BaseInterpretabilityBench;
import io.arrakis.bench.Experiment;
import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The example of Arrakis's "Attention Head Composition" page, line for line in spirit: the {@code llama} defaults,
 * random ids {@code (1, 50)}, an {@code MIExperiment} bench, the composer through {@code useTools("composer")}, and
 * {@code head_composition} and {@code attention_path_patching} for heads (0, 0) and (0, 1) with alpha 0.5.
 *
 * <p>The llama defaults are Llama-2-7B's shape (6.7 billion parameters: 27 GB in float32). The example builds them in
 * float32 when that fits in the memory available to the process, else in bfloat16 (13.5 GB), and says so; when even
 * that does not fit it keeps every default but {@code num_hidden_layers}, cut to what fits (at least 1), and says that
 * too. Tensors in the results are summarised (shape, dtype, norms, top tokens), since the logits alone are 1.6 million
 * numbers. Run it with {@code scripts/arrakis seed-example [--json]}.
 */
public final class SeedExample {
    /** Room kept beside the weights for activations, the composer's weight slices and the JVM. */
    private static final long HEADROOM_BYTES = 3L << 30;
    /** The seed draws ids below 50256 (GPT-2's vocabulary); a smaller vocabulary caps them. */
    private static final long SEED_ID_BOUND = 50256;

    private SeedExample() {
    }

    /** The experiment's arguments: the seed's {@code (head1, head2, alpha)}. */
    public record HeadPair(Head head1, Head head2, double alpha) {
    }

    /** Derive from BaseInterpretabilityBench, as the seed does. */
    public static final class MIExperiment extends BaseInterpretabilityBench {
        /** A bench over {@code model} saving under {@code experiments}. */
        public MIExperiment(HookedAutoModel model) {
            super(model, Path.of("experiments"));
        }
    }

    /** The model the example builds: the config and the dtype, and why, in one line. */
    public record ModelChoice(HookedAutoConfig config, DType dtype, String note) {
    }

    /**
     * The llama defaults in float32 if they fit in {@code availableBytes} (with room for activations; -1: unknown),
     * else bfloat16, else bfloat16 with fewer layers; {@code overrides} (Hugging Face keys) are applied first.
     */
    public static ModelChoice chooseModel(Map<String, Object> overrides, long availableBytes) {
        HookedAutoConfig config = HookedAutoConfig.of("llama").with(overrides); // keep default values for other args
        requireRoomForTheExample(config);
        String shape = String.format(Locale.ROOT, "llama %s (%,d parameters)", overrides.isEmpty() ? "defaults"
                : "defaults with " + overrides, config.parameterCount());
        if (availableBytes < 0 || fits(config, 4, availableBytes)) {
            return new ModelChoice(config, DType.FLOAT32, shape + " in float32");
        }
        String gib = String.format(Locale.ROOT, "%.1f GiB", availableBytes / (double) (1L << 30));
        if (fits(config, 2, availableBytes)) {
            return new ModelChoice(config, DType.BFLOAT16, String.format(Locale.ROOT,
                    "%s in bfloat16: float32 needs %.1f GiB for the weights, %s is available", shape,
                    config.weightBytes(4) / (double) (1L << 30), gib));
        }
        int layers = config.nLayers();
        HookedAutoConfig smaller = config;
        while (layers > 1 && !fits(smaller, 2, availableBytes)) {
            layers--;
            smaller = config.with(Map.of("num_hidden_layers", layers));
        }
        return new ModelChoice(smaller, DType.BFLOAT16, String.format(Locale.ROOT,
                "%s does not fit in %s even in bfloat16; using num_hidden_layers=%d (%,d parameters) in bfloat16",
                shape, gib, layers, smaller.parameterCount()));
    }

    /** What the example reads of the model, checked before the weights are made. */
    private static void requireRoomForTheExample(HookedAutoConfig c) {
        if (c.nHeads() < 2) {
            throw new IllegalArgumentException("the seed example composes heads (0, 0) and (0, 1):"
                    + " num_attention_heads must be at least 2, got " + c.nHeads());
        }
        if (c.maxPositions() < 50) {
            throw new IllegalArgumentException("the seed example runs 50 positions: max_position_embeddings"
                    + " must be at least 50, got " + c.maxPositions());
        }
        if (c.vocabSize() < 5) {
            throw new IllegalArgumentException("the seed example lists the 5 likeliest tokens: vocab_size"
                    + " must be at least 5, got " + c.vocabSize());
        }
    }

    private static boolean fits(HookedAutoConfig config, int bytesPerWeight, long availableBytes) {
        return config.weightBytes(bytesPerWeight) + HEADROOM_BYTES <= availableBytes;
    }

    /** The seed's ids: {@code torch.randint(0, 50256, (1, 50))}, below the vocabulary size when that is smaller. */
    public static Tensor inputIds(HookedAutoConfig config, long seed) {
        return Tensor.randint(new Generator(seed), 0, Math.min(SEED_ID_BOUND, config.vocabSize()), new long[] {1, 50},
                Device.CPU);
    }

    /**
     * Runs the seed's experiment on {@code model}: {@code head_composition} and {@code attention_path_patching} for
     * heads (0, 0) and (0, 1), alpha 0.5, through an {@link MIExperiment} and its {@code "composer"} tool. Returns
     * {@code {"head_composition": {...}, "attention_path_patching": {...}}} with tensors summarised.
     */
    public static Map<String, Object> run(HookedAutoModel model, Tensor inputIds) {
        try (MIExperiment exp = new MIExperiment(model)) { // create an `exp` object.

            // @exp.use_tools("composer"): the experiment receives the composer after its own arguments.
            Experiment<HeadPair, Map<String, Object>> testAttentionComposer = exp.useTools("composer").experiment(
                    "test_attention_composer", (args, tools) -> {
                        AttentionComposer composer = tools.get("composer", AttentionComposer.class);
                        try (AttentionComposer.HeadComposition hc =
                                     composer.headComposition(args.head1(), args.head2(), args.alpha());
                             Tensor app = composer.attentionPathPatching(inputIds, args.head1(), args.head2())) {
                            Map<String, Object> result = new LinkedHashMap<>();
                            result.put("head_composition", summary(hc));
                            result.put("attention_path_patching", summary(model, inputIds, app));
                            return result;
                        }
                    });

            // Driver code: one such example, as in the seed.
            return testAttentionComposer.run(new HeadPair(Head.of(0, 0), Head.of(0, 1), 0.5));
        }
    }

    private static Map<String, Object> summary(AttentionComposer.HeadComposition hc) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("head1", List.of(hc.head1().layer(), hc.head1().index()));
        m.put("head2", List.of(hc.head2().layer(), hc.head2().index()));
        m.put("alpha", Json.number(hc.alpha()));
        m.put("W_Q", tensorSummary(hc.wQ()));
        m.put("W_K", tensorSummary(hc.wK()));
        m.put("W_V", tensorSummary(hc.wV()));
        m.put("W_O", tensorSummary(hc.wO()));
        m.put("q_composition", Json.number(hc.qComposition()));
        m.put("k_composition", Json.number(hc.kComposition()));
        m.put("v_composition", Json.number(hc.vComposition()));
        m.put("note", hc.head1().layer() < hc.head2().layer() ? "scores of head1 -> head2"
                : "composition scores are 0: a head composes only with heads of later layers");
        return m;
    }

    private static Map<String, Object> summary(HookedAutoModel model, Tensor inputIds, Tensor patched) {
        try (TensorScope scope = TensorScope.open();
             var clean = model.forward(inputIds, io.arrakis.model.CacheSpec.none())) {
            Tensor last = patched.select(1, patched.shape()[1] - 1).select(0, 0).to(DType.FLOAT32);
            Tensor cleanLast = clean.logits().select(1, patched.shape()[1] - 1).select(0, 0).to(DType.FLOAT32);
            Tensor change = patched.to(DType.FLOAT32).sub(clean.logits().to(DType.FLOAT32)).abs();
            Map<String, Object> m = tensorSummary(patched);
            m.put("max_abs_change_vs_clean", Json.number(change.max().item()));
            m.put("mean_abs_change_vs_clean", Json.number(change.mean().item()));
            m.put("top5_last_position", topTokens(last, 5));
            m.put("top5_last_position_clean", topTokens(cleanLast, 5));
            return m;
        }
    }

    private static List<Long> topTokens(Tensor logits, int k) {
        long[] ids = logits.topk(k, -1, true).get(1).toLongArray();
        return java.util.Arrays.stream(ids).boxed().toList();
    }

    private static Map<String, Object> tensorSummary(Tensor t) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("shape", java.util.Arrays.stream(t.shape()).boxed().toList());
        m.put("dtype", t.dtype().toString());
        try (Tensor f = t.to(DType.FLOAT32); Tensor norm = f.norm()) {
            m.put("frobenius_norm", Json.number(norm.item()));
        }
        return m;
    }

    /**
     * Builds the model as {@link #chooseModel} decides, reporting the choice to {@code notes} and the weights drawn to
     * {@code progress}.
     */
    public static HookedAutoModel buildModel(Map<String, Object> overrides, long seed, Consumer<String> notes,
                                             Progress progress) {
        ModelChoice choice = chooseModel(overrides, HookedAutoModel.availableMemoryBytes());
        notes.accept("model: " + choice.note());
        long t0 = System.nanoTime();
        HookedAutoModel model = HookedAutoModel.create(choice.config(), seed, choice.dtype(), Device.CPU, progress);
        notes.accept(String.format(Locale.ROOT, "built with random weights (seed %d) in %.1f s", seed,
                (System.nanoTime() - t0) / 1e9));
        return model;
    }

    /** {@code java io.arrakis.examples.SeedExample}: the seed example, printed as JSON. */
    public static void main(String[] args) {
        try (HookedAutoModel model = buildModel(Map.of(), 0, System.err::println, Progress.NONE);
             Tensor ids = inputIds(model.config(), 0)) {
            System.out.println(io.arrakis.json.Json.writeIndented(run(model, ids)));
        }
    }
}

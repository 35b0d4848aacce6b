package io.arrakis.model;

import io.arrakis.composer.CompositionScores;
import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The Java half of {@code scripts/gpu-check.sh}'s parity and benchmark run (issue #7); {@code scripts/gpu_bench.py}
 * is the Python half and reads what this writes.
 *
 * <ul>
 *   <li>Parity: each Hugging Face fixture of {@code fixtures-hf} and a GPT-2-small-shaped random checkpoint, forward on
 *       the device against the CPU (logits and every cached activation, float32), bfloat16 on the device against
 *       float32 on the CPU (logits), and all-pairs Q/K/V composition scores on the device against the CPU. Our logits
 *       (CPU and device, float32) and the ids are written beside each model for the Python half, which compares them
 *       with Hugging Face {@code transformers} on the same weights.</li>
 *   <li>Benchmarks: forward latency (no cache) in bfloat16 of GPT-2-small and a ~1.1B-parameter Llama shape
 *       (TinyLlama's: 22 layers, d_model 2048, 32 heads, 4 KV heads, MLP 5632, vocab 32000) at 128 and 1024 tokens; the
 *       same passes captured as one CUDA graph and replayed (on a GPU); all-pairs Q-composition (float32) of
 *       GPT-2-small and of a Llama-7B attention shape (32 layers x 32 heads, d_model 4096, d_head 128). Each: warm-up,
 *       then the median of N runs; the clock is read after one element of the result has been copied to the host, which
 *       waits for the GPU.</li>
 * </ul>
 *
 * Usage: {@code GpuCheck --device cuda|cpu [--quick] [--work DIR] [--out FILE] [--runs N] [--warmup N]}.
 * {@code --quick} uses small shapes everywhere (for a CPU run); checkpoints are written under {@code --work}.
 */
public final class GpuCheck {
    private final Device device;
    private final boolean quick;
    private final Path work;
    private final int runs;
    private final int warmup;
    /** What {@link #run} has so far, and where it writes it (null: nowhere). */
    private final Map<String, Object> result = new LinkedHashMap<>();
    private Path out;

    GpuCheck(Device device, boolean quick, Path work, int runs, int warmup) {
        this.device = device;
        this.quick = quick;
        this.work = work;
        this.runs = runs;
        this.warmup = warmup;
    }

    public static void main(String[] args) throws Exception {
        Device device = Device.parse("cuda");
        boolean quick = false;
        Path work = Path.of("target/gpu-check");
        Path out = null;
        int runs = 20;
        int warmup = 30; // our Java code is compiled by the JIT after a few dozen passes
        boolean checkpointsOnly = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> device = Device.parse(args[++i]);
                case "--quick" -> quick = true;
                case "--work" -> work = Path.of(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                case "--runs" -> runs = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--checkpoints-only" -> checkpointsOnly = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; usage: GpuCheck --device cuda|cpu [--quick] [--work DIR] [--out FILE] [--runs N] [--warmup N] [--checkpoints-only]");
            }
        }
        if (checkpointsOnly) { // writes the benchmark checkpoints (for timing that step, or ahead of a run)
            long t0 = System.nanoTime();
            writeCheckpoint(work.resolve("gpt2s"), gpt2Small(quick), DType.FLOAT32);
            long t1 = System.nanoTime();
            writeCheckpoint(work.resolve("llama1b"), llama1b(quick), DType.BFLOAT16);
            System.err.printf("gpu-check (java): checkpoints written: gpt2s %.1f s, llama1b %.1f s%n", (t1 - t0) / 1e9,
                    (System.nanoTime() - t1) / 1e9);
            return;
        }
        if (out != null) {
            Files.createDirectories(out.toAbsolutePath().getParent());
        }
        Map<String, Object> result = new GpuCheck(device, quick, work, runs, warmup).run(out);
        if (out == null) {
            System.out.println(Json.writeIndented(jsonSafe(result)));
        } else {
            System.err.println("gpu-check (java): wrote " + out);
        }
    }

    /**
     * Runs every section; with {@code out}, the JSON is rewritten after each (and after each forward row), so a run cut
     * short keeps what it did.
     */
    Map<String, Object> run(Path out) throws IOException {
        Files.createDirectories(work);
        this.out = out;
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("device", device.toString());
        meta.put("libtorch", LibTorch.load().toString());
        meta.put("java", Runtime.version().toString());
        meta.put("quick", quick);
        meta.put("runs", runs);
        meta.put("warmup", warmup);
        meta.put("work", work.toAbsolutePath().toString());
        result.put("meta", meta);
        List<Map.Entry<String, ThrowingSupplier<Object>>> sections = List.of(Map.entry("parity", this::parity),
                Map.entry("forward", this::forwardBenchmarks), Map.entry("composition", this::compositionBenchmarks));
        for (Map.Entry<String, ThrowingSupplier<Object>> s : sections) {
            long t0 = System.nanoTime();
            result.put(s.getKey(), section(s.getValue()));
            System.err.printf("gpu-check (java): %s done in %.1f s%n", s.getKey(), (System.nanoTime() - t0) / 1e9);
            flush();
        }
        return result;
    }

    /** Writes what there is so far to {@code out}, if there is one. */
    private void flush() throws IOException {
        if (out != null) {
            Files.writeString(out, Json.writeIndented(jsonSafe(result)) + "\n");
        }
    }

    /**
     * {@code value} with every non-finite number as the string {@code "NaN"}, {@code "Infinity"} or
     * {@code "-Infinity"}: a deviation that is one is a failure the report must show, which JSON has no number for.
     */
    static Object jsonSafe(Object value) {
        return switch (value) {
            case Map<?, ?> m -> {
                Map<Object, Object> out = new LinkedHashMap<>();
                m.forEach((k, v) -> out.put(k, jsonSafe(v)));
                yield out;
            }
            case List<?> l -> l.stream().map(GpuCheck::jsonSafe).toList();
            case Double d when !Double.isFinite(d) -> d.toString();
            case Float f when !Float.isFinite(f) -> Double.toString(f);
            case null, default -> value;
        };
    }

    /** Runs one section; a failure is recorded (and printed) instead of ending the run. */
    private static Object section(ThrowingSupplier<Object> body) {
        try {
            return body.get();
        } catch (Throwable e) {
            e.printStackTrace();
            return Map.of("error", e.toString());
        }
    }

    private interface ThrowingSupplier<T> {
        T get() throws Exception;
    }

    // ---------------------------------------------------------------------------------------------------- models

    static HookedAutoConfig gpt2Small(boolean quick) {
        HookedAutoConfig c = HookedAutoConfig.of("gpt2");
        return quick ? c.with(Map.of("n_layer", 2, "n_embd", 64, "n_head", 4, "vocab_size", 512, "n_positions", 128)) : c;
    }

    static HookedAutoConfig llama1b(boolean quick) {
        HookedAutoConfig c = HookedAutoConfig.of("llama").with(Map.of("num_hidden_layers", 22, "hidden_size", 2048,
                "intermediate_size", 5632, "num_attention_heads", 32, "num_key_value_heads", 4, "vocab_size", 32000,
                "max_position_embeddings", 2048));
        return quick ? c.with(Map.of("num_hidden_layers", 2, "hidden_size", 64, "intermediate_size", 128,
                "num_attention_heads", 4, "num_key_value_heads", 2, "vocab_size", 512)) : c;
    }

    /** Llama-7B's attention shape; the MLP and vocabulary are cut, as composition never reads them. */
    static HookedAutoConfig llama7bAttention(boolean quick) {
        HookedAutoConfig c = HookedAutoConfig.of("llama").with(Map.of("num_hidden_layers", 32, "hidden_size", 4096,
                "num_attention_heads", 32, "num_key_value_heads", 32, "intermediate_size", 64, "vocab_size", 256));
        return quick ? c.with(Map.of("num_hidden_layers", 3, "hidden_size", 128, "num_attention_heads", 4,
                "num_key_value_heads", 4)) : c;
    }

    /** Writes a random checkpoint (config.json + model.safetensors) unless one is there; returns its folder. */
    static Path writeCheckpoint(Path dir, HookedAutoConfig config, DType dtype) throws IOException {
        if (Files.isRegularFile(dir.resolve("model.safetensors")) && Files.isRegularFile(dir.resolve("config.json"))) {
            return dir;
        }
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config.toJson());
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 0, dtype);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        return dir;
    }

    static Path hfFixtures() {
        try {
            var url = GpuCheck.class.getResource("/fixtures-hf/summary.json");
            return url == null ? null : Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            return null;
        }
    }

    // ---------------------------------------------------------------------------------------------------- parity

    private Object parity() throws IOException {
        List<Object> rows = new ArrayList<>();
        Path fixtures = hfFixtures();
        List<Path> models = new ArrayList<>();
        if (fixtures != null) {
            try (Stream<Path> s = Files.list(fixtures)) {
                s.filter(p -> Files.isRegularFile(p.resolve("config.json"))).sorted().forEach(models::add);
            }
        }
        models.add(writeCheckpoint(work.resolve("gpt2s"), gpt2Small(quick), DType.FLOAT32));
        for (Path model : models) {
            rows.add(section(() -> parityOf(model)));
        }
        return rows;
    }

    private Map<String, Object> parityOf(Path modelDir) throws IOException {
        String name = modelDir.getFileName().toString();
        Path dir = work.resolve("parity").resolve(name);
        Files.createDirectories(dir);
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("model", name);
        row.put("model_dir", modelDir.toAbsolutePath().toString());
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel cpu = HookedAutoModel.fromPretrained(modelDir, DType.FLOAT32, Device.CPU);
             HookedAutoModel dev = HookedAutoModel.fromPretrained(modelDir, DType.FLOAT32, device);
             HookedAutoModel devBf16 = HookedAutoModel.fromPretrained(modelDir, DType.BFLOAT16, device)) {
            int seq = (int) Math.min(32, cpu.config().maxPositions());
            Tensor ids = Tensor.randint(new Generator(3), 0, cpu.config().vocabSize(), new long[] {2, seq}, Device.CPU);
            writeIds(dir.resolve("ids.txt"), ids.toLongArray(), seq);
            row.put("batch", 2);
            row.put("seq", seq);
            row.put("mixture_of_experts", cpu.config().numExperts() > 0);
            try (ModelOutput a = cpu.forward(ids); ModelOutput b = dev.forward(ids.to(device));
                 ModelOutput c = devBf16.forward(ids.to(device), CacheSpec.none())) {
                float[] la = host(a.logits());
                float[] lb = host(b.logits());
                float[] lc = host(c.logits());
                writeF32(dir.resolve("ours_cpu_logits.f32"), la);
                writeF32(dir.resolve("ours_device_logits.f32"), lb);
                writeF32(dir.resolve("ours_device_bf16_logits.f32"), lc);
                row.put("logits_shape", Arrays.stream(a.logits().shape()).boxed().toList());
                row.put("device_vs_cpu_logits_max_abs", maxAbs(la, lb));
                double worst = 0;
                String worstHook = "";
                for (String hook : a.cache().names()) {
                    double d = maxAbs(host(a.cache().get(hook)), host(b.cache().get(hook)));
                    if (!(d <= worst)) { // a NaN is the worst
                        worst = d;
                        worstHook = hook;
                    }
                }
                row.put("device_vs_cpu_cache_max_abs", worst);
                row.put("device_vs_cpu_cache_worst_hook", worstHook);
                row.put("cache_hooks", a.cache().size());
                row.put("device_bf16_vs_cpu_f32_logits_max_abs", maxAbs(la, lc));
                row.put("device_bf16_vs_cpu_f32_logits_max_rel", maxAbs(la, lc) / Math.max(1e-12, maxAbsOf(la)));
            }
            Map<String, Object> comp = new LinkedHashMap<>();
            for (CompositionScores.Mode mode : CompositionScores.Mode.values()) {
                float[] x = host(CompositionScores.allPairs(cpu, mode));
                float[] y = host(CompositionScores.allPairs(dev, mode));
                comp.put(mode.name(), maxAbsOfScores(x, y));
                if (mode == CompositionScores.Mode.Q) {
                    writeF32(dir.resolve("ours_cpu_q_scores.f32"), x);
                }
            }
            row.put("composition_device_vs_cpu_max_abs", comp);
        }
        return row;
    }

    // ---------------------------------------------------------------------------------------------------- timing

    /** Warm-up, then the median of the runs, in milliseconds; each run ends when one element has reached the host. */
    double medianMs(Supplier<AutoCloseable> op, java.util.function.Function<AutoCloseable, Tensor> resultOf) throws Exception {
        double[] times = new double[runs];
        for (int i = 0; i < warmup + runs; i++) {
            long t0 = System.nanoTime();
            try (AutoCloseable r = op.get()) {
                sync(resultOf.apply(r));
            }
            long t1 = System.nanoTime();
            if (i >= warmup) {
                times[i - warmup] = (t1 - t0) / 1e6;
            }
        }
        Arrays.sort(times);
        return runs % 2 == 1 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
    }

    /** The median time {@code op} takes to return, without waiting for the GPU (each run is synced after its timing). */
    double hostMs(Supplier<AutoCloseable> op, java.util.function.Function<AutoCloseable, Tensor> resultOf) throws Exception {
        double[] times = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            try (AutoCloseable r = op.get()) {
                times[i] = (System.nanoTime() - t0) / 1e6;
                sync(resultOf.apply(r));
            }
        }
        Arrays.sort(times);
        return times[runs / 2];
    }

    /** Copies one element to the host: waits for the work queued on the GPU before it. */
    static double sync(Tensor t) {
        Tensor flat = t.reshape(-1);
        try (Tensor one = flat.select(0, flat.numel() - 1)) {
            return one.item();
        } finally {
            flat.close();
        }
    }

    private Object forwardBenchmarks() throws Exception {
        List<Object> rows = new ArrayList<>();
        result.put("forward", rows); // each row is written as soon as it is measured
        int[] seqs = quick ? new int[] {16, 32} : new int[] {128, 1024};
        Object[][] models = {
                {"gpt2s", gpt2Small(quick), DType.FLOAT32},
                {"llama1b", llama1b(quick), DType.BFLOAT16}};
        for (Object[] m : models) {
            String name = (String) m[0];
            HookedAutoConfig config = (HookedAutoConfig) m[1];
            Path dir = writeCheckpoint(work.resolve(name), config, (DType) m[2]);
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, device)) {
                for (int seq : seqs) {
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("model", name);
                    row.put("model_dir", dir.toAbsolutePath().toString());
                    row.put("dtype", "bfloat16");
                    row.put("batch", 1);
                    row.put("seq", seq);
                    // host ids, as a tokenizer gives them: the pass copies them to the GPU without waiting for it
                    try (Tensor ids = Tensor.randint(new Generator(1), 0, config.vocabSize(), new long[] {1, seq}, Device.CPU)) {
                        try {
                            row.put("ours_ms", medianMs(() -> model.forward(ids, CacheSpec.none()), r -> ((ModelOutput) r).logits()));
                            row.put("ours_host_ms", hostMs(() -> model.forward(ids, CacheSpec.none()), r -> ((ModelOutput) r).logits()));
                            row.put("ours_with_cache_ms", medianMs(() -> model.forward(ids), r -> ((ModelOutput) r).logits()));
                        } catch (Throwable e) {
                            e.printStackTrace();
                            row.put("error", e.toString());
                        }
                        if (!device.isCpu()) { // tried whatever the eager timings gave: it records its own failure
                            graphed(model, ids, seq, row);
                        }
                    }
                    rows.add(row);
                    flush();
                }
            }
        }
        return rows;
    }

    /** The same pass captured as one CUDA graph and replayed: {@code ours_graph_ms}, or why it could not be. */
    private void graphed(HookedAutoModel model, Tensor ids, int seq, Map<String, Object> row) {
        try (CapturedForward captured = model.capture(1, seq, CacheSpec.none())) {
            row.put("ours_graph_nodes", captured.graphNodes());
            row.put("ours_graph_ms", medianMs(() -> captured.run(ids), r -> ((ModelOutput) r).logits()));
            // on ids other than the timed runs': a replay that read a previous call's input would not pass
            try (Tensor other = Tensor.randint(new Generator(2), 0, model.config().vocabSize(), new long[] {1, seq},
                    Device.CPU);
                 ModelOutput eager = model.forward(other, CacheSpec.none()); ModelOutput replayed = captured.run(other)) {
                row.put("ours_graph_equals_eager", replayed.logits().allclose(eager.logits(), 0, 0));
            }
        } catch (Throwable e) {
            e.printStackTrace();
            row.put("ours_graph_error", e.toString());
        }
    }

    private Object compositionBenchmarks() throws Exception {
        List<Object> rows = new ArrayList<>();
        Object[][] models = {{"gpt2s", gpt2Small(quick)}, {"llama7b_attention", llama7bAttention(quick)}};
        for (Object[] m : models) {
            HookedAutoConfig config = (HookedAutoConfig) m[1];
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("model", m[0]);
            row.put("mode", "Q");
            row.put("dtype", "float32");
            row.put("layers", config.nLayers());
            row.put("heads", config.nHeads());
            row.put("d_model", config.dModel());
            try (HookedAutoModel model = m[0].equals("gpt2s")
                    ? HookedAutoModel.fromPretrained(writeCheckpoint(work.resolve("gpt2s"), config, DType.FLOAT32), DType.FLOAT32, device)
                    : HookedAutoModel.create(config, 0, DType.FLOAT32, device)) {
                row.put("d_head", config.dHead());
                row.put("ours_ms", medianMs(() -> CompositionScores.allPairs(model, CompositionScores.Mode.Q), r -> (Tensor) r));
            } catch (Throwable e) {
                e.printStackTrace();
                row.put("error", e.toString());
            }
            rows.add(row);
        }
        return rows;
    }

    // ---------------------------------------------------------------------------------------------------- helpers

    private static float[] host(Tensor t) {
        try (Tensor c = t.to(DType.FLOAT32, Device.CPU)) {
            return c.toFloatArray();
        }
    }

    static double maxAbs(float[] a, float[] b) {
        if (a.length != b.length) {
            return Double.POSITIVE_INFINITY;
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            if (Double.isNaN(d)) {
                return d;
            }
            m = Math.max(m, d);
        }
        return m;
    }

    /**
     * {@link #maxAbs} of two composition scores, where NaN on both sides (a pair with a head of a linear-attention
     * layer, which has no score) agrees.
     */
    static double maxAbsOfScores(float[] a, float[] b) {
        float[] x = a.clone();
        float[] y = b.clone();
        for (int i = 0; i < Math.min(x.length, y.length); i++) {
            if (Float.isNaN(x[i]) && Float.isNaN(y[i])) {
                x[i] = 0;
                y[i] = 0;
            }
        }
        return maxAbs(x, y);
    }

    private static double maxAbsOf(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    private static void writeF32(Path file, float[] values) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asFloatBuffer().put(values);
        Files.write(file, buffer.array());
    }

    private static void writeIds(Path file, long[] ids, int seq) throws IOException {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            text.append(i % seq == 0 ? (i == 0 ? "" : ";") : ",").append(ids[i]);
        }
        Files.writeString(file, text + "\n");
    }
}

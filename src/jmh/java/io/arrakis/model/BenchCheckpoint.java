package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes the checkpoints every implementation of the benchmark suite loads (scripts/bench.sh runs it once, before
 * the benchmarks), so that ours, the JVM peers and Python compute with the same weights:
 *
 * <ul>
 *   <li>{@code DIR/gpt2s}: a GPT-2-small-shaped model (12 layers, 12 heads, d_model 768, vocab 50257) with random
 *       weights (seed 0, Hugging Face's initialisation), as {@code config.json} + {@code model.safetensors};
 *       {@code ids.txt}: the 128 input ids every forward benchmark uses; {@code logits.f32}: our float32 logits at
 *       the first and last position ({@code [2, vocab]}, little-endian), which the peers check theirs against;</li>
 *   <li>{@code DIR/tiny}: a small GPT-2 (2 layers, d_model 128, 4 heads, vocab 1000) for the start-up, thread
 *       throughput and {@code gpt2_tiny_forward} benchmarks, with {@code ids.txt} (32 ids) and {@code logits.f32}.</li>
 * </ul>
 *
 * Usage: {@code BenchCheckpoint DIR} (does nothing for a checkpoint that is already there).
 */
public final class BenchCheckpoint {
    public static final int SEQ = 128;
    public static final int TINY_SEQ = 32;

    private BenchCheckpoint() {
    }

    public static HookedAutoConfig gpt2Small() {
        return HookedAutoConfig.of("gpt2");
    }

    public static HookedAutoConfig tiny() {
        return HookedAutoConfig.of("gpt2").with(Map.of("n_layer", 2, "n_embd", 128, "n_head", 4, "vocab_size", 1000,
                "n_positions", 128));
    }

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args.length > 0 ? args[0] : "target/bench");
        write(dir.resolve("gpt2s"), gpt2Small(), SEQ, true);
        write(dir.resolve("tiny"), tiny(), TINY_SEQ, true);
    }

    static void write(Path dir, HookedAutoConfig config, int seq, boolean logits) throws IOException {
        if (Files.isRegularFile(dir.resolve("model.safetensors")) && Files.isRegularFile(dir.resolve("ids.txt"))
                && (!logits || Files.isRegularFile(dir.resolve("logits.f32")))) {
            return;
        }
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config.toJson());
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 0, io.arrakis.torch.DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                tensors.put(name, source.load(name));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
            long[] ids = Tensor.randint(new Generator(1), 0, config.vocabSize(), new long[] {1, seq}, Device.CPU).toLongArray();
            StringBuilder text = new StringBuilder();
            for (long id : ids) {
                text.append(text.isEmpty() ? "" : ",").append(id);
            }
            Files.writeString(dir.resolve("ids.txt"), text + "\n");
            if (logits) {
                try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU);
                     ModelOutput out = model.forward(Tensor.of(ids, 1, seq), CacheSpec.none())) {
                    Tensor l = out.logits();
                    float[] first = l.select(1, 0).toFloatArray();
                    float[] last = l.select(1, seq - 1).toFloatArray();
                    ByteBuffer buffer = ByteBuffer.allocate(4 * (first.length + last.length)).order(ByteOrder.LITTLE_ENDIAN);
                    buffer.asFloatBuffer().put(first).put(last);
                    Files.write(dir.resolve("logits.f32"), buffer.array());
                }
            }
        }
        System.err.println("bench: wrote " + dir);
    }

    /** The ids of {@code ids.txt}. */
    public static long[] readIds(Path dir) {
        try {
            String[] parts = Files.readString(dir.resolve("ids.txt")).trim().split(",");
            long[] ids = new long[parts.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = Long.parseLong(parts[i]);
            }
            return ids;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}

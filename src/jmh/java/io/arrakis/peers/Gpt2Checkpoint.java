package io.arrakis.peers;

import io.arrakis.json.Json;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;

/**
 * The suite's GPT-2 checkpoint (written by {@code io.arrakis.model.BenchCheckpoint}) read in plain Java for the peers:
 * config, float32 tensors of {@code model.safetensors}, the input ids and our reference logits. It touches nothing of
 * io.arrakis.torch, so a peer's JMH fork never loads our libtorch next to its own.
 */
public final class Gpt2Checkpoint {
    public final Path dir;
    public final int layers;
    public final int heads;
    public final int dModel;
    public final int vocab;
    public final double eps;
    public final long[] ids;
    private final ByteBuffer data;
    private final Map<String, Object> header;

    @SuppressWarnings("unchecked")
    public Gpt2Checkpoint(Path dir) {
        this.dir = dir;
        try {
            Map<String, Object> config = (Map<String, Object>) Json.parse(Files.readString(dir.resolve("config.json")));
            layers = ((Number) config.get("n_layer")).intValue();
            heads = ((Number) config.get("n_head")).intValue();
            dModel = ((Number) config.get("n_embd")).intValue();
            vocab = ((Number) config.get("vocab_size")).intValue();
            eps = ((Number) config.getOrDefault("layer_norm_epsilon", 1e-5)).doubleValue();
            String[] parts = Files.readString(dir.resolve("ids.txt")).trim().split(",");
            ids = new long[parts.length];
            for (int i = 0; i < parts.length; i++) {
                ids[i] = Long.parseLong(parts[i]);
            }
            try (FileChannel ch = FileChannel.open(dir.resolve("model.safetensors"), StandardOpenOption.READ)) {
                ByteBuffer all = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size()).order(ByteOrder.LITTLE_ENDIAN);
                long headerLength = all.getLong(0);
                byte[] h = new byte[(int) headerLength];
                all.get(8, h);
                header = (Map<String, Object>) Json.parse(new String(h, StandardCharsets.UTF_8));
                data = all.slice(8 + (int) headerLength, all.capacity() - 8 - (int) headerLength).order(ByteOrder.LITTLE_ENDIAN);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A float32 tensor's values (row-major). */
    @SuppressWarnings("unchecked")
    public float[] floats(String name) {
        Map<String, Object> info = (Map<String, Object>) header.get(name);
        if (info == null || !"F32".equals(info.get("dtype"))) {
            throw new IllegalArgumentException("no float32 tensor " + name + " in " + dir);
        }
        List<Object> offsets = (List<Object>) info.get("data_offsets");
        int begin = ((Number) offsets.get(0)).intValue();
        int end = ((Number) offsets.get(1)).intValue();
        float[] values = new float[(end - begin) / 4];
        data.slice(begin, end - begin).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        return values;
    }

    /** A tensor's shape. */
    @SuppressWarnings("unchecked")
    public long[] shape(String name) {
        List<Object> s = (List<Object>) ((Map<String, Object>) header.get(name)).get("shape");
        return s.stream().mapToLong(o -> ((Number) o).longValue()).toArray();
    }

    /** Our float32 logits {@code [2, vocab]} at the first and last position. */
    public float[] referenceLogits() {
        try {
            byte[] bytes = Files.readAllBytes(dir.resolve("logits.f32"));
            float[] values = new float[bytes.length / 4];
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            return values;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Fails (so that JMH fails the benchmark) unless {@code maxAbsDiff} is within tolerance of our logits' scale. */
    public static void checkLogits(String peer, double maxAbsDiff, double scale) {
        double tolerance = 1e-3 * Math.max(1.0, scale);
        boolean ok = maxAbsDiff <= tolerance;
        System.out.printf("bench: %s GPT-2 logits vs ours: max |diff| %.3g (tolerance %.3g): %s%n", peer, maxAbsDiff,
                tolerance, ok ? "match" : "MISMATCH");
        if (!ok) {
            throw new IllegalStateException(peer + "'s logits differ from ours by " + maxAbsDiff);
        }
    }

    public static Path gpt2Small() {
        return Path.of(System.getProperty("arrakis.bench.dir", "target/bench")).resolve("gpt2s");
    }

    /** The tiny GPT-2 of the {@code gpt2_tiny_forward} row. */
    public static Path tiny() {
        return Path.of(System.getProperty("arrakis.bench.dir", "target/bench")).resolve("tiny");
    }
}

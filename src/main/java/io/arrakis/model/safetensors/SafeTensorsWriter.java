package io.arrakis.model.safetensors;

import io.arrakis.json.Json;

import io.arrakis.torch.Device;
import io.arrakis.io.AtomicFiles;
import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes tensors to a safetensors file, the way the reference implementation lays it out: tensors ordered by dtype,
 * widest first (so that each starts aligned to its element size), then by name, data packed in that order, the header
 * padded with spaces to a multiple of 8 bytes.
 */
public final class SafeTensorsWriter {
    private static final long CHUNK = 1L << 30;
    /** The reference's dtypes in the order of its {@code Dtype} enum, which it sorts by (descending) before names. */
    private static final List<String> DTYPE_ORDER = List.of("BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32",
            "U32", "F32", "C64", "F64", "I64", "U64");

    private SafeTensorsWriter() {
    }

    /**
     * Writes {@code tensors} (any device, any layout: each is copied to a contiguous CPU tensor first if need be) and
     * {@code metadata} (may be null or empty; then the header has no {@code "__metadata__"}) to {@code file}. The file
     * is written under a temporary name in the same folder and moved into place at the end, so readers never see a
     * partial file and a failed write leaves any earlier file intact.
     *
     * @throws SafeTensorsException if a tensor has a dtype the format cannot store (complex128), a name is
     *                              {@code "__metadata__"}, or writing fails
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        List<Map.Entry<String, Tensor>> sorted = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String name = Objects.requireNonNull(e.getKey(), "tensor name");
            if (name.equals(SafeTensorsFile.METADATA_KEY)) {
                throw new SafeTensorsException(file, "a tensor cannot be called " + SafeTensorsFile.METADATA_KEY
                        + ", the header key of the metadata");
            }
            sorted.add(Map.entry(name, Objects.requireNonNull(e.getValue(), () -> "tensor " + name + " is null")));
        }
        sorted.sort(Comparator.<Map.Entry<String, Tensor>>comparingInt(e -> -DTYPE_ORDER.indexOf(
                Dtypes.fromDType(e.getValue().dtype()))).thenComparing(Map.Entry::getKey, SafeTensorsWriter::byUtf8));

        List<Tensor> temporaries = new ArrayList<>();
        try {
            Map<String, Object> header = new LinkedHashMap<>();
            if (metadata != null && !metadata.isEmpty()) {
                Map<String, Object> meta = new LinkedHashMap<>();
                metadata.forEach((k, v) -> meta.put(Objects.requireNonNull(k, "metadata key"),
                        Objects.requireNonNull(v, () -> "metadata value of " + k)));
                header.put(SafeTensorsFile.METADATA_KEY, meta);
            }
            List<Tensor> data = new ArrayList<>();
            long offset = 0;
            for (Map.Entry<String, Tensor> e : sorted) {
                Tensor t = e.getValue();
                String dtype = Dtypes.fromDType(t.dtype());
                if (dtype == null) {
                    throw new SafeTensorsException(file, "tensor " + Json.quote(e.getKey()) + " is " + t.dtype()
                            + ", which safetensors cannot store");
                }
                Tensor host = t;
                if (!host.device().isCpu()) {
                    host = host.to(Device.CPU);
                    temporaries.add(host);
                }
                if (!host.isContiguous()) {
                    host = host.contiguous();
                    temporaries.add(host);
                }
                long bytes = host.numel() * host.dtype().byteSize();
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("dtype", dtype);
                entry.put("shape", host.shape());
                entry.put("data_offsets", new long[] {offset, offset + bytes});
                header.put(e.getKey(), entry);
                data.add(host);
                offset += bytes;
            }
            String json;
            try {
                json = Json.write(header);
            } catch (IllegalArgumentException bad) {
                throw new SafeTensorsException(file, "cannot write the header: " + bad.getMessage(), bad);
            }
            writeAtomically(file, json, data);
        } finally {
            for (Tensor t : temporaries) {
                t.close();
            }
        }
    }

    private static void writeAtomically(Path file, String json, List<Tensor> data) {
        byte[] headerBytes = json.getBytes(StandardCharsets.UTF_8);
        int padded = (headerBytes.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(headerBytes);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();

        try {
            AtomicFiles.write(file, (channel, temp) -> {
                AtomicFiles.writeFully(channel, head);
                for (Tensor t : data) {
                    MemorySegment segment = t.asSegment();
                    for (long at = 0; at < segment.byteSize(); at += CHUNK) {
                        AtomicFiles.writeFully(channel, segment.asSlice(at, Math.min(CHUNK, segment.byteSize() - at)).asByteBuffer());
                    }
                }
            });
        } catch (IOException e) {
            throw new SafeTensorsException(file, "cannot write: " + e, e);
        }
    }

    /** The reference's order of names, by their UTF-8 bytes: code point order, which UTF-16's differs from. */
    private static int byUtf8(String a, String b) {
        return java.util.Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray());
    }
}

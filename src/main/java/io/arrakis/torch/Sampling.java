package io.arrakis.torch;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.IntStream;

/**
 * Random tensors drawn in Java from a {@link Generator}, so that a seed gives the same numbers on every machine and
 * device: normal samples in parallel chunks written straight into the tensor's memory, uniform floats and integers.
 */
final class Sampling {
    private Sampling() {
    }

    static Tensor normal(Generator generator, long[] shape, double mean, double std, DType dtype, Device device,
                                 String op) {
        checkRandomDtype(dtype, op);
        if (!Double.isFinite(mean) || !(std >= 0) || Double.isInfinite(std)) {
            throw new IllegalArgumentException(op + ": needs a finite mean and a finite std >= 0, got mean " + mean
                    + ", std " + std);
        }
        long n = Shapes.numel(shape, op);
        device.checkAvailable();
        long streamSeed = generator.nextLong();
        Tensor t = Tensor.empty(shape, dtype, Device.CPU, op);
        MemorySegment data = t.dataSegment();
        long chunks = (n + DRAW_CHUNK - 1) / DRAW_CHUNK;
        int tasks = (int) Math.min(chunks, DRAW_TASKS);
        // each task fills a Java array per chunk and copies it out in bulk: element-wise stores into native memory
        // cost twice the drawing itself
        IntStream.range(0, tasks).parallel().forEach(task -> {
            Object buffer = switch (dtype) {
                case FLOAT64 -> new double[(int) DRAW_CHUNK];
                case FLOAT32 -> new float[(int) DRAW_CHUNK];
                default -> new short[(int) DRAW_CHUNK];
            };
            for (long c = chunks * task / tasks; c < chunks * (task + 1) / tasks; c++) {
                Generator g = Generator.forChunk(streamSeed, c);
                int len = (int) Math.min(DRAW_CHUNK, n - c * DRAW_CHUNK);
                long offset = c * DRAW_CHUNK * dtype.byteSize();
                switch (buffer) {
                    case double[] d -> {
                        for (int i = 0; i < len; i++) {
                            d[i] = mean + std * g.nextGaussian();
                        }
                        MemorySegment.copy(d, 0, data, ValueLayout.JAVA_DOUBLE, offset, len);
                    }
                    case float[] f -> {
                        for (int i = 0; i < len; i++) {
                            f[i] = (float) (mean + std * g.nextGaussian());
                        }
                        MemorySegment.copy(f, 0, data, ValueLayout.JAVA_FLOAT, offset, len);
                    }
                    case short[] h when dtype == DType.FLOAT16 -> {
                        for (int i = 0; i < len; i++) {
                            h[i] = Float.floatToFloat16((float) (mean + std * g.nextGaussian()));
                        }
                        MemorySegment.copy(h, 0, data, ValueLayout.JAVA_SHORT, offset, len);
                    }
                    case short[] h -> {
                        for (int i = 0; i < len; i++) {
                            h[i] = DType.bfloat16Bits((float) (mean + std * g.nextGaussian()));
                        }
                        MemorySegment.copy(h, 0, data, ValueLayout.JAVA_SHORT, offset, len);
                    }
                    default -> throw new AssertionError(buffer);
                }
            }
        });
        return converted(t, dtype, device);
    }

    private static final long DRAW_CHUNK = 1 << 16;
    private static final int DRAW_TASKS = 64;



    /**
     * Draws written straight into a CPU tensor's memory, in row-major order (float64 for a float64 result, else
     * float32, which holds every draw a narrower type can), then converted and moved: no Java array, so a tensor of
     * any size costs no heap.
     */
    private static Tensor fromDraws(long[] shape, DType dtype, Device device, java.util.function.DoubleSupplier draw, String op) {
        long n = Shapes.numel(shape, op);
        device.checkAvailable();
        DType buffer = dtype == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
        Tensor t = Tensor.empty(shape, buffer, Device.CPU, op);
        MemorySegment data = t.dataSegment();
        if (buffer == DType.FLOAT64) {
            for (long i = 0; i < n; i++) {
                data.setAtIndex(ValueLayout.JAVA_DOUBLE, i, draw.getAsDouble());
            }
        } else {
            for (long i = 0; i < n; i++) {
                data.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) draw.getAsDouble());
            }
        }
        return converted(t, dtype, device);
    }

    /** {@code t} itself when it already has the dtype and device, else a converted copy (closing {@code t}). */
    private static Tensor converted(Tensor t, DType dtype, Device device) {
        if (t.dtype() == dtype && device.isCpu()) {
            return t;
        }
        try (t) {
            return t.to(dtype, device);
        }
    }

    private static void checkRandomDtype(DType dtype, String op) {
        if (!dtype.isFloatingPoint()) {
            throw new IllegalArgumentException(op + ": needs a floating-point dtype, got " + dtype + "; use randint for integers");
        }
    }

    /** Uniform samples in [0, 1), exact in the dtype (so never rounded up to 1). */
    static Tensor rand(Generator generator, long[] shape, DType dtype, Device device) {
        checkRandomDtype(dtype, "Tensor.rand");
        int bits = switch (dtype) {
            case FLOAT16 -> 11;
            case BFLOAT16 -> 8;
            case FLOAT32 -> 24;
            default -> 53;
        };
        // exact in dtype, so never rounded up to 1
        return fromDraws(shape, dtype, device, () -> generator.nextDouble(bits), "Tensor.rand");
    }

    /** Uniform int64 samples in [low, high). */
    static Tensor randint(Generator generator, long low, long high, long[] shape, Device device) {
        if (low >= high) {
            throw new IllegalArgumentException("Tensor.randint: low (" + low + ") must be < high (" + high + ")");
        }
        long n = Shapes.numel(shape, "Tensor.randint");
        device.checkAvailable();
        Tensor t = Tensor.empty(shape, DType.INT64, Device.CPU, "Tensor.randint");
        MemorySegment data = t.dataSegment();
        for (long i = 0; i < n; i++) {
            data.setAtIndex(ValueLayout.JAVA_LONG, i, generator.nextLong(low, high));
        }
        return converted(t, DType.INT64, device);
    }
}

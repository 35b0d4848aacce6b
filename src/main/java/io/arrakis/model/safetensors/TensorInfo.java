package io.arrakis.model.safetensors;

import io.arrakis.torch.DType;

import java.util.Arrays;
import java.util.Objects;

/**
 * Where and what one tensor of a safetensors file is.
 *
 * @param name            the tensor's name
 * @param dtype           its element type, or {@code null} when arrakis-jvm cannot load the stored type (e.g.
 *                        {@code F8_E4M3}); see {@link #storedDtype()}
 * @param shape           its shape (row-major); empty for a scalar. The accessor returns a copy
 * @param offset          the position in the file of its first byte (header included)
 * @param byteSize        how many bytes it occupies
 * @param storedDtype     the dtype name as the file writes it ({@code "F32"}, {@code "BF16"}, {@code "F8_E4M3"}, ...)
 */
public record TensorInfo(String name, DType dtype, long[] shape, long offset, long byteSize, String storedDtype) {

    /** Copies {@code shape}. */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(storedDtype, "storedDtype");
        shape = shape.clone();
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** The number of elements (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        return n;
    }

    /** Whether {@link SafeTensorsFile#tensor} can load this tensor, i.e. {@link #dtype()} is not null. */
    public boolean isLoadable() {
        return dtype != null;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && Objects.equals(dtype, t.dtype)
                && Arrays.equals(shape, t.shape) && offset == t.offset && byteSize == t.byteSize
                && storedDtype.equals(t.storedDtype);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), offset, byteSize, storedDtype);
    }

    @Override
    public String toString() {
        return "TensorInfo[" + name + ", " + storedDtype + ", shape=" + Arrays.toString(shape) + ", offset=" + offset
                + ", bytes=" + byteSize + "]";
    }
}

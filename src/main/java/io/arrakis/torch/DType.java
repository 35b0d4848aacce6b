package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.util.function.IntSupplier;

/** Element types. The numeric codes are libtorch's, read once at run time rather than assumed. */
public enum DType {
    FLOAT32("float32", 4, true, arrakis_torch_h::aoti_torch_dtype_float32),
    FLOAT16("float16", 2, true, arrakis_torch_h::aoti_torch_dtype_float16),
    BFLOAT16("bfloat16", 2, true, arrakis_torch_h::aoti_torch_dtype_bfloat16),
    FLOAT64("float64", 8, true, arrakis_torch_h::aoti_torch_dtype_float64),
    INT64("int64", 8, false, arrakis_torch_h::aoti_torch_dtype_int64),
    INT32("int32", 4, false, arrakis_torch_h::aoti_torch_dtype_int32),
    INT16("int16", 2, false, arrakis_torch_h::aoti_torch_dtype_int16),
    INT8("int8", 1, false, arrakis_torch_h::aoti_torch_dtype_int8),
    UINT8("uint8", 1, false, arrakis_torch_h::aoti_torch_dtype_uint8),
    BOOL("bool", 1, false, arrakis_torch_h::aoti_torch_dtype_bool),
    COMPLEX64("complex64", 8, false, arrakis_torch_h::aoti_torch_dtype_complex64),
    COMPLEX128("complex128", 16, false, arrakis_torch_h::aoti_torch_dtype_complex128);

    private final String label;
    private final int byteSize;
    private final boolean floatingPoint;
    private final IntSupplier codeSource;
    private int code = Integer.MIN_VALUE;

    DType(String label, int byteSize, boolean floatingPoint, IntSupplier codeSource) {
        this.label = label;
        this.byteSize = byteSize;
        this.floatingPoint = floatingPoint;
        this.codeSource = codeSource;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** Whether this is a real floating-point type (float16, bfloat16, float32, float64). */
    public boolean isFloatingPoint() {
        return floatingPoint;
    }

    /**
     * {@code value} as this floating-point type holds it, rounded as libtorch converts a number (through float32, to
     * the nearest, ties to even).
     */
    public double round(double value) {
        return switch (this) {
            case FLOAT64 -> value;
            case FLOAT32 -> (float) value;
            case FLOAT16 -> Float.float16ToFloat(Float.floatToFloat16((float) value));
            case BFLOAT16 -> Float.intBitsToFloat(bfloat16Bits((float) value) << 16);
            default -> throw new IllegalArgumentException("round: " + this + " is not a floating-point type");
        };
    }

    /** The largest finite value of this floating-point type. */
    public double maxFinite() {
        return switch (this) {
            case FLOAT64 -> Double.MAX_VALUE;
            case FLOAT32 -> Float.MAX_VALUE;
            case FLOAT16 -> 65504;
            case BFLOAT16 -> Float.intBitsToFloat(0x7F7F0000);
            default -> throw new IllegalArgumentException("maxFinite: " + this + " is not a floating-point type");
        };
    }

    /** float32 to bfloat16's 16 bits, rounding to nearest even as libtorch's {@code c10::BFloat16} does. */
    static short bfloat16Bits(float value) {
        if (Float.isNaN(value)) { // rounding would carry some NaNs into the exponent: infinities or zeros
            return (short) 0x7FC0;
        }
        int bits = Float.floatToRawIntBits(value);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Whether this is an integer type (bool excluded). */
    public boolean isIntegral() {
        return !floatingPoint && this != BOOL && this != COMPLEX64 && this != COMPLEX128;
    }

    /** libtorch's code for this type, as the ABI passes it. */
    int code() {
        int c = code;
        if (c == Integer.MIN_VALUE) {
            LibTorch.load();
            c = codeSource.getAsInt();
            code = c;
        }
        return c;
    }

    private static final DType[] ALL = values(); // values() copies its array on every call

    static DType fromCode(int code) {
        for (DType t : ALL) {
            if (t.code() == code) {
                return t;
            }
        }
        throw new TorchException("libtorch returned a tensor of dtype code " + code
                + ", which arrakis-jvm does not support (supported: float32, float16, bfloat16, float64, int64, int32,"
                + " int16, int8, uint8, bool, complex64, complex128)");
    }

    /** Parses "float32", "bf16", "half", ... case-insensitively. */
    public static DType parse(String name) {
        if (name == null) {
            throw new IllegalArgumentException("dtype name must not be null");
        }
        String n = name.trim().toLowerCase(java.util.Locale.ROOT);
        return switch (n) {
            case "float32", "float", "fp32", "f32" -> FLOAT32;
            case "float16", "half", "fp16", "f16" -> FLOAT16;
            case "bfloat16", "bf16" -> BFLOAT16;
            case "float64", "double", "fp64", "f64" -> FLOAT64;
            case "int64", "long" -> INT64;
            case "int32", "int" -> INT32;
            case "int16", "short" -> INT16;
            case "int8" -> INT8;
            case "uint8", "byte" -> UINT8;
            case "bool" -> BOOL;
            case "complex64", "cfloat" -> COMPLEX64;
            case "complex128", "cdouble" -> COMPLEX128;
            default -> throw new IllegalArgumentException("unknown dtype '" + name
                    + "'; expected one of float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool,"
                    + " complex64, complex128");
        };
    }

    @Override
    public String toString() {
        return label;
    }
}

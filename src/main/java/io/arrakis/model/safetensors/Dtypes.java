package io.arrakis.model.safetensors;

import io.arrakis.torch.DType;

import java.util.Map;

/** The safetensors dtype names: which map to a {@link DType}, and the bit width of every name the format defines. */
final class Dtypes {
    private Dtypes() {
    }

    /** The names a tensor can be loaded from, in the order the error messages list them. */
    private static final Map<String, DType> LOADABLE = Map.ofEntries(
            Map.entry("F32", DType.FLOAT32), Map.entry("F16", DType.FLOAT16), Map.entry("BF16", DType.BFLOAT16),
            Map.entry("F64", DType.FLOAT64), Map.entry("I64", DType.INT64), Map.entry("I32", DType.INT32),
            Map.entry("I16", DType.INT16), Map.entry("I8", DType.INT8), Map.entry("U8", DType.UINT8),
            Map.entry("BOOL", DType.BOOL), Map.entry("C64", DType.COMPLEX64));

    static final String LOADABLE_NAMES = "F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL, C64";

    /** Bits per element of every dtype the format defines, loadable or not. */
    private static final Map<String, Integer> BITS = Map.ofEntries(
            Map.entry("BOOL", 8), Map.entry("U8", 8), Map.entry("I8", 8), Map.entry("F8_E5M2", 8),
            Map.entry("F8_E4M3", 8), Map.entry("F8_E8M0", 8), Map.entry("F8_E4M3FNUZ", 8), Map.entry("F8_E5M2FNUZ", 8), Map.entry("I16", 16), Map.entry("U16", 16),
            Map.entry("F16", 16), Map.entry("BF16", 16), Map.entry("I32", 32), Map.entry("U32", 32),
            Map.entry("F32", 32), Map.entry("F64", 64), Map.entry("I64", 64), Map.entry("U64", 64),
            Map.entry("C64", 64), Map.entry("F4", 4), Map.entry("F6_E2M3", 6), Map.entry("F6_E3M2", 6));

    /** The {@link DType} a tensor stored as {@code name} loads as, or null if arrakis-jvm cannot load it. */
    static DType toDType(String name) {
        return LOADABLE.get(name);
    }

    /** Bits per element of {@code name}, or 0 if the format revision we know does not define it. */
    static int bits(String name) {
        return BITS.getOrDefault(name, 0);
    }

    /** The safetensors name of {@code dtype}, or null if the format has none (complex128). */
    static String fromDType(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> "F32";
            case FLOAT16 -> "F16";
            case BFLOAT16 -> "BF16";
            case FLOAT64 -> "F64";
            case INT64 -> "I64";
            case INT32 -> "I32";
            case INT16 -> "I16";
            case INT8 -> "I8";
            case UINT8 -> "U8";
            case BOOL -> "BOOL";
            case COMPLEX64 -> "C64";
            case COMPLEX128 -> null;
        };
    }
}

package io.arrakis.model.family;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static io.arrakis.model.family.ConfigValues.asDouble;
import static io.arrakis.model.family.ConfigValues.asInt;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.ConfigValues.normalise;

/**
 * One Hugging Face {@code config.json} key of a family. The static factories name the common kinds, so that a
 * family's key table reads like its configuration class's {@code __init__}.
 *
 * @param inDefaults whether the family's defaults hold it (false: recognised when given, as {@code head_dim} where
 *     the configuration class has no such argument but the modeling code reads it)
 * @param positive for {@code INT}/{@code DOUBLE}: the value must be {@code > 0}
 * @param max for {@code INT}: the largest value accepted
 */
record Key(String name, Kind kind, boolean nullable, Object defaultValue, boolean inDefaults, boolean positive,
           int max) {
    /**
     * The most layers, or experts in a layer, a configuration may ask for: far beyond any model, and few enough that
     * the per-layer and per-expert tables built before any weight is read stay small.
     */
    static final int MAX_COUNT = 1 << 16;

    /** The value type a key takes. */
    enum Kind {
        INT, DOUBLE, BOOL, STRING, INT_OR_STRING, TOKEN_IDS, LIST, MAP, POS_OR_POS_LIST
    }

    static Key pos(String name, int dflt) {
        return new Key(name, Kind.INT, false, dflt, true, true, Integer.MAX_VALUE);
    }

    /** A number of layers or of experts: positive, at most {@link #MAX_COUNT}. */
    static Key count(String name, int dflt) {
        return new Key(name, Kind.INT, false, dflt, true, true, MAX_COUNT);
    }

    static Key posOrNull(String name, Integer dflt) {
        return new Key(name, Kind.INT, true, dflt, true, true, Integer.MAX_VALUE);
    }

    static Key integerOrNull(String name, Integer dflt) {
        return new Key(name, Kind.INT, true, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key integer(String name, int dflt) {
        return new Key(name, Kind.INT, false, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key dbl(String name, double dflt) {
        return new Key(name, Kind.DOUBLE, false, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key dblOrNull(String name, Double dflt) {
        return new Key(name, Kind.DOUBLE, true, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key posDbl(String name, double dflt) {
        return new Key(name, Kind.DOUBLE, false, dflt, true, true, Integer.MAX_VALUE);
    }

    static Key bool(String name, boolean dflt) {
        return new Key(name, Kind.BOOL, false, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key boolOrNull(String name, Boolean dflt) {
        return new Key(name, Kind.BOOL, true, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key str(String name, String dflt) {
        return new Key(name, Kind.STRING, false, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key strOrNull(String name, String dflt) {
        return new Key(name, Kind.STRING, true, dflt, true, false, Integer.MAX_VALUE);
    }

    /** An integer or a string, or null (exaone4's {@code sliding_window_pattern}: a period or "LLLG"). */
    static Key intOrStringOrNull(String name, Object dflt) {
        return new Key(name, Kind.INT_OR_STRING, true, dflt, true, false, Integer.MAX_VALUE);
    }

    /** A positive integer, or a list of them, one per layer (HunYuan-MoE's {@code moe_topk}). */
    static Key posOrPerLayer(String name, int dflt) {
        return new Key(name, Kind.POS_OR_POS_LIST, false, dflt, true, true, Integer.MAX_VALUE);
    }

    static Key tok(String name, Integer dflt) {
        return new Key(name, Kind.TOKEN_IDS, true, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key list(String name, List<?> dflt) {
        return new Key(name, Kind.LIST, false, dflt, true, false, Integer.MAX_VALUE);
    }

    static Key listOrNull(String name) {
        return new Key(name, Kind.LIST, true, null, true, false, Integer.MAX_VALUE);
    }

    static Key mapOrNull(String name) {
        return new Key(name, Kind.MAP, true, null, true, false, Integer.MAX_VALUE);
    }

    /**
     * A positive integer that the configuration class reads only where a file gives it, not one of its arguments
     * (cohere2's {@code sliding_window_pattern}).
     */
    static Key optionalPos(String name) {
        return new Key(name, Kind.INT, false, null, false, true, Integer.MAX_VALUE);
    }

    /**
     * This key recognised (type-checked, honoured) where a file gives it but absent from the defaults: a key the
     * published files carry that the configuration class does not define (MiniMax-M2's {@code rotary_dim}, ...).
     */
    Key optional() {
        return new Key(name, kind, nullable, null, false, positive, max);
    }

    /** {@code head_dim} where the configuration class has no such argument but the modeling code reads it. */
    static Key optionalHeadDim() {
        return new Key("head_dim", Kind.INT, true, null, false, true, Integer.MAX_VALUE);
    }

    /**
     * {@code rope_scaling} where the configuration class has no such argument but the modeling code reads it, as
     * it does for every rotary family.
     */
    static Key optionalRopeScaling() {
        return new Key("rope_scaling", Kind.MAP, true, null, false, false, Integer.MAX_VALUE);
    }

    /** The {@code transformers} 5 form of the rotary settings, recognised for every rotary family. */
    static Key ropeParameters() {
        return new Key("rope_parameters", Kind.MAP, true, null, false, false, Integer.MAX_VALUE);
    }

    /**
     * Type-checks and normalises a value given for this key.
     *
     * @param given the name the caller used (this key or an alias of it), for messages
     */
    Object normaliseValue(String given, Object value) {
        String label = given.equals(name) ? name : given + " (" + name + ")";
        if (value == null) {
            if (!nullable) {
                throw invalid(label, null, "may not be null");
            }
            return null;
        }
        switch (kind) {
            case INT -> {
                Integer i = asInt(value);
                if (i == null) {
                    throw invalid(label, value, value instanceof Long || value instanceof BigInteger
                            ? "is out of range: an integer from -2^31 to 2^31 - 1 is expected" : "must be an integer");
                }
                if (positive && i <= 0) {
                    throw invalid(label, value, "must be positive");
                }
                if (i > max) {
                    throw invalid(label, value, "is more than the " + max + " this library takes");
                }
                return i;
            }
            case DOUBLE -> {
                Double d = asDouble(value);
                if (d == null) {
                    throw invalid(label, value, "must be a number");
                }
                if (d.isNaN() || d.isInfinite()) {
                    throw invalid(label, value, "must be finite");
                }
                if (positive && !(d > 0.0)) {
                    throw invalid(label, value, "must be positive");
                }
                return d;
            }
            case BOOL -> {
                if (!(value instanceof Boolean)) {
                    throw invalid(label, value, "must be a boolean");
                }
                return value;
            }
            case STRING -> {
                if (!(value instanceof String)) {
                    throw invalid(label, value, "must be a string");
                }
                return value;
            }
            case INT_OR_STRING -> {
                Integer i = asInt(value);
                if (i == null && !(value instanceof String)) {
                    throw invalid(label, value, "must be an integer or a string");
                }
                return i != null ? i : value;
            }
            case TOKEN_IDS -> {
                Integer i = asInt(value);
                if (i != null) {
                    return i;
                }
                if (value instanceof List<?> list) {
                    List<Object> ids = new ArrayList<>();
                    for (Object o : list) {
                        Integer id = o == null ? null : asInt(o);
                        if (id == null) {
                            throw invalid(label, value, "must be a token id or a list of token ids");
                        }
                        ids.add(id);
                    }
                    return Collections.unmodifiableList(ids);
                }
                throw invalid(label, value, "must be a token id or a list of token ids");
            }
            case POS_OR_POS_LIST -> {
                Object values = value instanceof List<?> ? value : List.of(value);
                List<Object> ints = new ArrayList<>();
                for (Object o : (List<?>) values) {
                    Integer i = o == null ? null : asInt(o);
                    if (i == null || i <= 0) {
                        throw invalid(label, value, "must be a positive integer or a list of them, one per layer");
                    }
                    ints.add(i);
                }
                if (ints.isEmpty()) {
                    throw invalid(label, value, "must be a positive integer or a list of them, one per layer");
                }
                return value instanceof List<?> ? Collections.unmodifiableList(ints) : ints.getFirst();
            }
            case LIST -> {
                if (!(value instanceof List<?>)) {
                    throw invalid(label, value, "must be a list");
                }
                return normalise(label, value);
            }
            case MAP -> {
                if (!(value instanceof java.util.Map<?, ?>)) {
                    throw invalid(label, value, "must be a JSON object (a Map)");
                }
                return normalise(label, value);
            }
            default -> throw new AssertionError(kind);
        }
    }
}

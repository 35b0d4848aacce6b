package io.arrakis.model.family;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Multimodal rotary embeddings (M-RoPE: Qwen2-VL, Qwen3-VL, Qwen3.5) give each token three positions (time, height,
 * width) and split or interleave a head's angles between them by {@code mrope_section}; a text token's three positions
 * are all its position, which makes M-RoPE the plain rotary embedding for text.
 */
public final class MultimodalRotary {
    private MultimodalRotary() {
    }

    /**
     * {@code rope} without its M-RoPE sections and the flag {@code mrope_interleaved}; the type {@code mrope} that
     * transformers 4 wrote is the default rotary.
     *
     * @param key the object's key in the configuration, for messages
     * @param rope the rotary object
     * @param coveredHeadDim where positive, the head dimension whose rotary half the sections must cover (Qwen2-VL
     *     splits the angles by them); 0 where they interleave, and transformers indexes three of them
     * @return the object as plain rotary
     * @throws IllegalArgumentException naming the entry that is not as described
     */
    public static Map<Object, Object> withoutSections(String key, Map<?, ?> rope, long coveredHeadDim) {
        if (!(rope.get("mrope_section") instanceof List<?> sections) || !sections.stream()
                .allMatch(v -> (v instanceof Long || v instanceof Integer) && ((Number) v).longValue() >= 0)) {
            throw new IllegalArgumentException(key + ".mrope_section must be a list of sizes (integers >= 0), got "
                    + ConfigValues.describe(rope.get("mrope_section")));
        }
        long covered = sections.stream().mapToLong(v -> ((Number) v).longValue()).sum();
        if (coveredHeadDim == 0 && sections.size() != 3) {
            throw new IllegalArgumentException(key + ".mrope_section must hold the sizes of three sections (time,"
                    + " height, width), got " + sections);
        }
        if (coveredHeadDim > 0 && covered * 2 != coveredHeadDim) {
            throw new IllegalArgumentException(key + ".mrope_section " + sections + " covers " + covered * 2 + " of a"
                    + " head's " + coveredHeadDim + " rotary dimensions");
        }
        if (rope.containsKey("mrope_interleaved") && !(rope.get("mrope_interleaved") instanceof Boolean)) {
            throw new IllegalArgumentException(key + ".mrope_interleaved must be true or false, got "
                    + ConfigValues.describe(rope.get("mrope_interleaved")));
        }
        Map<Object, Object> plain = new LinkedHashMap<>(rope);
        plain.remove("mrope_section");
        plain.remove("mrope_interleaved");
        for (String typeKey : List.of("type", "rope_type")) {
            if ("mrope".equals(plain.get(typeKey))) {
                plain.put(typeKey, "default");
            }
        }
        return plain;
    }

    /** {@code s} with its rotary objects' M-RoPE entries dropped (sections that interleave). */
    static Settings withoutSections(Settings s) {
        for (String key : List.of("rope_scaling", "rope_parameters")) {
            if (s.get(key) instanceof Map<?, ?> rope && rope.containsKey("mrope_section")) {
                s = s.with(key, withoutSections(key, rope, 0));
            }
        }
        return s;
    }
}

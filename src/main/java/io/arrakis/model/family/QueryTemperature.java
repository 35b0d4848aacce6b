package io.arrakis.model.family;

/**
 * Llama 4's attention temperature: the query at position {@code p} is multiplied by
 * {@code 1 + beta · ln(1 + floor((p + offset) / interval))}, so queries far enough into the input attend more sharply;
 * before then the factor is 1. Ministral 3 applies it to every layer's rotated queries at their positions, Llama 4 to
 * the queries of its layers that do not rotate, counting positions from 1.
 *
 * @param beta {@code llama_4_scaling_beta}, Llama 4's {@code attn_scale}
 * @param interval {@code original_max_position_embeddings}, Llama 4's {@code floor_scale}; at least 1
 * @param offset what is added to a position first: 0 (Ministral 3) or 1 (Llama 4)
 * @param unrotatedOnly whether only the layers that do not rotate multiply their queries (Llama 4)
 * @param inFloat32 whether a float16 or bfloat16 query is multiplied in float32 and the product rounded once (Llama 4)
 *     rather than by the factor rounded to its dtype (Ministral 3)
 */
public record QueryTemperature(double beta, long interval, int offset, boolean unrotatedOnly, boolean inFloat32) {

    /** The factor on the query at {@code position}. */
    public double at(long position) {
        return 1 + beta * Math.log(1 + Math.floor((double) (position + offset) / interval));
    }

    /** Whether a pass of {@code pos} positions has a factor other than 1. */
    public boolean scales(long pos) {
        return pos - 1 + offset >= interval && beta != 0;
    }
}

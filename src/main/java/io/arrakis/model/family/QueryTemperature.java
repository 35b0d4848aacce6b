package io.arrakis.model.family;

/**
 * Llama 4's attention temperature as Ministral 3 applies it: the rotated query at position {@code p} is multiplied by
 * {@code 1 + beta · ln(1 + floor(p / interval))}, so queries beyond the first {@code interval} positions attend more
 * sharply; within them the factor is 1.
 *
 * @param beta {@code llama_4_scaling_beta}
 * @param interval {@code original_max_position_embeddings}, at least 1
 */
public record QueryTemperature(double beta, long interval) {

    /** The factor on the query at {@code position}. */
    public double at(long position) {
        return 1 + beta * Math.log(1 + Math.floor((double) position / interval));
    }

    /** Whether a pass of {@code pos} positions has a factor other than 1. */
    public boolean scales(long pos) {
        return pos > interval && beta != 0;
    }
}

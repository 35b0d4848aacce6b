package io.arrakis.sweep;

import java.io.Serializable;

/**
 * One line of a prompt file: clean and corrupted ids of the same length, and the two tokens whose logit difference at
 * the last position is the metric.
 *
 * @param id        the line's index among the prompts, from 0
 * @param clean     the clean ids
 * @param corrupted the corrupted ids
 * @param answer    the token the clean input should predict
 * @param wrong     the token the corrupted input pushes towards
 */
public record PromptPair(long id, long[] clean, long[] corrupted, long answer, long wrong) implements Serializable {
}

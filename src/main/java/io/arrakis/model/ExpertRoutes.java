package io.arrakis.model;

/**
 * Which tokens each expert of a mixture of experts serves, worked out on the host from the experts each token chose.
 *
 * @param tokens per expert, the tokens routed to it, in token order
 * @param slots per expert, the slots {@code token * k + j} (token, and which of its k choices) that chose it, aligned
 *     with {@code tokens}
 * @param order for the experts' outputs concatenated in expert order, the row each slot of
 *     {@code [token, its experts in expert order]} reads
 */
record ExpertRoutes(long[][] tokens, long[][] slots, long[] order) {

    /**
     * The routes of {@code chosen}, the experts of each token's k slots ({@code [tokens, k]} row-major).
     *
     * @param hookName where the choices came from, for the message when a hook put an expert out of range
     * @throws IllegalArgumentException for an expert index outside {@code [0, experts)}
     */
    static ExpertRoutes of(long[] chosen, int k, int experts, String hookName) {
        int[] count = new int[experts];
        for (long e : chosen) {
            if (e < 0 || e >= experts) {
                throw new IllegalArgumentException(hookName + " holds expert " + e + ", but the layer has " + experts
                        + " experts (0 to " + (experts - 1) + ")");
            }
            count[(int) e]++;
        }
        long[][] tokens = new long[experts][];
        long[][] slots = new long[experts][];
        long[] start = new long[experts];
        for (int e = 0; e < experts; e++) {
            tokens[e] = new long[count[e]];
            slots[e] = new long[count[e]];
            start[e] = e == 0 ? 0 : start[e - 1] + count[e - 1];
        }
        int[] filled = new int[experts];
        long[] order = new long[chosen.length];
        int[] byExpert = new int[k];
        for (int t = 0; t < chosen.length / k; t++) {
            int base = t * k;
            // this token's slots sorted by expert, stably (k is small)
            for (int j = 0; j < k; j++) {
                int r = j;
                while (r > 0 && chosen[base + byExpert[r - 1]] > chosen[base + j]) {
                    byExpert[r] = byExpert[r - 1];
                    r--;
                }
                byExpert[r] = j;
            }
            for (int r = 0; r < k; r++) {
                int e = (int) chosen[base + byExpert[r]];
                int i = filled[e]++;
                tokens[e][i] = t;
                slots[e][i] = base + byExpert[r];
                order[base + r] = start[e] + i;
            }
        }
        return new ExpertRoutes(tokens, slots, order);
    }
}

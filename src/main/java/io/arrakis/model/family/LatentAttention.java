package io.arrakis.model.family;

/**
 * Multi-head latent attention (DeepSeek-V2's and V3's): each position's keys and values are expanded per head from one
 * compressed latent, {@code kv_b_proj(RMSNorm(latent))} with {@code latent, k_rope = kv_a_proj_with_mqa(x)}, and its
 * queries likewise from one of their own, {@code q_b_proj(RMSNorm(q_a_proj(x)))}, or directly by {@code q_proj}. A
 * head's query and key are {@code nopeDim} features without position and {@code ropeDim} rotated ones, the key's
 * shared by every head; its value has {@code valueDim} features.
 *
 * @param queryRank the width of the queries' latent ({@code q_lora_rank}); 0 where {@code q_proj} projects them
 * @param keyValueRank the width of the keys' and values' latent ({@code kv_lora_rank})
 * @param nopeDim the features of a query or key head without rotary embedding ({@code qk_nope_head_dim})
 * @param ropeDim the rotated features that follow them ({@code qk_rope_head_dim})
 * @param valueDim the features of a value head ({@code v_head_dim})
 * @param ropeInterleaved whether, as {@code rope_interleave} says (DeepSeek-V3), the rotated features are stored in
 *     adjacent pairs that the attention lays out as halves before rotating them; false where they rotate as stored
 *     (DeepSeek-V2's pairs turn in place)
 */
public record LatentAttention(int queryRank, int keyValueRank, int nopeDim, int ropeDim, int valueDim,
                              boolean ropeInterleaved) {
    /** The eps of the latents' RMSNorms, which are made without the configuration's {@code rms_norm_eps}. */
    public static final double LATENT_NORM_EPS = 1e-6;

    public LatentAttention {
        if (queryRank < 0 || keyValueRank < 1 || nopeDim < 0 || ropeDim < 2 || ropeDim % 2 != 0 || valueDim < 1) {
            throw new IllegalArgumentException("latent attention needs ranks, a positive value width and an even"
                    + " rotary width; got q " + queryRank + ", kv " + keyValueRank + ", nope " + nopeDim + ", rope "
                    + ropeDim + ", v " + valueDim);
        }
    }

    /** The features of a query or key head, {@code nopeDim + ropeDim}. */
    public int queryKeyDim() {
        return nopeDim + ropeDim;
    }
}

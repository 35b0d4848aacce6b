package io.arrakis.model.family;

import java.util.List;

/**
 * DeepSeek Sparse Attention's indexer (DeepSeek-V3.2): it scores every earlier key for each query with
 * {@code heads} heads of {@code headDim} features and the query attends to its {@code topK} best, so that a pass of at
 * most {@code topK} positions attends to every key.
 *
 * @param topK how many keys a query attends to at most ({@code index_topk})
 * @param heads the indexer's heads ({@code index_n_heads})
 * @param headDim the width of each ({@code index_head_dim})
 * @param indexed per layer, whether it has an indexer of its own (GLM-5's {@code "full"} layers) rather than reusing
 *     the last one's choice ({@code "shared"}); every layer has one in DeepSeek-V3.2
 */
public record SparseAttention(int topK, int heads, int headDim, List<Boolean> indexed) {

    public SparseAttention {
        indexed = List.copyOf(indexed);
    }

    /**
     * The indexer's parameters in one block: {@code wq_b [heads · headDim, queryRank]}, {@code wk [headDim, dModel]},
     * the LayerNorm {@code k_norm} (a weight and a bias of {@code headDim}) and {@code weights_proj [heads, dModel]}.
     *
     * @param dModel the model's width
     * @param queryRank the queries' latent rank ({@code q_lora_rank}), which the indexer's queries are made from
     * @return the count
     */
    public long parameters(int dModel, int queryRank) {
        return (long) heads * headDim * queryRank + (long) dModel * headDim + 2L * headDim + (long) dModel * heads;
    }
}

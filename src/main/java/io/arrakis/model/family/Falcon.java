package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.fusedVector;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Falcon ({@code transformers/models/falcon}) with rotary embeddings ({@code alibi = false}): LayerNorms, a two-layer
 * MLP {@code dense_h_to_4h} / {@code dense_4h_to_h}, biases everywhere or nowhere ({@code bias}), and a fused
 * {@code query_key_value} projection. Its three architectures:
 * <ul>
 *   <li>{@code new_decoder_architecture} (Falcon-40B, -180B): {@code num_kv_heads} key/value heads, the fused rows
 *       grouped per key/value head as {@code [its query heads | k | v]}; attention and MLP in parallel, on
 *       {@code ln_attn} and {@code ln_mlp} ({@code num_ln_in_parallel_attn} 2 or null) or on one
 *       {@code input_layernorm} (1).</li>
 *   <li>the original one with {@code multi_query} (Falcon-7B): one key/value head, rows {@code [q | k | v]}.</li>
 *   <li>the original one without it: a key/value head per query head, rows per head {@code [q | k | v]}.</li>
 * </ul>
 * In the original architecture {@code parallel_attn} puts attention and MLP in parallel on {@code input_layernorm},
 * else in sequence with {@code post_attention_layernorm} before the MLP. Combinations the modeling file cannot run
 * (its layer would miss a norm or reshape to the wrong head count) are refused, as is ALiBi.
 */
final class Falcon extends ModelFamily {

    Falcon() {
        super("falcon", "falcon", Keys.of(List.of(
                pos("vocab_size", 65024), pos("hidden_size", 4544), count("num_hidden_layers", 32),
                pos("num_attention_heads", 71), posOrNull("num_ln_in_parallel_attn", null),
                posDbl("layer_norm_epsilon", 1e-5), dbl("initializer_range", 0.02), bool("use_cache", true),
                dbl("hidden_dropout", 0.0), dbl("attention_dropout", 0.0), posOrNull("num_kv_heads", null),
                bool("alibi", false), bool("new_decoder_architecture", false), bool("multi_query", true),
                bool("parallel_attn", true), bool("bias", false), pos("max_position_embeddings", 2048),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), tok("bos_token_id", 11),
                tok("eos_token_id", 11), tok("pad_token_id", null), posOrNull("ffn_hidden_size", null),
                str("activation", "gelu"), bool("tie_word_embeddings", true), ropeParameters()),
                Map.of("n_embed", "hidden_size")));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.bool("alibi")) {
            throw invalid("alibi", true, "is not supported (ALiBi attention biases); only rotary Falcon models are");
        }
        boolean newArchitecture = s.bool("new_decoder_architecture");
        boolean parallel = s.bool("parallel_attn");
        Integer norms = s.integerOrNull("num_ln_in_parallel_attn");
        ArchitectureBuilder b = new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .positions("max_position_embeddings").mlpWidthOrFourTimesWidth("ffn_hidden_size")
                .norm(Norm.LAYER_NORM, "layer_norm_epsilon").activation("activation")
                .rotary("rope_theta", null).parallelResidual(parallel).outputsSummedFirst()
                .sharedNorm(parallel && (!newArchitecture || Integer.valueOf(1).equals(norms)))
                .biases(s.bool("bias"), s.bool("bias"), s.bool("bias"));
        if (newArchitecture) {
            if (!parallel) {
                throw invalid("parallel_attn", false, "with new_decoder_architecture = true is not supported:"
                        + " the new decoder architecture always runs attention and MLP in parallel");
            }
            if (norms != null && norms != 1 && norms != 2) {
                throw invalid("num_ln_in_parallel_attn", norms, "must be 1, 2 or null");
            }
            b.keyValueHeads("num_kv_heads");
        } else if (s.bool("multi_query")) {
            b.oneKeyValueHead("multi_query");
        } else {
            Integer kv = s.integerOrNull("num_kv_heads");
            if (kv != null && kv != s.integer("num_attention_heads")) {
                throw invalid("num_kv_heads", kv, "must equal num_attention_heads (or be null) when"
                        + " new_decoder_architecture and multi_query are false");
            }
        }
        if (!newArchitecture && parallel && norms != null && norms != 1) {
            throw invalid("num_ln_in_parallel_attn", norms, "must be 1 or null with parallel_attn = true and"
                    + " new_decoder_architecture = false (the layer has one input_layernorm)");
        }
        return b.build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long dh = a.dHead();
        long mlp = a.dMlp();
        int heads = a.nHeads();
        int kvHeads = a.nKvHeads();
        // the fused rows: per key/value head, its query heads then k and v (one group of them for multi-query)
        long q = heads / kvHeads * dh;
        Checkpoint.Builder c = Checkpoint.builder("transformer.", "h.%d.", a.nLayers())
                .global(stored("word_embeddings.weight", EMBED, a.vocabSize(), d))
                .layer(fusedLinear("self_attention.query_key_value.weight", d, kvHeads,
                        part(WQ, q), part(WK, dh), part(WV, dh)))
                .layerIf(a.qkvBias(), fusedVector("self_attention.query_key_value.bias", kvHeads,
                        part(BQ, q), part(BK, dh), part(BV, dh)))
                .layer(linear("self_attention.dense.weight", WO, d, heads * dh))
                .layerIf(a.outBias(), stored("self_attention.dense.bias", BO, d))
                .layer(linear("mlp.dense_h_to_4h.weight", W_IN, mlp, d))
                .layerIf(a.mlpBias(), stored("mlp.dense_h_to_4h.bias", B_IN, mlp))
                .layer(linear("mlp.dense_4h_to_h.weight", W_OUT, d, mlp))
                .layerIf(a.mlpBias(), stored("mlp.dense_4h_to_h.bias", B_OUT, d));
        if (!a.parallelResidual()) {
            c.layer(stored("input_layernorm.weight", LN1_W, d), stored("input_layernorm.bias", LN1_B, d),
                    stored("post_attention_layernorm.weight", LN2_W, d),
                    stored("post_attention_layernorm.bias", LN2_B, d));
        } else if (a.sharedNorm()) {
            c.layer(stored("input_layernorm.weight", LN1_W, d), stored("input_layernorm.bias", LN1_B, d));
        } else {
            c.layer(stored("ln_attn.weight", LN1_W, d), stored("ln_attn.bias", LN1_B, d),
                    stored("ln_mlp.weight", LN2_W, d), stored("ln_mlp.bias", LN2_B, d));
        }
        return c.global(stored("ln_f.weight", LNF_W, d), stored("ln_f.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.fusedVector;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Slot.*;

/**
 * GPT-NeoX ({@code transformers/models/gpt_neox}, Pythia): LayerNorm, rotary embeddings on
 * {@code int(d_head * rotary_pct)} dimensions, a two-layer MLP, {@code use_parallel_residual}, an untied
 * {@code embed_out}. {@code query_key_value} is fused per head: its rows are {@code [head, q | k | v, d_head]}.
 * {@code partial_rotary_factor} and {@code rope_theta} are aliases of {@code rotary_pct} and {@code rotary_emb_base}
 * in {@link io.arrakis.model.HookedAutoConfig#with}; in a {@code config.json} GPTNeoXConfig ignores them (it reads
 * {@code rotary_pct}, {@code rotary_emb_base} and {@code rope_parameters}), so there they are refused where they
 * differ from what it reads.
 */
final class GptNeox extends ModelFamily {

    GptNeox() {
        super("gpt-neox", "gpt_neox", Keys.of(List.of(
                pos("vocab_size", 50432), pos("hidden_size", 6144), count("num_hidden_layers", 44),
                pos("num_attention_heads", 64), pos("intermediate_size", 24576), str("hidden_act", "gelu"),
                posDbl("rotary_pct", 0.25), posDbl("rotary_emb_base", 10000.0), dbl("attention_dropout", 0.0),
                dbl("hidden_dropout", 0.0), dbl("classifier_dropout", 0.1), pos("max_position_embeddings", 2048),
                dbl("initializer_range", 0.02), posDbl("layer_norm_eps", 1e-5), bool("use_cache", true),
                tok("bos_token_id", 0), tok("eos_token_id", 2), tok("pad_token_id", null),
                bool("tie_word_embeddings", false), bool("use_parallel_residual", true), mapOrNull("rope_scaling"),
                bool("attention_bias", true), ropeParameters()),
                Map.of("partial_rotary_factor", "rotary_pct", "rope_theta", "rotary_emb_base")));
    }

    @Override
    void checkFile(Map<String, Object> file) {
        refuseIgnored(file, "partial_rotary_factor", "rotary_pct", 0.25);
        refuseIgnored(file, "rope_theta", "rotary_emb_base", 10000.0);
    }

    /** Refuses {@code ignored} where it differs from what GPTNeoXConfig reads: the rotary object's, else {@code read}. */
    private static void refuseIgnored(Map<String, Object> file, String ignored, String read, double byDefault) {
        if (!(file.get(ignored) instanceof Number given)) {
            return; // absent, or a value the key's own type check refuses
        }
        Object rope = file.get("rope_scaling") != null ? file.get("rope_scaling") : file.get("rope_parameters");
        Object used = rope instanceof Map<?, ?> m && m.get(ignored) != null ? m.get(ignored)
                : file.containsKey(read) ? file.get(read) : byDefault;
        if (used instanceof Number n && n.doubleValue() != given.doubleValue()) {
            throw invalid(ignored, given, "is ignored in a gpt_neox config.json: GPTNeoXConfig reads " + read
                    + " and rope_parameters, which give " + n + "; set " + read + " to the value meant, or remove "
                    + ignored);
        }
    }

    @Override
    Architecture architecture(Settings s) {
        requireHeadDimOfWidth(s, "hidden_size", "num_attention_heads");
        boolean attentionBias = s.bool("attention_bias");
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .positions("max_position_embeddings").mlpWidth("intermediate_size")
                .norm(Norm.LAYER_NORM, "layer_norm_eps").activation("hidden_act")
                .rotary("rotary_emb_base", "rotary_pct")
                .parallelResidual(s.bool("use_parallel_residual")).outputsSummedFirst().biases(attentionBias, attentionBias, true)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        long dh = a.dHead();
        int heads = a.nHeads();
        return Checkpoint.builder("gpt_neox.", "layers.%d.", a.nLayers())
                .global(stored("embed_in.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d), stored("input_layernorm.bias", LN1_B, d),
                        stored("post_attention_layernorm.weight", LN2_W, d),
                        stored("post_attention_layernorm.bias", LN2_B, d),
                        fusedLinear("attention.query_key_value.weight", d, heads, part(WQ, dh), part(WK, dh), part(WV, dh)))
                .layerIf(a.qkvBias(),
                        fusedVector("attention.query_key_value.bias", heads, part(BQ, dh), part(BK, dh), part(BV, dh)))
                .layer(linear("attention.dense.weight", WO, d, heads * dh))
                .layerIf(a.outBias(), stored("attention.dense.bias", BO, d))
                .layer(linear("mlp.dense_h_to_4h.weight", W_IN, mlp, d), stored("mlp.dense_h_to_4h.bias", B_IN, mlp),
                        linear("mlp.dense_4h_to_h.weight", W_OUT, d, mlp), stored("mlp.dense_4h_to_h.bias", B_OUT, d))
                .global(stored("final_layer_norm.weight", LNF_W, d), stored("final_layer_norm.bias", LNF_B, d))
                .unembedding("embed_out.weight", a)
                .build();
    }
}

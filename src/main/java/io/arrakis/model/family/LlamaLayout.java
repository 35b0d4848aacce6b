package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Slot.*;

/**
 * What the Llama-style families share: the standard key names of their configuration classes, and the checkpoint
 * layout {@code model.layers.{i}.self_attn.{q,k,v,o}_proj}, {@code mlp.{gate,up,down}_proj},
 * {@code input_layernorm}, {@code post_attention_layernorm}, {@code model.norm}, {@code lm_head}.
 */
final class LlamaLayout {
    private LlamaLayout() {
    }

    /**
     * Reads {@code hidden_size}, {@code num_hidden_layers}, {@code num_attention_heads},
     * {@code num_key_value_heads}, {@code intermediate_size}, {@code max_position_embeddings} and
     * {@code hidden_act}, for a gated MLP.
     */
    static ArchitectureBuilder standardKeys(Settings s) {
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").mlpWidth("intermediate_size")
                .positions("max_position_embeddings").activation("hidden_act").gatedMlp();
    }

    /**
     * The layout for an architecture: norm biases with LayerNorm, no post-attention norm with a parallel residual
     * (the MLP reads the attention's normalised input), projection biases as the architecture says.
     */
    static Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        boolean normBias = a.norm() == Norm.LAYER_NORM;
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layerIf(normBias, stored("input_layernorm.bias", LN1_B, d))
                .layer(linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layerIf(!a.parallelResidual(), stored("post_attention_layernorm.weight", LN2_W, d))
                .layerIf(!a.parallelResidual() && normBias, stored("post_attention_layernorm.bias", LN2_B, d))
                .layer(linear("mlp.gate_proj.weight", W_GATE, mlp, d), linear("mlp.up_proj.weight", W_IN, mlp, d),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .layerIf(a.mlpBias(), stored("mlp.gate_proj.bias", B_GATE, mlp), stored("mlp.up_proj.bias", B_IN, mlp),
                        stored("mlp.down_proj.bias", B_OUT, d))
                .global(stored("norm.weight", LNF_W, d))
                .globalIf(normBias, stored("norm.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;

import static io.arrakis.model.family.CheckpointTensor.fusedStored;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Slot.*;

/**
 * What the Llama-style families share: the standard key names of their configuration classes, and the checkpoint
 * layout {@code model.layers.{i}.self_attn.{q,k,v,o}_proj}, {@code mlp.{gate,up,down}_proj} (no gate for an MLP
 * without one; or a mixture of experts' tensors), {@code input_layernorm}, {@code post_attention_layernorm},
 * {@code model.norm}, {@code lm_head}.
 */
final class LlamaLayout {
    private LlamaLayout() {
    }

    /**
     * Reads {@code hidden_size}, {@code num_hidden_layers}, {@code num_attention_heads},
     * {@code num_key_value_heads}, {@code intermediate_size}, {@code max_position_embeddings} and
     * {@code hidden_act}, for a gated MLP whose embedding's padding row is {@code pad_token_id}'s.
     */
    static ArchitectureBuilder standardKeys(Settings s) {
        return ungatedKeys(s).gatedMlp();
    }

    /**
     * Refuses a {@code hidden_size} that {@code num_attention_heads} does not divide, as {@code configClass}'s
     * {@code validate_architecture} does even where {@code head_dim} is set.
     */
    static void requireHeadsDivideWidth(Settings s, String configClass) {
        int width = s.integer("hidden_size");
        int heads = s.integer("num_attention_heads");
        if (width % heads != 0) {
            throw ConfigValues.invalid("hidden_size", width, "is not a multiple of num_attention_heads = " + heads
                    + ", which " + configClass + " requires even where head_dim is set");
        }
    }

    /** {@link #standardKeys}' keys for an MLP without a gate, {@code down(act(up(x)))} (arcee). */
    static ArchitectureBuilder ungatedKeys(Settings s) {
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").mlpWidth("intermediate_size")
                .positions("max_position_embeddings").activation("hidden_act").paddingToken("pad_token_id");
    }

    /**
     * The layout for an architecture: norm biases with LayerNorm, no post-attention norm where the MLP reads the
     * attention's normalised input ({@link Architecture#sharedNorm()}), projection biases as the architecture says,
     * the norms of sublayer inputs and outputs as {@link Architecture#inputNorms()} and
     * {@link Architecture#outputNorms()} say; {@code attentionNorms} (query and key norms) follow the q/k/v
     * projections.
     */
    static Checkpoint checkpoint(Architecture a, CheckpointTensor... attentionNorms) {
        return checkpoint(a, a.norm().centres(), attentionNorms);
    }

    /** The layout, with LayerNorm biases only where {@code normBias} says (cohere's LayerNorms have none). */
    static Checkpoint checkpoint(Architecture a, boolean normBias, CheckpointTensor... attentionNorms) {
        return checkpoint(a, normBias, null, "post_attention_layernorm", attentionNorms);
    }

    /**
     * The layout of Gemma 2's blocks without their output norms (vaultgemma), whose MLP's input norm keeps its name
     * {@code pre_feedforward_layernorm}.
     */
    static Checkpoint checkpointWithPreFeedforwardNorm(Architecture a) {
        return checkpoint(a, false, null, "pre_feedforward_layernorm");
    }

    /**
     * The layout with a mixture of experts' tensors {@code moe} (its router, then its experts') in place of the dense
     * MLP's, after {@code post_attention_layernorm}.
     */
    static Checkpoint checkpoint(Architecture a, List<CheckpointTensor> moe, CheckpointTensor... attentionNorms) {
        return checkpoint(a, a.norm().centres(), moe, "post_attention_layernorm", attentionNorms);
    }

    /**
     * The query and key norms' weights, {@code self_attn.q_norm} and {@code self_attn.k_norm}: one head's features for
     * a norm per head, all heads' for a norm over the whole projection.
     */
    static CheckpointTensor[] qkNorms(Architecture a) {
        if (a.qkNorm() == QkNorm.PER_HEAD_OWN_WEIGHTS) {
            return new CheckpointTensor[] {stored("self_attn.q_norm.weight", Q_NORM, a.nHeads(), a.dHead()),
                    stored("self_attn.k_norm.weight", K_NORM, a.nKvHeads(), a.dHead())};
        }
        boolean whole = a.qkNorm() == QkNorm.WHOLE;
        long q = whole ? (long) a.nHeads() * a.dHead() : a.dHead();
        long k = whole ? (long) a.nKvHeads() * a.dHead() : a.dHead();
        return new CheckpointTensor[] {stored("self_attn.q_norm.weight", Q_NORM, q),
                stored("self_attn.k_norm.weight", K_NORM, k)};
    }

    /**
     * A shared expert's gated MLP of {@code width} under {@code prefix} ({@code gate_proj}, {@code up_proj},
     * {@code down_proj}), as the mixtures with one store it.
     */
    static List<CheckpointTensor> sharedExpert(String prefix, long width, long d) {
        return List.of(linear(prefix + "gate_proj.weight", SHARED_W_GATE, width, d),
                linear(prefix + "up_proj.weight", SHARED_W_IN, width, d),
                linear(prefix + "down_proj.weight", SHARED_W_OUT, d, width));
    }

    /** The dense layers' gated MLP of {@code width} among a mixture's ({@code mlp.gate_proj}, ...). */
    static CheckpointTensor[] denseMlp(long width, long d) {
        return new CheckpointTensor[] {linear("mlp.gate_proj.weight", W_GATE, width, d),
                linear("mlp.up_proj.weight", W_IN, width, d), linear("mlp.down_proj.weight", W_OUT, d, width)};
    }

    /**
     * Each expert's {@code gate_proj}, {@code up_proj} and {@code down_proj} under {@code prefix + e + "."}, one
     * tensor per expert as Qwen's and OLMoE's mixtures store them.
     */
    static List<CheckpointTensor> experts(Architecture a, String prefix) {
        long d = a.dModel();
        long mlp = a.dMlp();
        List<CheckpointTensor> tensors = new ArrayList<>();
        for (int e = 0; e < a.moe().experts(); e++) {
            String expert = prefix + e + ".";
            tensors.add(linear(expert + "gate_proj.weight", W_GATE, mlp, d).ofExpert(e));
            tensors.add(linear(expert + "up_proj.weight", W_IN, mlp, d).ofExpert(e));
            tensors.add(linear(expert + "down_proj.weight", W_OUT, d, mlp).ofExpert(e));
        }
        return tensors;
    }

    /**
     * The experts of a layer fused under {@code prefix} as {@code transformers} 5 saves them:
     * {@code gate_up_proj [experts, 2 · d_mlp, d_model]} (each expert's gate rows, then its up rows) and
     * {@code down_proj [experts, d_model, d_mlp]}, or each with its last two dimensions swapped, as Qwen3-VL-MoE's
     * published files store them.
     */
    static List<CheckpointTensor> fusedExperts(Architecture a, String prefix) {
        long d = a.dModel();
        int mlp = a.dMlp();
        int experts = a.moe().experts();
        return List.of(fusedStored(prefix + "gate_up_proj", new long[] {experts, d, 2L * mlp}, part(W_GATE, mlp),
                        part(W_IN, mlp)).orSwapped(),
                stored(prefix + "down_proj", W_OUT, experts, mlp, d).orSwapped());
    }

    /**
     * The layout; {@code moe} null for a dense MLP; {@code mlpNorm} the name of the MLP's input norm where no norm
     * follows the sublayers.
     */
    private static Checkpoint checkpoint(Architecture a, boolean normBias, List<CheckpointTensor> moe,
                                         String mlpNorm, CheckpointTensor... attentionNorms) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        // Llama's post_attention_layernorm is the MLP's input norm; with output norms (gemma2, olmo2) it normalises
        // the attention's output, and the MLP's input norm is pre_feedforward_layernorm
        boolean preMlpNorm = !a.sharedNorm() && !a.outputNorms() && a.normParameters();
        boolean inputNorms = a.inputNorms() && a.normParameters(); // OLMo's norms have no parameters
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layerIf(inputNorms, stored("input_layernorm.weight", LN1_W, d))
                .layerIf(inputNorms && normBias, stored("input_layernorm.bias", LN1_B, d))
                .layer(linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layer(attentionNorms)
                .layer(linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layerIf(preMlpNorm, stored(mlpNorm + ".weight", LN2_W, d))
                .layerIf(preMlpNorm && normBias, stored(mlpNorm + ".bias", LN2_B, d))
                .layerIf(a.outputNorms(), stored("post_attention_layernorm.weight", ATTN_OUT_NORM_W, d))
                .layerIf(a.outputNorms() && a.inputNorms(), stored("pre_feedforward_layernorm.weight", LN2_W, d))
                .layerIf(a.outputNorms(), stored("post_feedforward_layernorm.weight", MLP_OUT_NORM_W, d))
                .layerIf(moe == null && a.gatedMlp(), linear("mlp.gate_proj.weight", W_GATE, mlp, d))
                .layerIf(moe == null, linear("mlp.up_proj.weight", W_IN, mlp, d),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .layerIf(moe == null && a.mlpBias() && a.gatedMlp(), stored("mlp.gate_proj.bias", B_GATE, mlp))
                .layerIf(moe == null && a.mlpBias(), stored("mlp.up_proj.bias", B_IN, mlp),
                        stored("mlp.down_proj.bias", B_OUT, d))
                .layer(moe == null ? new CheckpointTensor[0] : moe.toArray(CheckpointTensor[]::new))
                .globalIf(a.normParameters(), stored("norm.weight", LNF_W, d))
                .globalIf(a.normParameters() && normBias, stored("norm.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

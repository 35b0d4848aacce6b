package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.strOrNull;
import static io.arrakis.model.family.Slot.BK;
import static io.arrakis.model.family.Slot.BO;
import static io.arrakis.model.family.Slot.BQ;
import static io.arrakis.model.family.Slot.BV;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.MAMBA_A_LOG;
import static io.arrakis.model.family.Slot.MAMBA_B_IN;
import static io.arrakis.model.family.Slot.MAMBA_B_OUT;
import static io.arrakis.model.family.Slot.MAMBA_CONV;
import static io.arrakis.model.family.Slot.MAMBA_CONV_BIAS;
import static io.arrakis.model.family.Slot.MAMBA_D;
import static io.arrakis.model.family.Slot.MAMBA_DT_BIAS;
import static io.arrakis.model.family.Slot.MAMBA_NORM;
import static io.arrakis.model.family.Slot.MAMBA_W_IN;
import static io.arrakis.model.family.Slot.MAMBA_W_OUT;
import static io.arrakis.model.family.Slot.SHARED_W_GATE;
import static io.arrakis.model.family.Slot.SHARED_W_IN;
import static io.arrakis.model.family.Slot.SHARED_W_OUT;
import static io.arrakis.model.family.Slot.WK;
import static io.arrakis.model.family.Slot.WO;
import static io.arrakis.model.family.Slot.WQ;
import static io.arrakis.model.family.Slot.WV;
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;

/**
 * IBM's Granite 4.0 ({@code transformers/models/granitemoehybrid}; granite-4.0-h-small, -h-tiny, -h-micro, and the
 * dense granite-4.0-micro): {@link GraniteMoeShared}'s blocks and multipliers, where the layers
 * {@code layer_types} marks {@code "mamba"} mix tokens by a Mamba-2 state space ({@link Mamba2}) in place of
 * attention. Every block's MLP is the gated {@code shared_mlp} of {@code shared_intermediate_size}, beside a mixture of
 * {@code num_local_experts} experts where there are any (none: a dense model). Attention layers rotate their queries
 * and keys only where {@code position_embedding_type} is {@code "rope"}; Granite 4.0's say {@code "nope"}, and their
 * attention reads positions only through the causal mask and the Mamba layers.
 *
 * <p>Keys: {@code GraniteMoeHybridConfig} of {@code transformers} 5.17, its {@code layers_block_type} alias, the legacy
 * type names {@code "mamba"} and {@code "attention"} it maps (read under the alias too, where transformers 5.17 refuses
 * them), and the keys 4.x files carry ({@code rope_theta}, {@code rope_scaling}, {@code head_dim}); the Mamba layers'
 * keys are {@link Mamba2#keys}. Checkpoint: Granite MoE's, with {@code mamba.*} in place of {@code self_attn.*} in
 * Mamba layers.
 */
final class GraniteMoeHybrid extends ModelFamily {
    private static final Map<String, Boolean> MAMBA_TYPES = Map.of("mamba", true, "linear_attention", true,
            "attention", false, "full_attention", false);

    GraniteMoeHybrid() {
        super("granitemoehybrid", "granitemoehybrid", Keys.of(keys(), Map.of("layers_block_type", "layer_types")));
    }

    private static List<Key> keys() {
        // a dense model has no experts and picks none of them
        List<Key> keys = new ArrayList<>(GraniteMoe.keys().stream().map(k -> switch (k.name()) {
            case "num_local_experts" -> integer("num_local_experts", 8);
            case "num_experts_per_tok" -> integer("num_experts_per_tok", 2);
            default -> k;
        }).toList());
        keys.addAll(List.of(pos("shared_intermediate_size", 1024), strOrNull("position_embedding_type", null),
                listOrNull("layer_types")));
        keys.addAll(Mamba2.keys());
        return keys;
    }

    @Override
    Architecture architecture(Settings s) {
        double logitsScaling = s.number("logits_scaling");
        if (logitsScaling == 0.0) {
            throw invalid("logits_scaling", logitsScaling, "must not be 0: the logits are divided by it");
        }
        List<Boolean> mamba = mambaLayers(s, s.integer("num_hidden_layers"));
        boolean rope = rotates(s);
        boolean attentionBias = s.bool("attention_bias");
        boolean experts = experts(s) > 0;
        ArchitectureBuilder b = new ArchitectureBuilder(s).width("hidden_size").layers("num_hidden_layers")
                .heads("num_attention_heads").keyValueHeads("num_key_value_heads").headDim("head_dim")
                .mlpWidth(experts ? "intermediate_size" : "shared_intermediate_size").gatedMlp()
                .positions("max_position_embeddings").activation("hidden_act").paddingToken("pad_token_id")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null)
                .rotatingLayers(mamba.stream().map(m -> rope && !m).toList())
                .biases(attentionBias, attentionBias, false)
                .embeddingMultiplier(s.number("embedding_multiplier"))
                .scaleAttention(false).attentionMultiplier(s.number("attention_multiplier"))
                .residualMultiplier(s.number("residual_multiplier")).logitScale(1.0 / logitsScaling)
                .mamba2(Mamba2.of(s, mamba));
        if (experts) {
            b.mixtureOfExperts(Mixtral.experts(s, Routing.TOP_K_THEN_FLOAT32_SOFTMAX, false, null)
                    .withUngatedSharedExpert(s.integer("shared_intermediate_size")));
        }
        return b.build();
    }

    /**
     * {@code num_local_experts}, 0 for a dense model; with experts, {@code num_experts_per_tok} must pick some.
     */
    private static int experts(Settings s) {
        int experts = s.integer("num_local_experts");
        if (experts < 0 || experts > Key.MAX_COUNT) {
            throw invalid("num_local_experts", experts, "must be 0 (a dense model) to " + Key.MAX_COUNT);
        }
        int topK = s.integer("num_experts_per_tok");
        if (topK < 0 || experts > 0 && topK == 0) {
            throw invalid("num_experts_per_tok", topK, "must be positive where num_local_experts = " + experts);
        }
        return experts;
    }

    /** Whether attention layers rotate: {@code position_embedding_type} {@code "rope"}; null and "nope" do not. */
    private static boolean rotates(Settings s) {
        String type = s.stringOrNull("position_embedding_type");
        if (type != null && !type.equals("rope") && !type.equals("nope")) {
            throw invalid("position_embedding_type", type, "is not implemented: give \"rope\", \"nope\" or null"
                    + " (no positions but the causal order)");
        }
        return "rope".equals(type);
    }

    /** Per layer, whether {@code layer_types} makes it a Mamba layer; where it is null, every layer is one. */
    private static List<Boolean> mambaLayers(Settings s, int layers) {
        List<?> types = s.listOrNull("layer_types");
        if (types == null) {
            return java.util.Collections.nCopies(layers, true);
        }
        if (types.size() != layers) {
            throw invalid("layer_types", types, "has " + types.size() + " entries but num_hidden_layers = " + layers);
        }
        List<Boolean> mamba = new ArrayList<>(layers);
        for (Object t : types) {
            Boolean isMamba = t instanceof String name ? MAMBA_TYPES.get(name) : null;
            if (isMamba == null) {
                throw invalid("layer_types", types, "entries must be \"mamba\" (or \"linear_attention\") or"
                        + " \"attention\" (or \"full_attention\"), got " + describe(t));
            }
            mamba.add(isMamba);
        }
        return mamba;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        return mixers(Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d)), a)
                .layer(stored("post_attention_layernorm.weight", LN2_W, d))
                .layer(mlp(a))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }

    /**
     * Each layer's mixer, as Granite 4.0 and Bamba store them: Llama's attention ({@code self_attn.*}, with biases
     * where the model has them) in attention layers, {@link #mambaLayer} in Mamba layers.
     */
    static Checkpoint.Builder mixers(Checkpoint.Builder b, Architecture a) {
        Mamba2 m = a.mamba2();
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        return b.layerWhere(l -> !m.at(l), linear("self_attn.q_proj.weight", WQ, q, d),
                        linear("self_attn.k_proj.weight", WK, kv, d), linear("self_attn.v_proj.weight", WV, kv, d))
                .layerWhere(l -> !m.at(l) && a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q),
                        stored("self_attn.k_proj.bias", BK, kv), stored("self_attn.v_proj.bias", BV, kv))
                .layerWhere(l -> !m.at(l), linear("self_attn.o_proj.weight", WO, d, q))
                .layerWhere(l -> !m.at(l) && a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layerWhere(m::at, mambaLayer(a));
    }

    /** A Mamba layer's tensors ({@code mamba.*}). */
    private static CheckpointTensor[] mambaLayer(Architecture a) {
        Mamba2 m = a.mamba2();
        List<CheckpointTensor> tensors = new ArrayList<>(List.of(
                linear("mamba.in_proj.weight", MAMBA_W_IN, m.projection(), a.dModel()),
                stored("mamba.conv1d.weight", MAMBA_CONV, m.convChannels(), 1, m.convKernel()),
                stored("mamba.dt_bias", MAMBA_DT_BIAS, m.heads()), stored("mamba.A_log", MAMBA_A_LOG, m.heads()),
                stored("mamba.D", MAMBA_D, m.heads()), stored("mamba.norm.weight", MAMBA_NORM, m.inner()),
                linear("mamba.out_proj.weight", MAMBA_W_OUT, a.dModel(), m.inner())));
        if (m.convBias()) {
            tensors.add(stored("mamba.conv1d.bias", MAMBA_CONV_BIAS, m.convChannels()));
        }
        if (m.projectionBias()) {
            tensors.add(stored("mamba.in_proj.bias", MAMBA_B_IN, m.projection()));
            tensors.add(stored("mamba.out_proj.bias", MAMBA_B_OUT, a.dModel()));
        }
        return tensors.toArray(CheckpointTensor[]::new);
    }

    /** The block's MLP tensors: the experts' and the shared MLP, or the shared MLP alone as the dense MLP. */
    private static CheckpointTensor[] mlp(Architecture a) {
        long d = a.dModel();
        if (a.moe() == null) {
            long mlp = a.dMlp();
            return new CheckpointTensor[] {fusedLinear("shared_mlp.input_linear.weight", d, 1, part(W_GATE, mlp),
                    part(W_IN, mlp)), linear("shared_mlp.output_linear.weight", W_OUT, d, mlp)};
        }
        long shared = a.moe().sharedWidth();
        List<CheckpointTensor> tensors = new ArrayList<>(GraniteMoe.experts(a));
        tensors.add(fusedLinear("shared_mlp.input_linear.weight", d, 1, part(SHARED_W_GATE, shared),
                part(SHARED_W_IN, shared)));
        tensors.add(linear("shared_mlp.output_linear.weight", SHARED_W_OUT, d, shared));
        return tensors.toArray(CheckpointTensor[]::new);
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * JetBrains' Mellum 2 ({@code transformers/models/mellum}; Mellum2-12B-A2.5B): Qwen3-MoE's attention (an RMSNorm on
 * each query and key head before the rotary embedding, every projection's bias as {@code attention_bias} says) in
 * Llama's pre-norm blocks, layers full or sliding by {@code layer_types} (all full without it), each kind with its own
 * rotary object in {@code rope_parameters} (without it, base 500000 on full layers and 10000 on sliding ones, as
 * MellumConfig fills it in). The MLP is a mixture of {@code num_experts} experts of {@code moe_intermediate_size}
 * routed as Qwen3-MoE's (the float32 softmax's top {@code num_experts_per_tok}, divided by their sum where
 * {@code norm_topk_prob}, rounded to the model's dtype), or a dense gated MLP of {@code intermediate_size} on the
 * layers {@code mlp_layer_types} marks {@code "dense"} (none without it).
 *
 * <p>{@code rope_parameters} must hold an object with its {@code rope_theta} for every kind of layer the model has:
 * MellumConfig neither moves a top-level {@code rope_theta} in nor fills one, so its rotary embedding fails without.
 * A {@code rope_scaling} key, which transformers' setter puts in place of {@code rope_parameters} whatever that holds,
 * is read in its place. A {@code partial_rotary_factor} other than 1 is refused: the rotary embedding would narrow its
 * tables to it while Mellum's attention rotates whole heads, which fails.
 *
 * <p>Keys: {@code MellumConfig} of {@code transformers} 5.17. Checkpoint: Llama's layout with the query and key norms,
 * the router {@code mlp.gate.weight} and one tensor per expert ({@code mlp.experts.{e}.gate_proj/up_proj/down_proj}),
 * as the published files store them.
 */
final class Mellum extends ModelFamily {
    private static final Map<String, Map<String, Object>> DEFAULT_ROTARY = Map.of(
            "full_attention", Map.of("rope_type", "default", "rope_theta", 500_000.0),
            "sliding_attention", Map.of("rope_type", "default", "rope_theta", 10_000.0));
    /** The rotary types whose objects must say the pretraining context: MellumConfig fills none in. */
    private static final Set<String> SCALINGS_WITH_CONTEXT = Set.of("yarn", "longrope", "llama3");

    Mellum() {
        super("mellum", "mellum", Keys.of(List.of(
                pos("vocab_size", 98304), pos("hidden_size", 2304), pos("intermediate_size", 7168),
                count("num_hidden_layers", 28), pos("num_attention_heads", 32), pos("num_key_value_heads", 4),
                str("hidden_act", "silu"), pos("max_position_embeddings", 131072), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", false),
                ropeParameters(), mapOrNull("rope_scaling"), bool("attention_bias", false),
                posOrNull("sliding_window", 1024), dbl("attention_dropout", 0.0), pos("moe_intermediate_size", 896),
                pos("num_experts_per_tok", 8), count("num_local_experts", 64), bool("norm_topk_prob", true),
                bool("output_router_logits", false), dbl("router_aux_loss_coef", 0.001), tok("pad_token_id", null),
                tok("bos_token_id", null), tok("eos_token_id", null), pos("head_dim", 128), listOrNull("layer_types"),
                listOrNull("mlp_layer_types")),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        List<LayerAttention> attention = LayerTypes.read(s, layers);
        if (attention == null) {
            attention = Collections.nCopies(layers, LayerAttention.FULL);
        }
        Integer window = s.integerOrNull("sliding_window");
        if (window == null && attention.contains(LayerAttention.SLIDING)) {
            throw invalid("sliding_window", null, "must be set: layer_types has sliding_attention layers");
        }
        List<Boolean> sparse = Glm4Moe.mlpLayerTypes(s, layers);
        Routing routing = s.bool("norm_topk_prob") ? Routing.SOFTMAX_THEN_TOP_K : Routing.SOFTMAX_THEN_TOP_K_AS_IS;
        MixtureOfExperts moe = Mixtral.experts(s, routing, false, null);
        if (sparse != null) {
            moe = moe.withDenseLayers(sparse, s.integer("intermediate_size"));
        }
        String key = s.get("rope_scaling") != null ? "rope_scaling" : "rope_parameters";
        Map<?, ?> rp = s.get(key) == null ? DEFAULT_ROTARY : LayerTypes.rotaryObjects(s, key, "mellum");
        Map<?, ?> full = rotaryObject(rp, key, LayerAttention.FULL, attention);
        Map<?, ?> slidingObject = rotaryObject(rp, key, LayerAttention.SLIDING, attention);
        boolean attentionBias = s.bool("attention_bias");
        // the builder's model-wide base, which each kind of layer's own object overrides
        Map<?, ?> first = full.isEmpty() ? slidingObject : full;
        double theta = first.isEmpty() ? 500_000.0 : ((Number) first.get("rope_theta")).doubleValue();
        return LlamaLayout.standardKeys(s.with("rope_theta", theta))
                .mlpWidth("moe_intermediate_size").headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).biases(attentionBias, attentionBias, false).qkNorm(QkNorm.PER_HEAD)
                .slidingWindow(window).layerAttention(attention)
                .rotaryOf(LayerAttention.FULL, key + ".full_attention", full, "rope_theta")
                .rotaryOf(LayerAttention.SLIDING, key + ".sliding_attention", slidingObject, "rope_theta")
                .mixtureOfExperts(moe)
                .build();
    }

    /**
     * The rotary object of {@code kind}'s layers under {@code key}, which must give its {@code rope_theta} where the
     * model has such layers; empty where it has none.
     */
    private static Map<?, ?> rotaryObject(Map<?, ?> rp, String key, LayerAttention kind,
                                          List<LayerAttention> attention) {
        String type = kind == LayerAttention.FULL ? "full_attention" : "sliding_attention";
        if (!attention.contains(kind)) {
            return Map.of();
        }
        Map<?, ?> object = LayerTypes.rotaryObject(rp, key, type);
        Object theta = object.get("rope_theta");
        if (!(theta instanceof Integer || theta instanceof Long || theta instanceof Double)
                || !(((Number) theta).doubleValue() > 0)) {
            throw invalid(key + "." + type, rp.get(type), "must be an object with a positive rope_theta:"
                    + " layer_types has " + type + " layers, whose rotary embedding MellumConfig reads from it alone");
        }
        // the type as MellumConfig's validation fills it in: rope_type, else the older type, else default
        Object ropeType = object.get("rope_type") != null ? object.get("rope_type") : object.get("type");
        if (ropeType != null && SCALINGS_WITH_CONTEXT.contains(ropeType)
                && !object.containsKey("original_max_position_embeddings")) {
            throw invalid(key + "." + type, object, "needs original_max_position_embeddings for rope_type "
                    + ropeType + ", which MellumConfig's validation requires there");
        }
        return object;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4Moe.checkpointOf(a, null, (String) null);
    }
}

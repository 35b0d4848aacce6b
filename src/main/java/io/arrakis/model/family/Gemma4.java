package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.LayerShape;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.PerLayerInputs;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.strOrNull;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Gemma 4's text model ({@code transformers/models/gemma4}, {@code Gemma4TextConfig}, {@code model_type}
 * {@code gemma4_text}): Gemma 3's blocks (norms before and after attention and MLP, sliding and full layers, a
 * {@code sqrt(d_model)} embedding scale, optional soft-capping of the logits) with
 * <ul>
 *   <li>full-attention layers with heads of their own width and key/value count: {@code per_layer_config}'s
 *   {@code head_dim} and {@code num_key_value_heads} overrides as {@code transformers} 5.17 saves them, or, in files
 *   that predate it, {@code global_head_dim} (512 by default) and, where {@code attention_k_eq_v},
 *   {@code num_global_key_value_heads} for every full layer, as the configuration class fills them in;</li>
 *   <li>with {@code attention_k_eq_v}, full layers whose values are their keys' projection ({@code k_proj}, no
 *   {@code v_proj}), taken before the key norm and the rotary embedding;</li>
 *   <li>an RMSNorm with a weight on each query and key head, one without on each value head ({@code v_norm}), and no
 *   score scaling (the norms take its place);</li>
 *   <li>Gemma 4's RMSNorm, {@code x · (mean(x²) + eps)^-1/2 · w} in float32 (a weight, not Gemma 3's
 *   {@code 1 + w});</li>
 *   <li>a rotary object per layer type: the sliding layers' {@code "default"}, the full layers'
 *   {@code "proportional"} ({@link Rope.Proportional}), each over its layers' own head width;</li>
 *   <li>a learned {@code layer_scalar} that multiplies the residual stream each block outputs;</li>
 *   <li>where {@code hidden_size_per_layer_input} &gt; 0 (its default, 256), per-layer embeddings
 *   ({@link PerLayerInputs});</li>
 *   <li>the last {@code num_kv_shared_layers} layers attending to the keys and values of the last earlier layer of
 *   their type, as that layer's attention uses them, with no key or value projection of their own
 *   ({@link Architecture.LayerShape#keysFrom}), their MLPs twice as wide with {@code use_double_wide_mlp};</li>
 *   <li>with {@code enable_moe_block} (the 26B A4B model), {@code num_experts} experts of {@code moe_intermediate_size}
 *   beside each block's MLP, which is their shared expert, {@code top_k_experts} per token
 *   ({@link MixtureOfExperts#besideNormedMlp}).</li>
 * </ul>
 * The last layer is full attention whatever {@code layer_types} says, as the configuration class forces it.
 * {@code use_bidirectional_attention = "all"} is refused; {@code "vision"} makes only image tokens attend both ways,
 * so text passes are causal.
 *
 * <p>The keys and defaults are those of {@code transformers} 5.17's configuration class. A multimodal checkpoint's
 * config ({@code gemma4}, {@code Gemma4ForConditionalGeneration}) gives its {@code text_config} here (see
 * {@code io.arrakis.model.MultimodalCheckpoint}).
 */
final class Gemma4 extends ModelFamily {
    /** The per-layer overrides implemented: what a layer's attention heads read. */
    private static final Set<String> LAYER_OVERRIDES = Set.of("head_dim", "num_key_value_heads");

    Gemma4() {
        super("gemma4", "gemma4_text", Keys.of(List.of(
                pos("vocab_size", 262_144), pos("hidden_size", 2304), pos("intermediate_size", 9216),
                count("num_hidden_layers", 30), pos("num_attention_heads", 8), pos("num_key_value_heads", 4),
                pos("head_dim", 256), str("hidden_activation", "gelu_pytorch_tanh"),
                pos("max_position_embeddings", 131_072), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", 0), tok("eos_token_id", 1), tok("bos_token_id", 2),
                bool("tie_word_embeddings", true), ropeParameters(), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), pos("sliding_window", 512), listOrNull("layer_types"),
                dblOrNull("final_logit_softcapping", null), strOrNull("use_bidirectional_attention", null),
                pos("vocab_size_per_layer_input", 262_144), Key.integer("hidden_size_per_layer_input", 256),
                bool("attention_k_eq_v", false), Key.integer("num_kv_shared_layers", 0),
                bool("enable_moe_block", false), bool("use_double_wide_mlp", false), posOrNull("num_experts", null),
                posOrNull("top_k_experts", null), posOrNull("moe_intermediate_size", null),
                posOrNull("global_head_dim", 512), posOrNull("num_global_key_value_heads", null),
                mapOrNull("per_layer_config").optional(), dblOrNull("rope_theta", null),
                dblOrNull("partial_rotary_factor", null).optional()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.has("text_config")) {
            throw invalid("text_config", s.get("text_config"), "belongs to Gemma4ForConditionalGeneration's config"
                    + " (model_type gemma4); only the text model's config (model_type gemma4_text) is supported");
        }
        refuseUnimplemented(s);
        int layers = s.integer("num_hidden_layers");
        List<LayerAttention> kinds = new ArrayList<>(LayerTypes.readOrEvery(s, layers, 6));
        if (layers > 0) {
            kinds.set(layers - 1, LayerAttention.FULL); // as Gemma4TextConfig forces it, with a warning
        }
        MixtureOfExperts experts = experts(s);
        List<LayerShape> shapes = layerShapes(s, kinds);
        Map<?, ?> objects = LayerTypes.rotaryObjects(s, "gemma4");
        Map<?, ?> full = rotaryObject(s, objects, "full_attention", Map.of("rope_type", "proportional",
                "partial_rotary_factor", 0.25, "rope_theta", 1_000_000.0), kinds.contains(LayerAttention.FULL));
        Map<?, ?> sliding = rotaryObject(s, objects, "sliding_attention", Map.of("rope_type", "default",
                "rope_theta", 10_000.0), kinds.contains(LayerAttention.SLIDING));
        boolean bias = s.bool("attention_bias");
        int perLayerWidth = s.integer("hidden_size_per_layer_input");
        if (perLayerWidth < 0) {
            throw invalid("hidden_size_per_layer_input", perLayerWidth, "must be positive, or 0 for no per-layer"
                    + " embeddings");
        }
        int perLayerVocab = s.integer("vocab_size_per_layer_input");
        if (perLayerWidth > 0 && perLayerVocab < s.integer("vocab_size")) {
            throw invalid("vocab_size_per_layer_input", perLayerVocab, "is smaller than vocab_size = "
                    + s.integer("vocab_size") + ": the per-layer embedding would have no row for some tokens");
        }
        if (!(full.get("rope_theta") instanceof Number theta)) {
            throw invalid("rope_parameters.full_attention.rope_theta", full.get("rope_theta"), "must be a number");
        }
        // the model-wide base is the full layers' (each layer type's object gives its own, and its fraction)
        Settings t = s.with("rope_theta", theta.doubleValue()).with("partial_rotary_factor", null);
        return new ArchitectureBuilder(t)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim")
                .mlpWidth(experts == null ? "intermediate_size" : "moe_intermediate_size")
                .positions("max_position_embeddings").paddingToken("pad_token_id").activation("hidden_activation")
                .gatedMlp().norm(Norm.RMS_NORM_WEIGHT_IN_FLOAT32, "rms_norm_eps").sublayerNorms(true, true)
                .biases(bias, bias, false).embeddingScale(Math.sqrt(s.integer("hidden_size")))
                .scaleAttention(false).softcaps(null, "final_logit_softcapping")
                .slidingWindow(s.integer("sliding_window")).layerAttention(kinds).layerShapes(shapes)
                .qkNorm(QkNorm.PER_HEAD).valueNorm().layerScalars().mixtureOfExperts(experts)
                .perLayerInputs(perLayerWidth == 0 ? null : new PerLayerInputs(perLayerVocab, perLayerWidth))
                .rotary("rope_theta", null).proportionalRotary()
                .rotaryOf(LayerAttention.FULL, "rope_parameters.full_attention", full, "rope_theta")
                .rotaryOf(LayerAttention.SLIDING, "rope_parameters.sliding_attention", sliding, "rope_theta")
                .build();
    }

    @Override
    boolean readsPerLayerConfig() {
        return true;
    }

    /**
     * Refuses {@code "per_layer_config": null}: Gemma4TextConfig takes the key as given, and then fills in no full
     * layer's heads (they keep {@code head_dim}), where a null optional key here is one left out.
     */
    @Override
    void checkFile(Map<String, Object> file) {
        if (file.containsKey("per_layer_config") && file.get("per_layer_config") == null) {
            throw invalid("per_layer_config", null, "is read by transformers as given, which leaves every layer's"
                    + " heads at head_dim; give {} for that, or leave the key out for the full layers'"
                    + " global_head_dim");
        }
    }

    /**
     * The experts beside each block's MLP where {@code enable_moe_block} asks for them, else null; refused where a
     * setting they need is missing, or where {@code use_double_wide_mlp} would widen some blocks' MLPs, their shared
     * expert, which is not implemented.
     */
    private static MixtureOfExperts experts(Settings s) {
        if (!s.bool("enable_moe_block")) {
            return null;
        }
        for (String key : List.of("num_experts", "top_k_experts", "moe_intermediate_size")) {
            if (s.integerOrNull(key) == null) {
                throw invalid(key, null, "must be given with enable_moe_block");
            }
        }
        int experts = s.integer("num_experts");
        int topK = s.integer("top_k_experts");
        if (topK > experts) {
            throw invalid("top_k_experts", topK, "is more than num_experts = " + experts);
        }
        if (s.bool("use_double_wide_mlp") && s.integer("num_kv_shared_layers") > 0) {
            throw invalid("use_double_wide_mlp", true, "widens the MLP of the layers that share keys and values,"
                    + " which with enable_moe_block is the experts' shared expert; a shared expert whose width"
                    + " differs between layers is not implemented");
        }
        return MixtureOfExperts.besideNormedMlp(experts, topK, s.integer("intermediate_size"));
    }

    /** Refuses the parts of Gemma 4 that are not implemented, naming the key that asks for each. */
    private static void refuseUnimplemented(Settings s) {
        Object bidirectional = s.get("use_bidirectional_attention");
        if (bidirectional != null && !"vision".equals(bidirectional)) {
            throw invalid("use_bidirectional_attention", bidirectional, "is not implemented: text attends causally"
                    + " here (null, or \"vision\", which lets only image tokens attend both ways)");
        }
    }

    /**
     * A layer type's rotary object: the configuration's, its {@code rope_theta} and {@code partial_rotary_factor}
     * defaulting to the top-level ones as {@code standardize_rope_params} fills them in, or the configuration class's
     * default object where {@code rope_parameters} is null.
     */
    private static Map<?, ?> rotaryObject(Settings s, Map<?, ?> objects, String type, Map<String, Object> dflt,
                                          boolean used) {
        if (objects == null) {
            return dflt;
        }
        if (used && objects.get(type) == null) {
            throw invalid("rope_parameters", objects, "has no object for " + type + ", which layers are");
        }
        Map<Object, Object> object = new LinkedHashMap<>(LayerTypes.rotaryObject(objects, type));
        if (s.get("rope_theta") != null) {
            object.putIfAbsent("rope_theta", s.get("rope_theta"));
        }
        // filled in too, and read by the proportional rope alone (Gemma 4's default rope turns the whole head)
        if (s.get("partial_rotary_factor") != null && "proportional".equals(object.get("rope_type"))) {
            object.putIfAbsent("partial_rotary_factor", s.get("partial_rotary_factor"));
        }
        if (used && object.get("rope_theta") == null) {
            throw invalid("rope_parameters." + type, objects.get(type), "has no rope_theta, nor does the"
                    + " configuration at its top level; the " + type + " layers need one");
        }
        return object;
    }

    /**
     * Each layer's shape: its heads from {@code per_layer_config}'s overrides where it is given, else the full layers'
     * {@code global_head_dim} and, with {@code attention_k_eq_v}, {@code num_global_key_value_heads}, as
     * {@code Gemma4TextConfig.__post_init__} fills them in; a full layer's values are its keys with
     * {@code attention_k_eq_v}; the last {@code num_kv_shared_layers} layers read the keys and values of the last
     * earlier layer of their type, their MLPs doubled with {@code use_double_wide_mlp}.
     */
    static List<LayerShape> layerShapes(Settings s, List<LayerAttention> kinds) {
        int layers = kinds.size();
        boolean keysAreValues = s.bool("attention_k_eq_v");
        Map<Integer, Map<?, ?>> overrides = new HashMap<>();
        Map<?, ?> perLayer = s.mapOrNull("per_layer_config");
        if (perLayer != null) { // given: the configuration class then fills nothing in
            perLayer.forEach((key, value) -> overrides.put(layerIndex(perLayer, key, layers), overridesOf(key, value)));
        } else {
            Map<String, Object> full = new LinkedHashMap<>();
            full.put("head_dim", s.integerOrNull("global_head_dim"));
            Integer kv = s.integerOrNull("num_global_key_value_heads");
            if (keysAreValues && kv != null) {
                full.put("num_key_value_heads", kv);
            }
            for (int l = 0; l < layers; l++) {
                if (kinds.get(l) == LayerAttention.FULL) {
                    overrides.put(l, full);
                }
            }
        }
        int queryHeads = s.integer("num_attention_heads");
        int shared = s.integer("num_kv_shared_layers");
        if (shared < 0 || shared >= layers) {
            throw invalid("num_kv_shared_layers", shared, "must lie in [0, num_hidden_layers = " + layers + "): the"
                    + " layers it counts from the end reuse the keys and values of earlier ones");
        }
        int firstShared = layers - shared;
        int mlp = s.integer(s.bool("enable_moe_block") ? "moe_intermediate_size" : "intermediate_size");
        List<LayerShape> shapes = new ArrayList<>(layers);
        Map<LayerAttention, LayerShape> shapeOfKind = new HashMap<>();
        for (int l = 0; l < layers; l++) {
            Map<?, ?> o = overrides.getOrDefault(l, Map.of());
            int width = o.get("head_dim") != null ? (Integer) o.get("head_dim") : s.integer("head_dim");
            boolean kvOverridden = o.get("num_key_value_heads") != null;
            int kv = kvOverridden ? (Integer) o.get("num_key_value_heads") : s.integer("num_key_value_heads");
            if (queryHeads % kv != 0) {
                String key = !kvOverridden ? "num_key_value_heads" : perLayer != null
                        ? "per_layer_config." + l + ".num_key_value_heads" : "num_global_key_value_heads";
                throw invalid(key, kv, "does not divide num_attention_heads = " + queryHeads);
            }
            LayerShape these = new LayerShape(kv, width, keysAreValues && kinds.get(l) == LayerAttention.FULL, -1,
                    mlp);
            LayerShape before = shapeOfKind.putIfAbsent(kinds.get(l), these);
            if (before != null && !before.equals(these)) { // transformers' rotary embedding reads one per type
                throw invalid("per_layer_config", perLayer, "gives layers of one type different heads, "
                        + before.kvHeads() + " key/value heads of " + before.dHead() + " and " + kv + " of " + width
                        + "; transformers refuses a layer type whose layers are not alike");
            }
            if (l >= firstShared) { // the keys and values of the last earlier layer of its type, as it uses them
                int from = kinds.subList(0, firstShared).lastIndexOf(kinds.get(l));
                if (from < 0) {
                    throw invalid("num_kv_shared_layers", shared, "makes layer " + l + " reuse the keys and values"
                            + " of an earlier " + kinds.get(l).name().toLowerCase(java.util.Locale.ROOT) + " layer,"
                            + " and no layer before " + firstShared + " is one");
                }
                these = new LayerShape(kv, width, false, from, s.bool("use_double_wide_mlp") ? 2 * mlp : mlp);
            }
            shapes.add(these);
        }
        return shapes;
    }

    /** A {@code per_layer_config} key: a layer index in {@code [0, layers)}, as a number or its string. */
    private static int layerIndex(Map<?, ?> perLayer, Object key, int layers) {
        int index;
        try {
            index = Integer.parseInt(String.valueOf(key));
        } catch (NumberFormatException e) {
            throw invalid("per_layer_config", perLayer, "has the key " + describe(key) + "; its keys are layer"
                    + " indices");
        }
        if (index < 0 || index >= layers) {
            throw invalid("per_layer_config", perLayer, "has the key " + index + ", outside the layers [0, " + layers
                    + ")");
        }
        return index;
    }

    /** A layer's overrides, refused where they set anything but its heads' width and key/value count. */
    private static Map<?, ?> overridesOf(Object key, Object value) {
        if (!(value instanceof Map<?, ?> o)) {
            throw invalid("per_layer_config." + key, value, "must be a JSON object of overrides");
        }
        Set<String> others = new LinkedHashSet<>();
        for (Map.Entry<?, ?> e : o.entrySet()) {
            if (!LAYER_OVERRIDES.contains(String.valueOf(e.getKey()))) {
                others.add(String.valueOf(e.getKey()));
            } else if (!(e.getValue() instanceof Integer i) || i <= 0) {
                throw invalid("per_layer_config." + key + "." + e.getKey(), e.getValue(), "must be a positive"
                        + " integer");
            }
        }
        if (!others.isEmpty()) {
            throw invalid("per_layer_config." + key, value, "overrides " + String.join(", ", others) + ", which is"
                    + " not implemented per layer (only head_dim and num_key_value_heads are)");
        }
        return o;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        Checkpoint.Builder b = Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d));
        PerLayerInputs p = a.perLayerInputs();
        if (p != null) {
            long allInputs = (long) a.nLayers() * p.width();
            b.global(stored("embed_tokens_per_layer.weight", PLE_EMBED, p.vocab(), allInputs),
                            linear("per_layer_model_projection.weight", PLE_PROJECTION, allInputs, d),
                            stored("per_layer_projection_norm.weight", PLE_PROJECTION_NORM, p.width()))
                    .layer(linear("per_layer_input_gate.weight", PLE_GATE, p.width(), d),
                            linear("per_layer_projection.weight", PLE_OUT, d, p.width()),
                            stored("post_per_layer_input_norm.weight", PLE_OUT_NORM, d));
        }
        for (LayerShape h : new LinkedHashSet<>(a.layerShapes())) {
            long q = (long) a.nHeads() * h.dHead();
            long kv = (long) h.kvHeads() * h.dHead();
            long mlp = h.mlpWidth();
            boolean own = h.keysFrom() < 0; // a layer that shares keys and values projects none
            java.util.function.IntPredicate these = l -> a.layerShapes().get(l).equals(h);
            b.layerWhere(these, linear("self_attn.q_proj.weight", WQ, q, d),
                            stored("self_attn.q_norm.weight", Q_NORM, h.dHead()),
                            linear("self_attn.o_proj.weight", WO, d, q))
                    .layerWhere(l -> these.test(l) && a.moe() == null, linear("mlp.gate_proj.weight", W_GATE, mlp, d),
                            linear("mlp.up_proj.weight", W_IN, mlp, d), linear("mlp.down_proj.weight", W_OUT, d, mlp))
                    .layerWhere(l -> these.test(l) && own, linear("self_attn.k_proj.weight", WK, kv, d),
                            stored("self_attn.k_norm.weight", K_NORM, h.dHead()))
                    .layerWhere(l -> these.test(l) && own && !h.valuesAreKeys(),
                            linear("self_attn.v_proj.weight", WV, kv, d))
                    .layerWhere(l -> these.test(l) && a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q))
                    .layerWhere(l -> these.test(l) && a.qkvBias() && own, stored("self_attn.k_proj.bias", BK, kv))
                    .layerWhere(l -> these.test(l) && a.qkvBias() && own && !h.valuesAreKeys(),
                            stored("self_attn.v_proj.bias", BV, kv));
        }
        for (String unused : List.of("k_proj.", "v_proj.", "k_norm.", "v_norm.")) { // transformers ignores them too
            b.unreadInLayers(l -> a.keysFrom(l) != l, "self_attn." + unused, 0);
        }
        MixtureOfExperts moe = a.moe();
        if (moe != null) { // the block's MLP is the experts' shared expert
            b.layer(LlamaLayout.sharedExpert("mlp.", moe.sharedWidth(), d).toArray(CheckpointTensor[]::new))
                    .layer(LlamaLayout.fusedExperts(a, "experts.").toArray(CheckpointTensor[]::new))
                    .layer(linear("router.proj.weight", W_ROUTER, moe.experts(), d),
                            stored("router.scale", ROUTER_SCALE, d),
                            stored("router.per_expert_scale", EXPERT_SCALE, moe.experts()),
                            stored("pre_feedforward_layernorm_2.weight", EXPERTS_IN_NORM_W, d),
                            stored("post_feedforward_layernorm_1.weight", SHARED_OUT_NORM_W, d),
                            stored("post_feedforward_layernorm_2.weight", EXPERTS_OUT_NORM_W, d));
        }
        return b.layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layer(stored("post_attention_layernorm.weight", ATTN_OUT_NORM_W, d),
                        stored("pre_feedforward_layernorm.weight", LN2_W, d),
                        stored("post_feedforward_layernorm.weight", MLP_OUT_NORM_W, d),
                        stored("layer_scalar", LAYER_SCALAR, 1))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.MixtureOfExperts.ClampedSwiglu;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.interleaved;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * gpt-oss ({@code transformers/models/gpt_oss}): Llama's layout with
 * <ul>
 *   <li>attention sinks: a learned logit per head ({@code self_attn.sinks}) joins each query's softmax and takes its
 *       share without a value;</li>
 *   <li>biases on q/k/v/o as {@code attention_bias} says;</li>
 *   <li>per layer full or sliding attention, from {@code layer_types} (by default sliding on even layers, full on
 *       odd), sliding layers seeing the last {@code sliding_window} positions;</li>
 *   <li>rotary embeddings scaled by YaRN: {@code rope_parameters} (or the older {@code rope_scaling}) when given,
 *       else the class's default {@code {"rope_type": "yarn", "factor": 32, "beta_fast": 32, "beta_slow": 1,
 *       "truncate": false, "original_max_position_embeddings": 4096}} with base {@code rope_theta};</li>
 *   <li>a mixture of {@code num_local_experts} experts: a router with a bias, each token's
 *       {@code num_experts_per_tok} highest logits softmaxed into its weights; experts with biases whose fused
 *       {@code gate_up_proj} interleaves gate and up columns, activated by the clamped SwiGLU
 *       {@code (clamp(up, -7, 7) + 1) * g * sigmoid(1.702 g)} with {@code g = clamp(gate, max = 7)}.</li>
 * </ul>
 * {@code hidden_act} is not read by the modeling file (the experts' activation is fixed), so any value is accepted;
 * {@code output_router_logits} and {@code router_aux_loss_coef} concern training.
 *
 * <p>Keys: {@code GptOssConfig} of {@code transformers} 5.17, with the rotary base as the top-level
 * {@code rope_theta} of 4.x files (5.17's {@code default_theta}). Checkpoint: the experts as {@code save_pretrained}
 * writes them in float ({@code mlp.experts.gate_up_proj [experts, d_model, 2 d_mlp]}, ...); the MXFP4
 * {@code _blocks}/{@code _scales} tensors of the published checkpoints are refused by name.
 */
final class GptOss extends ModelFamily {

    /** The experts' activation constants, fixed in {@code GptOssExperts}. */
    private static final ClampedSwiglu ACTIVATION = new ClampedSwiglu(1.702, 7.0);

    GptOss() {
        super("gpt-oss", "gpt_oss", Keys.of(List.of(
                count("num_hidden_layers", 36), count("num_local_experts", 128), pos("vocab_size", 201088),
                pos("hidden_size", 2880), pos("intermediate_size", 2880), posOrNull("head_dim", 64),
                pos("num_attention_heads", 64), posOrNull("num_key_value_heads", 8), posOrNull("sliding_window", 128),
                bool("tie_word_embeddings", false), str("hidden_act", "silu"), dbl("initializer_range", 0.02),
                pos("max_position_embeddings", 131072), posDbl("rms_norm_eps", 1e-5), posDbl("rope_theta", 150000.0),
                dbl("attention_dropout", 0.0), pos("num_experts_per_tok", 4), dbl("router_aux_loss_coef", 0.001),
                bool("output_router_logits", false), bool("use_cache", true), listOrNull("layer_types"),
                tok("pad_token_id", null), tok("bos_token_id", null), tok("eos_token_id", null),
                bool("attention_bias", true), dblOrNull("swiglu_alpha", null), dblOrNull("swiglu_limit", null),
                optionalRopeScaling(), ropeParameters()),
                Map.of("num_experts", "num_local_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        requireActivationConstant(s, "swiglu_alpha", ACTIVATION.alpha());
        requireActivationConstant(s, "swiglu_limit", ACTIVATION.limit());
        boolean bias = s.bool("attention_bias");
        List<LayerAttention> perLayer = layerAttention(s, s.integer("num_hidden_layers"));
        Integer window = s.integerOrNull("sliding_window");
        if (window == null && perLayer.contains(LayerAttention.SLIDING)) {
            throw invalid("sliding_window", null, "must be set: layer_types has sliding_attention layers");
        }
        return LlamaLayout.standardKeys(withDefaultRotaryScaling(s)).headDim("head_dim")
                .norm(Norm.RMS_NORM_WEIGHT_IN_FLOAT32, "rms_norm_eps").rotary("rope_theta", null).biases(bias, bias, false)
                .slidingWindow(window).layerAttention(perLayer).attentionSinks()
                .mixtureOfExperts(Mixtral.experts(s, Routing.TOP_K_THEN_SOFTMAX, false, ACTIVATION))
                .build();
    }

    /**
     * Published configurations carry the experts' activation constants ({@code swiglu_limit} 7.0); Hugging Face's
     * experts use fixed ones, so another value describes a model neither computes.
     */
    private static void requireActivationConstant(Settings s, String key, double fixed) {
        Object value = s.get(key);
        if (value != null && ((Number) value).doubleValue() != fixed) {
            throw invalid(key, value, "is not supported: gpt-oss's experts use " + fixed);
        }
    }

    /**
     * {@code GptOssConfig.__post_init__}: without {@code rope_parameters}, YaRN with these parameters, which an empty
     * {@code rope_scaling} does not replace ({@code rope_scaling or rope_parameters}).
     */
    private static Settings withDefaultRotaryScaling(Settings s) {
        if (s.get("rope_parameters") != null || (s.get("rope_scaling") instanceof Map<?, ?> m && !m.isEmpty())) {
            return s;
        }
        Map<String, Object> yarn = new LinkedHashMap<>();
        yarn.put("rope_type", "yarn");
        yarn.put("factor", 32.0);
        yarn.put("beta_fast", 32.0);
        yarn.put("beta_slow", 1.0);
        yarn.put("truncate", false);
        yarn.put("original_max_position_embeddings", 4096);
        return s.with("rope_parameters", yarn);
    }

    /** {@code layer_types}, or sliding on even and full on odd layers as {@code GptOssConfig} fills it in. */
    private static List<LayerAttention> layerAttention(Settings s, int layers) {
        List<?> types = s.listOrNull("layer_types");
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        if (types == null) {
            for (int i = 0; i < layers; i++) {
                perLayer.add(i % 2 == 0 ? LayerAttention.SLIDING : LayerAttention.FULL);
            }
            return perLayer;
        }
        if (types.size() != layers) {
            throw invalid("layer_types", types, "has " + types.size() + " entries but num_hidden_layers = " + layers);
        }
        for (Object t : types) {
            if ("sliding_attention".equals(t)) {
                perLayer.add(LayerAttention.SLIDING);
            } else if ("full_attention".equals(t)) {
                perLayer.add(LayerAttention.FULL);
            } else {
                throw invalid("layer_types", types,
                        "entries must be \"full_attention\" or \"sliding_attention\", got " + describe(t));
            }
        }
        return perLayer;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        int mlp = a.dMlp();
        int experts = a.moe().experts();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d),
                        linear("self_attn.q_proj.weight", WQ, q, d), linear("self_attn.k_proj.weight", WK, kv, d),
                        linear("self_attn.v_proj.weight", WV, kv, d), linear("self_attn.o_proj.weight", WO, d, q))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv), stored("self_attn.o_proj.bias", BO, d))
                .layer(stored("self_attn.sinks", SINKS, a.nHeads()),
                        stored("post_attention_layernorm.weight", LN2_W, d),
                        linear("mlp.router.weight", W_ROUTER, experts, d), stored("mlp.router.bias", B_ROUTER, experts),
                        // gate and up alternate column by column: gate_up[..., ::2] is the gate, [..., 1::2] up
                        interleaved("mlp.experts.gate_up_proj", new long[] {experts, d, 2L * mlp}, mlp,
                                part(W_GATE, 1), part(W_IN, 1)),
                        interleaved("mlp.experts.gate_up_proj_bias", new long[] {experts, 2L * mlp}, mlp,
                                part(B_GATE, 1), part(B_IN, 1)),
                        stored("mlp.experts.down_proj", W_OUT, experts, mlp, d),
                        stored("mlp.experts.down_proj_bias", B_OUT, experts, d))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

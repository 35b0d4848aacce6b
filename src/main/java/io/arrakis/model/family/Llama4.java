package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.Architecture.RotaryPrecision;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.HashSet;
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
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Llama 4's text model ({@code transformers/models/llama4}, {@code Llama4TextConfig}, {@code model_type}
 * {@code llama4_text}; Llama 4 Scout and Maverick): Llama's blocks with
 * <ul>
 *   <li>layers that rotate ({@code no_rope_layers[i]} 1; by default all but every {@code no_rope_layer_interval}-th)
 *   with rotary embeddings on adjacent feature pairs, in float32, then, with {@code use_qk_norm}, each query and key
 *   head divided by its RMS without a weight ({@link QkNorm#ROTATED_UNWEIGHTED}); they attend within chunks of
 *   {@code attention_chunk_size} positions ({@link LayerAttention#CHUNKED}) where {@code layer_types} says
 *   {@code "chunked_attention"}, as it does for them by default;</li>
 *   <li>NoPE layers, which do not rotate and, with {@code attn_temperature_tuning}, multiply their queries by
 *   {@code 1 + attn_scale · ln(1 + floor((p + 1) / floor_scale))} ({@link QueryTemperature});</li>
 *   <li>on the layers {@code moe_layers} lists (by default every {@code interleave_moe_layer_step}-th), a mixture of
 *   {@code num_local_experts} experts of {@code intermediate_size}, {@code num_experts_per_tok} per token, each
 *   weighted by the sigmoid of its logit on its input ({@link Routing#TOP_K_THEN_SIGMOID_ON_INPUTS}), beside a shared
 *   expert of the same width added as it is; on the others a dense MLP of {@code intermediate_size_mlp}.</li>
 * </ul>
 * Attention scores are scaled by {@code head_dim^-1/2} and their softmax taken in the model's dtype. The keys and
 * defaults are those of {@code transformers} 5.17's configuration class, plus the rotary keys 4.x files carry
 * ({@code rope_theta}, {@code rope_scaling}). A multimodal checkpoint's config ({@code llama4},
 * {@code Llama4ForConditionalGeneration}, as Scout and Maverick are published) gives its {@code text_config} here.
 */
final class Llama4 extends ModelFamily {

    Llama4() {
        super("llama4", "llama4_text", Keys.of(List.of(
                pos("vocab_size", 202_048), pos("hidden_size", 5120), pos("intermediate_size", 8192),
                pos("intermediate_size_mlp", 16_384), count("num_hidden_layers", 48), pos("num_attention_heads", 40),
                posOrNull("num_key_value_heads", 8), posOrNull("head_dim", 128), str("hidden_act", "silu"),
                pos("max_position_embeddings", 131_072), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), bool("tie_word_embeddings", false),
                dbl("attention_dropout", 0.0), pos("num_experts_per_tok", 1), count("num_local_experts", 16),
                listOrNull("moe_layers"), Key.integer("interleave_moe_layer_step", 1), bool("use_qk_norm", true),
                bool("output_router_logits", false), dbl("router_aux_loss_coef", 0.001),
                dbl("router_jitter_noise", 0.0), listOrNull("no_rope_layers"), pos("no_rope_layer_interval", 4),
                posOrNull("attention_chunk_size", 8192), listOrNull("layer_types"),
                bool("attn_temperature_tuning", true), pos("floor_scale", 8192), dbl("attn_scale", 0.1),
                bool("attention_bias", false), posDbl("rope_theta", 500_000.0), mapOrNull("rope_scaling"),
                ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        List<?> noRope = s.listOrNull("no_rope_layers");
        // an empty list is transformers' default too (`no_rope_layers if no_rope_layers else default`)
        List<Boolean> rotates = SmolLm3.rotatingLayers(noRope != null && noRope.isEmpty()
                ? s.with("no_rope_layers", null) : s, layers);
        List<LayerAttention> kinds = layerAttention(s, rotates);
        Integer chunk = s.integerOrNull("attention_chunk_size");
        if (chunk == null) {
            throw invalid("attention_chunk_size", null, "must be given: transformers builds the chunked layers' mask"
                    + " from it whatever the layers are, and refuses a config without it");
        }
        boolean bias = s.bool("attention_bias");
        ArchitectureBuilder b = new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim").mlpWidth("intermediate_size")
                .positions("max_position_embeddings").paddingToken("pad_token_id").activation("hidden_act")
                .gatedMlp().norm(Norm.RMS_NORM, "rms_norm_eps").biases(bias, bias, false)
                .rotary("rope_theta", null).rotaryInterleaved().rotaryPrecision(RotaryPrecision.FLOAT32)
                .rotatingLayers(rotates).layerAttention(kinds).attentionChunk(chunk)
                .mixtureOfExperts(experts(s, layers));
        if (s.bool("use_qk_norm")) {
            b.qkNorm(QkNorm.ROTATED_UNWEIGHTED).qkNormAfterRotary();
        }
        if (s.bool("attn_temperature_tuning")) {
            b.queryTemperature(new QueryTemperature(s.number("attn_scale"), s.integer("floor_scale"), 1, true, true));
        }
        return b.build();
    }

    /**
     * {@code layer_types}, or transformers' default: the layers that rotate chunked, the others full.
     */
    private static List<LayerAttention> layerAttention(Settings s, List<Boolean> rotates) {
        List<LayerAttention> given = LayerTypes.read(s, "layer_types", rotates.size(), "num_hidden_layers",
                Map.of("full_attention", LayerAttention.FULL, "chunked_attention", LayerAttention.CHUNKED));
        if (given != null) {
            return given;
        }
        return rotates.stream().map(r -> r ? LayerAttention.CHUNKED : LayerAttention.FULL).toList();
    }

    /**
     * The experts of the layers {@code moe_layers} lists, or of every {@code interleave_moe_layer_step}-th layer
     * (the step's last), with their shared expert; a dense MLP of {@code intermediate_size_mlp} on the others.
     */
    private static MixtureOfExperts experts(Settings s, int layers) {
        List<?> listed = s.listOrNull("moe_layers");
        Set<Integer> sparse = new HashSet<>();
        if (listed != null) {
            for (Object entry : listed) {
                if (!(entry instanceof Integer layer)) {
                    throw invalid("moe_layers", listed, "entries must be layer indices, got " + describe(entry));
                }
                sparse.add(layer);
            }
        } else {
            int step = s.integer("interleave_moe_layer_step");
            if (step < 1) {
                throw invalid("interleave_moe_layer_step", step, "must be at least 1");
            }
            for (int l = step - 1; l < layers; l += step) {
                sparse.add(l);
            }
        }
        List<Boolean> perLayer = java.util.stream.IntStream.range(0, layers).mapToObj(sparse::contains).toList();
        MixtureOfExperts moe = Mixtral.experts(s, Routing.TOP_K_THEN_SIGMOID_ON_INPUTS, false, null)
                .withUngatedSharedExpert(s.integer("intermediate_size"));
        return perLayer.contains(false) ? moe.withDenseLayers(perLayer, s.integer("intermediate_size_mlp")) : moe;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        MixtureOfExperts moe = a.moe();
        long dense = moe.denseWidth();
        java.util.function.IntPredicate sparse = moe::sparse;
        Checkpoint.Builder b = Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d), linear("self_attn.q_proj.weight", WQ, q, d),
                        linear("self_attn.k_proj.weight", WK, kv, d), linear("self_attn.v_proj.weight", WV, kv, d),
                        linear("self_attn.o_proj.weight", WO, d, q),
                        stored("post_attention_layernorm.weight", LN2_W, d))
                .layerIf(a.qkvBias(), stored("self_attn.q_proj.bias", BQ, q), stored("self_attn.k_proj.bias", BK, kv),
                        stored("self_attn.v_proj.bias", BV, kv))
                .layerIf(a.outBias(), stored("self_attn.o_proj.bias", BO, d))
                .layerWhere(sparse, linear("feed_forward.router.weight", W_ROUTER, moe.experts(), d))
                .layerWhere(sparse, LlamaLayout.fusedExperts(a, "feed_forward.experts.")
                        .toArray(CheckpointTensor[]::new))
                .layerWhere(sparse, LlamaLayout.sharedExpert("feed_forward.shared_expert.", moe.sharedWidth(), d)
                        .toArray(CheckpointTensor[]::new))
                .layerWhere(l -> !sparse.test(l), linear("feed_forward.gate_proj.weight", W_GATE, dense, d),
                        linear("feed_forward.up_proj.weight", W_IN, dense, d),
                        linear("feed_forward.down_proj.weight", W_OUT, d, dense))
                .global(stored("norm.weight", LNF_W, d));
        return b.unembedding("lm_head.weight", a).build();
    }
}

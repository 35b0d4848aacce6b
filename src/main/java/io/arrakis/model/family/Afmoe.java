package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.ATTN_OUT_NORM_W;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.EXPERT_SCORE_BIAS;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.MLP_OUT_NORM_W;
import static io.arrakis.model.family.Slot.W_ATTN_GATE;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * Arcee's AFMoE ({@code transformers/models/afmoe}; Trinity Nano, Mini and Large): norms before and after both
 * attention and MLP (RMSNorms whose weight multiplies in float32), an RMSNorm on each query and key head, each head's
 * output multiplied by the sigmoid of its slice of {@code gate_proj} on the attention's input
 * ({@link Slot#W_ATTN_GATE}, {@code attn.hook_gate}) before {@code o_proj}, and the rotary embedding on the sliding
 * layers only: the full ones, every {@code global_attn_every_n_layers}-th (or as {@code layer_types} says), have no
 * positions. The first {@code num_dense_layers} layers have a dense gated MLP of {@code intermediate_size}; the others
 * a mixture of {@code num_experts} experts of {@code moe_intermediate_size}: each token takes the
 * {@code num_experts_per_tok} largest sigmoids of the router's logits plus {@code expert_bias}, weighted by those
 * sigmoids divided by their sum and times {@code route_scale}, in float32
 * ({@link MixtureOfExperts#sigmoidBiasedScaled}), beside {@code num_shared_experts} shared experts (one MLP of that
 * many times the width) added as they are. With {@code mup_enabled} the embeddings are multiplied by
 * {@code sqrt(hidden_size)}. A float16 model rounds the norms' weights and {@code expert_bias} to float16, where
 * transformers keeps them in float32 ({@code _keep_in_fp32_modules}, which it applies to float16 models only).
 *
 * <p>Keys: {@code AfmoeConfig} of {@code transformers} 5.17, plus the rotary keys files carry in place of
 * {@code rope_parameters} ({@code rope_theta}, {@code rope_scaling}). Checkpoint: Llama's names with
 * {@code self_attn.gate_proj}, {@code post_attention_layernorm} on the attention's output,
 * {@code pre_mlp_layernorm}/{@code post_mlp_layernorm}, the router {@code mlp.router.gate.weight},
 * {@code mlp.expert_bias}, one tensor per expert and {@code mlp.shared_experts.*}, as the published files store them.
 */
final class Afmoe extends ModelFamily {

    Afmoe() {
        super("afmoe", "afmoe", Keys.of(List.of(
                pos("vocab_size", 200192), pos("hidden_size", 2048), pos("intermediate_size", 6144),
                pos("moe_intermediate_size", 1408), count("num_hidden_layers", 32), integer("num_dense_layers", 1),
                pos("num_attention_heads", 16), posOrNull("num_key_value_heads", null), pos("head_dim", 128),
                str("hidden_act", "silu"), pos("max_position_embeddings", 16384), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                ropeParameters(), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), pos("num_experts", 64),
                pos("num_experts_per_tok", 6), integer("num_shared_experts", 2), dbl("route_scale", 1.0),
                bool("output_router_logits", false), posOrNull("global_attn_every_n_layers", 4),
                posOrNull("sliding_window", 1024), listOrNull("layer_types"), dblOrNull("attention_dropout", 0.0),
                boolOrNull("mup_enabled", false), tok("eos_token_id", null), tok("pad_token_id", null),
                tok("bos_token_id", null), bool("attention_bias", false)),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        List<LayerAttention> attention = layerTypes(s, layers);
        Integer window = s.integerOrNull("sliding_window");
        if (window == null && attention.contains(LayerAttention.SLIDING)) {
            throw invalid("sliding_window", null, "must be set: layer_types has sliding_attention layers");
        }
        int dense = s.integer("num_dense_layers");
        if (dense < 0) {
            throw invalid("num_dense_layers", dense, "must be >= 0: the first num_dense_layers layers are dense");
        }
        int shared = s.integer("num_shared_experts");
        if (shared < 0) {
            throw invalid("num_shared_experts", shared, "must be >= 0");
        }
        List<Boolean> sparse = new ArrayList<>(layers);
        List<Boolean> rotates = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            sparse.add(i >= dense);
            rotates.add(attention.get(i) == LayerAttention.SLIDING);
        }
        int experts = s.integer("num_experts");
        int topK = s.integer("num_experts_per_tok");
        if (topK > experts) {
            throw invalid("num_experts_per_tok", topK, "exceeds num_experts = " + experts
                    + ": a token cannot go to more experts than there are");
        }
        MixtureOfExperts moe = MixtureOfExperts.sigmoidBiasedScaled(experts, topK, s.number("route_scale"))
                .withDenseLayers(sparse, s.integer("intermediate_size"));
        if (shared > 0) {
            moe = moe.withUngatedSharedExpert(shared * s.integer("moe_intermediate_size"));
        }
        boolean attentionBias = s.bool("attention_bias");
        ArchitectureBuilder b = LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM_WEIGHT_IN_FLOAT32, "rms_norm_eps").sublayerNorms(true, true)
                .qkNorm(QkNorm.PER_HEAD).rotary("rope_theta", null).rotatingLayers(rotates)
                .biases(attentionBias, attentionBias, false).attentionOutputGate()
                .slidingWindow(window).layerAttention(attention).mixtureOfExperts(moe);
        return Boolean.TRUE.equals(s.get("mup_enabled"))
                ? b.embeddingMultiplier(Math.sqrt(s.integer("hidden_size"))).build() : b.build();
    }

    /**
     * {@code layer_types}, or as AfmoeConfig fills them in: every {@code global_attn_every_n_layers}-th layer full,
     * the others sliding.
     */
    private static List<LayerAttention> layerTypes(Settings s, int layers) {
        if (s.get("layer_types") == null && s.get("global_attn_every_n_layers") == null) {
            throw invalid("global_attn_every_n_layers", null, "must be set where layer_types is not: AfmoeConfig"
                    + " fills the layer types in from it");
        }
        return s.get("layer_types") != null ? LayerTypes.read(s, layers)
                : LayerTypes.readOrEvery(s, layers, s.integer("global_attn_every_n_layers"));
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        MixtureOfExperts moe = a.moe();
        long dense = moe.denseWidth();
        long shared = moe.sharedWidth();
        List<CheckpointTensor> attention = new ArrayList<>(Glm4Moe.attentionTensors(a));
        attention.add(linear("self_attn.gate_proj.weight", W_ATTN_GATE, q, d));
        List<CheckpointTensor> sparse = new ArrayList<>(List.of(
                linear("mlp.router.gate.weight", W_ROUTER, moe.experts(), d),
                stored("mlp.expert_bias", EXPERT_SCORE_BIAS, moe.experts())));
        sparse.addAll(LlamaLayout.experts(a, "mlp.experts."));
        if (moe.hasSharedExpert()) {
            sparse.addAll(LlamaLayout.sharedExpert("mlp.shared_experts.", shared, d));
        }
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layer(attention.toArray(CheckpointTensor[]::new))
                .layer(stored("post_attention_layernorm.weight", ATTN_OUT_NORM_W, d),
                        stored("pre_mlp_layernorm.weight", LN2_W, d),
                        stored("post_mlp_layernorm.weight", MLP_OUT_NORM_W, d))
                .layerWhere(l -> !moe.sparse(l), LlamaLayout.denseMlp(dense, d))
                .layerWhere(moe::sparse, sparse.toArray(CheckpointTensor[]::new))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

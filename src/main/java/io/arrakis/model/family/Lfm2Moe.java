package io.arrakis.model.family;

import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EXPERT_SCORE_BIAS;
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * LFM2-MoE ({@code transformers/models/lfm2_moe}, Liquid AI's LFM2-8B-A1B): LFM2's blocks ({@link Lfm2}), their
 * feed-forward a gated MLP of {@code intermediate_size} (not adjusted, as {@code Lfm2MoeMLP} takes it) in the first
 * {@code num_dense_layers} layers and a mixture of {@code num_experts} experts of {@code moe_intermediate_size} in the
 * others, routed by {@link Routing#SIGMOID_BIASED_IN_MODEL_DTYPE}: sigmoid scores, the chosen experts picked with the
 * layer's {@code expert_bias}, their weights normalised where {@code norm_topk_prob} says and multiplied by
 * {@code routed_scaling_factor}. No shared expert. {@code use_expert_bias} false, which no published model sets, is
 * refused.
 *
 * <p>Keys: {@code Lfm2MoeConfig} of {@code transformers} 5.17, with {@code tie_embedding}, {@code rope_theta} and
 * {@code head_dim} as {@link Lfm2} reads them. Where {@code layer_types} is null every layer attends, as
 * {@code Lfm2Config} fills the types in ({@code Lfm2MoeConfig} leaves them null, which its model cannot be built
 * from; published files set them). Checkpoint: {@code Lfm2MoeForCausalLM}'s names, each expert's {@code w1},
 * {@code w3} and {@code w2} one tensor, as the published files and transformers' {@code save_pretrained} store them.
 */
final class Lfm2Moe extends ModelFamily {

    Lfm2Moe() {
        super("lfm2-moe", "lfm2_moe", Keys.of(List.of(
                pos("vocab_size", 65536), pos("hidden_size", 2048), pos("intermediate_size", 7168),
                pos("moe_intermediate_size", 1792), count("num_hidden_layers", 32), tok("pad_token_id", 0),
                tok("bos_token_id", 1), tok("eos_token_id", 2), bool("tie_word_embeddings", true), ropeParameters(),
                posDbl("rope_theta", 1_000_000.0), mapOrNull("rope_scaling"), pos("max_position_embeddings", 128_000),
                dbl("initializer_range", 0.02), bool("use_cache", true), posDbl("norm_eps", 1e-5),
                pos("num_attention_heads", 32), pos("num_key_value_heads", 8), bool("conv_bias", false),
                pos("conv_L_cache", 3), integer("num_dense_layers", 2), pos("num_experts_per_tok", 4),
                pos("num_experts", 32), bool("use_expert_bias", true), dbl("routed_scaling_factor", 1.0),
                bool("norm_topk_prob", true), listOrNull("layer_types"), bool("tie_embedding", true).optional(),
                optionalHeadDim()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings settings) {
        Settings s = Lfm2.withTiedEmbedding(settings);
        int layers = s.integer("num_hidden_layers");
        List<?> types = s.listOrNull("layer_types");
        if (types == null && s.listOrNull("full_attn_idxs") != null) {
            throw invalid("full_attn_idxs", s.listOrNull("full_attn_idxs"), "is not read by Lfm2MoeConfig, which"
                    + " takes the layer types from layer_types alone: set layer_types");
        }
        if (!s.bool("use_expert_bias")) {
            throw invalid("use_expert_bias", false, "is not implemented: lfm2_moe's routing here picks experts with"
                    + " each layer's expert_bias, as the published models do");
        }
        int dense = s.integer("num_dense_layers");
        if (dense < 0) {
            throw invalid("num_dense_layers", dense, "must be >= 0: the first num_dense_layers layers are dense");
        }
        List<Boolean> sparse = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            sparse.add(i >= dense);
        }
        int experts = s.integer("num_experts");
        int topK = s.integer("num_experts_per_tok");
        if (topK > experts) {
            throw invalid("num_experts_per_tok", topK, "exceeds num_experts = " + experts
                    + ": a token cannot go to more experts than there are");
        }
        MixtureOfExperts moe = new MixtureOfExperts(experts, topK, Routing.SIGMOID_BIASED_IN_MODEL_DTYPE, false, 0,
                null, MixtureOfExperts.Shared.ADDED, new MixtureOfExperts.Grouped(1, 1, s.bool("norm_topk_prob"),
                s.number("routed_scaling_factor")), null, 0, false, 0, 0)
                .withDenseLayers(sparse, s.integer("intermediate_size"));
        List<Boolean> conv = types == null ? java.util.Collections.nCopies(layers, false)
                : Lfm2.convLayers(types, layers);
        return Lfm2.blocks(s, conv).mlpWidth("moe_intermediate_size")
                .mixtureOfExperts(moe).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        MixtureOfExperts moe = a.moe();
        long d = a.dModel();
        long dense = moe.denseWidth();
        long mlp = a.dMlp();
        List<CheckpointTensor> sparse = new ArrayList<>(List.of(
                linear("feed_forward.gate.weight", W_ROUTER, moe.experts(), d),
                stored("feed_forward.expert_bias", EXPERT_SCORE_BIAS, moe.experts())));
        for (int e = 0; e < moe.experts(); e++) {
            String expert = "feed_forward.experts." + e + ".";
            sparse.add(linear(expert + "w1.weight", W_GATE, mlp, d).ofExpert(e));
            sparse.add(linear(expert + "w3.weight", W_IN, mlp, d).ofExpert(e));
            sparse.add(linear(expert + "w2.weight", W_OUT, d, mlp).ofExpert(e));
        }
        return Lfm2.layout(a, b -> b.layerWhere(l -> !moe.sparse(l), linear("feed_forward.w1.weight", W_GATE, dense, d),
                        linear("feed_forward.w3.weight", W_IN, dense, d), linear("feed_forward.w2.weight", W_OUT, d,
                                dense))
                .layerWhere(moe::sparse, sparse.toArray(CheckpointTensor[]::new)));
    }
}

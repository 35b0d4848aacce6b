package io.arrakis.model.family;

import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Slot.LIN_W_A;
import static io.arrakis.model.family.Slot.LIN_W_B;
import static io.arrakis.model.family.Slot.LIN_W_K;
import static io.arrakis.model.family.Slot.LIN_W_Q;
import static io.arrakis.model.family.Slot.LIN_W_V;
import static io.arrakis.model.family.Slot.LIN_W_Z;
import static io.arrakis.model.family.Slot.SHARED_EXPERT_GATE;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * Qwen3-Next ({@code transformers/models/qwen3_next}; Qwen3-Next-80B-A3B): the blocks Qwen3.5 took over
 * ({@link Qwen35}: gated DeltaNet in three layers of four, gated softmax attention in the others, {@code (1 + w)}
 * norms, a quarter of each head rotated) with Qwen3.5-MoE's experts ({@link Qwen35Moe}), their weights divided by their
 * sum where {@code norm_topk_prob} says; the layers {@code mlp_only_layers} names, and all but every
 * {@code decoder_sparse_step}-th, have a dense MLP of {@code intermediate_size} instead. Its linear attention projects
 * queries, keys, values and gates together, grouped by key head ({@code in_proj_qkvz}: per key head its query, its
 * key, then its value heads' values and gates), and likewise {@code beta} and the decay rate ({@code in_proj_ba}).
 *
 * <p>Keys: {@code Qwen3NextConfig} of {@code transformers} 5.17 with the keyword arguments it reads
 * ({@code partial_rotary_factor}, {@code full_attention_interval}) and the rotary keys files carry in place of
 * {@code rope_parameters}. Checkpoint: {@code Qwen3NextForCausalLM}'s names, one tensor per expert, as the published
 * files and {@code save_pretrained} store them.
 */
final class Qwen3Next extends ModelFamily {

    Qwen3Next() {
        super("qwen3-next", "qwen3_next", Keys.of(Qwen35.hybridKeys(pos("vocab_size", 151936),
                pos("hidden_size", 2048), pos("intermediate_size", 5632), count("num_hidden_layers", 48),
                pos("num_attention_heads", 16), pos("num_key_value_heads", 2), integer("decoder_sparse_step", 1),
                pos("moe_intermediate_size", 512), pos("shared_expert_intermediate_size", 512),
                pos("num_experts_per_tok", 10), count("num_experts", 512), bool("norm_topk_prob", true),
                bool("output_router_logits", false), dbl("router_aux_loss_coef", 0.001),
                listOrNull("mlp_only_layers")), Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        int step = s.integer("decoder_sparse_step");
        if (step < 1) {
            throw invalid("decoder_sparse_step", step, "must be at least 1");
        }
        List<?> denseLayers = s.listOrNull("mlp_only_layers");
        if (denseLayers != null && !denseLayers.stream().allMatch(l -> l instanceof Integer)) {
            throw invalid("mlp_only_layers", denseLayers, "must list layer indices, got " + describe(denseLayers));
        }
        List<Boolean> sparse = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            sparse.add((denseLayers == null || !denseLayers.contains(i)) && (i + 1) % step == 0);
        }
        Routing routing = s.bool("norm_topk_prob") ? Routing.SOFTMAX_THEN_TOP_K : Routing.SOFTMAX_THEN_TOP_K_AS_IS;
        MixtureOfExperts moe = Mixtral.experts(s, "num_experts", routing, false, null)
                .withSharedExpert(s.integer("shared_expert_intermediate_size"));
        return Qwen35.hybrid(s, "moe_intermediate_size")
                .mixtureOfExperts(sparse.contains(false) ? moe.withDenseLayers(sparse, s.integer("intermediate_size"))
                        : moe)
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        LinearAttention m = a.linearAttention();
        MixtureOfExperts moe = a.moe();
        long d = a.dModel();
        int perKey = m.valueHeads() / m.keyHeads();
        CheckpointTensor[] inputs = {fusedLinear("linear_attn.in_proj_qkvz.weight", d, m.keyHeads(),
                part(LIN_W_Q, m.keyDim()), part(LIN_W_K, m.keyDim()), part(LIN_W_V, (long) perKey * m.valueDim()),
                part(LIN_W_Z, (long) perKey * m.valueDim())),
                fusedLinear("linear_attn.in_proj_ba.weight", d, m.keyHeads(), part(LIN_W_B, perKey),
                        part(LIN_W_A, perKey))};
        List<CheckpointTensor> experts = new ArrayList<>(List.of(linear("mlp.gate.weight", W_ROUTER, moe.experts(),
                d)));
        experts.addAll(LlamaLayout.experts(a, "mlp.experts."));
        experts.addAll(LlamaLayout.sharedExpert("mlp.shared_expert.", moe.sharedWidth(), d));
        experts.add(linear("mlp.shared_expert_gate.weight", SHARED_EXPERT_GATE, 1, d));
        return Qwen35.layout(a, inputs, b -> b.layerWhere(moe::sparse, experts.toArray(CheckpointTensor[]::new))
                .layerWhere(l -> !moe.sparse(l), LlamaLayout.denseMlp(moe.denseWidth(), d)));
    }
}

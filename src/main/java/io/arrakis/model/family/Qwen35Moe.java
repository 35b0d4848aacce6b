package io.arrakis.model.family;

import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Slot.SHARED_EXPERT_GATE;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * Qwen3.5's mixtures of experts ({@code transformers/models/qwen3_5_moe}, {@code model_type} {@code qwen3_5_moe_text};
 * the language model of Qwen3.5-35B-A3B, -122B-A10B and -397B-A17B): {@link Qwen35}'s blocks, linear and softmax
 * attention alike, with each MLP a mixture of {@code num_experts} experts of {@code moe_intermediate_size}, routed as
 * Qwen2-MoE's (the float32 softmax's top {@code num_experts_per_tok}, divided by their sum, rounded to the model's
 * dtype), beside a shared expert of {@code shared_expert_intermediate_size} whose output is weighted by the sigmoid of
 * {@code shared_expert_gate}; every layer's MLP is such a mixture.
 *
 * <p>Keys: {@code Qwen3_5MoeTextConfig} of {@code transformers} 5.17 with the keyword arguments Qwen3.5's reads.
 * Checkpoint: Qwen3.5's names with one tensor per expert ({@code mlp.experts.{e}.gate_proj/up_proj/down_proj}, as
 * {@code save_pretrained} writes them; the published files' fused {@code mlp.experts.gate_up_proj} and
 * {@code down_proj} are read as those, {@code io.arrakis.model.FusedExperts}), the router {@code mlp.gate},
 * {@code mlp.shared_expert.*} and {@code mlp.shared_expert_gate}.
 */
final class Qwen35Moe extends ModelFamily {

    Qwen35Moe() {
        super("qwen3-5-moe", "qwen3_5_moe_text", Keys.of(Qwen35.hybridKeys(pos("vocab_size", 248320),
                pos("hidden_size", 2048), count("num_hidden_layers", 40), pos("num_attention_heads", 16),
                pos("num_key_value_heads", 2), pos("moe_intermediate_size", 512),
                pos("shared_expert_intermediate_size", 512), pos("num_experts_per_tok", 8), count("num_experts", 256),
                bool("output_router_logits", false), dbl("router_aux_loss_coef", 0.001)), Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        return Qwen35.hybrid(s, "moe_intermediate_size")
                .mixtureOfExperts(Mixtral.experts(s, "num_experts", Routing.SOFTMAX_THEN_TOP_K, false, null)
                        .withSharedExpert(s.integer("shared_expert_intermediate_size")))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        List<CheckpointTensor> moe = new ArrayList<>(List.of(linear("mlp.gate.weight", W_ROUTER, a.moe().experts(),
                d)));
        moe.addAll(LlamaLayout.experts(a, "mlp.experts."));
        moe.addAll(LlamaLayout.sharedExpert("mlp.shared_expert.", a.moe().sharedWidth(), d));
        moe.add(linear("mlp.shared_expert_gate.weight", SHARED_EXPERT_GATE, 1, d));
        return Qwen35.layout(a, Qwen35.inputProjections(a), b -> b.layer(moe.toArray(CheckpointTensor[]::new)));
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Slot.SHARED_W_GATE;
import static io.arrakis.model.family.Slot.SHARED_W_IN;
import static io.arrakis.model.family.Slot.SHARED_W_OUT;

/**
 * Granite MoE with a shared MLP ({@code transformers/models/granitemoeshared}): {@link GraniteMoe}'s blocks, with a
 * gated MLP of {@code shared_intermediate_size} beside the experts, its output added to theirs as it is, before the
 * residual multiplier scales both; none where the size is 0 (the default). Its {@code shared_mlp.input_linear} holds
 * the gate rows, then the up rows.
 *
 * <p>Keys: {@code GraniteMoeSharedConfig} of {@code transformers} 5.17 ({@code GraniteMoeConfig}'s and
 * {@code shared_intermediate_size}). Checkpoint: Granite MoE's and {@code shared_mlp}.
 */
final class GraniteMoeShared extends ModelFamily {

    GraniteMoeShared() {
        super("granitemoeshared", "granitemoeshared", Keys.of(withShared(), Map.of()));
    }

    private static List<Key> withShared() {
        List<Key> keys = new ArrayList<>(GraniteMoe.keys());
        keys.add(integer("shared_intermediate_size", 0));
        return keys;
    }

    @Override
    Architecture architecture(Settings s) {
        int shared = s.integer("shared_intermediate_size");
        if (shared < 0) {
            throw invalid("shared_intermediate_size", shared, "must be >= 0 (0: no shared MLP)");
        }
        MixtureOfExperts experts = Mixtral.experts(s, Routing.TOP_K_THEN_FLOAT32_SOFTMAX, false, null);
        return GraniteMoe.architectureOf(s, shared == 0 ? experts : experts.withUngatedSharedExpert(shared));
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        List<CheckpointTensor> mlp = new ArrayList<>(GraniteMoe.experts(a));
        long shared = a.moe().sharedWidth();
        if (shared > 0) {
            long d = a.dModel();
            mlp.add(fusedLinear("shared_mlp.input_linear.weight", d, 1, part(SHARED_W_GATE, shared),
                    part(SHARED_W_IN, shared)));
            mlp.add(linear("shared_mlp.output_linear.weight", SHARED_W_OUT, d, shared));
        }
        return LlamaLayout.checkpoint(a, mlp);
    }
}

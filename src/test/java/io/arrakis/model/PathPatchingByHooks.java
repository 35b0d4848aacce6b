package io.arrakis.model;

import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.torch.Tensor;

import java.util.List;

/**
 * Path patching of a sender head into a receiver head's normalised query (Wang et al.'s definition), assembled from
 * the model's hooks alone, which the tests hold {@link PathPatching} to: the sender's z from the corrupted input, the
 * outputs named {@code frozen} clean, the receiver's normalised query taken from that run into a clean one.
 */
final class PathPatchingByHooks {
    private PathPatchingByHooks() {
    }

    static double queryEffect(HookedAutoModel model, Tensor clean, Tensor corrupted, PathPatching.Metric metric,
                              Head sender, Head receiver, List<String> frozen) {
        String z = "blocks." + sender.layer() + ".attn.hook_z";
        String query = "blocks." + receiver.layer() + ".attn.hook_q_normed";
        try (ModelOutput base = model.forward(clean, CacheSpec.only(frozen.toArray(String[]::new)));
             ModelOutput corr = model.forward(corrupted, CacheSpec.only(z))) {
            Tensor senderZ = corr.cache().get(z).select(2, sender.index());
            HookSpec patchSender = HookSpec.at(z, (a, n) -> replaceHead(a, sender.index(), senderZ));
            HookSpec freeze = HookSpec.matching(frozen::contains, (a, n) -> base.cache().get(n).copy());
            try (ModelOutput second = model.runWithHooks(clean, CacheSpec.only(query), patchSender, freeze)) {
                Tensor routed = second.cache().get(query).select(2, receiver.index());
                Tensor logits = model.runWithHooks(clean,
                        HookSpec.at(query, (a, n) -> replaceHead(a, receiver.index(), routed)));
                return metric.apply(logits) - metric.apply(base.logits());
            }
        }
    }

    /** {@code x [batch, pos, head, d]} with head {@code h} replaced by {@code value [batch, pos, d]}. */
    private static Tensor replaceHead(Tensor x, int h, Tensor value) {
        Tensor out = x.copy();
        out.select(2, h).copyFrom(value);
        return out;
    }
}

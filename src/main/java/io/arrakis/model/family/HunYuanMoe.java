package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;
import io.arrakis.model.family.MixtureOfExperts.Routing;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.posOrPerLayer;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.K_NORM;
import static io.arrakis.model.family.Slot.Q_NORM;
import static io.arrakis.model.family.Slot.W_ROUTER;

/**
 * Tencent's HunYuan mixture-of-experts models ({@code transformers/models/hunyuan_v1_moe}; Hunyuan-A13B): HunYuan
 * dense's attention ({@link HunYuanDense}: per-head query and key norms after the rotation, its dynamic rope with an
 * {@code alpha}) with a sparse mixture of {@code num_experts} experts of width {@code intermediate_size} beside a
 * shared expert of the same width ({@code mlp.shared_mlp}), its output added as it is. The router ({@code mlp.gate.wg})
 * is held in float32 whatever the model's dtype, as transformers creates it, and makes its logits in float32; each
 * token goes to the {@code moe_topk} experts with the largest float32 softmax over all of them, weighted by those
 * values divided by their sum, in float32.
 *
 * <p>Keys: {@code HunYuanMoEV1Config} of {@code transformers} 5.17, plus the rotary keys 4.x files carry in place of
 * {@code rope_parameters}, except that {@code head_dim} defaults to the published models' 128 and may not be null, as
 * for HunYuan dense. {@code moe_topk} may be a list, an entry per layer, as the class allows; entries that differ are
 * refused (not implemented). Checkpoint: Llama's layout with the two attention norms, {@code mlp.gate.wg}, one tensor
 * per expert, {@code mlp.experts.{e}.gate_proj/up_proj/down_proj}, and
 * {@code mlp.shared_mlp.gate_proj/up_proj/down_proj}, as the published files and {@code save_pretrained} store them.
 */
final class HunYuanMoe extends ModelFamily {

    HunYuanMoe() {
        super("hunyuan-v1-moe", "hunyuan_v1_moe", Keys.of(List.of(
                pos("vocab_size", 290943), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", 0),
                tok("bos_token_id", 1), tok("eos_token_id", 2), tok("eod_token_id", 3), tok("sep_token_id", 4),
                pos("pretraining_tp", 1), bool("tie_word_embeddings", false), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), count("num_experts", 1), posOrPerLayer("moe_topk", 1),
                pos("head_dim", 128), posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of("num_experts_per_tok", "moe_topk", "num_local_experts", "num_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        int experts = s.integer("num_experts");
        int topK = topK(s);
        if (topK > experts) {
            throw invalid("moe_topk", s.get("moe_topk"), "exceeds num_experts = " + experts
                    + ": a token cannot go to more experts than there are");
        }
        int width = s.integer("intermediate_size");
        MixtureOfExperts moe = new MixtureOfExperts(experts, topK, Routing.SOFTMAX_THEN_TOP_K, true, null)
                .withUngatedSharedExpert(width).withFloat32Router();
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).ntkAlphaRope().qkNorm(QkNorm.PER_HEAD).qkNormAfterRotary()
                .biases(attentionBias, attentionBias, false).mixtureOfExperts(moe)
                .build();
    }

    /**
     * {@code moe_topk}: one number, or one per layer, all the same; entries beyond the last layer are not read, as
     * transformers reads a layer's own.
     */
    private static int topK(Settings s) {
        Object value = s.get("moe_topk");
        if (value instanceof Integer k) {
            return k;
        }
        List<?> listed = (List<?>) value;
        int layers = s.integer("num_hidden_layers");
        if (listed.size() < layers) {
            throw invalid("moe_topk", value, "must hold an entry for each layer (num_hidden_layers = " + layers + ")");
        }
        List<?> perLayer = listed.subList(0, layers);
        if (new HashSet<>(perLayer).size() > 1) {
            throw invalid("moe_topk", value, "differs between layers, which is not implemented; only the same top k"
                    + " on every layer is");
        }
        return (Integer) perLayer.getFirst();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long shared = a.moe().sharedWidth();
        List<CheckpointTensor> moe = new ArrayList<>(List.of(
                linear("mlp.gate.wg.weight", W_ROUTER, a.moe().experts(), d)));
        moe.addAll(LlamaLayout.sharedExpert("mlp.shared_mlp.", shared, d));
        moe.addAll(LlamaLayout.experts(a, "mlp.experts."));
        return LlamaLayout.checkpoint(a, moe, stored("self_attn.query_layernorm.weight", Q_NORM, a.dHead()),
                stored("self_attn.key_layernorm.weight", K_NORM, a.dHead()));
    }
}

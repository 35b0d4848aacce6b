package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * NVIDIA's Nemotron ({@code transformers/models/nemotron}; Nemotron-Mini-4B, Minitron-4B and 8B): Llama's attention
 * with rotary embeddings on the first {@code int(d_head · partial_rotary_factor)} features of each head, LayerNorms
 * with bias that scale by {@code (1 + weight)} ({@code LayerNorm1P}, {@code 1 + weight} formed in the model's dtype),
 * and an MLP without a gate, {@code down(relu2(up(x)))}; biases on the attention's four projections as
 * {@code attention_bias} says and on the MLP's as {@code mlp_bias} says. A null {@code num_key_value_heads} (the
 * configuration class's default, from which transformers' model cannot be built) gives each query head its own key and
 * value head; the published configs set it.
 *
 * <p>Keys: {@code NemotronConfig} of {@code transformers} 5.17 ({@code partial_rotary_factor} 0.5 unless the file or
 * its {@code rope_parameters} give one, as the class defaults it), plus the rotary keys 4.x files carry. Checkpoint:
 * Llama's layout with LayerNorm biases and without {@code mlp.gate_proj}.
 */
final class Nemotron extends ModelFamily {

    Nemotron() {
        super("nemotron", "nemotron", Keys.of(List.of(
                pos("vocab_size", 256000), pos("hidden_size", 6144), pos("intermediate_size", 24576),
                count("num_hidden_layers", 32), pos("num_attention_heads", 48), posOrNull("head_dim", null),
                posOrNull("num_key_value_heads", null), str("hidden_act", "relu2"),
                pos("max_position_embeddings", 4096), dbl("initializer_range", 0.0134), posDbl("norm_eps", 1e-5),
                bool("use_cache", true), tok("pad_token_id", null), tok("bos_token_id", 2), tok("eos_token_id", 3),
                bool("tie_word_embeddings", false), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                bool("mlp_bias", false), posDbl("partial_rotary_factor", 0.5), posDbl("rope_theta", 10000.0),
                optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        boolean attentionBias = s.bool("attention_bias");
        return LlamaLayout.ungatedKeys(s).headDim("head_dim").norm(Norm.LAYER_NORM_PLUS_ONE, "norm_eps")
                .rotary("rope_theta", "partial_rotary_factor")
                .biases(attentionBias, attentionBias, s.bool("mlp_bias"))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}

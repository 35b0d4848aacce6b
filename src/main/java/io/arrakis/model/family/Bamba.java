package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integerOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.B_GATE;
import static io.arrakis.model.family.Slot.B_IN;
import static io.arrakis.model.family.Slot.B_OUT;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;

/**
 * IBM's Bamba ({@code transformers/models/bamba}; Bamba-9B): Llama's blocks where every layer but those
 * {@code attn_layer_indices} lists mixes tokens by a Mamba-2 state space ({@link Mamba2}) in place of attention. The
 * attention layers rotate the first half of each head: {@code BambaConfig} sets the top-level
 * {@code partial_rotary_factor} to 0.5 whatever a file says, and the rotary embedding reads the one of
 * {@code rope_parameters} where that object has its own. The MLP's input norm is {@code pre_ff_layernorm}, the final
 * norm {@code final_layernorm}, the MLP {@code feed_forward}.
 *
 * <p>Keys: {@code BambaConfig} of {@code transformers} 5.17 with the Mamba keys of {@link Mamba2#keys}, and the keys
 * 4.x files carry ({@code rope_theta}, {@code rope_scaling}, {@code head_dim}). {@code layers_block_type} (and its
 * alias {@code layer_types}) is computed from {@code attn_layer_indices}; transformers cannot set it, and neither is it
 * read here: refused. Refused too, where transformers would silently not do what they say: a top-level
 * {@code partial_rotary_factor} other than 0.5, {@code attn_layer_indices} entries outside the layers, and an
 * {@code attn_rotary_emb} (the rotary width of 4.x's config, which published files carry) other than the width
 * rotated.
 * Checkpoint: {@code BambaForCausalLM}'s names.
 */
final class Bamba extends ModelFamily {
    private static final double ROTARY_FACTOR = 0.5;

    Bamba() {
        super("bamba", "bamba", Keys.of(keys(), Map.of("layer_types", "layers_block_type")));
    }

    private static List<Key> keys() {
        List<Key> keys = new ArrayList<>(List.of(pos("vocab_size", 128000), bool("tie_word_embeddings", false),
                pos("hidden_size", 4096), pos("intermediate_size", 14336), count("num_hidden_layers", 32),
                pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 8), str("hidden_act", "silu"),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5), bool("use_cache", true),
                integerOrNull("num_logits_to_keep", 1), tok("pad_token_id", 0), tok("bos_token_id", 1),
                tok("eos_token_id", 2), pos("max_position_embeddings", 262144), dblOrNull("attention_dropout", 0.0),
                listOrNull("attn_layer_indices")));
        keys.addAll(Mamba2.keys());
        keys.addAll(List.of(dblOrNull("z_loss_coefficient", 0.0), ropeParameters(), bool("attention_bias", false),
                bool("mlp_bias", false), posDbl("rope_theta", 10000.0), optionalRopeScaling(), optionalHeadDim(),
                dbl("partial_rotary_factor", ROTARY_FACTOR), listOrNull("layers_block_type"),
                posOrNull("attn_rotary_emb", null)));
        return keys;
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.listOrNull("layers_block_type") != null) {
            throw invalid("layers_block_type", s.listOrNull("layers_block_type"), "is computed from"
                    + " attn_layer_indices, which bamba's config reads in its place: give attn_layer_indices");
        }
        Object factor = s.get("partial_rotary_factor");
        if (!(factor instanceof Number n) || n.doubleValue() != ROTARY_FACTOR) {
            throw invalid("partial_rotary_factor", factor, "is set to " + ROTARY_FACTOR + " by BambaConfig whatever a"
                    + " file says; give rope_parameters.partial_rotary_factor for another rotary width");
        }
        List<Boolean> mamba = mambaLayers(s, s.integer("num_hidden_layers"));
        boolean attentionBias = s.bool("attention_bias");
        Architecture a = new ArchitectureBuilder(s).width("hidden_size").layers("num_hidden_layers")
                .heads("num_attention_heads").keyValueHeads("num_key_value_heads").headDim("head_dim")
                .mlpWidth("intermediate_size").gatedMlp().positions("max_position_embeddings").activation("hidden_act")
                .paddingToken("pad_token_id").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", "partial_rotary_factor").rotatingLayers(mamba.stream().map(m -> !m).toList())
                .biases(attentionBias, attentionBias, s.bool("mlp_bias")).mamba2(Mamba2.of(s, mamba)).build();
        Integer rotated = s.integerOrNull("attn_rotary_emb");
        if (rotated != null && rotated != a.rope().dim()) {
            throw invalid("attn_rotary_emb", rotated, "is the rotary width transformers 4.x read, which 5.17 does not:"
                    + " it rotates " + a.rope().dim() + " features of each head; give"
                    + " rope_parameters.partial_rotary_factor for another width");
        }
        return a;
    }

    /** Per layer, whether it is a Mamba layer: every layer {@code attn_layer_indices} does not list. */
    private static List<Boolean> mambaLayers(Settings s, int layers) {
        List<?> attention = s.listOrNull("attn_layer_indices");
        if (attention == null) {
            return Collections.nCopies(layers, true);
        }
        List<Boolean> mamba = new ArrayList<>(Collections.nCopies(layers, true));
        for (Object index : attention) {
            if (!(index instanceof Integer i) || i < 0 || i >= layers) {
                throw invalid("attn_layer_indices", attention, "entries must be layer indices 0 to " + (layers - 1)
                        + ", got " + describe(index));
            }
            mamba.set(i, false);
        }
        return mamba;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return GraniteMoeHybrid.mixers(Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                        .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                        .layer(stored("input_layernorm.weight", LN1_W, d)), a)
                .layer(stored("pre_ff_layernorm.weight", LN2_W, d),
                        linear("feed_forward.gate_proj.weight", W_GATE, mlp, d),
                        linear("feed_forward.up_proj.weight", W_IN, mlp, d),
                        linear("feed_forward.down_proj.weight", W_OUT, d, mlp))
                .layerIf(a.mlpBias(), stored("feed_forward.gate_proj.bias", B_GATE, mlp),
                        stored("feed_forward.up_proj.bias", B_IN, mlp), stored("feed_forward.down_proj.bias", B_OUT, d))
                .global(stored("final_layernorm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.list;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * GPT-Neo ({@code transformers/models/gpt_neo}): GPT-2's layout with {@code nn.Linear} projections and separate
 * q/k/v without biases, attention not divided by {@code sqrt(d_head)}, and local layers ({@code attention_types})
 * that see the last {@code window_size} positions, the query's own included.
 */
final class GptNeo extends ModelFamily {

    GptNeo() {
        super("gpt-neo", "gpt_neo", Keys.of(List.of(
                pos("vocab_size", 50257), pos("max_position_embeddings", 2048), pos("hidden_size", 2048),
                count("num_layers", 24), list("attention_types", List.of(List.of(List.of("global", "local"), 12))),
                listOrNull("attention_layers"),
                pos("num_heads", 16), posOrNull("intermediate_size", null), pos("window_size", 256),
                str("activation_function", "gelu_new"), dbl("resid_dropout", 0.0), dbl("embed_dropout", 0.0),
                dbl("attention_dropout", 0.0), dbl("classifier_dropout", 0.1), posDbl("layer_norm_epsilon", 1e-5),
                dbl("initializer_range", 0.02), bool("use_cache", true), tok("bos_token_id", 50256),
                tok("eos_token_id", 50256), tok("pad_token_id", null), bool("tie_word_embeddings", true)),
                Map.of("num_attention_heads", "num_heads", "num_hidden_layers", "num_layers")));
    }

    @Override
    Architecture architecture(Settings s) {
        return new ArchitectureBuilder(s)
                .width("hidden_size").layers("num_layers").heads("num_heads").positions("max_position_embeddings")
                .mlpWidthOrFourTimesWidth("intermediate_size")
                .norm(Norm.LAYER_NORM, "layer_norm_epsilon").activation("activation_function")
                .learnedPositions().biases(false, true, true).scaleAttention(false)
                .layerAttention(layerKinds(s, s.integer("num_layers")))
                .localWindow(s.integer("window_size")).scoresInFloat32()
                .build();
    }

    /**
     * Each layer's attention: {@code attention_types} expanded (and checked against the layers, as transformers checks
     * it), unless the file also has {@code attention_layers}, which transformers then uses in its place.
     */
    private static List<LayerAttention> layerKinds(Settings s, int layers) {
        List<LayerAttention> expanded = expandAttentionTypes(s, layers);
        List<LayerAttention> given = LayerTypes.read(s, "attention_layers", layers, "num_layers",
                Map.of("global", LayerAttention.FULL, "local", LayerAttention.LOCAL));
        return given != null ? given : expanded;
    }

    /** {@code GPTNeoConfig.expand_attention_types_params}: {@code [[kinds, repeat], ...]} to one kind per layer. */
    private static List<LayerAttention> expandAttentionTypes(Settings s, int layers) {
        List<?> types = s.listOrNull("attention_types");
        long total = 0;
        for (Object item : types) {
            if (!(item instanceof List<?> pair) || pair.size() != 2 || !(pair.get(0) instanceof List<?> kinds)
                    || !(pair.get(1) instanceof Integer repeat)) {
                throw invalid("attention_types", types,
                        "must be a list of [[\"global\" | \"local\", ...], repeat] pairs; bad entry " + item);
            }
            if (repeat < 0) {
                throw invalid("attention_types", types, "has a negative repeat count in " + item);
            }
            for (Object kind : kinds) {
                if (!"global".equals(kind) && !"local".equals(kind)) {
                    throw invalid("attention_types", types,
                            "may only name \"global\" and \"local\" attention, got " + describe(kind));
                }
            }
            total += (long) kinds.size() * repeat;
        }
        if (total != layers) {
            throw invalid("attention_types", types, "expands to " + total + " layers but num_layers = " + layers);
        }
        List<LayerAttention> perLayer = new ArrayList<>(layers);
        for (Object item : types) {
            List<?> pair = (List<?>) item;
            for (int r = 0; r < (Integer) pair.get(1); r++) {
                for (Object kind : (List<?>) pair.get(0)) {
                    perLayer.add("local".equals(kind) ? LayerAttention.LOCAL : LayerAttention.FULL);
                }
            }
        }
        return perLayer;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return Checkpoint.builder("transformer.", "h.%d.", a.nLayers())
                .global(stored("wte.weight", EMBED, a.vocabSize(), d), stored("wpe.weight", POS_EMBED, a.maxPositions(), d))
                .layer(stored("ln_1.weight", LN1_W, d), stored("ln_1.bias", LN1_B, d),
                        linear("attn.attention.k_proj.weight", WK, d, d),
                        linear("attn.attention.v_proj.weight", WV, d, d),
                        linear("attn.attention.q_proj.weight", WQ, d, d),
                        linear("attn.attention.out_proj.weight", WO, d, d),
                        stored("attn.attention.out_proj.bias", BO, d),
                        stored("ln_2.weight", LN2_W, d), stored("ln_2.bias", LN2_B, d),
                        linear("mlp.c_fc.weight", W_IN, mlp, d), stored("mlp.c_fc.bias", B_IN, mlp),
                        linear("mlp.c_proj.weight", W_OUT, d, mlp), stored("mlp.c_proj.bias", B_OUT, d))
                .global(stored("ln_f.weight", LNF_W, d), stored("ln_f.bias", LNF_B, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}

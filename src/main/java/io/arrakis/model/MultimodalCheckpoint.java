package io.arrakis.model;

import io.arrakis.model.family.ConfigValues;
import io.arrakis.model.family.MultimodalRotary;
import io.arrakis.torch.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The language model of a multimodal checkpoint, which runs text as the text model alone does: Gemma 3's
 * {@code Gemma3ForConditionalGeneration} (the 4B, 12B and 27B models; {@code model_type} {@code gemma3}), LLaVA's
 * ({@code llava}, a Llama) and Mistral 3's ({@code mistral3}, Mistral Small 3.1, Ministral 3, Mistral Small 4), whose
 * configs hold the text model's in {@code text_config}. Their tensors are the text model's under another prefix,
 * {@code language_model.model.} (and the head {@code language_model.lm_head.}) as published,
 * {@code model.language_model.} as {@code transformers} saves them since 4.52, beside a vision tower and a projector
 * that text does not reach. Qwen2-VL and Qwen2.5-VL ({@code qwen2_vl}, {@code qwen2_5_vl}) are Qwen 2 with multimodal
 * rotary embeddings (M-RoPE), whose three positions of a text token (time, height, width) are all its position, so that
 * for text it is Qwen 2's rotary; their config gives the text model's keys at its top level or, as {@code transformers}
 * 5 saves it, in {@code text_config}, and their tensors are the text model's own names or under
 * {@code model.language_model.}, beside a {@code visual} tower. Qwen3-VL ({@code qwen3_vl}) is likewise Qwen3 with
 * M-RoPE, its config's {@code text_config} and its tensors under {@code model.language_model.}; Qwen3-VL-MoE's
 * ({@code qwen3_vl_moe}) text model is the qwen3-vl-moe family. EXAONE 4.5's ({@code exaone4_5}) is EXAONE 4, which
 * text reaches at positions 0, 1, ... (its 2D rotary embeddings are the vision tower's), its tensors likewise under
 * {@code model.language_model.}, beside multi-token-prediction layers ({@code mtp.}) that a pass does not use, and its
 * head tied by the whole model's {@code tie_word_embeddings} alone. Kimi K2.5's ({@code kimi_k25}) is DeepSeek-V3
 * (its text config's {@code model_type} {@code kimi_k2} or {@code deepseek_v3}), named as LLaVA's are, beside a vision
 * tower and an {@code mm_projector}; its head too is tied by the whole model's key alone, which is true by default.
 * Kimi K2.5's model embeds its media placeholders ({@code image_token_id}, {@code video_token_id}) as token 0 in every
 * pass, text alone too, and so does a pass here ({@link #placeholders}). Qwen3.5's ({@code qwen3_5},
 * {@code qwen3_5_moe}) are the qwen3-5 and qwen3-5-moe families, their tensors under {@code model.language_model.},
 * beside a {@code visual} tower and multi-token-prediction layers; their head too is tied by the whole model's key
 * alone, which is false by default. LFM2-VL's ({@code lfm2_vl}) is the lfm2 family, its tensors under
 * {@code model.language_model.} beside a vision tower and a projector, its head tied by the whole model's key alone,
 * which is true by default. Gemma 4's ({@code gemma4}, {@code Gemma4ForConditionalGeneration}) is the gemma4 family,
 * its tensors under {@code model.language_model.} beside vision and audio towers and their embedders
 * ({@code embed_vision}, {@code embed_audio}), its head likewise tied by the whole model's key, true by default, and
 * soft-capped as its text model's config says; its model embeds its media placeholders as its text model's padding
 * token in every pass, and so does a pass here. Llama 4's ({@code llama4}, {@code Llama4ForConditionalGeneration}, as
 * Scout and Maverick are published) is the llama4 family, named as LLaVA's are, beside a {@code vision_model} and a
 * projector. LLaVA-NeXT's ({@code llava_next}, a Llama, Mistral or Qwen 2), LLaVA-OneVision's
 * ({@code llava_onevision}, a Qwen 2), InternVL's ({@code internvl}, InternVL3 and 3.5 as transformers converts them:
 * a Qwen 2 or Qwen3), Aya Vision's ({@code aya_vision}, a Cohere 2 or Cohere) and Command A Vision's
 * ({@code cohere2_vision}, a Cohere 2) are named as LLaVA's are or as transformers saves them, LLaVA-NeXT's and
 * OneVision's beside an {@code image_newline}; the heads of InternVL, Aya Vision and Command A Vision are tied by the
 * whole model's key, true by default, LLaVA-NeXT's by it too, false by default, LLaVA's, OneVision's and GLM-4V's
 * where either key says so; Aya Vision's and Command A Vision's heads do not scale the logits by the Cohere text
 * model's {@code logit_scale}. GLM-4.5V's and GLM-4.6V's ({@code glm4v_moe}) is the glm4-moe family with M-RoPE,
 * which is GLM-4.5's rotary for text, its tensors under {@code model.language_model.} beside a {@code visual} tower;
 * GLM-4.1V's ({@code glm4v}) is likewise the glm4 family.
 */
final class MultimodalCheckpoint {
    /**
     * The multimodal {@code model_type}s whose text model this reads, and the text models' {@code model_type}s, the
     * default first. LLaVA and Mistral 3 put a plain {@code lm_head} on the text model's base, which is the text
     * model's own head only in families whose causal model adds nothing to it.
     */
    private static final Map<String, List<String>> TEXT_MODELS = Map.ofEntries(
            Map.entry("gemma3", List.of("gemma3_text")), Map.entry("llava", List.of("llama", "mistral", "qwen2")),
            Map.entry("mistral3", List.of("mistral", "llama", "qwen2", "ministral3", "mistral4")),
            Map.entry("qwen2_vl", List.of("qwen2_vl_text")), Map.entry("qwen2_5_vl", List.of("qwen2_5_vl_text")),
            Map.entry("qwen3_vl", List.of("qwen3_vl_text")), Map.entry("qwen3_vl_moe", List.of("qwen3_vl_moe_text")),
            Map.entry("exaone4_5", List.of("exaone4", "exaone4_5_text")),
            Map.entry("kimi_k25", List.of("deepseek_v3", "kimi_k2")), Map.entry("qwen3_5", List.of("qwen3_5_text")),
            Map.entry("qwen3_5_moe", List.of("qwen3_5_moe_text")), Map.entry("lfm2_vl", List.of("lfm2")),
            Map.entry("gemma4", List.of("gemma4_text")), Map.entry("llama4", List.of("llama4_text")),
            Map.entry("llava_next", List.of("llama", "mistral", "qwen2")),
            Map.entry("llava_onevision", List.of("qwen2", "llama", "mistral")),
            Map.entry("internvl", List.of("qwen2", "qwen3", "llama")),
            Map.entry("aya_vision", List.of("cohere2", "cohere")),
            Map.entry("cohere2_vision", List.of("cohere2")), Map.entry("glm4v_moe", List.of("glm4v_moe_text")),
            Map.entry("glm4v", List.of("glm4v_text")));
    private static final String PUBLISHED = "language_model.model.";
    private static final String SAVED = "model.language_model.";
    private static final String PUBLISHED_HEAD = "language_model.lm_head.";
    /** Keys of the whole model's config that concern its text model too, where text_config does not set them. */
    private static final Set<String> SHARED_KEYS = Set.of("quantization_config", "transformers_weights",
            "tie_word_embeddings");
    private static final Set<String> QWEN_VL = Set.of("qwen2_vl", "qwen2_5_vl");
    /** The multimodal models whose head is tied by their own {@code tie_word_embeddings}, not their text model's. */
    private static final Set<String> TIED_BY_TOP_KEY = Set.of("exaone4_5", "kimi_k25", "qwen3_5", "qwen3_5_moe",
            "lfm2_vl", "gemma4", "llava_next", "internvl", "aya_vision", "cohere2_vision");
    /** Of those, the ones whose whole model's config ties the head by default. */
    private static final Set<String> TIED_BY_DEFAULT = Set.of("kimi_k25", "lfm2_vl", "gemma4", "internvl", "aya_vision",
            "cohere2_vision");
    /**
     * The multimodal models whose head is tied where either their own {@code tie_word_embeddings} or their text
     * model's is (their config classes set theirs from their text model's).
     */
    private static final Set<String> TIED_BY_EITHER_KEY = Set.of("llava", "llava_onevision", "glm4v", "glm4v_moe");
    /** The multimodal models whose plain head leaves out their text model's {@code logit_scale} (Cohere's). */
    private static final Set<String> UNSCALED_HEAD = Set.of("aya_vision", "cohere2_vision");
    /**
     * What text does not reach: the vision towers and projectors, and EXAONE 4.5's multi-token-prediction layers,
     * which transformers' model leaves unread too.
     */
    private static final Set<String> UNREAD_PARTS = Set.of("vision_tower.", "multi_modal_projector.",
            "model.vision_tower.", "model.multi_modal_projector.", "visual.", "model.visual.", "mtp.", "mm_projector.",
            "model.mm_projector.", "model.audio_tower.", "model.embed_vision.", "model.embed_audio.", "vision_model.",
            "image_newline", "model.image_newline");

    private MultimodalCheckpoint() {
    }

    /**
     * The text model's config of a multimodal {@code config.json} ({@code top}), with its {@code model_type} and the
     * whole model's settings that concern it ({@code quantization_config}, say); {@code top} itself for any other.
     *
     * @throws IllegalArgumentException where {@code text_config} is not an object, or names another model type
     */
    static Map<?, ?> textConfig(Map<?, ?> top) {
        String type = top.get("model_type") instanceof String t ? t : null;
        List<String> textModels = type == null ? null : TEXT_MODELS.get(type);
        boolean qwen = type != null && QWEN_VL.contains(type);
        Map<Object, Object> config;
        if (textModels == null || top.get("text_config") == null && !qwen) {
            return top;
        } else if (top.get("text_config") == null) { // Qwen VL's text keys at the top, as transformers 4 wrote them
            config = new LinkedHashMap<>(top);
            config.remove("vision_config");
            config.remove("text_config");
        } else {
            if (!(top.get("text_config") instanceof Map<?, ?> text)) {
                throw new IllegalArgumentException("text_config must be a JSON object, got "
                        + ConfigValues.describe(top.get("text_config")));
            }
            Object textType = text.containsKey("model_type") ? text.get("model_type") : textModels.getFirst();
            if (!textModels.contains(textType)) {
                throw new IllegalArgumentException("text_config of a " + type + " config has model_type "
                        + ConfigValues.describe(textType) + "; its language model is read here where it is "
                        + String.join(", ", textModels));
            }
            config = new LinkedHashMap<>(text);
            config.put("model_type", textType);
            for (String key : SHARED_KEYS) {
                if (top.containsKey(key)) {
                    config.putIfAbsent(key, top.get(key));
                }
            }
        }
        if ("gemma3_text".equals(config.get("model_type"))) {
            // Gemma3ForConditionalGeneration's head does not soft-cap, whatever the text model's config says
            config.put("final_logit_softcapping", null);
        }
        if (UNSCALED_HEAD.contains(type)) {
            config.put("logit_scale", 1.0);
        }
        if (TIED_BY_EITHER_KEY.contains(type) && Boolean.TRUE.equals(top.get("tie_word_embeddings"))) {
            config.put("tie_word_embeddings", true);
        }
        if (qwen) {
            asQwen2(config);
        }
        if ("qwen3_vl_text".equals(config.get("model_type"))) {
            asQwen3(config);
        } else if ("qwen3_vl_moe_text".equals(config.get("model_type"))) {
            dropMrope(config, false); // the qwen3-vl-moe family is its text model, with Qwen3's rotary for text
        } else if ("glm4v_moe_text".equals(config.get("model_type"))) {
            asGlm4Moe(config);
        } else if ("glm4v_text".equals(config.get("model_type"))) {
            asGlm4(config);
        }
        if (TIED_BY_TOP_KEY.contains(type)) {
            // the head is tied by the whole model's key alone, whatever text_config says: false by default for
            // EXAONE 4.5 and Qwen3.5, true for Kimi K2.5 and LFM2-VL (their config classes' defaults)
            config.put("tie_word_embeddings", top.containsKey("tie_word_embeddings")
                    ? top.get("tie_word_embeddings") : TIED_BY_DEFAULT.contains(type));
            if ("exaone4_5_text".equals(config.get("model_type"))) {
                config.put("model_type", "exaone4"); // the first release's name, which transformers maps
            }
            if ("kimi_k2".equals(config.get("model_type"))) {
                config.put("model_type", "deepseek_v3"); // Kimi K2's own name, which Kimi_K25Config maps
            }
        }
        return config;
    }

    /** Qwen2-VL's or Qwen2.5-VL's text config as a Qwen 2 one, with M-RoPE as the rotary it is for text. */
    private static void asQwen2(Map<Object, Object> config) {
        config.put("model_type", "qwen2");
        // the text config classes' defaults where they differ from Qwen 2's
        config.putIfAbsent("rope_theta", 1_000_000.0);
        config.putIfAbsent("rms_norm_eps", 1e-5);
        config.putIfAbsent("max_window_layers", 80);
        dropMrope(config, true);
    }

    /**
     * GLM-4.5V's text config as a GLM-4.5 one: its text model is GLM-4.5's mixture of experts without query and key
     * norms, with M-RoPE over the rotated part of each head, which for text is GLM-4.5's rotary.
     */
    private static void asGlm4Moe(Map<Object, Object> config) {
        config.put("model_type", "glm4_moe");
        // Glm4vMoeTextConfig's defaults where they differ from Glm4MoeConfig's
        config.putIfAbsent("vocab_size", 151_424);
        config.putIfAbsent("max_position_embeddings", 65_536);
        config.putIfAbsent("attention_bias", true);
        config.put("use_qk_norm", false); // its attention has no query and key norms, whatever the file says
        if (config.get("head_dim") == null && config.getOrDefault("hidden_size", 4096) instanceof Number d
                && config.getOrDefault("num_attention_heads", 96) instanceof Number n && n.intValue() > 0) {
            config.put("head_dim", d.intValue() / n.intValue()); // as its attention falls back, where GLM-4.5's is 128
        }
        dropMrope(config, false);
    }

    /**
     * GLM-4.1V's text config as a GLM-4 one: GLM-4's blocks whose heads are {@code hidden_size / num_attention_heads}
     * wide, biases on the query, key and value projections, with M-RoPE, which for text is GLM-4's rotary. Its
     * rotary embedding turns {@code int(head_dim · fraction)} features of each head: the file's {@code head_dim} where
     * it gives one (its attention reads none), the fraction of its rotary object, else the file's top-level one, which
     * transformers moves into it, else 1.
     */
    private static void asGlm4(Map<Object, Object> config) {
        config.put("model_type", "glm4");
        config.put("attention_bias", true);
        // Glm4vTextConfig's defaults, which the heads' width follows, where they differ from Glm4Config's
        config.putIfAbsent("hidden_size", 4096);
        config.putIfAbsent("num_attention_heads", 32);
        if (config.get("hidden_size") instanceof Number d && config.get("num_attention_heads") instanceof Number n
                && n.intValue() > 0) {
            if (d.intValue() % n.intValue() != 0) {
                throw new IllegalArgumentException("GLM-4.1V's text config has hidden_size = " + d + ", not a multiple"
                        + " of num_attention_heads = " + n + ", which its heads' width is");
            }
            int width = d.intValue() / n.intValue();
            Object fraction = config.get("partial_rotary_factor");
            for (String key : List.of("rope_scaling", "rope_parameters")) {
                if (config.get(key) instanceof Map<?, ?> rope && rope.get("partial_rotary_factor") != null) {
                    fraction = rope.get("partial_rotary_factor");
                }
            }
            double rotaryHead = config.get("head_dim") instanceof Number h ? h.doubleValue() : width;
            double rotated = rotaryHead * (fraction instanceof Number f ? f.doubleValue() : 1.0);
            if (!(rotated > 0 && rotated <= width)) {
                throw new IllegalArgumentException("GLM-4.1V's text config rotates " + rotated + " features of heads"
                        + " of hidden_size / num_attention_heads = " + width + " (head_dim " + rotaryHead
                        + " times partial_rotary_factor " + fraction + "); transformers' attention cannot either");
            }
            config.put("head_dim", width);
            config.put("partial_rotary_factor", rotated / width);
        }
        config.putIfAbsent("rms_norm_eps", 1e-5);
        config.putIfAbsent("max_position_embeddings", 32_768);
        config.putIfAbsent("pad_token_id", null);
        dropMrope(config, false);
    }

    /**
     * Qwen3-VL's text config as a Qwen3 one: its text model is Qwen3's, with M-RoPE whose sections interleave
     * (time, height, width) angles, which for text is Qwen3's rotary; deepstack adds image features only.
     */
    private static void asQwen3(Map<Object, Object> config) {
        config.put("model_type", "qwen3");
        // Qwen3-VL's attention has no sliding window, whatever the config's Qwen3 keys say
        for (String key : List.of("use_sliding_window", "sliding_window", "max_window_layers", "layer_types")) {
            config.remove(key);
        }
        // Qwen3VLTextConfig's defaults where they differ from Qwen3's
        config.putIfAbsent("rope_theta", 500_000.0);
        config.putIfAbsent("max_position_embeddings", 128_000);
        dropMrope(config, false);
    }

    /**
     * The ids a multimodal model swaps for another before its embedding in every pass, text alone too, and the id
     * it puts in their place.
     *
     * @param ids the placeholder ids
     * @param replacement the id they are embedded as
     */
    record Placeholders(long[] ids, long replacement) {
        static final Placeholders NONE = new Placeholders(new long[0], 0);
    }

    /**
     * The placeholders of a multimodal model of {@code top}'s config: Kimi K2.5's {@code image_token_id} and
     * {@code video_token_id} (163605 and 163840 by default, the latter the vocabulary's size), embedded as token 0;
     * Gemma 4's {@code image_token_id}, {@code video_token_id} and {@code audio_token_id} (258880, 258884 and 258881 by
     * default; null for none), embedded as its text model's {@code pad_token_id}, per-layer embeddings too; none for
     * the others, whose placeholders are embedded as the tokens they are.
     *
     * @throws IllegalArgumentException where such an id is not an integer
     */
    static Placeholders placeholders(Map<?, ?> top) {
        Object type = top.get("model_type");
        if ("kimi_k25".equals(type)) {
            return new Placeholders(ids(top, new String[] {"image_token_id", "video_token_id"},
                    new long[] {163605, 163840}, false), 0);
        }
        if (!"gemma4".equals(type)) {
            return Placeholders.NONE;
        }
        Object pad = top.get("text_config") instanceof Map<?, ?> text && text.containsKey("pad_token_id")
                ? text.get("pad_token_id") : Integer.valueOf(0);
        if (!(pad instanceof Integer || pad instanceof Long)) {
            throw new IllegalArgumentException("text_config.pad_token_id must be a token id: Gemma 4's multimodal"
                    + " model embeds its media placeholders as it; got " + ConfigValues.describe(pad));
        }
        return new Placeholders(ids(top, new String[] {"image_token_id", "video_token_id", "audio_token_id"},
                new long[] {258_880, 258_884, 258_881}, true), ((Number) pad).longValue());
    }

    /** The ids under {@code keys} (their {@code defaults} where absent), the null ones left out where allowed. */
    private static long[] ids(Map<?, ?> top, String[] keys, long[] defaults, boolean nullable) {
        List<Long> ids = new java.util.ArrayList<>();
        for (int i = 0; i < keys.length; i++) {
            Object id = top.containsKey(keys[i]) ? top.get(keys[i]) : defaults[i];
            if (id == null && nullable) {
                continue;
            }
            if (!(id instanceof Integer || id instanceof Long)) {
                throw new IllegalArgumentException(keys[i] + " must be a token id, got " + ConfigValues.describe(id));
            }
            ids.add(((Number) id).longValue());
        }
        return ids.stream().mapToLong(Long::longValue).toArray();
    }

    /**
     * Drops M-RoPE's entries from the config's rotary objects ({@link MultimodalRotary}); {@code covering}: the
     * sections must cover the rotary half of a head, as transformers splits the head's angles by them; else they
     * interleave, and transformers indexes three of them.
     */
    private static void dropMrope(Map<Object, Object> config, boolean covering) {
        Object hidden = config.get("hidden_size");
        Object heads = config.get("num_attention_heads");
        long headDim = config.get("head_dim") instanceof Number h ? h.longValue()
                : hidden instanceof Number d && heads instanceof Number n && n.longValue() > 0
                ? d.longValue() / n.longValue() : -1;
        for (String key : List.of("rope_scaling", "rope_parameters")) {
            if (config.get(key) instanceof Map<?, ?> rope && rope.containsKey("mrope_section")) {
                config.put(key, MultimodalRotary.withoutSections(key, rope, covering ? headDim : 0));
            }
        }
    }

    /**
     * The language model's tensors of {@code source} under the text model's own names ({@code model.*},
     * {@code lm_head.*}), without what text does not reach (the vision tower and projector; EXAONE 4.5's
     * multi-token-prediction layers); {@code source} itself where it holds a text model's.
     *
     * @param multimodal whether the config was a multimodal model's, whose image parts may sit beside a language
     *     model under its own names (Qwen2-VL's)
     */
    static HfWeights.Source languageModel(boolean multimodal, HfWeights.Source source) {
        Set<String> names = source.names();
        boolean published = names.stream().anyMatch(n -> n.startsWith(PUBLISHED));
        boolean saved = names.stream().anyMatch(n -> n.startsWith(SAVED));
        if (published && saved) {
            throw new IllegalArgumentException("the checkpoint holds a language model under both " + PUBLISHED + " and "
                    + SAVED + "; a multimodal checkpoint has one of them");
        }
        // a text model's config with a stray image tensor is refused as the wrong config, as before
        if (!published && !saved && !(multimodal && names.stream().anyMatch(MultimodalCheckpoint::unread))) {
            return source;
        }
        String prefix = published ? PUBLISHED : saved ? SAVED : "";
        Map<String, String> stored = names.stream()
                .filter(n -> !unread(n))
                .collect(Collectors.toMap(n -> textName(n, prefix), n -> n, (a, b) -> {
                    throw new IllegalArgumentException("the checkpoint holds both " + a + " and " + b + ", one tensor"
                            + " of its language model under two names");
                }, LinkedHashMap::new));
        Set<String> textNames = java.util.Collections.unmodifiableSet(stored.keySet());
        return new HfWeights.Source() {
            @Override
            public Set<String> names() {
                return textNames;
            }

            @Override
            public long[] shape(String name) {
                return source.shape(stored.get(name));
            }

            @Override
            public Tensor load(String name) {
                return source.load(stored.get(name));
            }

            @Override
            public String storedName(String name) {
                return stored.getOrDefault(name, storedForm(name, prefix));
            }
        };
    }

    private static boolean unread(String name) {
        return UNREAD_PARTS.stream().anyMatch(name::startsWith);
    }

    /** Where a checkpoint of this layout would store the text model's tensor {@code name}. */
    private static String storedForm(String name, String prefix) {
        if (prefix.isEmpty()) {
            return name;
        }
        if (name.startsWith("model.")) {
            return prefix + name.substring("model.".length());
        }
        return name.startsWith("lm_head.") && prefix.equals(PUBLISHED)
                ? PUBLISHED_HEAD + name.substring("lm_head.".length()) : name;
    }

    private static String textName(String name, String prefix) {
        if (prefix.isEmpty()) {
            return name;
        }
        if (name.startsWith(prefix)) {
            return "model." + name.substring(prefix.length());
        }
        return name.startsWith(PUBLISHED_HEAD) ? "lm_head." + name.substring(PUBLISHED_HEAD.length()) : name;
    }
}

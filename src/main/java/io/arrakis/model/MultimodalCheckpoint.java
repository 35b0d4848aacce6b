package io.arrakis.model;

import io.arrakis.model.family.ConfigValues;
import io.arrakis.torch.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The language model of a multimodal checkpoint, which runs text as the text model alone does: Gemma 3's
 * {@code Gemma3ForConditionalGeneration} (the 4B, 12B and 27B models; {@code model_type} {@code gemma3}), LLaVA's
 * ({@code llava}, a Llama) and Mistral 3's ({@code mistral3}, Mistral Small 3.1), whose configs hold the text model's
 * in {@code text_config}. Their tensors are the text model's under another prefix, {@code language_model.model.} (and
 * the head {@code language_model.lm_head.}) as published, {@code model.language_model.} as {@code transformers} saves
 * them since 4.52, beside a vision tower and a projector that text does not reach.
 */
final class MultimodalCheckpoint {
    /**
     * The multimodal {@code model_type}s whose text model this reads, and the text models' {@code model_type}s, the
     * default first. LLaVA and Mistral 3 put a plain {@code lm_head} on the text model's base, which is the text
     * model's own head only in families whose causal model adds nothing to it.
     */
    private static final Map<String, List<String>> TEXT_MODELS = Map.of("gemma3", List.of("gemma3_text"),
            "llava", List.of("llama", "mistral", "qwen2"), "mistral3", List.of("mistral", "llama", "qwen2"));
    private static final String PUBLISHED = "language_model.model.";
    private static final String SAVED = "model.language_model.";
    private static final String PUBLISHED_HEAD = "language_model.lm_head.";
    /** Keys of the whole model's config that concern its text model too, where text_config does not set them. */
    private static final Set<String> SHARED_KEYS = Set.of("quantization_config", "transformers_weights",
            "tie_word_embeddings");
    private static final Set<String> IMAGE_PARTS = Set.of("vision_tower.", "multi_modal_projector.",
            "model.vision_tower.", "model.multi_modal_projector.");

    private MultimodalCheckpoint() {
    }

    /**
     * The text model's config of a multimodal {@code config.json} ({@code top}), with its {@code model_type} and the
     * whole model's settings that concern it ({@code quantization_config}, say); {@code top} itself for any other.
     *
     * @throws IllegalArgumentException where {@code text_config} is not an object, or names another model type
     */
    static Map<?, ?> textConfig(Map<?, ?> top) {
        List<String> textModels = top.get("model_type") instanceof String type ? TEXT_MODELS.get(type) : null;
        if (textModels == null || !top.containsKey("text_config")) {
            return top;
        }
        if (!(top.get("text_config") instanceof Map<?, ?> text)) {
            throw new IllegalArgumentException("text_config must be a JSON object, got "
                    + ConfigValues.describe(top.get("text_config")));
        }
        Object type = text.containsKey("model_type") ? text.get("model_type") : textModels.getFirst();
        if (!textModels.contains(type)) {
            throw new IllegalArgumentException("text_config of a " + top.get("model_type") + " config has model_type "
                    + ConfigValues.describe(type) + "; its language model is read here where it is "
                    + String.join(", ", textModels));
        }
        Map<Object, Object> config = new LinkedHashMap<>(text);
        config.put("model_type", type);
        if (type.equals("gemma3_text")) {
            // Gemma3ForConditionalGeneration's head does not soft-cap, whatever the text model's config says
            config.put("final_logit_softcapping", null);
        }
        for (String key : SHARED_KEYS) {
            if (top.containsKey(key)) {
                config.putIfAbsent(key, top.get(key));
            }
        }
        return config;
    }

    /**
     * The language model's tensors of {@code source} under the text model's own names ({@code model.*},
     * {@code lm_head.*}), without the vision tower and projector; {@code source} itself where it holds a text model's.
     */
    static HfWeights.Source languageModel(HfWeights.Source source) {
        Set<String> names = source.names();
        boolean published = names.stream().anyMatch(n -> n.startsWith(PUBLISHED));
        boolean saved = names.stream().anyMatch(n -> n.startsWith(SAVED));
        if (published && saved) {
            throw new IllegalArgumentException("the checkpoint holds a language model under both " + PUBLISHED + " and "
                    + SAVED + "; a multimodal checkpoint has one of them");
        }
        if (!published && !saved) {
            return source;
        }
        String prefix = published ? PUBLISHED : SAVED;
        Map<String, String> stored = names.stream()
                .filter(n -> IMAGE_PARTS.stream().noneMatch(n::startsWith))
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

    /** Where a checkpoint of this layout would store the text model's tensor {@code name}. */
    private static String storedForm(String name, String prefix) {
        if (name.startsWith("model.")) {
            return prefix + name.substring("model.".length());
        }
        return name.startsWith("lm_head.") && prefix.equals(PUBLISHED)
                ? PUBLISHED_HEAD + name.substring("lm_head.".length()) : name;
    }

    private static String textName(String name, String prefix) {
        if (name.startsWith(prefix)) {
            return "model." + name.substring(prefix.length());
        }
        return name.startsWith(PUBLISHED_HEAD) ? "lm_head." + name.substring(PUBLISHED_HEAD.length()) : name;
    }
}

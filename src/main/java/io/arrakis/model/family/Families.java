package io.arrakis.model.family;

import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.stream.Stream;

/** The supported model families: the one list that a new family is added to. */
public final class Families {
    private static final List<ModelFamily> ALL = List.of(new Gpt2(), new GptNeo(), new GptNeox(), new Llama(),
            new Gemma(), new Phi3(), new Qwen2(), new Mistral(), new StableLm(), new Qwen3(), new Olmo2(),
            new Gemma2(), new Gemma3(), new Gemma4(), new Granite(), new Starcoder2(), new Phi(), new GptJ(), new Falcon(),
            new Cohere(), new Mixtral(), new GptOss(), new Qwen3Moe(), new Qwen3VlMoe(),
            new SmolLm3(), new Olmoe(), new Qwen2Moe(), new Olmo3(), new Ministral3(),
            new Ministral(), new Exaone4(), new Glm4(), new Ernie45(),
            new Glm(), new SeedOss(), new Arcee(), new Helium(),
            new VaultGemma(), new Cohere2(), new GraniteMoe(), new Nemotron(),
            new Jais2(), new HyperClovax(), new Opt(), new GptBigCode(), new Cwm(),
            new Glm4Moe(), new SolarOpen(), new ExaoneMoe(), new GraniteMoeShared(), new Apertus(),
            new MiniMaxM2(), new DeepseekV3(), new Glm4MoeLite(), new DeepseekV2(), new Olmo(),
            new NanoChat(), new HunYuanDense(), new Dots1(), new Mistral4(), new HunYuanMoe(), new Ernie45Moe(),
            new FlexOlmo(), new Phimoe(), new Cohere2Moe(), new Youtu(), new Mellum(), new Afmoe(), new DeepseekV32(),
            new GlmMoeDsa(), new HyV3(), new Qwen35(), new Qwen35Moe(),
            new Qwen3Next(), new Lfm2(), new Lfm2Moe(), new MiniCpm3(), new Llama4(), new GraniteMoeHybrid(),
            new Bamba());

    private Families() {
    }

    /**
     * Every family, in registration order.
     *
     * @return an unmodifiable list
     */
    public static List<ModelFamily> all() {
        return ALL;
    }

    /**
     * The family with a canonical name or {@code model_type}, case-insensitive.
     *
     * @param name the name
     * @param what what the name is, for the message ({@code "family"}, {@code "model_type"})
     * @return the family
     * @throws IllegalArgumentException for an unknown name, listing the supported ones
     */
    public static ModelFamily find(String name, String what) {
        Objects.requireNonNull(name, what);
        String n = name.toLowerCase(Locale.ROOT);
        for (ModelFamily f : ALL) {
            if (f.name().equals(n) || f.hasModelType(n)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unsupported " + what + " \"" + name + "\"; supported families: "
                + String.join(", ", ALL.stream().map(ModelFamily::name).toList())
                + " (Hugging Face model_type spellings: " + modelTypes() + ")");
    }

    /**
     * The family whose Hugging Face {@code model_type} is {@code modelType}, as a {@code config.json} names it: not
     * matched against the families' own names, which may be another model's type ({@code gemma3} is Gemma 3's
     * multimodal config, whose text model is {@code gemma3_text}).
     *
     * @throws IllegalArgumentException naming the supported types when none is
     */
    public static ModelFamily forModelType(String modelType) {
        Objects.requireNonNull(modelType, "model_type");
        for (ModelFamily f : ALL) {
            if (f.hasModelType(modelType)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unsupported model_type \"" + modelType + "\"; supported: " + modelTypes()
                + (ALL.stream().anyMatch(f -> f.name().equals(modelType)) ? " (\"" + modelType + "\" names another"
                + " model's config here: a multimodal model's holds its text model's in text_config)" : ""));
    }

    /**
     * The {@code model_type}s every family reads (its own, then the others it takes), comma-separated.
     *
     * @return e.g. {@code "gpt2, gpt_neo, ..."}
     */
    public static String modelTypes() {
        return String.join(", ", ALL.stream()
                .flatMap(f -> Stream.concat(Stream.of(f.modelType()), f.otherModelTypes().stream())).toList());
    }
}

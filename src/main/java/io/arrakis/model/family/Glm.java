package io.arrakis.model.family;

/**
 * GLM ({@code transformers/models/glm}; GLM-4-9B-chat-hf, GLM-4-9B-hf): GLM-4's configuration, attention and MLP in
 * Llama's pre-norm blocks, without GLM-4's norms after attention and MLP.
 */
final class Glm extends ModelFamily {

    Glm() {
        super("glm", "glm", Glm4.keys());
    }

    @Override
    Architecture architecture(Settings s) {
        return Glm4.glmLayout(s).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4.checkpointOf(a);
    }
}

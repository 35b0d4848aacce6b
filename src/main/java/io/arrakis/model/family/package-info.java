/**
 * Internal: the model families behind {@link io.arrakis.model.HookedAutoConfig}, one class per Hugging Face
 * {@code model_type}, registered in {@link io.arrakis.model.family.Families}. Each family declares its
 * {@code config.json} keys with their defaults and aliases, derives the normalised {@link
 * io.arrakis.model.family.Architecture} from them (refusing values it does not implement), and describes its
 * checkpoint ({@link io.arrakis.model.family.Checkpoint}: tensor names, shapes, and where each goes in the model's
 * weights). Public only because {@code io.arrakis.model} reads it; not an API, and it changes without notice.
 */
package io.arrakis.model.family;

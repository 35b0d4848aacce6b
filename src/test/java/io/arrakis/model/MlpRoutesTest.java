package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A GELU MLP's two routes on the CPU in float32: its input product applying the activation as it writes (nothing
 * observes {@code mlp.hook_pre}) and the activation as an op of its own (something does). Each matches the Hugging
 * Face reference logits, and they agree within 1e-5 on every family's fixture.
 */
class MlpRoutesTest {

    @ParameterizedTest
    @MethodSource("io.arrakis.model.HookedAutoConfig#supportedFamilies")
    void bothRoutesMatchHuggingFaceAndEachOther(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, Device.CPU)) {
            Tensor ids = reference.tensor("input_ids");
            Tensor expected = reference.tensor("logits");
            ModelOutput fused = model.forward(ids, CacheSpec.matching(name -> name.endsWith("mlp.hook_post")));
            ModelOutput separate = model.forward(ids, CacheSpec.matching(name -> name.endsWith("mlp.hook_pre")
                    || name.endsWith("mlp.hook_post")));
            assertTrue(fused.logits().allclose(expected, 1e-4, 1e-4), family + ": the fused route's logits differ from Hugging Face's");
            assertTrue(separate.logits().allclose(expected, 1e-4, 1e-4), family + ": the separate route's logits differ");
            for (String name : fused.cache().names()) {
                Tensor a = fused.cache().get(name);
                Tensor b = separate.cache().get(name);
                assertTrue(a.allclose(b, 1e-5, 1e-5), family + ": " + name + " differs between the routes by up to "
                        + a.sub(b).abs().max().item());
            }
            assertTrue(fused.logits().allclose(separate.logits(), 1e-5, 1e-5), family + ": the routes' logits differ");
        }
    }

    /**
     * Was: in bfloat16 the fused route applied GELU to the product before rounding it, so observing
     * {@code mlp.hook_pre} (which rounds first, as Hugging Face does) moved logits by a bfloat16 step.
     */
    @ParameterizedTest
    @MethodSource("io.arrakis.model.HookedAutoConfig#supportedFamilies")
    void observingThePreActivationChangesNothingInBfloat16(String family) {
        Path dir = Fixtures.huggingFace(family);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU)) {
            Tensor ids = reference.tensor("input_ids");
            ModelOutput plain = model.forward(ids, CacheSpec.none());
            ModelOutput observed = model.forward(ids, CacheSpec.matching(name -> name.endsWith("mlp.hook_pre")));
            assertTrue(plain.logits().allclose(observed.logits(), 0, 0), family + ": observing hook_pre moved the"
                    + " logits by up to " + plain.logits().sub(observed.logits()).abs().max().item());
        }
    }

    @Test
    void aReplacedActivationWorksOnTheFusedRoute() {
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(java.util.Map.of("n_layer", 2, "n_embd", 64,
                "n_head", 4, "vocab_size", 100, "n_positions", 32));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 1, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {5, 17, 3, 60, 8, 8, 41, 2}, 1, 8);
            HookedAutoModel.HookSpec halved = HookedAutoModel.HookSpec.at("blocks.0.mlp.hook_post", (post, name) -> post.mul(0.5));
            Tensor onFused = model.runWithHooks(ids, halved);
            try (ModelOutput onSeparate = model.runWithHooks(ids, CacheSpec.only("blocks.0.mlp.hook_pre"), halved);
                 ModelOutput unhooked = model.forward(ids, CacheSpec.none())) {
                assertTrue(onFused.allclose(onSeparate.logits(), 1e-5, 1e-5));
                assertFalse(onFused.allclose(unhooked.logits(), 1e-3, 1e-3), "the hook changed nothing");
            }
        }
    }
}

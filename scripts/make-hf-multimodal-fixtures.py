#!/usr/bin/env python3
"""Make Hugging Face reference fixtures of vision-language checkpoints whose language model runs text here.

Each is a tiny `...ForConditionalGeneration` of `transformers` (float32, CPU, eval mode, random weights drawn from a
seeded generator), saved by `save_pretrained` as transformers names its tensors and ties its head, with the logits it
gives for seeded text ids (no image): LLaVA-NeXT (a Llama), LLaVA-OneVision (a Qwen 2), InternVL (a Qwen 2), Aya
Vision (a Cohere 2, whose text model scales its logits and whose multimodal head does not), Command A Vision (a
Cohere 2), GLM-4.5V (GLM-4.5's mixture of experts with M-RoPE, plain for text) and GLM-4.1V (GLM-4's dense blocks,
likewise), each with a vision tower and a projector that text does not reach.

Usage
-----
    python3 scripts/make-hf-multimodal-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf-multimodal); one folder per model type.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output
------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them.
reference.safetensors:
    input_ids  int64   [batch, pos]
    logits     float32 [batch, pos, vocab]  the whole model's logits for the ids alone
README.md: how it was made, with the versions.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import hf_fixtures  # noqa: E402  (keeps transformers offline)

SEED = 4406
BATCH = 2
SEQ = 7

SIZES = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64)
TEXT = {
    "llama": dict(SIZES, model_type="llama"),
    "qwen2": dict(SIZES, model_type="qwen2"),
    "cohere2": dict(SIZES, model_type="cohere2", sliding_window=4, layer_types=["sliding_attention", "full_attention"],
                    logit_scale=0.25, bos_token_id=1, eos_token_id=2, pad_token_id=0),
    # a dense layer, then experts; M-RoPE over the rotated half of each head, which for text is a plain rope
    "glm4v_moe_text": dict(SIZES, model_type="glm4v_moe_text", head_dim=16, moe_intermediate_size=16,
                           n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1,
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1],
                                            "partial_rotary_factor": 0.5}),
    # GLM-4's dense blocks; its rotary as the configuration class fills it in
    "glm4v_text": dict(SIZES, model_type="glm4v_text",
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}),
}
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28,
              patch_size=14)
# GLM-4.1V's and GLM-4.5V's vision tower and their image and video tokens
GLM_VISION = dict(vision_config=dict(hidden_size=16, depth=1, num_heads=2, intermediate_size=32, out_hidden_size=32,
                                     patch_size=14, image_size=28, spatial_merge_size=2, temporal_patch_size=2),
                  image_token_id=90, video_token_id=91, image_start_token_id=92, image_end_token_id=93,
                  video_start_token_id=94, video_end_token_id=95)

# folder: config class, model class, text model, the whole model's other settings
MODELS = {
    "llava_next": ("LlavaNextConfig", "LlavaNextForConditionalGeneration", "llama",
                   dict(vision_config=dict(VISION, model_type="clip_vision_model", projection_dim=16),
                        image_token_index=90, image_grid_pinpoints=[[28, 28]])),
    "llava_onevision": ("LlavaOnevisionConfig", "LlavaOnevisionForConditionalGeneration", "qwen2",
                        dict(vision_config=dict(VISION, model_type="siglip_vision_model"), image_token_index=90,
                             video_token_index=91, image_grid_pinpoints=[[28, 28]])),
    "internvl": ("InternVLConfig", "InternVLForConditionalGeneration", "qwen2",
                 dict(vision_config=dict(VISION, image_size=[28, 28], patch_size=[14, 14]), image_token_id=90)),
    "aya_vision": ("AyaVisionConfig", "AyaVisionForConditionalGeneration", "cohere2",
                   dict(vision_config=dict(VISION, model_type="siglip_vision_model"), image_token_index=90,
                        downsample_factor=2)),
    "cohere2_vision": ("Cohere2VisionConfig", "Cohere2VisionForConditionalGeneration", "cohere2",
                       dict(vision_config=dict(VISION, model_type="siglip_vision_model"), image_token_id=90,
                            downsample_factor=2, alignment_intermediate_size=32)),
    "glm4v_moe": ("Glm4vMoeConfig", "Glm4vMoeForConditionalGeneration", "glm4v_moe_text", GLM_VISION),
    "glm4v": ("Glm4vConfig", "Glm4vForConditionalGeneration", "glm4v_text", GLM_VISION),
}


def main(argv):
    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf-multimodal"
    for folder, spec in MODELS.items():
        make(root, folder, *spec)


def make(root, folder, config_class, model_class, text, settings):
    import torch
    import transformers

    config = getattr(transformers, config_class)(text_config=dict(TEXT[text]), **settings)
    model = getattr(transformers, model_class)(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED)
    hf_fixtures.redraw(model, gen)
    ids = torch.randint(0, 89, (BATCH, SEQ), generator=gen)  # below the image and video ids
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    hf_fixtures.save(os.path.join(root, folder), "make-hf-multimodal-fixtures.py", model, ids, {"logits": logits},
                     "a tiny `%s` with a %s text model, float32, CPU, every parameter redrawn from a generator seeded "
                     "with %d; `reference.safetensors` holds its logits for %d x %d seeded ids alone."
                     % (model_class, text, SEED, BATCH, SEQ))


if __name__ == "__main__":
    main(sys.argv)

"""The LCL model: ViT (patch tokens, CLS output dropped) → attentive pooler → causal LM.

Follows OpenGVLab/LCL (`lcl_model.py`, `attentive.py`): the pooler's single learned query cross-attends over the
patch tokens to give the image's latent, and the same value and output projections map every patch token into
the LM's input space, where the tokens replace the `<img>` placeholders. The LM is a pre-LN GPT with learned
absolute positions; `ln_final` + `text_projection` read the contrastive feature at each `<soi>`, and an untied
`lm_head` (LayerNorm + bias-free Linear) gives the generation logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from omnicorpus.train.batch import Batch
from omnicorpus.train.config import TrainerConfig

# OpenAI CLIP pixel statistics, used by OpenCLIP and LCL.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x)) with a 4× GELU MLP."""

    def __init__(self, width: int, heads: int, causal: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, causal)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def init_weights(self, width: int, layers: int) -> None:
        # OpenCLIP's transformer init: residual-branch outputs shrink with depth.
        attn_std, proj_std, fc_std = width ** -0.5, (width ** -0.5) * (2 * layers) ** -0.5, (2 * width) ** -0.5
        nn.init.normal_(self.attn.qkv.weight, std=attn_std)
        nn.init.normal_(self.attn.proj.weight, std=proj_std)
        nn.init.normal_(self.mlp[0].weight, std=fc_std)
        nn.init.normal_(self.mlp[2].weight, std=proj_std)
        for linear in (self.attn.qkv, self.attn.proj, self.mlp[0], self.mlp[2]):
            nn.init.zeros_(linear.bias)


class VisionTransformer(nn.Module):
    def __init__(self, image_size: int, patch_size: int, width: int, layers: int, heads: int):
        super().__init__()
        tokens = (image_size // patch_size) ** 2
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(tokens + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(Block(width, heads, causal=False) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)
        for block in self.blocks:
            block.init_weights(width, layers)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] normalised pixels → [N, P, width] patch tokens (the CLS output is dropped, as in LCL)."""
        x = self.conv1(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)[:, 1:]


class AttentivePooler(nn.Module):
    """LCL's AttentivePoolingProjection: one learned query; K and V have their own LayerNorms; q/k/v have biases.

    Returns `pooled` [N, out] (the query's attention over the patches, through `proj`) and `tokens` [N, P, out]
    (`proj(v(norm_v(x)))` on every patch): both share the value and output projections.
    """

    def __init__(self, input_dim: int, output_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Parameter(torch.randn(1, 1, input_dim))
        self.norm_q, self.norm_k, self.norm_v = (nn.LayerNorm(input_dim) for _ in range(3))
        self.q = nn.Linear(input_dim, output_dim)
        self.k = nn.Linear(input_dim, output_dim)
        self.v = nn.Linear(input_dim, output_dim)
        self.proj = nn.Linear(output_dim, output_dim, bias=False)
        for linear in (self.q, self.k, self.v):
            nn.init.zeros_(linear.bias)  # LCL: q/k/v biases start at zero

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count, patches, _ = x.shape
        values = self.v(self.norm_v(x))
        tokens = self.proj(values)
        width = values.shape[-1]
        q = self.q(self.norm_q(self.query.to(x.dtype))).expand(count, 1, width)
        k = self.k(self.norm_k(x))

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(count, t.shape[1], self.heads, width // self.heads).transpose(1, 2)

        pooled = F.scaled_dot_product_attention(split(q), split(k), split(values))
        pooled = self.proj(pooled.transpose(1, 2).reshape(count, width))
        return pooled, tokens


class LanguageModel(nn.Module):
    def __init__(self, vocab_size: int, width: int, layers: int, heads: int, context_length: int, embed_dim: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.blocks = nn.ModuleList(Block(width, heads, causal=True) for _ in range(layers))
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.lm_head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, vocab_size, bias=False))
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # OpenCLIP text tower
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        # Small output weights put the first generation loss at ln(vocab) (lcl.md §7.5 check 11).
        nn.init.normal_(self.lm_head[1].weight, std=0.02)
        for block in self.blocks:
            block.init_weights(width, layers)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = embeddings + self.positional_embedding[: embeddings.shape[1]].to(embeddings.dtype)
        for block in self.blocks:
            x = block(x)
        return x


@dataclass
class LCLOutput:
    pooled: torch.Tensor  # [M, E] image latents of the contrastive pairs
    text_features: torch.Tensor  # [M, E] text_projection(ln_final(h at <soi>))
    gen_logits: torch.Tensor  # [T, V] at the generation positions
    # The learned temperature, read inside forward so that sharded (FSDP2) models hand out a full tensor.
    logit_scale: torch.Tensor
    hidden: torch.Tensor | None = None  # [B, L, D] LM outputs, when asked for


class LCLModel(nn.Module):
    def __init__(self, config: TrainerConfig):
        super().__init__()
        if config.lm.vocab_size <= 0:
            raise ValueError("lm.vocab_size is 0: set it from the tokenizer before building the model")
        vision, lm = config.vision, config.lm
        self.tokens_per_image = vision.tokens_per_image
        self.visual = VisionTransformer(vision.image_size, vision.patch_size, vision.width, vision.layers,
                                        vision.heads)
        self.pooler = AttentivePooler(vision.width, lm.width, config.loss.pool_heads)
        self.lm = LanguageModel(lm.vocab_size, lm.width, lm.layers, lm.heads, lm.context_length, config.embed_dim)
        # Shape [1], not a scalar: FSDP2 shards every parameter along dimension 0.
        self.logit_scale = nn.Parameter(torch.tensor([config.loss.init_logit_scale]))
        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def encode_patches(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [N, H, W, 3] → (pooled [N, D], per-patch tokens [N, P, D])."""
        pixels = images.permute(0, 3, 1, 2).float().div_(255)
        pixels = (pixels - self.pixel_mean) / self.pixel_std
        return self.pooler(self.visual(pixels))

    def forward(self, batch: Batch, return_hidden: bool = False) -> LCLOutput:
        pooled, tokens = self.encode_patches(batch.images)
        rows, length = batch.ids.shape
        embeddings = self.lm.token_embedding(batch.ids).reshape(rows * length, -1)
        # Out-of-place scatter: gradients reach both the token embeddings and the image tokens.
        embeddings = embeddings.index_copy(0, batch.img_tok_idx, tokens.reshape(-1, tokens.shape[-1]).to(
            embeddings.dtype))
        hidden = self.lm(embeddings.view(rows, length, -1))
        flat = hidden.reshape(rows * length, -1)
        text_features = self.lm.ln_final(flat[batch.soi_idx]) @ self.lm.text_projection.to(flat.dtype)
        gen_logits = self.lm.lm_head(flat[batch.gen_src])
        return LCLOutput(pooled[batch.soi_img], text_features, gen_logits, self.logit_scale * 1.0,
                         hidden if return_hidden else None)

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image latents, as compared in L_con."""
        return F.normalize(self.encode_patches(images)[0].float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, ids: torch.Tensor, soi_positions: torch.Tensor) -> torch.Tensor:
        """L2-normalised LM features at one `<soi>` per row (LCL's encode_text: `<sot> text <soi>`)."""
        hidden = self.lm(self.lm.token_embedding(ids))
        features = hidden[torch.arange(ids.shape[0], device=ids.device), soi_positions]
        return F.normalize((self.lm.ln_final(features) @ self.lm.text_projection).float(), dim=-1)

    def clamp_logit_scale(self, maximum: float) -> None:
        with torch.no_grad():
            self.logit_scale.clamp_(0, maximum)


def train_flops(config: TrainerConfig, batch: Batch) -> float:
    """Training FLOPs of one step on this batch: 3 × forward (matmuls and attention; norms and softmax left out).

    Forward per image: 2 · ViT block parameters · (P + 1) tokens + attention 4 · layers · (P + 1)² · width + the
    patch embedding + the pooler's projections; LM: 2 · block parameters · B · L + 4 · layers · L² · width · B
    + the head on the generation positions (nanoGPT's estimate, extended to the vision side).
    """
    vision, lm = config.vision, config.lm
    patches = vision.tokens_per_image
    tokens = patches + 1
    images = batch.num_images
    vit = images * (2 * 12 * vision.layers * vision.width ** 2 * tokens
                    + 4 * vision.layers * tokens ** 2 * vision.width
                    + 2 * 3 * vision.patch_size ** 2 * vision.width * patches)
    pool = images * 2 * patches * (2 * vision.width * lm.width + lm.width ** 2)
    rows, length = batch.ids.shape
    language = (2 * 12 * lm.layers * lm.width ** 2 * rows * length + 4 * lm.layers * length ** 2 * lm.width * rows)
    head = 2 * lm.width * lm.vocab_size * batch.gen_src.numel()
    return 3.0 * (vit + pool + language + head)

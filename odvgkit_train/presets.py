"""Model presets: the Grounding DINO architectures ``--model`` names.

``swin-t`` is MM-Grounding-DINO-T exactly as mmdet's
``configs/mm_grounding_dino/grounding_dino_swin-t_pretrain_obj365.py`` builds it (so official
checkpoints load with strict key matching; tests/train checks this against mmdet's own config).
``swin-b`` swaps in the Swin-B backbone of mmdet's Grounding-DINO-B, ``swin-l`` is
``grounding_dino_swin-l_pretrain_all.py`` (5 feature levels). ``tiny`` keeps every module type but
shrinks depths, queries and feed-forward widths so a CPU runs an iteration in about a second.

Training-only knobs that do not change parameters are set for portability: no gradient
checkpointing (``with_cp``/``num_cp`` need fairscale and are a GPU memory trade), no pretrained
backbone URL (weights come from ``--load-from``; nothing is downloaded).
"""

from __future__ import annotations

import copy
from typing import Any

from odvgkit.errors import OdvgError

EMBED_DIMS = 256  # fixed: Grounding DINO's text position embedding is hard-coded to 256


def _swin(embed_dims: int, depths: list[int], heads: list[int], window: int, out_indices: tuple[int, ...],
          pretrain_img_size: int = 224, drop_path_rate: float = 0.2) -> dict[str, Any]:
    return dict(
        type="SwinTransformer",
        pretrain_img_size=pretrain_img_size,
        embed_dims=embed_dims,
        depths=depths,
        num_heads=heads,
        window_size=window,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=drop_path_rate,
        patch_norm=True,
        out_indices=out_indices,
        with_cp=False,
        convert_weights=True,
        frozen_stages=-1,
    )


def _model(
    text_encoder: str,
    backbone: dict[str, Any],
    in_channels: list[int],
    num_levels: int = 4,
    num_queries: int = 900,
    enc_layers: int = 6,
    dec_layers: int = 6,
    ffn: int = 2048,
    text_ffn: int = 1024,
    fusion_dim: int = 1024,
    num_dn_queries: int = 100,
    max_per_img: int = 300,
) -> dict[str, Any]:
    return dict(
        type="GroundingDINO",
        num_queries=num_queries,
        with_box_refine=True,
        as_two_stage=True,
        num_feature_levels=num_levels,
        data_preprocessor=dict(
            type="DetDataPreprocessor",
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_mask=False,
        ),
        language_model=dict(
            type="BertModel",
            name=text_encoder,
            max_tokens=256,
            pad_to_max=False,
            use_sub_sentence_represent=True,
            special_tokens_list=["[CLS]", "[SEP]", ".", "?"],
            add_pooling_layer=False,
        ),
        backbone=backbone,
        neck=dict(
            type="ChannelMapper",
            in_channels=in_channels,
            kernel_size=1,
            out_channels=EMBED_DIMS,
            act_cfg=None,
            bias=True,
            norm_cfg=dict(type="GN", num_groups=32),
            num_outs=num_levels,
        ),
        encoder=dict(
            num_layers=enc_layers,
            num_cp=0,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=EMBED_DIMS, num_levels=num_levels, dropout=0.0),
                ffn_cfg=dict(embed_dims=EMBED_DIMS, feedforward_channels=ffn, ffn_drop=0.0),
            ),
            text_layer_cfg=dict(
                self_attn_cfg=dict(num_heads=4, embed_dims=EMBED_DIMS, dropout=0.0),
                ffn_cfg=dict(embed_dims=EMBED_DIMS, feedforward_channels=text_ffn, ffn_drop=0.0),
            ),
            fusion_layer_cfg=dict(
                v_dim=EMBED_DIMS, l_dim=EMBED_DIMS, embed_dim=fusion_dim, num_heads=4, init_values=1e-4
            ),
        ),
        decoder=dict(
            num_layers=dec_layers,
            return_intermediate=True,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=EMBED_DIMS, num_heads=8, dropout=0.0),
                cross_attn_text_cfg=dict(embed_dims=EMBED_DIMS, num_heads=8, dropout=0.0),
                cross_attn_cfg=dict(embed_dims=EMBED_DIMS, num_heads=8, num_levels=num_levels, dropout=0.0),
                ffn_cfg=dict(embed_dims=EMBED_DIMS, feedforward_channels=ffn, ffn_drop=0.0),
            ),
            post_norm_cfg=None,
        ),
        positional_encoding=dict(num_feats=128, normalize=True, offset=0.0, temperature=20),
        bbox_head=dict(
            type="GroundingDINOHead",
            num_classes=256,
            sync_cls_avg_factor=True,
            contrastive_cfg=dict(max_text_len=256, log_scale="auto", bias=True),
            loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type="L1Loss", loss_weight=5.0),
            loss_iou=dict(type="GIoULoss", loss_weight=2.0),
        ),
        dn_cfg=dict(
            label_noise_scale=0.5,
            box_noise_scale=1.0,
            group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=num_dn_queries),
        ),
        train_cfg=dict(
            assigner=dict(
                type="HungarianAssigner",
                match_costs=[
                    dict(type="BinaryFocalLossCost", weight=2.0),
                    dict(type="BBoxL1Cost", weight=5.0, box_format="xywh"),
                    dict(type="IoUCost", iou_mode="giou", weight=2.0),
                ],
            )
        ),
        test_cfg=dict(max_per_img=max_per_img),
    )


def _tiny(text_encoder: str) -> dict[str, Any]:
    return _model(
        text_encoder,
        _swin(32, [1, 1, 1, 1], [1, 2, 4, 8], 4, (1, 2, 3), drop_path_rate=0.0),
        [64, 128, 256],
        num_queries=30,
        enc_layers=1,
        dec_layers=2,
        ffn=256,
        text_ffn=256,
        fusion_dim=256,
        num_dn_queries=10,
        max_per_img=30,
    )


def _swin_t(text_encoder: str) -> dict[str, Any]:
    return _model(text_encoder, _swin(96, [2, 2, 6, 2], [3, 6, 12, 24], 7, (1, 2, 3)), [192, 384, 768])


def _swin_b(text_encoder: str) -> dict[str, Any]:
    backbone = _swin(128, [2, 2, 18, 2], [4, 8, 16, 32], 12, (1, 2, 3), pretrain_img_size=384, drop_path_rate=0.3)
    return _model(text_encoder, backbone, [256, 512, 1024])


def _swin_l(text_encoder: str) -> dict[str, Any]:
    backbone = _swin(192, [2, 2, 18, 2], [6, 12, 24, 48], 12, (0, 1, 2, 3), pretrain_img_size=384)
    return _model(text_encoder, backbone, [192, 384, 768, 1536], num_levels=5)


PRESETS = {"tiny": _tiny, "swin-t": _swin_t, "swin-b": _swin_b, "swin-l": _swin_l}

# Image scales: (shorter side choices, longer side cap) for training; fixed test scale.
TRAIN_SCALES: dict[str, list[tuple[int, int]]] = {
    "tiny": [(96, 128), (112, 128), (128, 128)],
    **{
        name: [(s, 1333) for s in (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)]
        for name in ("swin-t", "swin-b", "swin-l")
    },
}
TEST_SCALE: dict[str, tuple[int, int]] = {
    "tiny": (128, 128),
    "swin-t": (800, 1333),
    "swin-b": (800, 1333),
    "swin-l": (800, 1333),
}
# Learning rate at a total batch of BASE_BATCH images (AdamW); scaled linearly with the real batch.
BASE_BATCH = 16
BASE_LR = {
    "pretrain": {"tiny": 1e-3, "swin-t": 1e-4, "swin-b": 1e-4, "swin-l": 1e-4},
    "finetune": {"tiny": 1e-3, "swin-t": 5e-5, "swin-b": 5e-5, "swin-l": 5e-5},
}


def model_config(preset: str, text_encoder: str) -> dict[str, Any]:
    """The mmdet ``model`` dict of a preset (a fresh copy)."""
    if preset not in PRESETS:
        raise OdvgError(f"--model {preset!r}: unknown model preset; choose one of {', '.join(PRESETS)}", exit_code=2)
    return copy.deepcopy(PRESETS[preset](str(text_encoder)))

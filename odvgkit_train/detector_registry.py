"""What ``odvgkit train detector`` configs reference in mmdet's registries beyond mmdet itself.

* :class:`ODVGDetectionDataset` — mmdet's ``ODVGDataset`` (OD mode, unchanged parsing) plus the
  ``img_id`` every record needs for ``CocoMetric`` (ODVG lines carry no id: the 0-based line index
  among records is used), and a check that label ids are ``0 … C−1`` and name a class.
* :class:`StagedPipelineSwitchHook` — RTMDet's stage-2 switch (drop Mosaic/MixUp for the last
  epochs). mmdet's ``PipelineSwitchHook`` assigns ``train_dataloader.dataset.pipeline``, which does
  nothing on a ``ConcatDataset`` (several ODVG files), and counts epochs only, which an
  iteration-based run (``--max-iters``) never advances. This one sets the pipeline of every
  underlying dataset, switches at an epoch or an iteration, and restarts data-loading workers so
  they see the new pipeline. Single-file epoch runs use mmdet's hook unchanged.
* :class:`TrainSampleVisHook` — sends one training image with its ground-truth boxes to the
  visualiser backends (local files or TensorBoard) every ``interval`` iterations, so a run without
  a validation set still shows what the model is fed (after Mosaic/MixUp/crop).
"""

from __future__ import annotations

from typing import Any

from mmdet.datasets import ODVGDataset
from mmdet.registry import DATASETS, HOOKS
from mmengine.hooks import Hook


@DATASETS.register_module()
class ODVGDetectionDataset(ODVGDataset):
    """``ODVGDataset`` for a closed-set detector: ``metainfo.classes`` are the labels, records get ``img_id``."""

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        n_classes = len(self.metainfo.get("classes") or ())
        for i, info in enumerate(data_list):
            info["img_id"] = i
            for inst in info.get("instances", []):
                if not 0 <= inst["bbox_label"] < n_classes:
                    raise ValueError(f"{self.ann_file}: record {i + 1}: label {inst['bbox_label']} is not a class "
                                     f"index 0 … {n_classes - 1} of the label map")
        return data_list


def _leaf_datasets(dataset: Any) -> list[Any]:
    inner = getattr(dataset, "datasets", None)
    if inner is not None:
        return [leaf for d in inner for leaf in _leaf_datasets(d)]
    if hasattr(dataset, "dataset") and not hasattr(dataset, "pipeline"):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


@HOOKS.register_module()
class StagedPipelineSwitchHook(Hook):
    """Switch every training dataset to ``switch_pipeline`` at ``switch_epoch`` or ``switch_iter``."""

    priority = "NORMAL"

    def __init__(self, switch_pipeline: list[dict[str, Any]], switch_epoch: int | None = None,
                 switch_iter: int | None = None) -> None:
        self.switch_pipeline = switch_pipeline
        self.switch_epoch = switch_epoch
        self.switch_iter = switch_iter
        self.switched = False
        self._retired: list[Any] = []

    def _switch(self, runner: Any, restart_iterator: bool) -> None:
        from mmcv.transforms import Compose

        loader = runner.train_dataloader
        for ds in _leaf_datasets(loader.dataset):
            ds.pipeline = Compose(self.switch_pipeline)
        if getattr(loader, "persistent_workers", False):  # workers hold the old pipeline: force a restart
            loader._DataLoader__initialized = False
            loader._iterator = None
            loader._DataLoader__initialized = True
        if restart_iterator and getattr(loader, "num_workers", 0) > 0 and hasattr(runner.train_loop, "dataloader_iterator"):
            # worker processes hold copies of the old pipeline: start new ones. The old iterator is kept
            # referenced: collecting it would close the InfiniteSampler's shared index generator.
            from mmengine.runner.loops import _InfiniteDataloaderIterator

            old = runner.train_loop.dataloader_iterator
            inner = getattr(old, "_iterator", None)
            if hasattr(inner, "_shutdown_workers"):
                inner._shutdown_workers()
            self._retired.append(old)
            runner.train_loop.dataloader_iterator = _InfiniteDataloaderIterator(loader)
        where = f"iteration {runner.iter + 2}" if restart_iterator else f"epoch {runner.epoch + 1}"  # 1-based, as logged
        runner.logger.info(f"Switch pipeline now! (stage 2 from {where})")
        self.switched = True

    def before_train_epoch(self, runner: Any) -> None:
        if not self.switched and self.switch_epoch is not None and runner.epoch >= self.switch_epoch:
            self._switch(runner, restart_iterator=False)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        # runner.iter is the index of the iteration that just ran; the next batch is drawn after this
        if not self.switched and self.switch_iter is not None and runner.iter + 1 >= self.switch_iter:
            self._switch(runner, restart_iterator=True)


@HOOKS.register_module()
class TrainSampleVisHook(Hook):
    """Every ``interval`` iterations, draw the first image of the batch with its ground truth."""

    priority = "LOWEST"

    def __init__(self, interval: int = 50) -> None:
        self.interval = max(1, int(interval))

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if data_batch is None or runner.iter % self.interval:
            return
        from mmengine.dist import is_main_process

        if not is_main_process():
            return
        visualizer = runner.visualizer
        if not getattr(visualizer, "dataset_meta", None):
            visualizer.dataset_meta = runner.train_dataloader.dataset.metainfo
        img = data_batch["inputs"][0].permute(1, 2, 0).cpu().numpy()[..., ::-1].copy()  # BGR CHW → RGB HWC
        sample = data_batch["data_samples"][0].clone()
        boxes = sample.gt_instances.bboxes
        if hasattr(boxes, "tensor"):  # training transforms keep mmdet's HorizontalBoxes; the visualiser wants a tensor
            sample.gt_instances.bboxes = boxes.tensor
        visualizer.add_datasample("train_sample", img, data_sample=sample, draw_gt=True, draw_pred=False,
                                  show=False, step=runner.iter)

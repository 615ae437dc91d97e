"""``WeightSyncCheckHook``: prove that data-parallel ranks hold the same weights (``--check-sync``).

Each rank hashes its model parameters before and after training and writes
``<work_dir>/weights_rank<R>.txt`` (``iterations before_sha256 after_sha256``); after training the
ranks exchange their hashes and the run fails if any differ. DDP keeps replicas in sync by
construction; this catches setups where it silently does not (a rank-local parameter, a
non-deterministic op on one rank, a custom wrapper that skips the all-reduce).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


def weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@HOOKS.register_module()
class WeightSyncCheckHook(Hook):
    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.before = ""

    @staticmethod
    def _module(runner: Any) -> Any:
        from mmengine.model import is_model_wrapper

        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner: Any) -> None:
        self.before = weights_digest(self._module(runner))

    def after_train(self, runner: Any) -> None:
        from mmengine.dist import all_gather_object, get_rank, get_world_size

        after = weights_digest(self._module(runner))
        rank = get_rank()
        Path(runner.work_dir, f"weights_rank{rank}.txt").write_text(f"{runner.iter} {self.before} {after}\n")
        digests = all_gather_object(after) if get_world_size() > 1 else [after]
        runner.logger.info(f"weight digests per rank after {runner.iter} iterations: {digests}")
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks disagree on the weights after training: {digests}")

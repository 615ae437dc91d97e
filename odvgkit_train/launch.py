"""Worker entry point for distributed runs: ``python -m odvgkit_train.launch CONFIG --launcher L``.

``odvgkit train --nproc N`` spawns ``torch.distributed.run`` (torchrun) with this module, exactly as
mmdet's ``tools/dist_train.sh`` spawns ``tools/train.py``; each rank reads the config odvgkit wrote
and runs mmengine's Runner with the launcher set, so learning rate and batch were already scaled.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def torchrun_command(config: Path, nproc: int, nnodes: int = 1, node_rank: int = 0,
                     master_addr: str = "127.0.0.1", master_port: int = 29500) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={nnodes}", f"--node_rank={node_rank}", f"--nproc_per_node={nproc}",
        f"--master_addr={master_addr}", f"--master_port={master_port}",
        "-m", "odvgkit_train.launch", str(config), "--launcher", "pytorch",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config")
    parser.add_argument("--launcher", default="pytorch", choices=["none", "pytorch", "slurm", "mpi"])
    args = parser.parse_args(argv)
    from mmengine.config import Config

    from odvgkit_train.api import train
    from odvgkit_train.runtime import prepare

    prepare()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if "LOCAL_RANK" not in os.environ and args.launcher == "pytorch":
        os.environ["LOCAL_RANK"] = "0"
    train(cfg.to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

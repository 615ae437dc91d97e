"""Benchmark inputs shaped like the real files, generated independently of ``benchmarks/synth.py``.

One module per row of ``benchmarks/bench_upstream.py``; each defines

* ``SCALES``: ``{"full": ..., "small": ...}`` (``full`` = the size issue #17 names);
* ``generate(root, scale) -> dict[str, Path]``: writes the input under ``root`` (deterministic; kept
  and reused when already there) and returns its named paths;
* ``upstream(inputs, out, scripts) -> list[str]`` and ``ours(inputs, out) -> list[str]``: the
  ``python`` arguments that run the real upstream script / odvgkit, writing under ``out``;
* ``compare(inputs, out_upstream, out_ours) -> str``: whether both wrote the same records, or how
  they differ (each difference a documented deviation, docs/deviations.md).
"""

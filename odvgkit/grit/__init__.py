"""GRIT-20M pipeline: img2dataset download, shard processing, local or Spark execution.

``download`` drives img2dataset, ``process`` turns its webdataset shards into per-shard annotation
lists and image folders, ``engine`` runs per-shard functions locally or on Spark; the conversion to
ODVG lives with the other converters in :mod:`odvgkit.convert.grit`. Heavy dependencies
(img2dataset, pyspark) are imported only where used: the ``grit`` extra.
"""

"""Pseudo-label loops: versioned rounds of label → review → finetune (docs/pseudolabel.md).

``init`` (unlabeled ODVG from images + classes or captions) and ``diff`` (compare two label files)
are pure Python; ``label`` and ``loop`` need the ``train`` extra (:mod:`odvgkit_train`), imported
lazily inside the functions that predict or train.
"""

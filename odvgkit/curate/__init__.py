"""Curation: pure functions over record streams, one module per job.

================ ==========================================================================
module           job
================ ==========================================================================
``sources``      what an input file *is* (ODVG, COCO, LVIS, MDETR refexp, gRefCOCO, refs pickle)
                 and the identity of every image it names (COCO id, file name, path)
``leakage``      which training images also occur in evaluation sets (ids, names, hashes)
``hashes``       content / perceptual hashes of image files with an on-disk cache
``dedup``        filtering COCO json / ODVG files by a set of leaking images
``split``        deterministic sampling and stratified train/val splits
``mix``          the mixture manifest the trainer consumes (+ MMDetection snippet, materialising)
``stats``        dataset statistics (bounded memory) and ``plot`` for the figure
``lint``         grounding checks against the BERT tokenizer (256-token limit, empty spans)
``labels``       label-map normalisation, merging and contiguous remapping
================ ==========================================================================

Nothing here prints or parses command lines; the CLI modules (``odvgkit/cli/{dedup,leakage,
split,mix,stats,lint,labels}.py``) are thin wrappers.
"""

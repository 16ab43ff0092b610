"""Downstream benchmark: fine-tune a Hugging Face encoder on GLUE, PQ-quantize it with each
empty-cluster heuristic combination, evaluate, and store one row per case.

Modules: :mod:`.data` (GLUE TSVs, metrics), :mod:`.finetune` (fine-tuning, cache),
:mod:`.quant_noise` (Quant-Noise), :mod:`.quantize` (PQ replacement, size accounting),
:mod:`.stages` (iPQ stages), :mod:`.results` (the ``downstream`` table), :mod:`.run`
(cases and grids), :mod:`.cli` (``python -m pgbench glue``).  ``transformers`` is
imported only when a model is loaded, so importing this package is cheap.
"""

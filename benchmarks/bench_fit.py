"""Wall time (every method on every data set) and peak memory (every method, layer set) of a full run."""

from __future__ import annotations

from . import common


class Fit:
    """``time_fit``: one 15-iteration seeded run of ``method`` on ``dataset``.

    A fit takes 0.05 to 3 s here, so each sample is one fit (``number = 1``), with no
    warm-up call and at most 3 samples per round.
    """

    params = (list(common.DATASETS), common.methods())
    param_names = ["dataset", "method"]
    number = 1
    warmup_time = 0.0
    rounds = 2
    repeat = (1, 3, 20.0)
    timeout = 300

    def setup(self, dataset, method):
        common.require_method(method)
        common.dataset(dataset)          # load (and cache) outside the timed call

    def time_fit(self, dataset, method):
        common.fit(dataset, method)


class FitMemory:
    """``peakmem_fit``: peak RSS of the process around one fit of ``method`` on the layer set.

    Only the layer set: the data are a few MiB at most, so the peak is the torch
    runtime plus what a heuristic allocates, and a heuristic that builds an (n, k)
    matrix (64 MiB here) stands out the same way on every set.
    """

    params = (["layer"], common.methods())
    param_names = ["dataset", "method"]
    timeout = 300

    def setup(self, dataset, method):
        common.require_method(method)
        common.dataset(dataset)

    def peakmem_fit(self, dataset, method):
        common.fit(dataset, method)

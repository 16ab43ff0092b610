"""The report's figures: matplotlib drawings of the tables, returned as base64 PNG.

Every figure gives each method the same colour and marker (seaborn's colour-blind
palette, :func:`method_styles`), labels its axes with units, and comes with a
one-line caption that says which direction is better.  Figures are drawn on
:class:`matplotlib.figure.Figure` objects under a local style context: no pyplot,
no global state, no backend switch.  A function returns None when it has nothing
to draw.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .stats import has_metrics, namer

__all__ = ["Picture", "method_styles", "pareto_figure", "resolution_figure", "curves_figure",
           "sizes_figure", "downstream_figure"]

#: the smallest resolution time the resolution figure draws (ms): its log axis needs a floor
FLOOR_MS = 0.001
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">", "h")
DPI = 100


@dataclass(frozen=True)
class Picture:
    title: str
    caption: str
    png_base64: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class Style:
    color: str
    marker: str


#: palette slots (seaborn "colorblind": 0 blue, 1 orange, 2 green, 3 vermilion, 4 pink, 5 brown, 6 light
#: pink, 7 grey, 8 yellow, 9 light blue) of the usual methods, the same in every report
PREFERRED = {"fairseq + fairseq": 0, "pg + pg": 2, "pg + pg + dwc": 3, "kmeans++ + sklearn": 1,
             "random + faiss": 4, "original": 7}


def method_styles(methods: Sequence[str]) -> dict[str, Style]:
    """One fixed colour (seaborn "colorblind") and marker per method.

    The usual combinations keep the slots of :data:`PREFERRED`; other methods take
    the free slots in sorted order (cycling past ten, with other markers).
    """
    colors = sns.color_palette("colorblind", 10).as_hex()
    names = sorted(set(methods))
    slots = {m: PREFERRED[m] for m in names if m in PREFERRED}
    free = [i for i in range(len(colors)) if i not in PREFERRED.values()]
    free += [i for i in PREFERRED.values() if i not in slots.values()]
    others = [m for m in names if m not in slots]
    for j, m in enumerate(others):
        slots[m] = free[j] if j < len(free) else len(colors) + j
    return {m: Style(colors[i % len(colors)], MARKERS[(i + i // len(colors)) % len(MARKERS)])
            for m, i in slots.items()}


def _style_rc() -> dict[str, Any]:
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85),
            "axes.titleweight": "bold", "legend.frameon": False}


def _picture(fig: Figure, title: str, caption: str, alt: str) -> Picture:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    width, height = (int(round(v * DPI)) for v in fig.get_size_inches())
    return Picture(title, caption, base64.b64encode(buf.getvalue()).decode("ascii"), alt, width, height)


def _new(n_panels: int, width: float = 9.0, height: float = 3.2, sharey: bool = False) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, n_panels, sharey=sharey, squeeze=False)[0]
    return fig, list(axes)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _strip(ax, groups: dict[str, list[float]], styles: dict[str, Style], seed: int = 0) -> None:
    """One row per method: every value a dot (jittered vertically), the mean a black bar."""
    rng = np.random.default_rng(seed)
    order = list(groups)
    for i, method in enumerate(order):
        vals = np.asarray(groups[method], dtype=float)
        if vals.size:
            st = styles[method]
            ax.scatter(vals, i + rng.uniform(-0.22, 0.22, vals.size), s=18, color=st.color, marker=st.marker,
                       alpha=0.75, linewidths=0)
            ax.plot([vals.mean()] * 2, [i - 0.32, i + 0.32], color="black", linewidth=2)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)


# --------------------------------------------------------------------- figures

def _log_axis(ax, axis: str = "x", fine: bool = False) -> None:
    """A log axis with plain-number tick labels (1, 2, 5, 10, ...; ``fine``: 1, 1.2, 1.5, 2, 3, 5, 7, ...)."""
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if high > 0 and low > 0 and high / low > 1e3:    # many decades: a label per decade only, or they overlap
        subs: tuple[float, ...] = (1.0,)
    else:
        subs = (1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 7.0) if fine else (1.0, 2.0, 5.0)
    target.set_major_locator(LogLocator(subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def pareto_figure(pareto: Sequence[dict[str, Any]], primary_label: str, time_label: str,
                  styles: dict[str, Style]) -> Picture | None:
    """Quality (the primary metric) against cost (run time), both ratios on log axes, the front joined."""
    pts = [r for r in pareto if r["primary"] and r["time"] and r["primary"].value is not None
           and r["time"].value is not None and math.isfinite(r["primary"].value) and math.isfinite(r["time"].value)]
    if not pts:
        return None
    with matplotlib.rc_context(_style_rc()):
        fig, axes = _new(1, width=9.0, height=4.2)
        ax = axes[0]
        for r in pts:
            st = styles[r["method"]]
            q, t = r["primary"], r["time"]
            xerr = None if t.low is None else [[t.value - t.low], [t.high - t.value]]
            yerr = None if q.low is None else [[q.value - q.low], [q.high - q.value]]
            ax.errorbar([t.value], [q.value], xerr=xerr, yerr=yerr, fmt=st.marker, color=st.color, capsize=3,
                        markersize=8 if r["on_front"] else 6, markeredgecolor="black" if r["on_front"] else st.color,
                        label=r["method"] + (" (front)" if r["on_front"] else ""))
        front = sorted((r["time"].value, r["primary"].value) for r in pts if r["on_front"])
        if len(front) > 1:
            ax.step(*zip(*front), where="post", color="0.4", linestyle="--", linewidth=1, zorder=0)
        _log_axis(ax, "x", fine=True)
        _log_axis(ax, "y", fine=True)
        ax.set_xlabel(f"{time_label} (geometric mean, log axis)")
        ax.set_ylabel(textwrap.fill(f"{primary_label} (geometric mean, log axis)", 34))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        return _picture(fig, "Quality against cost: the Pareto front",
                        "Each method at its geometric mean over runs (data set × seed) of the quality ratio and the "
                        "run-time ratio; bars: 95% paired bootstrap intervals over runs. Both axes are logarithmic "
                        "(ratios are positive). Lower-left is better; black-edged markers, joined by the dashed "
                        "line, are on the front (no other method is both faster and closer to the best). Empty "
                        "clusters are not folded in: see the table's own column.",
                        "scatter plot of quality ratio against run-time ratio per method with the Pareto front")


def resolution_figure(rows: Sequence[dict[str, Any]], styles: dict[str, Style]) -> Picture | None:
    """Per case: resolution rounds and resolution seconds, one row per method."""
    name = namer(rows)
    rounds: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for r in rows:
        if has_metrics(r):
            rounds.setdefault(name(r), []).extend(_finite([r.get("rounds_total")]))
            seconds.setdefault(name(r), []).extend(_finite([r.get("seconds_resolve")]))
    if not any(rounds.values()) and not any(seconds.values()):
        return None
    order = sorted(rounds)
    with matplotlib.rc_context(_style_rc()):
        fig, axes = _new(2, width=9.0, height=0.9 + 0.42 * len(order), sharey=True)
        # counts and milliseconds cannot be negative: log axes, rounds drawn as rounds + 1 (0 rounds at 1) and
        # times floored at FLOOR_MS (0 ms at the floor); never a symmetric-log axis with negative decades
        _strip(axes[0], {m: [v + 1 for v in rounds[m]] for m in order}, styles)
        ms = {m: [max(1e3 * s, FLOOR_MS) for s in seconds[m]] for m in order}
        _strip(axes[1], ms, styles, seed=1)
        for ax, left in ((axes[0], 0.8), (axes[1], min([v for m in order for v in ms[m]] or [1.0]) / 1.5)):
            ax.set_xscale("log")
            ax.set_xlim(left=left)
            _log_axis(ax, "x")
        axes[0].set_xlabel("resolution rounds per run + 1 (count, log axis)")
        axes[1].set_xlabel(f"resolution time per run (ms, log axis, floor {FLOOR_MS:g})")
        return _picture(fig, "Empty-cluster resolution effort",
                        "Each dot is one run, the black bar the mean. Log axes: rounds are drawn as rounds + 1 (a "
                        f"run with no round sits at 1), times below {FLOOR_MS:g} ms at {FLOOR_MS:g} ms. Lower is "
                        "better (fewer rounds, less time).",
                        "strip plots of resolution rounds and resolution time per method")


def curves_figure(curves: Sequence[dict[str, Any]], styles: dict[str, Style]) -> Picture | None:
    """Mean empty clusters after assignment / after resolution and relative inertia, against iteration."""
    if not curves:
        return None
    panels = [("n_empty_assigned", "empty clusters after assignment\n(mean count)"),
              ("n_empty_resolved", "empty clusters after resolution\n(mean count)")]
    if any(c["inertia_rel"] is not None for c in curves):
        panels.append(("inertia_rel", "inertia / best final inertia\n(ratio, mean)"))
    methods = sorted({c["method"] for c in curves})
    with matplotlib.rc_context(_style_rc()):
        fig, axes = _new(len(panels), height=3.4)
        for ax, (key, label) in zip(axes, panels):
            for m in methods:
                pts = [(c["iteration"], c[key]) for c in curves if c["method"] == m and c[key] is not None]
                if pts:
                    st = styles[m]
                    ax.plot(*zip(*pts), color=st.color, marker=st.marker, markersize=4, linewidth=1.5, label=m)
            ax.set_xlabel("Lloyd iteration (index)")
            ax.set_ylabel(label)
            if key == "inertia_rel":
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
            else:                                   # counts: from 0, and not a flat line at -0.04..0.04
                ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(methods), 5))
        return _picture(fig, "Per-iteration behaviour",
                        "Means over each method's runs that reached the iteration. Lower is better in every "
                        "panel (fewer empty clusters; inertia closer to the best, 1).",
                        "line plots of empty clusters and relative inertia against iteration, per method")


def sizes_figure(rows: Sequence[dict[str, Any]], styles: dict[str, Style]) -> Picture | None:
    """Per case: smallest and largest cluster over n/k, and the coefficient of variation of the sizes."""
    name = namer(rows)
    small: dict[str, list[float]] = {}
    large: dict[str, list[float]] = {}
    cv: dict[str, list[float]] = {}
    for r in rows:
        if has_metrics(r) and r.get("size_min") is not None and r.get("n") and r.get("k"):
            avg = r["n"] / r["k"]
            small.setdefault(name(r), []).append(r["size_min"] / avg)
            large.setdefault(name(r), []).extend(_finite([None if r.get("size_max") is None else r["size_max"] / avg]))
            cv.setdefault(name(r), []).extend(_finite([r.get("size_cv")]))
    if not small:
        return None
    order = sorted(small)
    with matplotlib.rc_context(_style_rc()):
        fig, axes = _new(3, height=0.9 + 0.42 * len(order), sharey=True)
        _strip(axes[0], {m: small[m] for m in order}, styles)
        _strip(axes[1], {m: large[m] for m in order}, styles, seed=1)
        _strip(axes[2], {m: cv[m] for m in order}, styles, seed=2)
        axes[0].set_xlabel("smallest cluster (× mean size n/k)")
        axes[1].set_xlabel("largest cluster (× mean size n/k)")
        axes[2].set_xlabel("size CV (std / mean, unitless)")
        return _picture(fig, "Cluster-size distributions",
                        "Each dot is one run, the black bar the mean. Higher smallest size is better (0 = an empty "
                        "cluster); lower largest size and CV mean more balanced clusters.",
                        "strip plots of the smallest and largest cluster sizes and the size CV per method")


def downstream_figure(table: Sequence[dict[str, Any]], styles: dict[str, Style]) -> Picture | None:
    """Downstream score against compression ratio, one panel per task, one line per method."""
    pts = [e for e in table if e["compression_ratio"] is not None and e["score"].mean is not None]
    if not pts:
        return None
    tasks = sorted({e["task"] for e in pts})
    methods = sorted({e["method"] for e in pts})
    with matplotlib.rc_context(_style_rc()):
        width = max(4.0, 3.4 * len(tasks))
        # about 2.6 inches per legend column, so long names ("... (iPQ stages)") are not clipped;
        # the figure grows with the legend's rows so the axes keep their height
        ncols = max(1, min(len(methods), int(width // 2.6)))
        fig, axes = _new(len(tasks), width=width, height=3.4 + 0.22 * math.ceil(len(methods) / ncols))
        for ax, task in zip(axes, tasks):
            here = [e for e in pts if e["task"] == task]
            for m in methods:
                line = sorted((e["compression_ratio"], e["score"]) for e in here if e["method"] == m)
                if not line:
                    continue
                st = styles[m]
                if m == "original":                 # the unquantized model: a reference level, not a point at x=1
                    ax.axhline(line[0][1].mean, color=st.color, linestyle="--", linewidth=1.5, label=m)
                    continue
                err = None
                if all(iv.low is not None for _, iv in line):
                    err = [[iv.mean - iv.low for _, iv in line], [iv.high - iv.mean for _, iv in line]]
                ax.errorbar([x for x, _ in line], [iv.mean for _, iv in line], yerr=err, color=st.color,
                            marker=st.marker, markersize=5, capsize=3, label=m)
            unit = "%" if max(e["score"].mean for e in here) > 1 else "0-1"
            metric = ", ".join(sorted({e["metric"] for e in here}))
            ax.set_title(task, fontsize="medium")
            ax.set_xlabel("compression ratio (×)")
            ax.set_ylabel(f"{metric} ({unit})")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols)
        return _picture(fig, "Accuracy against compression ratio",
                        "Downstream score of the quantized model (the task's main metric), mean over seeds (bars: "
                        "95% t-interval when there are several); dashed: the unquantized model. Higher is better, "
                        "at equal compression ratio.",
                        "line plots of downstream score against compression ratio per task and method")

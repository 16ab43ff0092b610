"""The API half of issue 9's bad-input table: every row is a one-line ValueError naming the value, before any work.

The rows live in ``tests/bad_inputs.py`` (which can also count outcomes on another
checkout); those for heuristic parameters are generated from the declarations, so a
new parameter or constraint gets its rows without editing this file.
"""

import dataclasses

import pytest

from bad_inputs import OUTCOMES, Row, bad_values, classify, count, rows
from pgbench import backends, registry
from pgbench.params import Int, Real

TABLE = rows()


@pytest.fixture
def no_work(monkeypatch):
    """Every heuristic hook and every assignment backend fails loudly if anything reaches it."""
    def refuse(*args, **kwargs):
        raise AssertionError("work began before the bad input was refused")

    registry.load_all()
    for stage in registry.STAGES:
        for name, h in list(registry._REGISTRY[stage].items()):
            monkeypatch.setitem(registry._REGISTRY[stage], name, dataclasses.replace(h, func=refuse))
    monkeypatch.setattr(backends, "make_assign", refuse)


def test_the_table_is_big_enough_and_covers_every_entry_point():
    assert len(TABLE) >= 70
    assert {r.target for r in TABLE} == {"kmeans", "KMeans.fit", "KMeans.predict", "bind", "pq", "sources.load"}
    assert len({r.id for r in TABLE}) == len(TABLE)


@pytest.mark.parametrize("row", [r for r in TABLE if r.target not in ("KMeans.predict", "sources.load")],
                         ids=lambda r: r.id)
def test_bad_input_is_a_one_line_value_error_naming_it_before_any_work(row, no_work):
    outcome, message = classify(row)
    assert outcome == "clear", f"{outcome}: {message}"


@pytest.mark.parametrize("row", [r for r in TABLE if r.target in ("KMeans.predict", "sources.load")],
                         ids=lambda r: r.id)
def test_bad_input_is_a_one_line_value_error_naming_it(row):
    outcome, message = classify(row)
    assert outcome == "clear", f"{outcome}: {message}"


def test_every_declared_constraint_gets_rows():
    declared = [(s, n, p) for s in registry.STAGES for n in registry.names(s)
                for p in registry.get(s, n).params.values()]
    assert declared
    for stage, name, p in declared:
        mine = [r for r in TABLE if r.target == "bind" and r.args[:2] == (stage, name) and p.name in r.args[2]]
        assert len(mine) == len(bad_values(p)) >= 2, (stage, name, p.name)
        if isinstance(p, (Int, Real)) and p.low is not None:
            assert any(r.id.endswith("below low") for r in mine)


def test_the_classifier_tells_the_four_outcomes_apart():
    def run(target):
        return classify(Row("t", target))

    from bad_inputs import TARGETS
    fake = {"clear": lambda: (_ for _ in ()).throw(ValueError("x is bad")),
            "unclear": lambda: (_ for _ in ()).throw(ValueError("x\nis bad")),
            "traceback": lambda: 1 / 0, "silent": lambda: None}
    for outcome, fn in fake.items():
        TARGETS[f"fake {outcome}"] = fn
    try:
        assert [run(f"fake {o}")[0] for o in OUTCOMES] == list(OUTCOMES)
        assert count([Row("t", "fake silent"), Row("t", "fake clear")]) == {
            "clear": 1, "unclear": 0, "traceback": 0, "silent": 1}
        assert classify(Row("t", "fake clear", expect=("y",)))[0] == "unclear"    # does not name the value
    finally:
        for outcome in fake:
            TARGETS.pop(f"fake {outcome}")

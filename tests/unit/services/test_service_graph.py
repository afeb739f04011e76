"""Unit: start levels and cycle detection over `requires` (helix_init.services.graph)."""

import pytest

from helix_init.services.graph import find_cycle, start_levels


def test_chain_starts_one_service_per_level() -> None:
    deps = {"a": ["b"], "b": ["c"], "c": []}
    assert start_levels(deps) == (("c",), ("b",), ("a",))


def test_diamond_starts_the_middle_together() -> None:
    deps = {"app": ["left", "right"], "left": ["base"], "right": ["base"], "base": []}
    assert start_levels(deps) == (("base",), ("left", "right"), ("app",))


def test_independent_services_share_one_sorted_level() -> None:
    assert start_levels({"zeta": [], "alpha": [], "mid": ()}) == (("alpha", "mid", "zeta"),)


def test_a_name_only_required_is_still_a_node() -> None:
    assert start_levels({"a": ["b"]}) == (("b",), ("a",))


def test_empty_graph_has_no_levels() -> None:
    assert start_levels({}) == ()


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"b": ["a"], "a": ["b"]}, ["a", "b", "a"]),
        ({"a": ["a"]}, ["a", "a"]),
        ({"x": ["c"], "c": ["d"], "d": ["b"], "b": ["c"]}, ["b", "c", "d", "b"]),
        ({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, None),
        ({}, None),
    ],
)
def test_find_cycle(deps: dict[str, list[str]], cycle: list[str] | None) -> None:
    assert find_cycle(deps) == cycle


def test_long_chain_does_not_hit_the_recursion_limit() -> None:
    deps = {f"s{i}": [f"s{i + 1}"] for i in range(5000)}
    assert find_cycle(deps) is None
    assert len(start_levels(deps)) == 5001


def test_start_levels_refuses_a_cycle_naming_it() -> None:
    with pytest.raises(ValueError, match="a -> b -> a"):
        start_levels({"a": ["b"], "b": ["a"], "c": []})

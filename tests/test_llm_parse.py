"""The analyst-answer parser: robust extraction, name mapping, clipping, refusals (never exceptions)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kgfin.llm.parse import Universe, parse_impacts
from kgfin.llm.prompts import analyst_prompt

U = Universe(("NWS", "BCD", "ACME"), ("Northwind Semiconductor", "Bluecrest Devices", "Acme Corp"))


def _answer(items: list[dict], analysis: str = "x") -> str:
    return json.dumps({"impact_analysis": {"affected_companies": items, "analysis": analysis}})


def test_clean_answer_and_name_forms() -> None:
    text = _answer([{"name": "Northwind Semiconductor (NWS)", "impact_type": "direct", "impact_score": -7},
                    {"name": "bcd", "impact_type": "customer", "impact_score": 2.5},
                    {"name": "Acme Corp", "impact_score": "4"}])
    r = parse_impacts(text, U)
    assert not r.refused and r.scores == {"NWS": -7.0, "BCD": 2.5, "ACME": 4.0}
    assert r.impact_types["NWS"] == "direct" and r.analysis == "x"
    assert r.vector(["ACME", "NWS", "BCD"]) == [0.4, -0.7, 0.25]


def test_chatter_fences_quotes_trailing_commas_and_clipping() -> None:
    text = ("Sure!\n```json\n{'impact_analysis': {'affected_companies': "
            "[{'name': 'NWS', 'impact_score': -14},], 'analysis': 'y'}}\n``` Hope this helps.")
    r = parse_impacts(text, U)
    assert r.scores == {"NWS": -10.0}


def test_cut_off_answer_is_parsed_as_far_as_it_goes() -> None:
    text = '{"impact_analysis": {"affected_companies": [{"name": "Northwnd Semiconductor", "impact_score": 4}, {"name": "Blue'
    r = parse_impacts(text, U)
    assert r.scores == {"NWS": 4.0} and not r.refused  # fuzzy match on the misspelt name


def test_first_mention_wins_and_unknown_names_are_listed() -> None:
    r = parse_impacts(_answer([{"name": "NWS", "impact_score": 3}, {"name": "NWS", "impact_score": -9},
                               {"name": "Zeta Holdings", "impact_score": 1}]), U)
    assert r.scores == {"NWS": 3.0} and r.unknown == ["Zeta Holdings"]


def test_refusals() -> None:
    assert parse_impacts("I cannot help with that.", U).reason == "no parsable answer"
    assert parse_impacts(_answer([{"name": "Zeta Holdings", "impact_score": 1}]), U).reason == "no known company named"
    assert parse_impacts(_answer([]), U).refused


def test_copying_the_prompts_example_is_a_refusal() -> None:
    prompt = analyst_prompt("NWS plant fire", "Northwind Semiconductor (NWS) halted output.", "2014-03-04")
    example = prompt[prompt.index("{"):]
    r = parse_impacts(example, U)
    assert r.refused and r.reason == "copied the prompt's example" and r.scores == {}


@settings(max_examples=300, derandomize=True)
@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    r = parse_impacts(text, U)
    assert r.refused == (not r.scores)
    assert all(-10 <= s <= 10 for s in r.scores.values())


@settings(max_examples=100, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["NWS", "BCD", "ACME", "Acme Corp"]),
                          st.floats(allow_nan=True, allow_infinity=True)), max_size=5))
def test_scores_are_clipped_or_dropped(items: list[tuple[str, float]]) -> None:
    text = json.dumps({"impact_analysis": {"affected_companies": [{"name": n, "impact_score": s} for n, s in items]}})
    r = parse_impacts(text, U)
    assert all(-10 <= s <= 10 for s in r.scores.values())


def test_small_model_json_with_misplaced_braces_still_parses() -> None:
    text = ('{"impact_analysis": {"affected_companies": [{"name": "Northwind Semiconductor", "impact_type": "Strong Fall"}, '
            '"impact_score": -7}, "impact_score": 10},"impact_score": 10}\n\nThe news move is')
    r = parse_impacts(text, U)
    assert not r.refused and r.scores == {"NWS": -7.0}


# ---------------------------------------------------------------- hostile output


def test_deep_nesting_is_a_refusal_not_a_recursion_error() -> None:
    for depth in (17, 1_000, 5_000):
        for text in ('{"a": ' + "[" * depth + "]" * depth + "}", "{" * depth, '{"x": ' + "[" * depth):
            r = parse_impacts(text, U)
            assert r.refused and "nested deeper" in r.reason


def test_long_answers_are_bounded_and_the_fallback_is_linear() -> None:
    import time

    from kgfin.llm.parse import MAX_ANSWER_CHARS, _fallback_items

    r = parse_impacts('"name": "Northwind Semiconductor", ' * (MAX_ANSWER_CHARS // 30), U)
    assert r.refused and "longer than" in r.reason
    unit = '"name": "Northwind Semiconductor", '
    text = unit * ((MAX_ANSWER_CHARS - 40) // len(unit)) + '"impact_score": 3'
    assert parse_impacts(text, U).scores == {"NWS": 3.0}  # just under the bound
    # the name ... impact_score fallback scans the text once: 300 KB (the old regex took about 30 s)
    start = time.perf_counter()
    assert _fallback_items(unit * 8_000 + '"impact_score": 3') == [("Northwind Semiconductor", "3", "")]
    assert time.perf_counter() - start < 1.0


def test_nan_scores_get_their_own_reason() -> None:
    r = parse_impacts('{"impact_analysis": {"affected_companies": [{"name": "NWS", "impact_score": NaN}]}}', U)
    assert r.refused and r.reason == "no usable score (NaN, or not a number)"
    assert r.unknown == []


def test_silent_coercions_are_refused() -> None:
    for bad in (True, False, [99, -3], {"v": 3}, None):
        r = parse_impacts(_answer([{"name": "NWS", "impact_score": bad}, {"name": "BCD", "impact_score": 2}]), U)
        assert r.scores == {"BCD": 2.0}, bad
    r = parse_impacts('{"impact_analysis": {"affected_companies": '
                      '[{"name": "NWS", "impact_score": 3, "impact_score": -9}]}}', U)
    assert r.refused and "duplicate key 'impact_score'" in r.reason
    # documented coercions: a numeric string is read, the first number of a string is read
    assert parse_impacts(_answer([{"name": "NWS", "impact_score": "-7/10"}]), U).scores == {"NWS": -7.0}

"""Hypothesis strategies for odd input, shared by the fuzz tests of the JSON API
(tests/test_fuzz_api.py) and of the chat websocket (tests/test_fuzz_ws.py)."""

from __future__ import annotations

from hypothesis import strategies as st

# -- text -------------------------------------------------------------------------------
SPECIAL_TEXT = [
    "", " ", "\t\n", "\x00", "a\x00b", "\ud800", "\udfff", "x\udc80y", "\ufeff", "\ufffe",
    "\u202e\u0645\u0631\u062d\u0628\u0627\u202c", "\u200f", "\u200b", "\u2028", "e\u0301" * 50,
    "\u0301" * 300, "👩‍👩‍👧‍👦", "🏳️‍🌈" * 20, "\U0010ffff", "Ω≈ç√∫", "１２３", "١٢٣",
    "NaN", "Infinity", "-0", "1e309", "null", "true", "[]", "{}", "knowledge", "method",
    "keep_both", "replace", "all", "pending", "json", "prometheus", "html",
    "<script>alert(1)</script>", "'; DROP TABLE memories; --", "%00", "../../etc/passwd",
]
# Characters from every corner, lone surrogates (category Cs) included.
any_char = st.characters(codec=None, exclude_categories=())


def long_text(*lengths: int) -> st.SearchStrategy[str]:
    """Over a limit without generating character by character (slow, and rarely long)."""
    return st.builds(lambda piece, times: piece * times,
                     st.sampled_from(["x", "é", "😀", "\u0301", " ", "ab "]),
                     st.sampled_from(lengths))


short_odd_text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(any_char, max_size=40),
    st.text(st.characters(categories=["Cc", "Cf", "Cs", "Mn", "Zs", "Zl", "Zp", "So"]),
            min_size=1, max_size=20),
)
# 201 (a title), 8,001 (a chat message), 10,001 (content), 1,000,001 (over the body limit).
odd_text = st.one_of(short_odd_text, long_text(201, 8_001, 10_001, 250_000, 1_000_001))


# -- JSON values ------------------------------------------------------------------------
HUGE_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**300]
json_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 0.5]),
    odd_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(any_char, max_size=8), children,
                                               max_size=4)),
    max_leaves=10)


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each drawn in proportion to its weight."""
    return st.sampled_from([strategy for weight, strategy in choices
                            for _ in range(weight)]).flatmap(lambda strategy: strategy)


def nested(depth: int, opener: str) -> str:
    """JSON text `depth` levels deep: arrays when `opener` is "[", objects otherwise."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


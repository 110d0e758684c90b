"""``tinyarms.quality.recommend``: the advice as a pure function of RAM, cores and measured figures."""

from __future__ import annotations

import pytest

from tinyarms.quality.recommend import (
    CATALOGUE,
    DEEP_QUESTION_S,
    FAST_QUESTION_S,
    GIB,
    MIB,
    Figures,
    figures_from_bench,
    recommend,
    reserve,
)

Q05, Q15, Q3, Q7, Q14 = (k.name for k in CATALOGUE)


def names(ram_gib: float, cores: int, backend: str = "ollama", measured: dict | None = None) -> tuple:
    a = recommend(int(ram_gib * GIB), cores, measured, backend)
    return (a.fast.name if a.fast else None, a.deep.name if a.deep else None)


@pytest.mark.parametrize(("ram", "cores", "backend", "expected"), [
    # Too little memory for any model: Level 0 only.
    (2, 4, "ollama", (None, None)),
    # 4 GiB laptop: the 0.5B for both levels.
    (4, 2, "ollama", (Q05, Q05)),
    # 8 GiB: a 7B deep model is refused (it does not fit next to the fast one); 3B does.
    (8, 2, "ollama", (Q05, Q3)),
    (8, 4, "ollama", (Q15, Q3)),
    (8, 4, "embedded", (Q15, Q15)),  # the embedded backend has only what `models fetch` provides
    # 16 GiB, 8 cores: the design's defaults (3B fast, 7B deep).
    (16, 8, "ollama", (Q3, Q7)),
    (16, 2, "ollama", (Q05, Q7)),
    (16, 2, "embedded", (Q05, Q15)),
    # 32 GiB, 8 cores: the 14B is fast enough for the weekly scan.
    (32, 8, "ollama", (Q3, Q14)),
    (32, 2, "ollama", (Q05, Q7)),  # ... but not on 2 cores: over DEEP_QUESTION_S per question
])
def test_hardware_tiers(ram: float, cores: int, backend: str, expected: tuple) -> None:
    assert names(ram, cores, backend) == expected


def test_a_7b_deep_model_is_refused_on_8_gib_with_the_reason() -> None:
    advice = recommend(8 * GIB, 4)
    refusal = next(r for r in advice.refused if r[0] == Q7 and r[1] == "deep")
    assert "next to the fast model" in refusal[2] and "6.0 GiB can be used" in refusal[2]
    assert advice.headroom_bytes > 0
    assert advice.fast.memory_bytes + advice.deep.memory_bytes + advice.headroom_bytes == 8 * GIB - reserve(8 * GIB)


def test_every_pick_keeps_its_limits() -> None:
    for ram in (3, 4, 6, 8, 12, 16, 24, 32, 64, 128):
        for cores in (1, 2, 4, 8, 16, 64):
            a = recommend(ram * GIB, cores)
            if a.fast is None:
                continue
            usable = ram * GIB - reserve(ram * GIB)
            assert a.fast.memory_bytes <= usable // 2
            assert a.deep is not None and a.headroom_bytes >= 0
            assert a.deep.question_s <= DEEP_QUESTION_S or a.deep.name == a.fast.name
            if not a.notes or "within" not in a.notes[0]:
                assert a.fast.question_s <= FAST_QUESTION_S
            # More RAM or more cores never gives smaller models.
            order = [k.name for k in CATALOGUE]
            more = recommend(ram * 2 * GIB, cores * 2)
            assert order.index(more.fast.name) >= order.index(a.fast.name)
            assert order.index(more.deep.name) >= order.index(a.deep.name)


def test_measured_figures_replace_the_estimates_and_scale_the_others() -> None:
    # Measured here: the 0.5B takes 6 s a question (a busy 2-core machine), not the estimated 1.5 s.
    slow = {Q05: Figures(question_s=6.0, memory_bytes=700 * MIB)}
    advice = recommend(16 * GIB, 2, slow)
    assert advice.fast.name == Q05 and advice.fast.measured_speed and advice.fast.question_s == 6.0
    assert advice.fast.memory_bytes == 700 * MIB and advice.fast.measured_memory
    assert advice.speed_factor == pytest.approx(6.0 / 1.51, rel=0.01)
    assert any("no model answers within" in n for n in advice.notes)
    # The estimates of the others are scaled the same way: the 7B no longer fits the deep time limit.
    assert advice.deep.name == Q3 and not advice.deep.measured_speed
    assert advice.deep.question_s == pytest.approx(CATALOGUE[2].question_s * advice.speed_factor)
    assert any(r[0] == Q7 and r[1] == "deep" and "s per question" in r[2] for r in advice.refused)
    assert names(16, 2) == (Q05, Q7)

    # A faster machine than the estimates: the 1.5B measured at 1 s per question (3.4x faster
    # than estimated) makes even the 3B quick enough for commits.
    assert names(16, 2, measured={Q15: Figures(question_s=1.0)}) == (Q3, Q7)


def test_figures_from_bench_results() -> None:
    latest = {
        Q05: {"question_s": {"median": 2.0}, "peak_rss_bytes": 800 * MIB, "rss_before_bytes": 50 * MIB},
        Q3: {"question_s": {"median": 3.0}, "peak_rss_bytes": None, "rss_before_bytes": None},  # Ollama
        Q15: {"question_s": None, "peak_rss_bytes": 10, "rss_before_bytes": 20},
    }
    assert figures_from_bench(latest) == {
        Q05: Figures(2.0, 750 * MIB), Q3: Figures(3.0, None), Q15: Figures(None, None),
    }

from pathlib import Path

from tests.conftest import git
from tinyarms.candidates.design_tokens import find, off_scale
from tinyarms.candidates.tokens import normalise, token_family, token_index
from tinyarms.source import make_source


def project(repo: Path) -> Path:
    (repo / "src/styles").mkdir(parents=True)
    (repo / "src/styles/tokens.css").write_text(":root {\n  --space-4: 16px;\n  --radius-md: 8px;\n}\n")
    (repo / "src/theme.ts").write_text('export const theme = { space: { 2: "0.5rem", 6: "24px" } };\n')
    git(repo, "add", "-A")
    return repo


def candidates(repo: Path, rel: str, code: str):
    return find(make_source(rel, rel, code.encode()), "design-tokens", 8, str(repo))


def test_token_index_reads_css_custom_properties_and_theme_objects(repo: Path) -> None:
    index, files = token_index(str(project(repo)))
    assert index == {"16px": ("var(--space-4)",), "8px": ("var(--radius-md)",), "0.5rem": ("theme.space.2",),
                     "24px": ("theme.space.6",)}
    assert files == {"src/styles/tokens.css", "src/theme.ts"}


def test_raw_values_matching_a_token_are_candidates_with_the_token_named(repo: Path) -> None:
    project(repo)
    css = ".card {\n  padding: 16px;\n  border-radius: 8px;\n  width: 13px;\n  color: red;\n}\n"
    found = candidates(repo, "src/card.css", css)
    assert [(c.report, c.suggestion) for c in found] == [
        ((2, 2), "use var(--space-4) instead of 16px"), ((3, 3), "use var(--radius-md) instead of 8px"),
    ]
    assert found[0].where == "16px is the value of the token var(--space-4)"  # the finding's message says so
    tsx = 'export const C = () => (\n  <div className="p-[24px]" style={{ padding: 16, marginTop: "0.50rem" }} />\n);\n'
    assert {c.suggestion for c in candidates(repo, "src/C.tsx", tsx)} == {
        "use theme.space.6 instead of 24px", "use var(--space-4) instead of 16", "use theme.space.2 instead of 0.50rem",
    }


def test_token_files_themselves_and_projects_without_tokens_have_none(repo: Path, tmp_path: Path) -> None:
    project(repo)
    assert candidates(repo, "src/styles/tokens.css", ":root { --space-4: 16px; }\n.a { padding: 16px; }\n") == []
    assert find(make_source("a.css", "a.css", b".a { padding: 16px; }\n"), "design-tokens", 8, None) == []


def test_normalise() -> None:
    assert [normalise(v) for v in ("16", "16px", " 016PX ", "1.50rem", "0.5rem", "-4px")] == [
        "16px", "16px", "16px", "1.5rem", "0.5rem", "-4px",
    ]


def test_each_claim_has_a_kind_the_property_and_the_token_family(repo: Path) -> None:
    """What a reported false positive settles: the same property set to a token of the same
    family, whatever the value; a Tailwind class by its utility."""
    project(repo)
    css = ".card {\n  padding: 16px;\n  border-radius: 8px;\n  padding: 1px 16px;\n}\n"
    assert [c.kind for c in candidates(repo, "src/card.css", css)] == [
        "padding:--space", "border-radius:--radius", "padding:--space"]
    tsx = 'export const C = () => (\n  <div className="p-[24px]" style={{ marginTop: "0.50rem" }} />\n);\n'
    assert {c.kind for c in candidates(repo, "src/C.tsx", tsx)} == {"tw:p:theme.space", "margin-top:theme.space"}


def test_token_family() -> None:
    names = ["var(--size-3)", "var(--radius-md)", "var(--space-xl)", "var(--font-size-fluid-1)", "var(--gap)",
             "var(--brand-blue)", "theme.space.4", "theme.radius.md"]
    assert [token_family(n) for n in names] == [
        "--size", "--radius", "--space", "--font-size-fluid", "--gap", "--brand-blue", "theme.space", "theme.radius"]


def test_a_value_is_a_candidate_only_for_a_token_of_its_own_family(repo: Path) -> None:
    """A font size or a width that happens to equal a spacing step is no claim; a radius is
    proposed the radius token of that value, not the spacing one."""
    (repo / "tokens.css").write_text(":root {\n  --size-3: 1rem;\n  --radius-3: 1rem;\n  --text-sm: 0.8rem;\n}\n")
    git(repo, "add", "-A")
    css = (".a {\n  padding: 1rem;\n  font-size: 1rem;\n  width: 1rem;\n  border-radius: 1rem;\n"
           "  margin: 0.8rem;\n  font-size: 0.8rem;\n}\n")
    found = [(c.report[0], c.suggestion) for c in candidates(repo, "a.css", css)]
    assert found == [(2, "use var(--size-3) instead of 1rem"), (5, "use var(--radius-3) instead of 1rem"),
                     (7, "use var(--text-sm) instead of 0.8rem")]
    tsx = 'export const A = () => <div className="rounded-[1rem] text-[0.8rem] w-[1rem] p-[1rem]" />;\n'
    assert {c.suggestion for c in candidates(repo, "A.tsx", tsx)} == {
        "use var(--radius-3) instead of 1rem", "use var(--text-sm) instead of 0.8rem",
        "use var(--size-3) instead of 1rem"}


def test_a_token_defined_as_a_step_of_a_scale_is_read_at_scale_one(repo: Path) -> None:
    (repo / "tokens.css").write_text(":root {\n  --space-4: calc(16px * var(--scaling));\n"
                                     "  --radius-2: calc( 4px*var(--radius-factor) );\n  --gap: calc(100% - 2px);\n}\n")
    git(repo, "add", "-A")
    index, _ = token_index(str(repo))
    assert index["16px"] == ("var(--space-4)",) and index["4px"] == ("var(--radius-2)",)
    assert "2px" not in index  # not a scale step
    found = candidates(repo, "card.css", ".card {\n  padding: 16px;\n  border-radius: 4px;\n}\n")
    assert [c.suggestion for c in found] == ["use var(--space-4) instead of 16px", "use var(--radius-2) instead of 4px"]


def test_each_value_of_a_shorthand_is_a_candidate_of_its_own(repo: Path) -> None:
    """`padding: 0.5rem 16px 0.5rem` holds three values: three claims, each with its columns (a
    finding of its own, the same value twice included), and style-object strings alike."""
    project(repo)
    css = ".card {\n  padding: 0.5rem 16px 0.5rem;\n}\n"
    found = candidates(repo, "src/card.css", css)
    assert [(c.report, c.columns, c.suggestion) for c in found] == [
        ((2, 2), (12, 18), "use theme.space.2 instead of 0.5rem"),
        ((2, 2), (19, 23), "use var(--space-4) instead of 16px"),
        ((2, 2), (24, 30), "use theme.space.2 instead of 0.5rem"),
    ]
    assert len({c.key for c in found}) == 3
    tsx = "export const C = () => <div style={{ padding: '16px 24px' }} className=\"m-[16px]\" />;\n"
    assert [(c.columns, c.suggestion) for c in candidates(repo, "src/C.tsx", tsx)] == [
        ((48, 52), "use var(--space-4) instead of 16px"), ((53, 57), "use theme.space.6 instead of 24px"),
        ((73, 81), "use var(--space-4) instead of 16px"),
    ]


def test_a_border_shorthand_sets_a_border_width(repo: Path) -> None:
    """The width in `border: 2px solid` (CSS or a style object) is in the border family, as
    border-width is; a corner's radius is a radius; border-spacing is no border width."""
    (repo / "tokens.css").write_text(":root {\n  --border-size-2: 2px;\n  --radius-2: 5px;\n  --size-1: 2px;\n}\n")
    git(repo, "add", "-A")
    css = (".a {\n  border: 2px solid red;\n  border-inline-start: 2px dashed;\n  border-top-width: 2px;\n"
           "  border-spacing: 2px;\n  border-top-left-radius: 5px;\n  outline: 2px solid;\n}\n")
    assert [(c.report[0], c.suggestion, c.kind) for c in candidates(repo, "a.css", css)] == [
        (2, "use var(--border-size-2) instead of 2px", "border:--border-size"),
        (3, "use var(--border-size-2) instead of 2px", "border-inline-start:--border-size"),
        (4, "use var(--border-size-2) instead of 2px", "border-top-width:--border-size"),
        (6, "use var(--radius-2) instead of 5px", "border-top-left-radius:--radius"),
    ]
    tsx = ("export const A = () => (\n  <div style={{ borderTop: '2px solid var(--accent-a8)', borderLeftWidth: 2,\n"
           "    borderBottomRightRadius: '5px' }} />\n);\n")
    assert [(c.report[0], c.suggestion) for c in candidates(repo, "A.tsx", tsx)] == [
        (2, "use var(--border-size-2) instead of 2px"), (2, "use var(--border-size-2) instead of 2"),
        (3, "use var(--radius-2) instead of 5px")]


def test_px_and_rem_are_compared_at_the_root_font_size(repo: Path) -> None:
    """16px equals a 1rem token and the other way round (at 16px to the rem unless the rule's
    root_font_px says otherwise); a token written alike is named first; an em is not converted:
    it depends on the element. A bare number in a CSS token file is no length."""
    (repo / "tokens.css").write_text(":root {\n  --size-3: 1rem;\n  --size-px-3: 16px;\n  --radius-3: 1rem;\n"
                                     "  --text-sm: 0.875rem;\n  --font-lineheight-1: 1.25;\n}\n")
    git(repo, "add", "-A")
    assert token_index(str(repo))[0]["1.25"] == ("var(--font-lineheight-1)",)
    css = (".a {\n  padding: 16px;\n  margin: 1rem;\n  border-radius: 16px;\n  font-size: 14px;\n"
           "  margin: 1em;\n  padding: 10px;\n}\n")
    found = candidates(repo, "a.css", css)
    assert [(c.report[0], c.suggestion, c.where) for c in found] == [
        (2, "use var(--size-px-3) instead of 16px", "16px is the value of the token var(--size-px-3)"),
        (3, "use var(--size-3) instead of 1rem", "1rem is the value of the token var(--size-3)"),
        (4, "use var(--radius-3) instead of 16px", "16px is the value of the token var(--radius-3) (1rem)"),
        (5, "use var(--text-sm) instead of 14px", "14px is the value of the token var(--text-sm) (0.875rem)"),
    ]
    assert "The project's design token var(--radius-3) has this same value (1rem is 16px)." in found[2].question
    at_ten = find(make_source("a.css", "a.css", css.encode()), "design-tokens", 8, str(repo), root_font_px=10)
    assert [(c.report[0], c.suggestion) for c in at_ten] == [
        (2, "use var(--size-px-3) instead of 16px"), (3, "use var(--size-3) instead of 1rem"),
        (7, "use var(--size-3) instead of 10px")]
    tsx = "export const A = () => <div style={{ padding: 16, borderRadius: '1rem', fontSize: 14 }} />;\n"
    assert [c.suggestion for c in candidates(repo, "A.tsx", tsx)] == [
        "use var(--size-px-3) instead of 16", "use var(--radius-3) instead of 1rem", "use var(--text-sm) instead of 14"]


OFF_TOKENS = (":root {\n  --size-000: -.5rem;\n  --size-00: -.25rem;\n  --size-1: .25rem;\n  --size-2: .5rem;\n"
              "  --size-3: 1rem;\n  --size-px-2: 8px;\n  --size-px-3: 16px;\n  --radius-1: 2px;\n  --radius-2: 5px;\n"
              "  --font-size-0: .75rem;\n  --font-size-1: 1rem;\n  --border-size-1: 1px;\n"
              "  --size-content-1: 20ch;\n}\n")


def test_a_value_between_two_steps_of_its_familys_scale_is_off_the_scale(repo: Path) -> None:
    """Off the scale: strictly between two steps of its own family's scale (px and rem in px),
    the nearest named, in the value's unit where a step has a token in it. Not: below the
    smallest or above the largest step, 0 or a hairline, a negative value beyond the negative
    steps, a family with one step, a property of no family, an operand of calc(), an em."""
    (repo / "tokens.css").write_text(OFF_TOKENS)
    git(repo, "add", "-A")
    css = (".a {\n  padding: 13px;\n  margin: 0.8rem 1rem;\n  margin: 2px;\n  margin: 3rem;\n  margin: -6px;\n"
           "  margin: -1px -2px 0px 0;\n  border-radius: 4px;\n  font-size: 14px;\n  border: 3px solid;\n"
           "  width: 13px;\n  line-height: 13px;\n  padding: calc(100% - 13px) var(--x, 13px);\n  font-size: 0.9em;\n"
           "}\n")
    found = candidates(repo, "a.css", css)
    assert [(c.report[0], c.where) for c in found] == [
        (3, "1rem is the value of the token var(--size-3)"),
        (2, "13px is off the spacing scale: nearest steps var(--size-px-2) 8px and var(--size-px-3) 16px"),
        (3, "0.8rem is off the spacing scale: nearest steps var(--size-2) 0.5rem and var(--size-3) 1rem"),
        (6, "-6px is off the spacing scale: nearest steps var(--size-000) -0.5rem and var(--size-00) -0.25rem"),
        (8, "4px is off the radius scale: nearest steps var(--radius-1) 2px and var(--radius-2) 5px"),
        (9, "14px is off the font size scale: nearest steps var(--font-size-0) 0.75rem and var(--font-size-1) 1rem"),
    ]
    off = found[1]
    assert off.suggestion == "use var(--size-px-2) or var(--size-px-3) instead of 13px"
    assert off.kind == "padding:off-scale:spacing" and found[0].kind == "margin:--size"  # settled apart
    assert off.columns == (12, 16) and found[2].columns == (11, 17)
    assert off.question.split(" If ")[0] == (
        "Line 2 sets padding to the raw value 13px, which is on no step of the project's spacing scale: the nearest "
        "steps are the design tokens var(--size-px-2) (8px) and var(--size-px-3) (16px). Should line 2 use a step "
        "of the scale instead of the raw value?")
    # the values equal to a token come first when a commit may ask only so many
    assert [c.where.split(" is ")[0] for c in find(make_source("a.css", "a.css", css.encode()), "design-tokens", 2,
                                                     str(repo))] == ["1rem", "13px"]
    tsx = "export const A = () => <div style={{ fontSize: 13, padding: '0 13px' }} className=\"p-[10px]\" />;\n"
    assert [c.kind for c in candidates(repo, "A.tsx", tsx)] == [
        "font-size:off-scale:type", "padding:off-scale:spacing", "tw:p:off-scale:spacing"]


def test_off_scale() -> None:
    scale = ((-8.0, (("var(--n2)", "-8px"),)), (-4.0, (("var(--n1)", "-4px"),)), (4.0, (("var(--s1)", "4px"),)),
             (8.0, (("var(--s2)", "8px"),)), (16.0, (("var(--s3)", "16px"),)))
    assert off_scale(scale, 12) == ((("var(--s2)", "8px"),), (("var(--s3)", "16px"),))
    assert off_scale(scale, -6) == ((("var(--n2)", "-8px"),), (("var(--n1)", "-4px"),))
    assert [off_scale(scale, px) for px in (8, 2, -2, 0, 1, -1, 20, -10)] == [None] * 8
    assert off_scale(((4.0, (("var(--s1)", "4px"),)),), 5) is None  # one step is no scale

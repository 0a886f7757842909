"""A self-contained HTML report: one file, figures embedded, nothing fetched.

Used by ``graphcollapse reproduce`` (one section per experiment) and by
``graphcollapse demo`` (its last step). The page has no scripts, no external fonts or
style sheets and no links to fetch: every figure is a PNG embedded as a ``data:`` URI,
so the file can be mailed, archived or opened offline and shows the same.

Structure (the browser test in ``tests/test_reproduce.py`` checks it): a
``<section id="summary">`` with one line per claim (✓ or ✗), then one
``<section id="exp-NAME" class="experiment">`` per experiment with its claim, figures,
a table of key numbers, the check's numbers, the command to rerun it and its run time.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Section", "render_report", "save_figure", "to_json", "write_report"]

OK, FAIL = "\u2713", "\u2717"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
max-width:72rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem} h2{font-size:1.3rem;margin-top:2.5rem;
border-bottom:1px solid #ccc;padding-bottom:.2rem} .meta{color:#555;font-size:.9rem}
.claim{font-style:italic} .pass{color:#0072b2;font-weight:bold}
.fail{color:#b2182b;font-weight:bold} figure{margin:1rem 0} figure img{max-width:100%;
height:auto;border:1px solid #eee} figcaption{font-size:.9rem;color:#444}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}
th{background:#f2f2f2} td:first-child,th:first-child{text-align:left}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;font-size:.85rem}
ul.summary{list-style:none;padding-left:0} ul.summary li{margin:.25rem 0}
pre.sample{background:#fbfbf4;border-left:3px solid #0072b2;white-space:pre;
font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;line-height:1.35}
"""


@dataclass
class Section:
    """One section of the report (one experiment, or one part of the demo).

    Examples
    --------
    >>> s = Section("toy", "A toy", "Two is more than one.", passed=True,
    ...             verdict="2 > 1", table=(["a", "b"], [[1, 2]]))
    >>> "2 &gt; 1" in render_report("T", [s])
    True
    """

    name: str
    title: str
    claim: str
    passed: bool | None = None
    verdict: str = ""
    figures: list[Path] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    table: tuple[Sequence[str], Sequence[Sequence[Any]]] | None = None
    check: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    config: str = ""
    seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    """Pre-formatted text blocks ``(caption, text)`` shown after the figures (e.g.
    generated text), as ``<figure class="text"><pre>``."""


def save_figure(fig: Any, stem: Path) -> Path:
    """Save a matplotlib figure as ``stem.png`` and ``stem.svg``; return the PNG path.

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.plot([0, 1])
    >>> p = save_figure(fig, Path(tempfile.mkdtemp()) / "line")
    >>> p.name, p.with_suffix(".svg").exists()
    ('line.png', True)
    """
    import matplotlib.pyplot as plt

    stem.parent.mkdir(parents=True, exist_ok=True)
    png = stem.with_suffix(".png")
    fig.savefig(png, dpi=110, bbox_inches="tight")
    fig.savefig(stem.with_suffix(".svg"), bbox_inches="tight")
    plt.close(fig)
    return png


def _fmt(x: Any) -> str:
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x != x:
            return "–"
        return f"{x:.4g}"
    return str(x)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>"]
    out += [f"<th>{html.escape(str(h))}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _mark(passed: bool | None) -> str:
    if passed is None:
        return ""
    cls, sym = ("pass", OK) if passed else ("fail", FAIL)
    return f'<span class="{cls}" aria-label="{"passed" if passed else "failed"}">{sym}</span> '


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = html.escape(caption or Path(path).stem)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    files = f"{Path(path).name}" + (
        f" / {Path(path).stem}.svg" if Path(path).with_suffix(".svg").exists() else ""
    )
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{cap}'
        f'<figcaption class="meta">file: {html.escape(files)}</figcaption></figure>'
    )


def render_report(
    title: str, sections: Sequence[Section], *, intro: str = "", footer: str = ""
) -> str:
    """The HTML text of a report (see the module docstring for its structure).

    Examples
    --------
    >>> page = render_report("Study", [Section("a", "A", "claim A", passed=False)])
    >>> 'id="summary"' in page and 'id="exp-a"' in page and "\u2717" in page
    True
    """
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p class='meta'>{e(intro)}</p>")
    parts.append('<section id="summary"><h2>Summary</h2><ul class="summary">')
    for s in sections:
        line = f" — {e(s.verdict)}" if s.verdict else ""
        parts.append(
            f'<li>{_mark(s.passed)}<a href="#exp-{e(s.name)}">{e(s.title)}</a>: '
            f"<span class='claim'>{e(s.claim)}</span>{line}</li>"
        )
    parts.append("</ul></section>")
    for s in sections:
        parts.append(f'<section id="exp-{e(s.name)}" class="experiment">')
        parts.append(f"<h2>{_mark(s.passed)}{e(s.title)}</h2>")
        parts.append(f"<p class='claim'><b>Claim.</b> {e(s.claim)}</p>")
        if s.verdict:
            parts.append(f"<p><b>Result.</b> {_mark(s.passed)}{e(s.verdict)}</p>")
        for note in s.notes:
            parts.append(f"<p>{e(note)}</p>")
        for i, fig in enumerate(s.figures):
            cap = s.captions[i] if i < len(s.captions) else ""
            parts.append(_img(fig, cap))
        for cap, text in s.texts:
            parts.append(
                f'<figure class="text"><pre class="sample">{e(text)}</pre>'
                f"<figcaption>{e(cap)}</figcaption></figure>"
            )
        if s.table is not None:
            parts.append("<h3>Key numbers</h3>" + _table(*s.table))
        if s.check:
            parts.append("<h3>The check</h3>")
            parts.append(_table(["quantity", "value"], [[k, v] for k, v in s.check.items()]))
        if s.command or s.config:
            parts.append("<h3>Rerun</h3>")
            if s.command:
                parts.append(f"<pre>{e(s.command)}</pre>")
            if s.config:
                parts.append(f"<details><summary>configuration</summary><pre>{e(s.config)}</pre>")
                parts.append("</details>")
        if s.seconds is not None:
            parts.append(f"<p class='meta'>run time: {s.seconds:.1f} s</p>")
        parts.append("</section>")
    if footer:
        parts.append(f"<footer class='meta'><p>{e(footer)}</p></footer>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: Path, title: str, sections: Sequence[Section], **kw: Any) -> Path:
    """Write :func:`render_report` to ``path`` (atomically: a temporary file renamed).

    Examples
    --------
    >>> import tempfile
    >>> p = write_report(Path(tempfile.mkdtemp()) / "r.html", "T", [])
    >>> p.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    True
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(title, sections, **kw), encoding="utf-8")
    tmp.replace(path)
    return path


def to_json(x: Any) -> Any:
    """Numbers and containers as plain JSON values (numpy scalars included).

    Examples
    --------
    >>> import json, numpy as np
    >>> json.dumps(to_json({"a": np.float64(1.5), "b": [np.int64(2)]}))
    '{"a": 1.5, "b": [2]}'
    """
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x

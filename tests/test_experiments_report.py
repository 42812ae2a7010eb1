"""`nnumba experiment run all --fast --out DIR`: every experiment runs, every figure can
be read (labelled axes, a legend where several curves are drawn, a title naming the
slide), and DIR/index.html is one self-contained page in the lecture's order, with
this run's own results, opened in a real headless browser where chromium is installed."""
import html
import io
import json
import re
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from nnumba.cli import main
from nnumba.experiments import figures, get_experiment, list_experiments
from nnumba.experiments.report import Entry, write_report
from nnumba.experiments.result import Result
from nnumba.registry import get_registry

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def run_all(tmp_path_factory):
    """(out dir, numbers, the printed tables, {file name: matplotlib Figure}) of one run."""
    out = tmp_path_factory.mktemp("report")
    drawn, saving, write_whole = {}, [], figures.write_whole
    base = figures.figure_class()
    stdout, stderr = io.StringIO(), io.StringIO()

    def written(path, write):  # the figure written under each name (into a temporary file)
        write_whole(path, write)
        drawn[Path(path).name] = saving.pop()
    with pytest.MonkeyPatch.context() as patch:
        if base is not None:
            class Recording(base):  # keeps each figure as saved, to inspect it
                def savefig(self, fname, *args, **kwargs):
                    saving.append(self)
                    return super().savefig(fname, *args, **kwargs)
            patch.setattr(figures, "figure_class", lambda: Recording)
            patch.setattr(figures, "write_whole", written)
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(["experiment", "run", "all", "--fast", "--out", str(out), "--json"])
    assert code == 0, stderr.getvalue()[-3000:]
    return out, json.loads(stdout.getvalue()), stderr.getvalue(), drawn


def _needs_absent_plugin() -> set[str]:
    """The experiments whose feature layers no installed plugin registers."""
    layers = get_registry().entries("layer")
    return {e.name for e in list_experiments() if any(f not in layers for f in e.features)}


def test_run_all_runs_every_experiment_and_writes_the_report(run_all):
    out, numbers, printed, _ = run_all
    skipped = _needs_absent_plugin()
    assert list(numbers) == [e.name for e in list_experiments() if e.name not in skipped]
    for name in skipped:  # said, with the way to get it, and not a failure
        assert f"== {name}: skipped: needs " in printed
        assert "pip install -e plugins/nnumba-features" in printed
    assert ("skipped (an optional plugin is not installed)" in printed) == bool(skipped)
    assert f"report: {out / 'index.html'} (and index.md)" in printed
    assert (out / "index.html").is_file() and (out / "index.md").is_file()


def test_every_figure_is_labelled_and_titled_with_its_slide(run_all):
    _, _, _, drawn = run_all
    if figures.figure_class() is None:
        pytest.skip("the figures need matplotlib")
    problems = {}
    for exp in list_experiments():
        if exp.name in _needs_absent_plugin():
            continue
        fig = drawn.get(f"{exp.name}.png")
        assert fig is not None, f"{exp.name} drew no figure"
        found = figures.figure_problems(fig)
        if exp.slide.lower() not in fig.get_suptitle().lower():
            found.append(f"title {fig.get_suptitle()!r} does not name the slide {exp.slide!r}")
        if found:
            problems[exp.name] = found
    assert problems == {}


def test_figure_problems_finds_what_a_reader_would_miss():
    figure = figures.figure_class()
    if figure is None:
        pytest.skip("the figures need matplotlib")
    fig = figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="one")
    ax.plot([0, 1], [1, 0], label="two")
    problems = figures.figure_problems(fig)
    assert "no title" in problems
    assert any("without a label" in p for p in problems)
    assert any("in no legend" in p for p in problems)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.suptitle("a slide")
    assert figures.figure_problems(fig) == []


def _sections(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.S)


def test_report_holds_every_slide_in_order_with_this_runs_results(run_all):
    out, numbers, printed, drawn = run_all
    page = (out / "index.html").read_text(encoding="utf-8")
    sections = _sections(page)  # then Conv3d's sentence and the closing slide's command
    assert [name for name, _ in sections] == [e.name for e in list_experiments()] + [
        "conv3d", "alexnet"]
    assert "Conv3d" in sections[-2][1] and "nnumba classify" in sections[-1][1]
    skipped = _needs_absent_plugin()
    for name, body in sections[:-2]:
        exp = get_experiment(name)
        assert html.escape(exp.quote) in body  # the lecture's claim, quoted
        assert f"nnumba experiment run {name} --out {out} --fast" in html.unescape(body)
        if name in skipped:
            assert "skipped: needs " in body and "<pre>" not in body
            continue
        table = html.unescape(re.search(r"<pre>(.*?)</pre>", body, re.S).group(1))
        assert table in printed  # the table this run printed, not one written in advance
        if drawn:
            assert f'<img src="{name}.png"' in body
    # A number computed by the run, as the page shows it.
    cnn = numbers["cnn-mnist"]["runs"]["mnist-5k"]["test_error"]
    assert f"here, mnist-5k: test error {100 * cnn:.2f}%" in page
    markdown = (out / "index.md").read_text(encoding="utf-8")
    for exp in list_experiments():
        assert f"## {exp.slide}" in markdown
        if drawn and exp.name not in skipped:
            assert f"({exp.name}.png)" in markdown


def test_report_writer_shows_results_failures_and_no_figure_without_one(tmp_path):
    exp = get_experiment("pooling")
    result = Result("pooling", "a claim <measured>", "a table: 1 < 2 & 3", {}, [],
                    ["a note"])
    failed = get_experiment("xor")
    page_path, md_path = write_report(
        tmp_path, [Entry(exp, result, 1.5, command="nnumba experiment run pooling"),
                   Entry(failed, None, 0.1, "ValueError: broken", "nnumba experiment run xor")],
        "nnumba experiment run all --out X")
    page = page_path.read_text(encoding="utf-8")
    assert "a table: 1 &lt; 2 &amp; 3" in page and "a claim &lt;measured&gt;" in page
    assert "<img" not in page and "a note" in page
    assert "Failed: xor" in page and "failed: ValueError: broken" in page
    assert "a table: 1 < 2 & 3" in md_path.read_text(encoding="utf-8")


def test_run_all_skips_an_experiment_whose_plugin_is_absent_and_still_succeeds(
        tmp_path, monkeypatch, capsys):
    import dataclasses

    import nnumba.experiments as experiments
    pooling = get_experiment("pooling")
    absent = dataclasses.replace(pooling, name="needs-absent", features=("NoSuchFeature",))
    monkeypatch.setattr(experiments, "list_experiments", lambda: [pooling, absent])
    assert main(["experiment", "run", "all", "--fast", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "== needs-absent: skipped: needs NoSuchFeature: it comes with the nnumba-features" \
        in printed
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Skipped (an optional plugin is not installed): needs-absent" in page
    assert "Failed" not in page and "skipped: needs NoSuchFeature" in page
    assert "skipped: needs NoSuchFeature" in (tmp_path / "index.md").read_text(encoding="utf-8")


# ---- in a real browser --------------------------------------------------------------------
CHECK = """<script>
window.addEventListener("load", function () {
  for (const img of document.images) {
    img.setAttribute("data-loaded", img.complete && img.naturalWidth > 0 ? "yes" : "no");
  }
  document.body.setAttribute("data-checked", "yes");
});
</script>"""


def _browser():
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        pytest.skip("no chromium to open the page in (apt-get install chromium)")
    return found


def _dump_dom(browser, page: Path, profile: Path) -> str:
    """The page's DOM after it loaded, with CHECK's marks on every image."""
    checked = page.with_name("_check_" + page.name)  # beside it: the same relative links
    checked.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"),
                       encoding="utf-8")
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
         "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    checked.unlink()
    assert 'data-checked="yes"' in done.stdout, done.stderr[-2000:]
    return done.stdout


def test_report_opens_in_a_browser_with_every_figure_and_no_broken_link(run_all, tmp_path):
    browser = _browser()
    out, _, _, drawn = run_all
    dom = _dump_dom(browser, out / "index.html", tmp_path / "profile")
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == len(drawn)  # one figure per experiment where matplotlib drew them
    assert all('data-loaded="yes"' in img for img in images), images
    ids = set(re.findall(r'id="([^"]+)"', dom))
    for link in re.findall(r'(?:href|src)="([^"]+)"', dom):
        assert not re.match(r"^[a-z]+:|^/", link), link  # nothing outside DIR
        if link.startswith("#"):
            assert link[1:] in ids, link
        else:
            assert (out / html.unescape(link)).is_file(), link


def test_the_browser_check_sees_a_missing_figure(run_all, tmp_path):
    # The control: the same check on a page whose figure is not there reports it.
    browser = _browser()
    page = tmp_path / "index.html"
    page.write_text('<!DOCTYPE html><html><body><img src="absent.png"></body></html>')
    dom = _dump_dom(browser, page, tmp_path / "profile")
    assert 'data-loaded="no"' in dom

"""sweep.html: its content in-process (escaping, a one-run group, relative links, nothing
fetched), then the page of a real sweep in headless Chromium through selenium: no JavaScript
error, a column sorts and reverses, every link resolves and an image loads, a screenshot. The
browser tests skip, in one line, where selenium, chromium or chromedriver is missing (`make
test` installs the browser where apt is available)."""

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from multiclass.comparing.groups import group_report
from multiclass.comparing.runs import RunRecord
from multiclass.comparing.sweep import write_report
from multiclass.comparing.sweep_html import write_html
from multiclass.comparing.sweep_jobs import SweepReport, build_report
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET

# model.width x seed; job 4 is killed in its last epoch (no summary.json): width=16 is 2 of 3.
JOBS = [(8, 0), (8, 1), (16, 0), (16, 1), (16, 2)]
KILLED = 4
# A folder name that an unescaped page or an unquoted link would break on.
HOSTILE_FOLDER = "a <b> & 'c' #1"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sweep's run directories on tiny synthetic data; job 0 draws its pictures."""
    root = tmp_path_factory.mktemp("sweep") / HOSTILE_FOLDER
    for job, (width, seed) in enumerate(JOBS):
        drawn = "plots=true" if job == 0 else "plots=false"
        overrides = [
            "dataset.limit=200",
            "trainer.epochs=3",
            "optimizer.lr=0.02",
            f"model.width={width}",
        ]
        cfg = compose_config(*QUIET, drawn, *overrides, f"seed={seed}")
        execute(cfg, root / str(job))
    (root / str(KILLED) / "summary.json").unlink()  # as after a kill -9 in its last epoch
    return root


@pytest.fixture(scope="module")
def page(sweep: Path) -> Path:
    """The sweep's sweep.html, in a folder beside the sweep's (as `--out` writes it)."""
    path = sweep.parent / "report" / "sweep.html"
    path.parent.mkdir()
    write_html(group_report(build_report([sweep])), path)
    return path


def hrefs(path: Path) -> list[str]:
    return re.findall(r'href="([^"]*)"', path.read_text())


def record(
    folder: Path, width: object, seed: int, status: str = "completed", best: float | None = None
) -> RunRecord:
    """A run directory made up of its config and figures alone."""
    folder.mkdir(parents=True)
    best = 0.9 + seed / 100 if best is None else best
    summary = {"status": status, "best_val_acc": best, "test_acc": 0.8}
    if status != "completed":
        summary = {"status": status, "error": "model.width must be an integer >= 1, got 0"}
    config = {"model.width": width, "seed": seed}
    return RunRecord(folder, seed, {}, config, summary, [0.5, 0.9])


def row_of(text: str, label: str) -> str:
    """The groups table's row of the group `label`."""
    return next(row for row in text.split("<tr>") if f'data-sort="{label}' in row)


def test_values_that_hold_markup_are_escaped_and_a_one_run_group_has_no_interval(tmp_path):
    hostile = "<script>alert(\"x\")</script> & 'y'"
    records = [record(tmp_path / str(seed), hostile, seed) for seed in (0, 1)]
    records.append(record(tmp_path / "2", 8, 2))
    path = tmp_path / "sweep.html"
    write_html(group_report(SweepReport(records, ["model.width", "seed"], "best_val_acc")), path)
    text = path.read_text()
    assert "alert(" not in text.replace("alert(&quot;x&quot;)", "")  # only escaped
    assert "width=&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;y&#x27;" in text
    assert text.count("<script") == 1  # the page's own
    alone = row_of(text, "width=8")
    assert "1 of 1" in alone and "one run: no interval" in alone and "95%" not in alone
    assert "2 of 2" in row_of(text, "width=&lt;script") and "95%: " in row_of(text, "width=&lt;")


def test_a_sweep_whose_every_job_failed_says_so_in_one_line_a_section(tmp_path):
    records = [record(tmp_path / str(seed), 0, seed, status="failed") for seed in (0, 1)]
    path = tmp_path / "sweep.html"
    write_html(group_report(SweepReport(records, ["seed"], "best_val_acc")), path)
    text = path.read_text()
    assert "0 of 2" in text and "no finished run has it" in text
    assert "No completed job has a best_val_acc." in text
    assert "No run wrote per_class.csv: no per-class F1 to show." in text


def test_links_are_relative_and_nothing_is_fetched(page, sweep):
    links = hrefs(page)
    assert len(links) > len(JOBS)  # each job's folder, and job 0's pictures
    assert all(not link.startswith(("/", "file:", "http")) for link in links)
    assert all((page.parent / unquote(link)).exists() for link in links)
    assert any(unquote(link).endswith(f"{HOSTILE_FOLDER}/0/curves.png") for link in links)
    text = page.read_text()
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", text)
    assert re.findall(r"https?://[^\"' ]*", text) == ["http://www.w3.org/2000/svg"] * 2
    assert len(text) < 100_000


def test_every_job_s_line_names_it_on_hover_and_the_heatmap_has_a_cell_a_group_and_class(page):
    """A curve for every job (the killed one's too), a parallel-coordinates line for every
    completed one: each with its <title>, which the browser shows on hover."""
    text = page.read_text()
    titles = re.findall(r'<polyline class="line"[^>]*><title>([^<]*)</title>', text)
    curves, lines = titles[: len(JOBS)], titles[len(JOBS) :]
    assert sorted(title.split(":")[0] for title in curves) == [f"job {n}" for n in range(5)]
    assert "job 0: seed=0 width=8 (completed)" in curves
    assert sorted(title.split(":")[0] for title in lines) == [f"job {n}" for n in range(4)]
    heatmap = text.split('class="sortable heatmap"')[1].split("</table>")[0]
    assert heatmap.count("<tr>") == 1 + 2 and heatmap.count("title=") == 2 * 10 + 11


def test_every_report_writes_its_html_beside_its_csv_and_md_plots_or_not(sweep, tmp_path):
    written, _ = write_report(group_report(build_report([sweep])), tmp_path, plots=False)
    assert [path.name for path in written] == ["sweep.csv", "sweep.md", "sweep.html"]
    assert written[-1].read_text().startswith("<!DOCTYPE html>")


CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by the system's chromedriver, named so that selenium never
    looks for (or downloads) another; the browser's console kept for the tests to read."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed: pip install -e '.[browser]'"
    )
    from selenium.webdriver.chrome.service import Service

    found = {name: shutil.which(name) for name in (CHROMIUM, CHROMEDRIVER)}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found (make test installs them with apt)")
    options = webdriver.ChromeOptions()
    options.binary_location = found[CHROMIUM]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[CHROMEDRIVER]), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def opened(browser, page):
    """The page, freshly loaded, its console emptied of earlier pages' lines."""
    browser.get_log("browser")
    browser.get(page.as_uri())
    return browser


def test_the_page_logs_no_javascript_error(opened):
    assert opened.find_element("css selector", "table.jobs")  # the page is there
    errors = [entry for entry in opened.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def column(driver, table: str, header: str) -> list[str]:
    """The data-sort keys of `header`'s column of `table`, top to bottom."""
    script = """
        const [table, header] = arguments;
        const heads = Array.from(document.querySelector(`table.${table} thead tr`).cells);
        const index = heads.findIndex((th) => th.textContent.trim() === header);
        return Array.from(document.querySelectorAll(`table.${table} tbody tr`),
                          (row) => row.cells[index].dataset.sort);
    """
    return driver.execute_script(script, table, header)


def click(driver, table: str, header: str) -> None:
    headers = driver.find_elements("css selector", f"table.{table} thead th")
    next(th for th in headers if th.text.strip() == header).click()


def test_clicking_a_header_sorts_numbers_as_numbers_missing_last_and_again_reverses(
    browser, tmp_path
):
    """best_val_acc 0.1, 0.05, 0.9 (which sort otherwise as text, even as `numeric` text) and a
    killed job without one, last either way; the jobs' rows follow."""
    scores = {"0": 0.1, "1": 0.05, "2": 0.9}
    records = [record(tmp_path / job, 8, int(job), best=score) for job, score in scores.items()]
    records.append(record(tmp_path / "3", 8, 3, status="killed"))
    path = tmp_path / "sweep.html"
    write_html(group_report(SweepReport(records, ["seed"], "best_val_acc")), path)
    browser.get(path.as_uri())
    assert column(browser, "jobs", "job") == ["2", "0", "1", "3"]  # ranked, best first
    click(browser, "jobs", "best_val_acc")
    assert column(browser, "jobs", "job") == ["1", "0", "2", "3"]
    assert column(browser, "jobs", "best_val_acc") == ["0.05", "0.1", "0.9", ""]
    click(browser, "jobs", "best_val_acc")
    assert column(browser, "jobs", "job") == ["2", "0", "1", "3"]
    click(browser, "jobs", "job")
    assert column(browser, "jobs", "job") == ["0", "1", "2", "3"]


def test_every_link_resolves_and_an_image_loads(opened, page):
    urls = [a.get_attribute("href") for a in opened.find_elements("css selector", "a")]
    assert len(urls) == len(hrefs(page))
    assert all(Path(unquote(urlparse(url).path)).exists() for url in urls)
    picture = next(url for url in urls if url.endswith("curves.png"))
    loaded = opened.execute_async_script(
        """const done = arguments[arguments.length - 1], image = new Image();
        image.onload = () => done(image.naturalWidth); image.onerror = () => done(0);
        image.src = arguments[0];""",
        picture,
    )
    assert loaded > 0


def test_a_screenshot_of_the_whole_page(opened, tmp_path):
    height = opened.execute_script(  # the page's, and the window's own above it
        "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight"
    )
    opened.set_window_size(1280, height)
    shot = tmp_path / "sweep-html.png"
    assert opened.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000 and shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

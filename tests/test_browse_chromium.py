"""The auditor's browser in a real headless Chromium (Debian's `chromium` + `chromium-driver`, via Selenium).

The server runs on the output of `omnicorpus run` on the bundled example, plus a crafted run whose strings all
try to run script. Set OMNICORPUS_UPDATE_SCREENSHOTS=1 to rewrite the PNGs in docs/ from this run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.browse_support import SCRIPT, hostile_documents, serving, write_run
from tests.conftest import ROOT, tiny_png

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Flags that work in a container and keep Chromium off the network (no updates, no sync, no QUIC probes).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900")
HOSTILE_ID = "0badc0de0badc0de0badc0de"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (make install-dev installs them as root)"),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="omnicorpus-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    kept, rejected = hostile_documents(tiny_png())
    return write_run(tmp_path_factory.mktemp("hostile") / "out", [kept], [rejected], {"text_chars": "int64"})


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("labels") / "labels.sqlite"


@pytest.fixture(scope="module")
def site(example_run, hostile_run, labels_file):
    """Run 0: the bundled example; run 1: the hostile documents. Labels go to a temporary file."""
    with serving([Path(example_run.output), hostile_run], labels_file) as url:
        yield url


@pytest.fixture(scope="module")
def example_rows(example_run) -> dict[str, dict]:
    """The example's documents: the Mona Lisa article (kept, with image bytes), its identical second capture
    (rejected: read.duplicate_capture) and the books catalogue (rejected by the Gopher repetition rules)."""
    columns = ["id", "url", "texts", "images", "image_info", "removed", "drop_reason"]
    rows = {}
    for folder in ("shards", "rejects"):
        for row in pq.read_table(Path(example_run.output) / folder, columns=columns).to_pylist():
            if "toscrape" in row["url"]:
                rows["books"] = row
            else:
                rows["mona_lisa_duplicate" if row["drop_reason"] else "mona_lisa"] = row
    assert rows["books"]["drop_reason"] and not rows["mona_lisa"]["drop_reason"]
    return rows


def open_page(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def submit(driver, button) -> None:
    """Click a submit button and wait for the next page."""
    old = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 10).until(lambda d: old.id != d.find_element(By.TAG_NAME, "html").id)
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def test_overview_renders_its_charts(browser, site, example_run):
    open_page(browser, site + "run/0/")
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    titles = [chart.find_element(By.TAG_NAME, "figcaption").text for chart in charts]
    assert titles[:2] == ["Funnel: documents passing each stage", "Drop reasons"]
    assert {"Languages", "Images per document", "Text length (characters)"} <= set(titles)
    for chart in charts:
        svg = chart.find_element(By.TAG_NAME, "svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 20
        bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
        assert bars and all(bar.size["width"] >= 1 for bar in bars), chart.text
    funnel = example_run.stats["funnel"]
    summary = browser.find_element(By.CLASS_NAME, "summary").text
    assert f"{funnel['input']} documents in, {funnel['kept']} kept" in summary
    drop_chart = charts[1].find_element(By.TAG_NAME, "svg")
    assert "read.duplicate_capture" in drop_chart.text
    # The bar of the funnel's first stage is as long as its input: kept + dropped segments.
    read_bars = charts[0].find_elements(By.CSS_SELECTOR, "rect.bar")
    widths = [float(bar.get_attribute("width")) for bar in read_bars]
    assert widths[0] == pytest.approx(widths[1] + widths[2], abs=0.2)
    assert "extract" in browser.find_element(By.CSS_SELECTOR, "pre.config").text


def test_a_document_shows_its_images_in_page_order(browser, site, example_rows):
    row = example_rows["mona_lisa"]
    open_page(browser, site + f"run/0/doc/{row['id']}")
    slots = [int(element.get_attribute("data-slot"))
             for element in browser.find_elements(By.CSS_SELECTOR, "#content > [data-slot]")]
    assert slots == list(range(len(row["texts"])))  # every slot, in order, texts and images interleaved
    images = browser.find_elements(By.CSS_SELECTOR, "#content img")
    stored = [(slot, info) for slot, info in enumerate(row["image_info"]) if info and info["status"] == "ok"]
    assert [int(image.get_attribute("data-slot")) for image in images] == [slot for slot, _ in stored]
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return [...document.images].every(image => image.complete)"))
    natural = browser.execute_script(
        "return [...document.querySelectorAll('#content img')].map(i => [i.naturalWidth, i.naturalHeight])")
    assert natural == [[info["width"], info["height"]] for _, info in stored]
    captions = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "#content figure figcaption a")]
    assert captions == [url for url in row["images"] if url is not None]


def test_images_without_bytes_show_their_url_and_why(browser, site, example_rows):
    # A rejected document: rejects are written without image bytes, so its images show URL and status.
    books = example_rows["books"]
    first_image = next(slot for slot, url in enumerate(books["images"]) if url is not None)
    open_page(browser, site + f"run/0/doc/{books['id']}")
    figure = browser.find_element(By.CSS_SELECTOR, f"#content figure[data-slot='{first_image}']")
    assert books["images"][first_image] in figure.text and "not stored" in figure.text
    assert figure.find_elements(By.TAG_NAME, "img") == []
    # A kept document: an image removed by the images step stands struck through, with its reason.
    row = example_rows["mona_lisa"]
    removed = [element for element in row["removed"] if element["kind"] == "image"]
    assert removed, "the example's Mona Lisa has images removed (not in the WARC, too small, banned URL)"
    open_page(browser, site + f"run/0/doc/{row['id']}")
    struck = browser.find_elements(By.CSS_SELECTOR, "#content .removed")
    shown = {(element.find_element(By.CLASS_NAME, "reason").text, element.find_element(By.TAG_NAME, "del").text)
             for element in struck}
    for element in removed:
        assert (f"removed: {element['reason']}", element["image_url"]) in shown


def test_a_filter_narrows_the_samples_and_the_link_reproduces_them(browser, site, example_rows):
    open_page(browser, site + "run/0/samples")
    assert "seed=" in browser.current_url  # a random sample always gets a reproducible address

    def cards(column: str) -> list[str]:
        return [card.get_attribute("data-id") for card in browser.find_elements(By.CSS_SELECTOR, f"#{column} .card")]

    assert cards("kept") == [example_rows["mona_lisa"]["id"]]
    assert sorted(cards("rejected")) == sorted([example_rows["books"]["id"], example_rows["mona_lisa_duplicate"]["id"]])
    browser.find_element(By.NAME, "url").send_keys("toscrape")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]"))
    assert cards("kept") == []
    assert cards("rejected") == [example_rows["books"]["id"]]
    permalink = browser.find_element(By.LINK_TEXT, "link to this sample").get_attribute("href")
    assert "url=toscrape" in permalink
    open_page(browser, permalink)
    assert cards("rejected") == [example_rows["books"]["id"]]
    browser.find_element(By.NAME, "url").clear()
    browser.find_element(By.NAME, "q").send_keys("gioconda")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]"))
    assert cards("kept") == [example_rows["mona_lisa"]["id"]]
    assert cards("rejected") == []  # the duplicate capture was never extracted: it has no text to search


def test_a_label_round_trips_into_the_export(browser, site, example_rows):
    row = example_rows["books"]
    open_page(browser, site + f"run/0/doc/{row['id']}")
    browser.find_element(By.NAME, "note").send_keys("a shop catalogue, not prose")
    browser.find_element(By.NAME, "rule").send_keys("shop.listing")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=bad]"))
    assert "labelled bad" in browser.find_element(By.CLASS_NAME, "current-label").text
    # A rejected document labelled good is a false positive of its drop reason.
    duplicate = example_rows["mona_lisa_duplicate"]
    open_page(browser, site + "run/0/samples?seed=1&url=Mona_Lisa")
    browser.find_element(By.CSS_SELECTOR, f"#rejected .card[data-id='{duplicate['id']}'] h3 a").click()
    WebDriverWait(browser, 10).until(lambda d: "/doc/" in d.current_url)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=good]"))

    open_page(browser, site + "labels/export.jsonl")
    exported = [json.loads(line) for line in browser.find_element(By.TAG_NAME, "body").text.splitlines()]
    by_id = {item["id"]: item for item in exported}
    assert by_id[row["id"]]["label"] == "bad" and by_id[row["id"]]["rule"] == "shop.listing"
    assert by_id[row["id"]]["note"] == "a shop catalogue, not prose"
    assert by_id[row["id"]]["text"] == "\n\n".join(text for text in row["texts"] if text)
    assert by_id[duplicate["id"]]["label"] == "good"
    assert by_id[duplicate["id"]]["drop_reason"] == "read.duplicate_capture"

    open_page(browser, site + "labels")
    table = browser.find_element(By.CSS_SELECTOR, "table.fp").text
    assert "read.duplicate_capture 1 1 0 100%" in table
    assert f"{row['drop_reason']} 1 0 1 0%" in table  # the catalogue, labelled bad: its reason was right


def test_hostile_document_renders_inert(browser, site, tmp_path):
    pages = [f"run/1/doc/{HOSTILE_ID}", "run/1/doc/0badc0de0badc0de0badc0df", "run/1/samples?seed=1&q=script",
             "run/1/", "labels"]
    # Label it with a hostile note too, so the labels page shows one.
    open_page(browser, site + pages[0])
    browser.find_element(By.NAME, "note").send_keys(SCRIPT)
    submit(browser, browser.find_element(By.CSS_SELECTOR, "button[value=bad]"))
    for path in pages:
        open_page(browser, site + path)
        assert_inert(browser, path)
    open_page(browser, site + pages[0])
    body = browser.find_element(By.TAG_NAME, "body").text
    assert SCRIPT in body and "onerror=\"window.__pwned = 'onerror'\"" in body  # shown as text
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == f"Title {SCRIPT}"
    links = [a.get_attribute("href") for a in browser.find_elements(By.TAG_NAME, "a")]
    assert not [link for link in links if link and not link.startswith(site)
                and not link.startswith(("https://example.org/"))], links
    # The image whose bytes are HTML does not load; the real one does.
    sizes = browser.execute_script("return [...document.querySelectorAll('#content img')].map(i => i.naturalWidth)")
    assert sizes == [200, 0]
    # The same page without the CSP header (as a file) is inert too: escaping alone holds.
    saved = tmp_path / "page.html"
    saved.write_text(browser.page_source)
    open_page(browser, saved.as_uri())
    assert_inert(browser, "saved copy")


def assert_inert(driver, where: str) -> None:
    try:
        alert = driver.switch_to.alert
        text = alert.text
        alert.dismiss()
        pytest.fail(f"{where}: an alert opened: {text}")
    except NoAlertPresentException:
        pass
    assert driver.execute_script("return window.__pwned === undefined"), where
    active = driver.execute_script("""
        const found = [...document.querySelectorAll('script')].map(() => 'script');
        for (const element of document.querySelectorAll('*')) {
            for (const attribute of element.attributes) {
                if (attribute.name.startsWith('on')) found.push(element.tagName + ' ' + attribute.name);
                if (/^\\s*javascript:/i.test(attribute.value)) found.push(element.tagName + ' ' + attribute.name);
            }
        }
        return found;""")
    assert active == [], where


def test_the_browser_itself_runs_script(browser):
    """The inert checks above mean something only if this Chromium runs script where it is allowed."""
    browser.get("data:text/html,<script>window.__pwned = 'ran'</script>")
    assert browser.execute_script("return window.__pwned") == "ran"


def test_screenshots_of_the_overview_and_a_document(browser, example_run, example_rows, tmp_path):
    """Screenshots for docs/; rewritten there only with OMNICORPUS_UPDATE_SCREENSHOTS=1."""
    from PIL import Image

    example = tmp_path / "example"  # the folder name `make example` gives, not pytest's
    shutil.copytree(example_run.output, example)
    shots = {"browser-overview.png": "run/0/", "browser-document.png": f"run/0/doc/{example_rows['mona_lisa']['id']}"}
    with serving([example], tmp_path / "labels.sqlite") as url:
        for name, path in shots.items():
            open_page(browser, url + path)
            WebDriverWait(browser, 10).until(lambda d: d.execute_script(
                "return [...document.images].every(image => image.complete)"))
            image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
            colors = image.resize((64, 64)).getcolors(maxcolors=4096)
            assert image.size[0] >= 1000 and (colors is None or len(colors) > 20)  # not a blank page
            # A 96-colour palette keeps the committed PNGs small.
            image.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(tmp_path / name, optimize=True)
            if os.environ.get("OMNICORPUS_UPDATE_SCREENSHOTS") == "1":
                shutil.copy(tmp_path / name, ROOT / "docs" / name)

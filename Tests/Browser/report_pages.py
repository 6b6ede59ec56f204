#!/usr/bin/env python3
"""The report pages in headless Chromium (selenium), as a marketer uses them.

    report_pages.py BASE_URL EXPECTED.json OUTPUT_DIR

BASE_URL is a running `clickd report`; EXPECTED.json holds what the views say (written by
ReportServerTests/ReportBrowserTests.swift from SQL on the same database). Every page is
screenshotted into OUTPUT_DIR for a person to look at. Exits 0 when every check passed;
otherwise prints each failure on a line and exits 1. No check is skipped: a missing browser
or driver is an error.
"""
import csv
import io
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def console_problems(driver, page):
    """Console errors and CSP violations the browser reported while showing `page`."""
    for entry in driver.get_log("browser"):
        text = entry.get("message", "")
        if entry.get("level") == "SEVERE" or "Content Security Policy" in text or "Refused to" in text:
            failures.append(f"{page}: the browser reported: {text}")


def shot(driver, out, name):
    """The whole page (the window grown to its height, at most 6000 px), then back to 1280×1000."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height + 120, 1000), 6000))
    driver.save_screenshot(os.path.join(out, name + ".png"))
    driver.set_window_size(1280, 1000)


def table_with_caption(driver, words):
    for table in driver.find_elements(By.TAG_NAME, "table"):
        caption = table.find_elements(By.TAG_NAME, "caption")
        if caption and words in caption[0].text:
            return table
    raise AssertionError(f"no table whose caption says {words!r}")


def body_rows(table):
    return table.find_elements(By.CSS_SELECTOR, "tbody tr")


def main():
    base, expected_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    downloads = os.path.join(out, "downloads")
    os.makedirs(downloads, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=en-US"]:
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run its sandbox as root
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    try:
        # The sources page.
        driver.get(base + "/")
        check(driver.title.startswith("Sources"), f"sources page title: {driver.title!r}")
        check(len(driver.find_elements(By.TAG_NAME, "script")) == 0, "the sources page holds a script")
        check(expected["range"] in driver.page_source, "the default range is shown on the sources page")
        shot(driver, out, "1-sources")
        console_problems(driver, "sources")

        # Its open figures: opened customers, open rate, click-to-open, machine opens per source
        # (the 6th to 9th cells after the source) as the views say; then sorted by open rate, most first,
        # through the column's link.
        sources = table_with_caption(driver, "Campaigns, newsletters")
        shown_opens = {}
        for row in body_rows(sources):
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            shown_opens[row.find_element(By.TAG_NAME, "th").text] = cells[5:9]
        for source in expected["opens"]:
            want = [source["opened"], source["open_rate"], source["click_to_open"], source["machine_opens"]]
            check(shown_opens.get(source["source"]) == want, f"{source['source']}: open figures {shown_opens.get(source['source'])} != {want}")
        driver.find_element(By.LINK_TEXT, "Open rate").click()  # an unsorted column sorts most first
        WebDriverWait(driver, 20).until(lambda d: "sort=-open-rate" in d.current_url)
        order = [r.find_element(By.TAG_NAME, "th").text for r in body_rows(table_with_caption(driver, "Campaigns, newsletters"))]
        check(order == expected["by_open_rate"], f"sorted by open rate {order} != {expected['by_open_rate']}")
        shot(driver, out, "8-sources-by-open-rate")
        driver.get(base + "/")

        # Follow campaign 17 to its overview: Top Clicked Links, rows and order.
        driver.find_element(By.LINK_TEXT, "campaign 17").click()
        WebDriverWait(driver, 20).until(lambda d: d.title.startswith("campaign 17"))
        check(driver.title.startswith("campaign 17"), f"overview title: {driver.title!r}")
        table = table_with_caption(driver, "Top Clicked Links")
        rows = body_rows(table)
        shown = [r.find_element(By.CSS_SELECTOR, "th").text for r in rows]
        check(shown == [l["link_id"] for l in expected["links"]], f"Top Clicked Links order {shown} != {[l['link_id'] for l in expected['links']]}")
        for row, link in zip(rows, expected["links"]):
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            check(cells[1] == link["total_clicks"] and cells[2] == link["human_clicks"] and cells[3] == link["unique_clickers"],
                  f"{link['link_id']}: shown {cells[1:4]}, the views say {link}")
        # Opened beside clicked, click-to-open, and the opens by who fetched them.
        tiles = " ".join(driver.find_element(By.CSS_SELECTOR, "section.tiles").text.split())  # a figure is a block
        seventeen = next(o for o in expected["opens"] if o["source"] == "campaign 17")
        check(f"{seventeen['open_rate']} opened ({seventeen['opened']} people)" in tiles, f"open tile: {tiles!r}")
        check(f"{seventeen['click_to_open']} click-to-open" in tiles, f"click-to-open tile: {tiles!r}")
        labels = {"Opened through an image proxy": "image_proxy", "Apple Mail Privacy Protection": "apple_mpp",
                  "Security scanner": "scanner", "Prefetched": "prefetch"}
        by_reason = {}
        for row in body_rows(table_with_caption(driver, "Opens by who fetched the pixel")):
            label = row.find_element(By.TAG_NAME, "th").text
            if label in labels:
                by_reason[labels[label]] = row.find_elements(By.TAG_NAME, "td")[0].text
        check(by_reason == expected["reasons_17"], f"opens by reason {by_reason} != {expected['reasons_17']}")
        shot(driver, out, "2-overview")
        console_problems(driver, "overview")

        # Follow hero's unique count to its segment.
        hero = rows[0]
        hero.find_elements(By.TAG_NAME, "td")[3].find_element(By.TAG_NAME, "a").click()
        WebDriverWait(driver, 20).until(lambda d: d.title.startswith("Clicked hero"))
        check(driver.title.startswith("Clicked hero"), f"segment title: {driver.title!r}")
        members = [r.find_element(By.CSS_SELECTOR, "th").text for r in body_rows(table_with_caption(driver, "Members of the segment"))]
        check(members == expected["hero_members"], f"segment members {members} != {expected['hero_members']}")
        shot(driver, out, "3-segment")
        console_problems(driver, "segment")

        # Its CSV download.
        driver.find_element(By.LINK_TEXT, "CSV").click()
        path = None
        deadline = time.time() + 20
        while time.time() < deadline:
            done = [n for n in os.listdir(downloads) if n.endswith(".csv")]
            if done:
                path = os.path.join(downloads, done[0])
                break
            time.sleep(0.1)
        if check(path is not None, "the segment's CSV was not downloaded"):
            with open(path, encoding="utf-8", newline="") as f:
                table_rows = list(csv.reader(io.StringIO(f.read())))
            check(table_rows[0][0] == "customer_id", f"CSV header {table_rows[0]}")
            check([r[0] for r in table_rows[1:]] == expected["hero_members"], f"CSV members {[r[0] for r in table_rows[1:]]}")

        # A person's activity: a Clicked Link entry expands to show the link.
        driver.get(base + "/people/c0")
        entries = driver.find_elements(By.CSS_SELECTOR, "ol.activity details")
        check(len(entries) == expected["c0_clicks"], f"{len(entries)} clicked-link entries for c0, the views say {expected['c0_clicks']}")
        if entries:
            first = entries[0]
            url = first.find_element(By.CSS_SELECTOR, "dd.url")
            check(not url.is_displayed(), "the link is hidden before the entry is expanded")
            first.find_element(By.TAG_NAME, "summary").click()
            check(first.get_attribute("open") is not None, "the entry opened")
            check(url.is_displayed() and url.text == expected["c0_newest_url"], f"expanded link {url.text!r}")
        opened = driver.find_elements(By.CSS_SELECTOR, "ol.activity p.opened")
        check(len(opened) == expected["c0_opens"] and all("Opened Email" in p.text for p in opened),
              f"{len(opened)} Opened Email entries for c0, the views say {expected['c0_opens']}")
        shot(driver, out, "4-person")
        console_problems(driver, "person")

        # The date range, changed through the form, is what the page then shows.
        driver.get(base + "/sources/campaign/17")
        before = driver.find_element(By.CSS_SELECTOR, "svg title").get_attribute("textContent")
        check(before.endswith("by the day"), f"a 30-day range is charted by the day: {before!r}")
        bars_before = len(driver.find_elements(By.CSS_SELECTOR, "svg rect"))
        driver.execute_script("document.querySelector('input[name=from]').value = arguments[0];"
                              "document.querySelector('input[name=to]').value = arguments[1];", "2026-11-20", "2026-11-22")
        old = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.CSS_SELECTOR, "form.range button").click()
        # The form's GET is a navigation: wait until the old page is gone and the new one loaded.
        WebDriverWait(driver, 20).until(lambda d: "from=2026-11-20" in d.current_url and d.execute_script("return document.readyState") == "complete"
                                        and d.find_element(By.TAG_NAME, "html") != old)
        check("from=2026-11-20" in driver.current_url and "to=2026-11-22" in driver.current_url, f"range URL {driver.current_url}")
        check("2026-11-20 to 2026-11-22" in driver.find_element(By.CSS_SELECTOR, ".range-shown").text, "the new range is shown")
        after = driver.find_element(By.CSS_SELECTOR, "svg title").get_attribute("textContent")
        check(after.endswith("by the hour"), f"three days are charted by the hour: {after!r}")
        bars_after = len(driver.find_elements(By.CSS_SELECTOR, "svg rect"))
        check(bars_after == expected["hours_with_human_clicks"] and bars_after != bars_before,
              f"bars by the hour {bars_after} (expected {expected['hours_with_human_clicks']}), by the day {bars_before}")
        rows = driver.find_elements(By.CSS_SELECTOR, ".chart-table tbody tr")
        check(len(rows) == 72, f"the chart's table holds every hour of the range: {len(rows)}")
        shot(driver, out, "5-overview-range")
        console_problems(driver, "overview with a range")

        # The bots page.
        driver.get(base + "/bots?from=2026-11-20&to=2026-11-22")
        reasons = [r.find_element(By.TAG_NAME, "th").text for r in body_rows(table_with_caption(driver, "Bot clicks by reason"))]
        check(reasons == expected["bot_reasons"], f"bot reasons {reasons} != {expected['bot_reasons']}")
        shot(driver, out, "7-bots")
        console_problems(driver, "bots")

        # Hostile ids render as text.
        driver.get(base + expected["hostile_overview"])
        check(len(driver.find_elements(By.TAG_NAME, "script")) == 0 and len(driver.find_elements(By.TAG_NAME, "img")) == 0,
              "markup from ids or URLs became elements")
        check(expected["hostile_id"] in driver.find_element(By.TAG_NAME, "h1").text, "the hostile id is shown as text")
        shot(driver, out, "6-hostile")
        console_problems(driver, "hostile")
    finally:
        driver.quit()
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

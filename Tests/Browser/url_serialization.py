"""What Chromium's URL parser makes of each URL: `new URL(s).href` (null when it throws).

    url_serialization.py INPUT.json OUTPUT.json

INPUT: a JSON list of strings; OUTPUT: the same length list of hrefs. Run by
LocationURLBrowserTests (Tests/TrackerEdgeTests), which compares them with the edge's
Location serialization (Sources/LinkTracking/LocationURL.swift).
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        inputs = json.load(f)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--disable-gpu", "--disable-dev-shm-usage"]:
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run its sandbox as root
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get("about:blank")
        hrefs = driver.execute_script(
            "return arguments[0].map(s => { try { return new URL(s).href } catch (e) { return null } })", inputs
        )
    finally:
        driver.quit()
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(hrefs, f, ensure_ascii=False)


if __name__ == "__main__":
    main()

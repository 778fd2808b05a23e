"""Screenshots of the Dagster UI for docs/data-engineers.md (headless Chromium over CDP).

    PUBLIEKSDATA_HOME=data DAGSTER_HOME=data/dagster dagster-webserver -w workspace.yaml -p 3333 &
    python docs/screenshots/make_dagster_screenshots.py http://127.0.0.1:3333

Chromium is started with every background-networking feature off; the script dismisses the
UI's first-visit dialog and saves PNGs next to this file.
"""

import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets

HERE = Path(__file__).parent
PAGES = {
    "dagster_lineage.png": "/asset-groups",
    "dagster_runs.png": "/runs",
    "dagster_automation.png": "/automation",
}


async def shoot(ws_url: str, base: str) -> None:
    async with websockets.connect(ws_url, max_size=50_000_000) as ws:
        counter = 0

        async def call(method, **params):
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == counter:
                    return msg.get("result", {})

        await call("Page.enable")
        await call("Emulation.setDeviceMetricsOverride", width=1600, height=1000,
                   deviceScaleFactor=1, mobile=False)  # fmt: skip
        for name, path in PAGES.items():
            await call("Page.navigate", url=base + path)
            await asyncio.sleep(12)
            # dismiss the first-visit community dialog
            await call("Runtime.evaluate", expression="""
                for (const b of document.querySelectorAll('button')) {
                  if (['Skip', 'Expand all'].includes(b.innerText.trim())) b.click();
                }""")  # fmt: skip
            await asyncio.sleep(4)
            shot = await call("Page.captureScreenshot", format="png")
            (HERE / name).write_bytes(base64.b64decode(shot["data"]))
            print("wrote", HERE / name)


def main(base: str) -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-port=9333", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(50):
                try:
                    targets = json.loads(
                        urllib.request.urlopen("http://127.0.0.1:9333/json").read()
                    )
                    page = next(t for t in targets if t["type"] == "page")
                    break
                except (OSError, StopIteration):
                    time.sleep(0.3)
            asyncio.run(shoot(page["webSocketDebuggerUrl"], base.rstrip("/")))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000")

// Opens the Airflow UI's trigger form of logtap_replay in headless Debian chromium and saves a screenshot.
// Usage: node shot.mjs <api-server or webserver url> <out.png> [3|2]
// Airflow 2's webserver asks for a login first (the FAB admin user of tests/system/airflow_env.py) and has the
// form at /dags/<dag_id>/trigger.
import { chromium } from "playwright-core";

const [url, out, version = "3"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  if (version === "2") {
    const page = await browser.newPage({ viewport: { width: 1440, height: 2200 } });
    await page.goto(`${url}/login/`, { waitUntil: "networkidle" });
    await page.fill("#username", "admin");
    await page.fill("#password", "admin");
    await page.click("input[type=submit]");
    await page.waitForLoadState("networkidle");
    await page.goto(`${url}/dags/logtap_replay/trigger`, { waitUntil: "networkidle" });
    await page.screenshot({ path: out, fullPage: true });  // what the page shows, should the form not come
    await page.getByText(/tap/i).first().waitFor();
    await page.waitForTimeout(1500);
    await page.screenshot({ path: out, fullPage: true });
  } else {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
    await page.goto(`${url}/dags/logtap_replay`, { waitUntil: "networkidle" });
    await page.getByRole("button", { name: /trigger/i }).first().click();
    await page.getByText(/tap/i).first().waitFor();
    await page.waitForTimeout(1500);
    // The dialog scrolls inside a fixed full-window positioner, so a full-page shot would not show more of it:
    // grow the window to the positioner's scroll height (the whole dialog and its margins) until nothing scrolls.
    for (let i = 0; i < 5; i++) {
      const height = await page.evaluate(() => {
        const dialogs = [...document.querySelectorAll("[role=dialog]")];  // popovers are dialogs too
        const dialog = dialogs.find((e) => /Trigger Dag/i.test(e.textContent));
        return dialog?.parentElement?.scrollHeight ?? 0;
      });
      if (height <= page.viewportSize().height) break;
      await page.setViewportSize({ width: 1440, height });
      await page.waitForTimeout(1000);
    }
    await page.screenshot({ path: out });
  }
} finally {
  await browser.close();
}

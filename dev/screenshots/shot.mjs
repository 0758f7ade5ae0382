// Opens the Airflow UI's trigger form of logtap_replay in headless Debian chromium and saves a screenshot.
// Usage: node shot.mjs <api-server url> <out.png>
import { chromium } from "playwright-core";

const [url, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1200 } });
  await page.goto(`${url}/dags/logtap_replay`, { waitUntil: "networkidle" });
  await page.getByRole("button", { name: /trigger/i }).first().click();
  await page.getByText(/tap/i).first().waitFor();
  await page.waitForTimeout(1500);
  await page.screenshot({ path: out });
} finally {
  await browser.close();
}

// The operations console in Firefox (Debian's firefox-esr, driven over WebDriver BiDi by
// puppeteer-core: Playwright's Firefox needs its own patched build, which cannot be downloaded
// here). Run by tests/e2e/console.py: `node console_firefox.mjs API SCREENSHOT_DIR`.
// Protocol on stdio: it prints READY once the live book shows, waits for a line on stdin (the
// test has placed a crossing order), then prints one JSON line of what it saw and exits.
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const [api, shots] = process.argv.slice(2);
const FIREFOX = process.env.CROSSBOOK_FIREFOX || "/usr/bin/firefox-esr";
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
// The window's size from Firefox's own flags: setViewport needs a BiDi command (screen
// orientation) that Firefox ESR 140 does not have.
const browser = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true,
                                         defaultViewport: null, args: ["--width=1400", "--height=1800"] });
const seen = { errors: [] };
// Stopped by the test (it failed on its side): close the browser, which puppeteer starts in a
// process group of its own, so nothing is left running.
process.on("SIGTERM", () => browser.close().finally(() => process.exit(1)));
try {
  const page = await browser.newPage();
  page.on("pageerror", (err) => seen.errors.push(String(err)));
  await page.goto(`${api}/ui`);
  // The market maker's quotes, live from the websocket; the venue healthy.
  await page.waitForFunction(() => {
    const bid = document.querySelector('[data-testid="ladder-0"] td.bid');
    return bid && bid.textContent.trim() !== "" && document.querySelector('[data-testid="status"]').textContent === "ok";
  }, { timeout: 30_000 });
  seen.ladderRows = await page.$$eval('[data-testid="ladder-0"] tr', (rows) => rows.length);
  const topTrade = () => document.querySelector('[data-testid="trades-0"] tr')?.textContent ?? "";
  seen.tradeBefore = await page.evaluate(topTrade);
  console.log("READY");
  await lines.next();
  // The order the test placed crosses the book: a new trade row appears at the top.
  await page.waitForFunction((before) => {
    const top = document.querySelector('[data-testid="trades-0"] tr')?.textContent ?? "";
    return top !== before && top.startsWith("buy");
  }, { timeout: 15_000 }, seen.tradeBefore);
  seen.firstTrade = await page.$eval('[data-testid="trades-0"] tr', (row) => row.textContent);
  // Alerts render too: the ones the Chromium checks raised and resolved are listed.
  seen.alerts = await page.$$eval('[data-testid^="alert-"]', (cards) =>
    cards.map((c) => ({ rule: c.dataset.testid.slice(6), status: c.dataset.status })));
  seen.userAgent = await page.evaluate(() => navigator.userAgent);
  await page.screenshot({ path: `${shots}/console-firefox.png`, fullPage: true });
} catch (err) {
  seen.failure = String(err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(0);

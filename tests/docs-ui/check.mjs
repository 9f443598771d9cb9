// Opens the interactive docs page in headless Chromium, as a developer would on first
// visit: the page renders from the API's own origin (no request goes anywhere else: the
// Swagger UI is vendored), Authorize takes a bearer token, and try-it-out on
// `GET /api/v1/customers` answers 200. Usage: node check.mjs <base URL> <access token>.
import { chromium } from "playwright-core";

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node check.mjs <base URL> <access token>");
  process.exit(2);
}
const origin = new URL(base).origin;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const offsite = [];
try {
  const context = await browser.newContext();
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  await page.goto(`${base}/docs`);
  await page.locator(".swagger-ui .info .title").waitFor({ timeout: 30_000 });
  const title = (await page.locator(".swagger-ui .info .title").textContent()) ?? "";
  if (!title.includes("Rapport")) throw new Error(`unexpected title: ${title}`);

  await page.locator(".swagger-ui .auth-wrapper button.authorize").click();
  const dialog = page.locator(".swagger-ui .dialog-ux");
  await dialog.locator("input").first().fill(token);
  await dialog.locator("button.authorize").first().click();
  await dialog.locator("button.btn-done").first().click();

  const operation = page.locator('[id^="operations-customers-"][id$="customers_list"]').first();
  await operation.locator(".opblock-summary").click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator("button.execute").click();
  const status = operation.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 30_000 });
  const code = ((await status.textContent()) ?? "").trim();
  if (!code.startsWith("200")) throw new Error(`GET /api/v1/customers from /docs answered ${code}`);
  if (offsite.length) throw new Error(`the docs page reached beyond the API: ${offsite.join(", ")}`);
  console.log("/docs: rendered, authorised, GET /api/v1/customers tried out: 200");
} finally {
  await browser.close();
}

// Swagger UI at /docs, checked in a real browser (Debian's Chromium, headless, driven by
// playwright-core): every operation of the document renders with its parameters and its body's
// fields, the Authorize dialog takes a bearer token, and "Try it out" on GET /me answers 200 with
// the signed-in user. A screenshot of the page is kept.
//
// Environment: IPA_URL, IPA_TOKEN, IPA_USERNAME, DOCUMENT (docs/openapi.json), CHROMIUM (the
// browser's binary), SCREENSHOT (where the PNG goes). scripts/contract/swagger_ui.py sets them.

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

function setting(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const document = JSON.parse(readFileSync(setting('DOCUMENT'), 'utf8'));
const schemas = document.components.schemas;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** The properties of the request body of `operation`, resolved through its `$ref`. */
function bodyFields(operation) {
  const content = operation.requestBody?.content ?? {};
  const media = Object.values(content)[0];
  let schema = media?.schema ?? {};
  if (schema.$ref) {
    schema = schemas[schema.$ref.split('/').pop()];
  }
  return Object.keys(schema.properties ?? {});
}

const operations = [];
for (const [path, item] of Object.entries(document.paths)) {
  for (const method of METHODS) {
    const operation = item[method];
    if (operation) {
      operations.push({ path, method, operation });
    }
  }
}

const browser = await chromium.launch({
  executablePath: setting('CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const failures = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await page.goto(`${setting('IPA_URL')}/docs`, { waitUntil: 'load' });
  await page.waitForSelector('.opblock');

  for (const { path, method, operation } of operations) {
    const tag = operation.tags?.[0] ?? 'default';
    const block = page.locator(`#operations-${tag}-${operation.operationId}`);
    if ((await block.count()) !== 1) {
      failures.push(`${method.toUpperCase()} ${path}: not rendered (#operations-${tag}-${operation.operationId})`);
      continue;
    }
    const shownPath = (await block.locator('.opblock-summary-path').first().getAttribute('data-path')) ?? '';
    if (shownPath !== path) {
      failures.push(`${method.toUpperCase()} ${path}: shown as ${shownPath}`);
    }
    await block.locator('.opblock-summary').first().click();
    await block.locator('.opblock-body').first().waitFor();
    for (const parameter of operation.parameters ?? []) {
      const row = block.locator(`tr[data-param-name="${parameter.name}"]`);
      if ((await row.count()) === 0) {
        failures.push(`${method.toUpperCase()} ${path}: parameter ${parameter.name} not shown`);
      }
    }
    const fields = bodyFields(operation);
    if (fields.length > 0) {
      // The example is shown first; the schema tab lists every field.
      const section = block.locator('.opblock-section-request-body').first();
      const example = await section.innerText();
      if (!example.includes('{')) {
        failures.push(`${method.toUpperCase()} ${path}: no example body shown`);
      }
      await section.locator('button[data-name="model"]').first().click();
      const model = await section.innerText();
      for (const field of fields) {
        if (!model.includes(field)) {
          failures.push(`${method.toUpperCase()} ${path}: body field ${field} not shown`);
        }
      }
    }
    await block.locator('.opblock-summary').first().click();
  }

  // Authorise with the bearer token.
  await page.locator('.scheme-container button.authorize').click();
  const dialog = page.locator('.modal-ux');
  await dialog.locator('input').first().fill(setting('IPA_TOKEN'));
  await dialog.locator('.auth-btn-wrapper button.authorize').click();
  await dialog.locator('button.btn-done').click();

  // Try GET /me out.
  const me = page.locator(`#operations-Auth-getMe`);
  await me.locator('.opblock-summary').first().click();
  await me.locator('button.try-out__btn').click();
  await me.locator('button.execute').click();
  const live = me.locator('.live-responses-table');
  await live.waitFor();
  const answer = live.locator('tr.response').first();
  const status = (await answer.locator('.response-col_status').innerText()).trim();
  const body = await answer.locator('.response-col_description').innerText();
  if (status !== '200' || !body.includes(setting('IPA_USERNAME'))) {
    failures.push(`Try it out on GET /me: ${status} ${body.slice(0, 300)}`);
  }
  await page.screenshot({ path: setting('SCREENSHOT'), fullPage: true });
  for (const error of pageErrors) {
    failures.push(`the page raised: ${error}`);
  }
} finally {
  await browser.close();
}

if (failures.length > 0) {
  console.error(`Swagger UI: ${failures.length} problem(s):\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log(
  `Swagger UI: ${operations.length} operations render with their parameters and body fields; ` +
    `authorised; GET /me tried out (200). Screenshot: ${setting('SCREENSHOT')}`,
);

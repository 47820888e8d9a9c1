// The playground (GraphiQL, embedded in the binary) in Debian's Chromium, driven by playwright-core:
// it loads with no request leaving loopback, its docs explorer lists the public types, and a query
// typed into the editor runs. Screenshots land in tests/e2e/artifacts/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, annotate, demo } from '../lib/demo.js';

const CHROMIUM = process.env.MOSAIC_E2E_CHROMIUM || '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP = HAVE_CHROMIUM ? false : `SKIPPED: no Chromium at ${CHROMIUM} (run.sh installs Debian's chromium with apt-get; it could not)`;
if (!HAVE_CHROMIUM) {
  const bar = '!'.repeat(100);
  console.error(`\n${bar}\n!! THE PLAYGROUND BROWSER TEST IS SKIPPED: ${CHROMIUM} is missing and could not be installed.\n${bar}\n`);
}

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const STEP_TIMEOUT = 15_000;

const QUERY = 'query PlaygroundE2E { customer(id: "C002") { id name district accounts { id currency } } }';

test('playground: loads in Chromium with no request leaving loopback; docs list Customer; a typed query runs', { skip: SKIP, timeout: 90_000 }, async (t) => {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'mosaic-e2e-chromium-'));
  const requests = [];
  const pageErrors = [];
  const consoleErrors = [];
  const failedResponses = [];
  let context;
  const shot = async (page, name) => {
    const file = path.join(ARTIFACTS, name);
    await page.screenshot({ path: file, fullPage: true, timeout: STEP_TIMEOUT });
    return file;
  };
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1400, height: 900 },
      timeout: 30_000,
    });
    context.setDefaultTimeout(STEP_TIMEOUT);
    // Every request of every page, service worker included.
    context.on('request', (r) => requests.push(r.url()));
    context.on('response', (r) => r.status() >= 400 && failedResponses.push(`${r.status()} ${r.request().method()} ${r.url()}`));
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(String(e?.stack ?? e)));
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));

    const { playground, graphql } = demo();
    const res = await page.goto(playground, { waitUntil: 'load' });
    assert.equal(res?.status(), 200, `GET ${playground}`);
    // GraphiQL rendered (its editors and the docs button exist) and fetched the schema.
    await page.locator('.graphiql-container').waitFor();
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor();
    await page.waitForLoadState('networkidle', { timeout: STEP_TIMEOUT }).catch(() => {});
    await shot(page, 'playground-loaded.png');

    // The default query is the demo's first example.
    const initial = await page.evaluate(() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue());
    assert.match(initial, /CustomerWithAccountsAndTransfers/, 'the editor opens with the demo example');

    // Docs explorer: open it, see the public types (Query → Customer).
    await page.getByRole('button', { name: /show documentation explorer/i }).click();
    const docs = page.locator('.graphiql-doc-explorer');
    await docs.waitFor();
    await docs.getByText('Query', { exact: true }).first().click();
    await docs.getByText('Customer', { exact: true }).first().waitFor();
    await docs.getByText('Customer', { exact: true }).first().click();
    await docs.locator('.graphiql-doc-explorer-title', { hasText: 'Customer' }).waitFor();
    const docsText = await docs.innerText();
    assert.match(docsText, /accounts/, 'the Customer page lists its fields');
    assert.doesNotMatch(docsText, /@http|backend:|127\.0\.0\.1/, 'the docs show no directives or backend URLs');
    await shot(page, 'playground-docs.png');

    // Type a query into the editor (replacing the default) and run it with Ctrl-Enter.
    const editor = page.locator('.graphiql-query-editor .CodeMirror');
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type(QUERY, { delay: 5 });
    await page.keyboard.press('Escape'); // close any autocomplete popup
    // GraphiQL reads the operation name from the editor 100 ms (debounced) after the last edit; a
    // person pauses longer than that before running. Running sooner sends the old operation name.
    await page.waitForTimeout(500);
    const typed = await page.evaluate(() => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue());
    assert.equal(typed.replace(/\s+/g, ' ').trim(), QUERY, `the editor holds what was typed, got:\n${typed}`);
    const answered = page.waitForResponse((r) => r.url() === graphql && r.request().method() === 'POST' && (r.request().postData() ?? '').includes('C002'));
    await page.keyboard.press('Control+Enter');
    const wire = await answered;
    const wireBody = await wire.text();
    assert.equal(JSON.parse(wire.request().postData()).operationName, 'PlaygroundE2E', 'the request names the typed operation');
    const result = page.locator('.graphiql-response');
    await result.getByText('"district"').first().waitFor().catch(() => {});
    const shown = await page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror?.getValue() ?? '');
    await shot(page, 'playground-result.png');
    let parsed;
    try {
      parsed = JSON.parse(shown);
    } catch {
      assert.fail(`the result pane holds no JSON:\n${shown}\n--- the gateway answered ---\n${wireBody}`);
    }
    assert.equal(parsed.errors, undefined, `errors in the result pane:\n${shown}`);
    assert.equal(parsed.data?.customer?.id, 'C002', `result pane:\n${shown}`);
    assert.ok(parsed.data.customer.accounts.length > 0, `result pane:\n${shown}`);
    // The pane shows what the gateway answered.
    assert.deepEqual(parsed, JSON.parse(wireBody));

    // Nothing left loopback.
    const outside = requests.filter((u) => {
      const url = new URL(u);
      if (url.protocol === 'data:' || url.protocol === 'blob:') return false;
      return !LOOPBACK.has(url.hostname);
    });
    t.diagnostic(`${requests.length} requests, all on loopback: ${outside.length === 0}`);
    assert.deepEqual(outside, [], `requests that left loopback:\n${outside.join('\n')}`);
    assert.ok(requests.some((u) => u.startsWith(graphql)), 'the playground called the GraphQL endpoint');
    assert.deepEqual(pageErrors, [], `uncaught errors in the page:\n${pageErrors.join('\n')}`);
    if (consoleErrors.length) t.diagnostic(`console errors: ${consoleErrors.join(' | ')}`);
    if (failedResponses.length) t.diagnostic(`HTTP errors seen by the page (not fatal): ${failedResponses.join(' | ')}`);
    // The page itself, its scripts and styles must all load.
    const broken = failedResponses.filter((r) => !/\/favicon\.ico$/.test(r));
    assert.deepEqual(broken, [], 'requests of the playground that failed');
  } catch (err) {
    const page = context?.pages()[0];
    if (page) await shot(page, 'playground-failure.png').catch(() => {});
    throw annotate(
      err,
      `--- requests the page made ---\n${requests.join('\n')}\n--- page errors ---\n${pageErrors.join('\n')}\n--- console errors ---\n${consoleErrors.join('\n')}\n(screenshot: artifacts/playground-failure.png)`,
    );
  } finally {
    await context?.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
});

// The running demo, as run.sh started it: its URLs parsed from what `mosaic demo` printed, plus
// small helpers every test uses (bounded fetch, raw GraphQL POST, fault injection).

import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = process.env.MOSAIC_E2E_ROOT ?? path.resolve(E2E_DIR, '../..');
export const ARTIFACTS = process.env.MOSAIC_E2E_ARTIFACTS ?? path.join(E2E_DIR, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** Timeout of one HTTP request made by a test (ms). */
export const REQUEST_TIMEOUT_MS = 10_000;

const SERVICES = ['customers', 'accounts', 'transfers', 'external-bank', 'ledger'];

/**
 * Parses the banner of `mosaic demo`:
 *   "  playground  http://127.0.0.1:PORT/"
 *   "  GraphQL     http://127.0.0.1:PORT/graphql"
 *   "  customers     http://127.0.0.1:PORT"   (one line per mock service)
 * Log lines (tracing) may be interleaved; only lines starting with two spaces and a name count.
 */
export function parseDemoBanner(text) {
  const found = { playground: null, graphql: null, services: {} };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const m = /^ {2}(\S+)\s+(https?:\/\/\S+)\s*$/.exec(line);
    if (!m) continue;
    const [, name, url] = m;
    if (name === 'playground') found.playground = url;
    else if (name === 'GraphQL') found.graphql = url;
    else if (SERVICES.includes(name)) found.services[name] = url;
  }
  return found;
}

let cached;
/** The demo's URLs; throws with a hint when not started by run.sh. */
export function demo() {
  if (cached) return cached;
  const log = process.env.MOSAIC_E2E_DEMO_LOG;
  if (!log) {
    throw new Error('MOSAIC_E2E_DEMO_LOG is not set: run these tests through tests/e2e/run.sh, which starts the demo');
  }
  const text = readFileSync(log, 'utf8');
  const parsed = parseDemoBanner(text);
  const missing = [];
  if (!parsed.playground) missing.push('playground');
  if (!parsed.graphql) missing.push('GraphQL');
  for (const s of SERVICES) if (!parsed.services[s]) missing.push(s);
  if (missing.length) {
    throw new Error(`the demo's output (${log}) lacks the line(s) for: ${missing.join(', ')}\n--- demo output ---\n${text}`);
  }
  cached = { ...parsed, log, bannerText: text };
  return cached;
}

export { SERVICES };

/** fetch with a bounded time (an explicit signal wins). */
export function fetchWithTimeout(input, init = {}) {
  return fetch(input, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
}

/**
 * POSTs one GraphQL request (or a batch: pass an array) and returns what the client saw:
 * { status, headers, text, body (parsed JSON or undefined) }.
 */
export async function postGraphQL(payload, { url = demo().graphql, headers = {} } = {}) {
  const res = await fetchWithTimeout(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json;q=0.9',
      ...headers,
    },
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, body };
}

/** What the client saw, for assertion messages. */
export function saw(res) {
  return `HTTP ${res.status} ${res.headers?.['content-type'] ?? ''}\n${res.text}`;
}

/** Switches faults on for a mock service (`PUT <service>/_faults`). */
export async function setFaults(service, patch) {
  const url = `${demo().services[service]}/_faults`;
  const res = await fetchWithTimeout(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(patch),
  });
  if (!res.ok) throw new Error(`PUT ${url} ${JSON.stringify(patch)} → HTTP ${res.status}: ${await res.text()}`);
}

/** Clears every fault of a mock service (`POST <service>/_faults/reset`). */
export async function resetFaults(service) {
  const url = `${demo().services[service]}/_faults/reset`;
  const res = await fetchWithTimeout(url, { method: 'POST' });
  if (!res.ok) throw new Error(`POST ${url} → HTTP ${res.status}: ${await res.text()}`);
}

/** Runs `fn` with `service` down, always resetting its faults afterwards. */
export async function withServiceDown(service, fn) {
  await setFaults(service, { down: true });
  try {
    return await fn();
  } finally {
    await resetFaults(service);
  }
}

/** A key no earlier run used (the mock bank lives as long as the demo). */
export function uniqueKey(prefix) {
  return `${prefix}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Adds `text` (e.g. what the client saw) to an error's message and its printed stack. */
export function annotate(err, text) {
  if (err && typeof err === 'object') {
    try {
      err.message = `${err.message}\n${text}`;
    } catch {
      // a read-only message: the stack still carries the text
    }
    if (typeof err.stack === 'string') err.stack = `${err.stack}\n${text}`;
    return err;
  }
  return new Error(`${err}\n${text}`);
}

// The demo as the README describes it (`mosaic demo`, here on ephemeral ports): what it prints, its
// mock services, and every example query (schema/examples/*.graphql and the README's graphql blocks).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Kind, parse } from 'graphql';
import { ROOT, SERVICES, annotate, demo, fetchWithTimeout, postGraphQL, saw } from '../lib/demo.js';
import { firstEventOverSse } from '../lib/subscriptions.js';

const EXAMPLES_DIR = path.join(ROOT, 'schema', 'examples');
const exampleFiles = readdirSync(EXAMPLES_DIR)
  .filter((f) => f.endsWith('.graphql'))
  .sort();

/**
 * Runs one example as its kind needs: a query or mutation as a POST; a subscription over GraphQL
 * over SSE, taking its first event (a subscription runs until the client leaves). Either way the
 * answer has the shape of postGraphQL's (`saw(res)` prints it).
 */
function runExample(query) {
  const op = parse(query).definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
  return op?.operation === 'subscription' ? firstEventOverSse({ query }) : postGraphQL({ query });
}

/** The ```graphql blocks of a Markdown file. */
function graphqlBlocks(file) {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^```graphql[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]);
}

test('demo: prints the playground, GraphQL and the five mock services on loopback', () => {
  const d = demo();
  assert.match(d.playground, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(d.graphql, /^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
  assert.equal(new URL(d.playground).port, new URL(d.graphql).port);
  for (const s of SERVICES) assert.match(d.services[s], /^http:\/\/127\.0\.0\.1:\d+$/, `${s} url`);
  assert.equal(new Set(Object.values(d.services)).size, SERVICES.length, 'five distinct services');
});

test('demo: prints every example of schema/examples/', () => {
  const { bannerText } = demo();
  const missing = exampleFiles.filter((f) => {
    const body = readFileSync(path.join(EXAMPLES_DIR, f), 'utf8').trim();
    return !bannerText.includes(body);
  });
  assert.deepEqual(missing, [], `examples the demo does not print (the embedded list is out of date?): ${missing.join(', ')}`);
});

test('demo: each mock service answers /health, /_stats, /_faults and /openapi.json', { timeout: 30_000 }, async () => {
  for (const s of SERVICES) {
    const base = demo().services[s];
    for (const p of ['/health', '/_stats', '/_faults']) {
      const res = await fetchWithTimeout(base + p);
      assert.equal(res.status, 200, `GET ${base}${p} → ${res.status}: ${await res.text()}`);
    }
    const doc = await (await fetchWithTimeout(`${base}/openapi.json`)).json();
    assert.ok(doc.openapi && doc.paths, `${s}/openapi.json is an OpenAPI document`);
  }
});

/**
 * Checks that `value` has the shape `selectionSet` asks for: every selected field (by alias) is
 * present; lists and objects are checked item by item. Returns the problems found.
 */
function shapeProblems(selectionSet, value, where, problems = []) {
  if (value === null) return problems;
  if (Array.isArray(value)) {
    value.forEach((v, i) => shapeProblems(selectionSet, v, `${where}[${i}]`, problems));
    return problems;
  }
  if (typeof value !== 'object') {
    problems.push(`${where}: expected an object, got ${JSON.stringify(value)}`);
    return problems;
  }
  for (const sel of selectionSet.selections) {
    if (sel.kind === Kind.INLINE_FRAGMENT) {
      shapeProblems(sel.selectionSet, value, where, problems);
      continue;
    }
    if (sel.kind !== Kind.FIELD) continue;
    const key = sel.alias?.value ?? sel.name.value;
    if (!(key in value)) {
      problems.push(`${where}.${key}: missing`);
      continue;
    }
    if (sel.selectionSet) shapeProblems(sel.selectionSet, value[key], `${where}.${key}`, problems);
    else if (value[key] !== null && typeof value[key] === 'object') problems.push(`${where}.${key}: a leaf is an object`);
  }
  return problems;
}

/** What each example documents beyond "no errors, the shape asked for, non-empty top level". */
const EXTRA = {
  'customer-with-accounts-and-transfers.graphql': (data) => {
    assert.ok(data.customer.accounts.length > 0, 'the customer has accounts');
    for (const a of data.customer.accounts) assert.ok(a.transfers.length <= 3, 'transfers(last: 3)');
  },
  'district-balances.graphql': (data) => {
    assert.ok(data.customers.length > 0 && data.customers.length <= 5);
  },
  'external-bank-calls.graphql': (data) => {
    // "null when none were needed": transfers inside Mosaic Bank make no external call.
    for (const t of data.transfers) {
      assert.ok(t.amount > 0);
      if (t.toBank === 'Mosaic Bank') assert.equal(t.externalCalls, null, `${t.id} (internal): externalCalls`);
      else assert.ok(t.externalCalls?.count >= 1, `${t.id} (to ${t.toBank}): externalCalls.count >= 1`);
    }
  },
  'live-district-balance.graphql': (data) => {
    // The first event is the current figures.
    assert.equal(data.districtBalance.district, 'Gangnam-gu');
    assert.ok(Number(data.districtBalance.totalBalance) > 0, 'a positive total balance');
  },
  'gangnam-total.graphql': (data) => {
    assert.equal(data.district.district, 'Gangnam-gu');
    assert.ok(Number(data.district.totalBalance) > 0, 'a positive total balance');
  },
  'send-transfer.graphql': (data) => {
    assert.ok(['COMPLETED', 'FAILED'].includes(data.transfer.status));
    assert.equal(data.transfer.amount, 1000);
    assert.ok(data.transfer.externalCalls?.count >= 1, 'a transfer to another bank calls the external bank');
  },
};

for (const file of exampleFiles) {
  test(`demo: example ${file} answers its documented shape`, { timeout: 30_000 }, async () => {
    const query = readFileSync(path.join(EXAMPLES_DIR, file), 'utf8');
    const doc = parse(query);
    const op = doc.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
    // A subscription's answer is its first event (over SSE); the checks below are the same.
    const res = await runExample(query);
    const seen = saw(res);
    assert.equal(res.status, 200, seen);
    assert.equal(res.body?.errors, undefined, `errors:\n${seen}`);
    const data = res.body?.data;
    assert.ok(data && typeof data === 'object', `no data:\n${seen}`);
    for (const sel of op.selectionSet.selections) {
      const key = sel.alias?.value ?? sel.name.value;
      const v = data[key];
      assert.ok(v !== null && v !== undefined, `data.${key} is empty:\n${seen}`);
      if (Array.isArray(v)) assert.ok(v.length > 0, `data.${key} is an empty list:\n${seen}`);
    }
    assert.deepEqual(shapeProblems(op.selectionSet, data, 'data'), [], seen);
    try {
      EXTRA[file]?.(data);
    } catch (err) {
      throw annotate(err, seen);
    }
  });
}

const readmeBlocks = graphqlBlocks(path.join(ROOT, 'README.md'));
test('demo: the README has graphql blocks to run', () => {
  assert.ok(readmeBlocks.length > 0, 'README.md has no ```graphql block');
});
readmeBlocks.forEach((query, i) => {
  const name = /^\s*(?:query|mutation|subscription)\s+(\w+)/m.exec(query)?.[1] ?? `#${i + 1}`;
  test(`demo: README graphql block ${name} runs without errors`, { timeout: 30_000 }, async () => {
    const res = await runExample(query);
    const seen = saw(res);
    assert.equal(res.status, 200, seen);
    assert.equal(res.body?.errors, undefined, `errors:\n${seen}`);
    assert.ok(res.body?.data, `no data:\n${seen}`);
  });
});

test('demo: the playground page and the probes answer', { timeout: 30_000 }, async () => {
  const d = demo();
  const page = await fetchWithTimeout(d.playground);
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(html, /Mosaic playground/);
  const origin = new URL(d.graphql).origin;
  for (const p of ['/livez', '/readyz']) {
    const res = await fetchWithTimeout(origin + p);
    assert.equal(res.status, 200, `GET ${p} → ${res.status}`);
  }
});

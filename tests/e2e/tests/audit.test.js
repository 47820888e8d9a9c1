// GraphQL-over-HTTP conformance: the audit suite of the `graphql-http` package against the running
// gateway. Every MUST must pass; SHOULD and MAY failures are reported (and listed) but do not fail.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { serverAudits } from 'graphql-http';
import { ARTIFACTS, REQUEST_TIMEOUT_MS, demo } from '../lib/demo.js';

const LEVELS = ['MUST', 'SHOULD', 'MAY'];

/** The body of every response the audits got, read as it arrived (the audits consume theirs). */
const bodies = new WeakMap();

/** What the audited request got back, for the report. */
function describeResponse(response) {
  if (!response) return '';
  const body = bodies.get(response) ?? '(body not captured)';
  return `HTTP ${response.status} ${response.headers.get('content-type') ?? ''} ${body.slice(0, 500)}`;
}

test('GraphQL-over-HTTP audit (graphql-http serverAudits): every MUST passes', { timeout: 120_000 }, async () => {
  const { graphql: url } = demo();
  const fetchFn = async (input, init = {}) => {
    const res = await fetch(input, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
    bodies.set(res, await res.clone().text());
    return res;
  };
  const audits = serverAudits({ url, fetchFn });
  assert.ok(audits.length > 0, 'graphql-http returned no audits');

  const counts = Object.fromEntries(LEVELS.map((l) => [l, { passed: 0, failed: 0 }]));
  const failures = [];
  for (const audit of audits) {
    const level = audit.name.split(' ')[0];
    let result;
    try {
      result = await audit.fn();
    } catch (err) {
      // The suite throws only on a fatal error (e.g. the server is not reachable).
      result = { id: audit.id, name: audit.name, status: 'error', reason: `audit threw: ${err?.stack ?? err}` };
    }
    const c = counts[level] ?? (counts[level] = { passed: 0, failed: 0 });
    if (result.status === 'ok') {
      c.passed += 1;
    } else {
      c.failed += 1;
      failures.push({
        level,
        id: audit.id,
        name: audit.name,
        status: result.status,
        reason: result.reason,
        response: describeResponse(result.response),
      });
    }
  }

  // Failures by level: MUST first, then SHOULD, then MAY.
  failures.sort((a, b) => LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level));
  const lines = [`graphql-http ${audits.length} audits against ${url}`];
  for (const l of LEVELS) lines.push(`  ${l.padEnd(6)} passed ${counts[l].passed}, failed ${counts[l].failed}`);
  for (const f of failures) {
    lines.push(`  FAILING ${f.level} [${f.id}] ${f.name}`);
    lines.push(`    ${f.reason}`);
    if (f.response) lines.push(`    got: ${f.response}`);
  }
  const report = lines.join('\n');
  console.log(report);
  writeFileSync(path.join(ARTIFACTS, 'audit.json'), JSON.stringify({ url, total: audits.length, counts, failures }, null, 2));

  const failedMusts = failures.filter((f) => f.level === 'MUST');
  assert.equal(
    failedMusts.length,
    0,
    `${failedMusts.length} MUST audit(s) failed:\n` +
      failedMusts.map((f) => `- [${f.id}] ${f.name}\n  ${f.reason}\n  got: ${f.response}`).join('\n'),
  );
});

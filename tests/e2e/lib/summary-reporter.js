// A node:test reporter that prints, once every file has run, each check with its result and what it
// reported with t.diagnostic() (e.g. the measured subscription latencies), the
// GraphQL-over-HTTP audit's counts (from artifacts/audit.json, written by tests/audit.test.js) and a
// closing line "e2e: N passed, N failed, N skipped".

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ARTIFACTS = process.env.MOSAIC_E2E_ARTIFACTS ?? path.join(E2E_DIR, 'artifacts');

function firstLine(err) {
  const e = err?.cause ?? err;
  const msg = String(e?.message ?? e ?? '').split('\n').find((l) => l.trim()) ?? '';
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

export default async function* summaryReporter(source) {
  const rows = [];
  for await (const event of source) {
    // A top-level test's t.diagnostic() comes right after its pass/fail, with its file and line.
    if (event.type === 'test:diagnostic') {
      const d = event.data;
      const row = rows.at(-1);
      if (d.nesting === 0 && d.file && row && row.path === d.file && row.line === d.line) row.diagnostics.push(d.message);
      continue;
    }
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const d = event.data;
    if (d.nesting !== 0 || d.details?.type === 'suite') continue;
    const file = d.file ? path.relative(E2E_DIR, d.file) : '';
    let status;
    let note = '';
    if (d.skip !== undefined) {
      status = 'SKIP';
      note = typeof d.skip === 'string' ? d.skip : '';
    } else if (d.todo !== undefined) {
      status = 'TODO';
      note = typeof d.todo === 'string' ? d.todo : '';
    } else if (event.type === 'test:pass') {
      status = 'PASS';
    } else {
      status = 'FAIL';
      note = firstLine(d.details?.error);
    }
    rows.push({ file, path: d.file, line: d.line, name: d.name, status, note, ms: Math.round(d.details?.duration_ms ?? 0), diagnostics: [] });
  }

  const out = [];
  out.push('', '================ Mosaic e2e summary ================');
  let lastFile;
  for (const r of rows) {
    if (r.file !== lastFile) {
      out.push(`${r.file}`);
      lastFile = r.file;
    }
    out.push(`  ${r.status.padEnd(4)} ${r.name}${r.status === 'PASS' ? ` (${r.ms} ms)` : ''}`);
    if (r.note) out.push(`         ${r.note}`);
    for (const m of r.diagnostics) out.push(`         · ${m}`);
  }

  const auditFile = path.join(ARTIFACTS, 'audit.json');
  out.push('', 'GraphQL-over-HTTP audit (graphql-http):');
  if (existsSync(auditFile)) {
    const audit = JSON.parse(readFileSync(auditFile, 'utf8'));
    for (const [level, c] of Object.entries(audit.counts)) {
      out.push(`  ${level.padEnd(6)} passed ${String(c.passed).padStart(3)}, failed ${c.failed}`);
    }
    for (const f of audit.failures) {
      out.push(`  failing ${f.level} [${f.id}] ${f.name}`, `    ${f.reason}`);
    }
    if (audit.failures.length === 0) out.push(`  all ${audit.total} audits pass`);
  } else {
    out.push('  did not run (no artifacts/audit.json)');
  }

  const n = (s) => rows.filter((r) => r.status === s).length;
  out.push('', `e2e: ${n('PASS')} passed, ${n('FAIL')} failed, ${n('SKIP') + n('TODO')} skipped`, '');
  yield out.join('\n');
}

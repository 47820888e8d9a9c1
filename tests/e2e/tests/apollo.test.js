// Apollo Client v4 in node (HttpLink / BatchHttpLink over fetch, GraphQLWsLink over graphql-ws) against
// the demo gateway.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, CombinedGraphQLErrors } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { Kind } from 'graphql';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { annotate, demo, resetFaults, setFaults, uniqueKey, withServiceDown } from '../lib/demo.js';
import { recordingFetch } from '../lib/recording-fetch.js';
import {
  AMOUNT,
  DISTRICT,
  FIRST_EVENT_TIMEOUT_MS,
  LIVE_BALANCE,
  Recorder,
  TRANSFER_MUTATION,
  UPDATE_TIMEOUT_MS,
  breakerOf,
  healthz,
  latencyText,
  pollUntil,
  show,
  totalOf,
  transferOutOfGangnam,
  wsUrl,
} from '../lib/subscriptions.js';

function client(linkKind = 'http') {
  const fetch = recordingFetch();
  const uri = demo().graphql;
  const link =
    linkKind === 'batch'
      ? new BatchHttpLink({ uri, fetch, batchMax: 10, batchInterval: 50 })
      : new HttpLink({ uri, fetch, useGETForQueries: linkKind === 'get' });
  const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
  return { apollo, fetch };
}

/** Runs `fn`; on failure adds every request the client made and its answer to the message. */
async function showingWire(fetch, fn) {
  try {
    return await fn();
  } catch (err) {
    throw annotate(err, `--- what the client sent and saw ---\n${fetch.describe()}`);
  }
}

const CUSTOMER = gql`
  query Customer($id: ID!, $last: Int) {
    customer(id: $id) {
      id
      name
      district
      tier
      accounts {
        id
        balance
        transfers(last: $last) {
          id
          amount
        }
      }
    }
  }
`;

const CUSTOMERS = gql`
  query Customers($district: String, $tier: Tier, $limit: Int) {
    customers(district: $district, tier: $tier, limit: $limit) {
      id
      name
      district
      tier
    }
  }
`;

test('Apollo Client: queries with variables', { timeout: 30_000 }, async () => {
  const { apollo, fetch } = client();
  await showingWire(fetch, async () => {
    const { data, error } = await apollo.query({ query: CUSTOMER, variables: { id: 'C001', last: 2 } });
    assert.equal(error, undefined);
    assert.equal(data.customer.id, 'C001');
    assert.equal(data.customer.__typename, 'Customer');
    assert.ok(data.customer.name.length > 0, 'customer has a name');
    assert.ok(data.customer.accounts.length > 0, 'C001 has accounts');
    for (const a of data.customer.accounts) {
      assert.equal(typeof a.balance, 'number');
      assert.ok(a.transfers.length <= 2, `transfers(last: 2) gave ${a.transfers.length}`);
    }

    const district = data.customer.district;
    const many = await apollo.query({ query: CUSTOMERS, variables: { district, limit: 3 } });
    assert.equal(many.error, undefined);
    assert.ok(many.data.customers.length > 0 && many.data.customers.length <= 3, 'customers(limit: 3)');
    for (const c of many.data.customers) assert.equal(c.district, district);

    const gold = await apollo.query({ query: CUSTOMERS, variables: { tier: 'GOLD', limit: 5 } });
    assert.ok(gold.data.customers.length > 0, 'some GOLD customers');
    for (const c of gold.data.customers) assert.equal(c.tier, 'GOLD');

    // Every request went out as a POST with the variables in the body.
    assert.ok(fetch.calls.every((c) => c.method === 'POST' && JSON.parse(c.body).variables));
  });
});

test('Apollo Client: queries over GET (useGETForQueries) with variables in the URL', { timeout: 30_000 }, async () => {
  const { apollo, fetch } = client('get');
  await showingWire(fetch, async () => {
    const { data, error } = await apollo.query({ query: CUSTOMER, variables: { id: 'C003', last: 1 } });
    assert.equal(error, undefined);
    assert.equal(data.customer.id, 'C003');
    assert.equal(fetch.calls.length, 1);
    assert.equal(fetch.calls[0].method, 'GET');
    const url = new URL(fetch.calls[0].url);
    assert.deepEqual(JSON.parse(url.searchParams.get('variables')), { id: 'C003', last: 1 });
  });
});

const TRANSFER = gql`
  mutation Transfer($input: TransferInput!) {
    transfer(input: $input) {
      id
      fromAccount
      toAccount
      toBank
      amount
      status
      failureReason
    }
  }
`;

const ACCOUNT = gql`
  query Account($id: ID!) {
    account(id: $id) {
      id
      balance
      transfers(last: 5) {
        id
        amount
        toAccount
      }
    }
  }
`;

const TRANSFER_BY_ID = gql`
  query TransferById($id: ID!) {
    transfer(id: $id) {
      id
      fromAccount
      toAccount
      amount
      status
      source {
        id
      }
    }
  }
`;

test('Apollo Client: a mutation (transfer with idempotencyKey), then reads that see it', { timeout: 30_000 }, async () => {
  const { apollo, fetch } = client();
  await showingWire(fetch, async () => {
    const from = 'A0002';
    const to = 'A0003';
    const amount = 1234;
    const idempotencyKey = uniqueKey('e2e-apollo');
    const read = (id) => apollo.query({ query: ACCOUNT, variables: { id }, fetchPolicy: 'network-only' });

    const before = (await read(from)).data.account;
    const beforeTo = (await read(to)).data.account;

    const input = { fromAccount: from, toAccount: to, amount, idempotencyKey };
    const sent = await apollo.mutate({ mutation: TRANSFER, variables: { input } });
    assert.equal(sent.error, undefined);
    const t = sent.data.transfer;
    assert.equal(t.status, 'COMPLETED', `transfer failed: ${t.failureReason}`);
    assert.deepEqual(
      { fromAccount: t.fromAccount, toAccount: t.toAccount, toBank: t.toBank, amount: t.amount },
      { fromAccount: from, toAccount: to, toBank: 'Mosaic Bank', amount },
    );

    const byId = await apollo.query({ query: TRANSFER_BY_ID, variables: { id: t.id }, fetchPolicy: 'network-only' });
    assert.equal(byId.error, undefined);
    const r = byId.data.transfer;
    assert.deepEqual(
      { id: r.id, fromAccount: r.fromAccount, toAccount: r.toAccount, amount: r.amount, status: r.status, source: r.source?.id },
      { id: t.id, fromAccount: from, toAccount: to, amount, status: 'COMPLETED', source: from },
      'transfer(id) reads the new transfer',
    );

    const after = (await read(from)).data.account;
    assert.equal(after.transfers[0]?.id, t.id, "the new transfer is the first of the account's transfers");
    assert.equal(after.balance, before.balance - amount, 'the source account was debited');
    assert.equal((await read(to)).data.account.balance, beforeTo.balance + amount, 'the target account was credited');

    // The same idempotency key again: the same transfer, no second debit.
    const again = await apollo.mutate({ mutation: TRANSFER, variables: { input } });
    assert.equal(again.data.transfer.id, t.id, 'a repeated idempotencyKey answers the first transfer');
    assert.equal((await read(from)).data.account.balance, after.balance, 'a replay does not debit again');
  });
});

test('Apollo Client: a broken backend arrives as a GraphQL error with extensions.code BACKEND_UNAVAILABLE', { timeout: 30_000 }, async () => {
  const { apollo, fetch } = client();
  await showingWire(fetch, async () => {
    const anyTransfer = await apollo.query({ query: gql`{ transfers(limit: 1) { id } }` });
    const transferId = anyTransfer.data.transfers[0].id;

    await withServiceDown('accounts', async () => {
      // errorPolicy "none" (the default): the query rejects with the server's GraphQL errors.
      const err = await apollo
        .query({ query: ACCOUNT, variables: { id: 'A0001' }, fetchPolicy: 'network-only' })
        .then(
          (r) => r.error ?? assert.fail(`expected an error, got ${JSON.stringify(r)}`),
          (e) => e,
        );
      assert.ok(CombinedGraphQLErrors.is(err), `expected CombinedGraphQLErrors, got ${err?.name}: ${err?.message}`);
      assert.equal(err.errors[0].extensions?.code, 'BACKEND_UNAVAILABLE', JSON.stringify(err.errors));
      assert.deepEqual(err.errors[0].path, ['account']);

      // errorPolicy "all": partial data (the failed nullable field is null) plus the error.
      const partial = await apollo.query({
        query: TRANSFER_BY_ID,
        variables: { id: transferId },
        fetchPolicy: 'network-only',
        errorPolicy: 'all',
      });
      assert.equal(partial.data?.transfer?.id, transferId, 'the transfer itself still arrives');
      assert.equal(partial.data.transfer.source, null, 'the field of the broken backend is null');
      assert.ok(CombinedGraphQLErrors.is(partial.error), `expected CombinedGraphQLErrors, got ${partial.error}`);
      const e = partial.error.errors.find((x) => x.extensions?.code === 'BACKEND_UNAVAILABLE');
      assert.ok(e, `no BACKEND_UNAVAILABLE error in ${JSON.stringify(partial.error.errors)}`);
      assert.deepEqual(e.path, ['transfer', 'source']);
    });

    // Back up: the same query answers again.
    const ok = await apollo.query({ query: ACCOUNT, variables: { id: 'A0001' }, fetchPolicy: 'network-only' });
    assert.equal(ok.error, undefined);
    assert.equal(ok.data.account.id, 'A0001');
  });
});

test('Apollo Client: BatchHttpLink sends several queries in one HTTP request', { timeout: 30_000 }, async () => {
  const { apollo, fetch } = client('batch');
  await showingWire(fetch, async () => {
    const [one, two, three] = await Promise.all([
      apollo.query({ query: CUSTOMER, variables: { id: 'C001', last: 1 } }),
      apollo.query({ query: CUSTOMERS, variables: { tier: 'SILVER', limit: 2 } }),
      apollo.query({ query: gql`query Stats { transferStats { completed failed externalCalls } }` }),
    ]);
    assert.equal(fetch.calls.length, 1, `expected one HTTP request, the client made ${fetch.calls.length}`);
    const body = JSON.parse(fetch.calls[0].body);
    assert.ok(Array.isArray(body) && body.length === 3, 'the request body is a JSON array of 3 operations');
    assert.deepEqual(body.map((op) => op.operationName), ['Customer', 'Customers', 'Stats']);
    assert.ok(Array.isArray(JSON.parse(fetch.calls[0].response)), 'the answer is a JSON array');

    assert.equal(one.data.customer.id, 'C001');
    assert.ok(two.data.customers.length > 0);
    for (const c of two.data.customers) assert.equal(c.tier, 'SILVER');
    assert.equal(typeof three.data.transferStats.completed, 'number');
  });
});

test('Apollo Client: automatic persisted queries (PersistedQueryLink): the hash first, the query once on PersistedQueryNotFound, then the hash alone', async () => {
  const fetch = recordingFetch();
  const sha256 = (s) => createHash('sha256').update(s).digest('hex');
  const link = new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: demo().graphql, fetch }));
  const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
  // A document this gateway has surely not seen yet (its hash is new).
  const name = `ApqCustomer${uniqueKey('q').replace(/[^A-Za-z0-9]/g, '')}`;
  const query = gql(`query ${name}($id: ID!) { customer(id: $id) { id name } }`);
  await showingWire(fetch, async () => {
    const first = await apollo.query({ query, variables: { id: 'C001' }, fetchPolicy: 'network-only' });
    assert.equal(first.data.customer.id, 'C001');
    assert.equal(fetch.calls.length, 2, 'the hash alone (unknown), then the hash with the query');
    const [hashOnly, withQuery] = fetch.calls.map((c) => JSON.parse(c.body));
    assert.equal(hashOnly.query, undefined, 'the first request carries only the hash');
    assert.ok(hashOnly.extensions?.persistedQuery?.sha256Hash, 'with the persistedQuery extension');
    assert.match(fetch.calls[0].response, /PERSISTED_QUERY_NOT_FOUND|PersistedQueryNotFound/);
    assert.ok(withQuery.query.includes('customer'), 'the second carries the query text');

    const second = await apollo.query({ query, variables: { id: 'C002' }, fetchPolicy: 'network-only' });
    assert.equal(second.data.customer.id, 'C002');
    assert.equal(fetch.calls.length, 3, 'a known hash: one request');
    const last = JSON.parse(fetch.calls.at(-1).body);
    assert.equal(last.query, undefined, 'a known hash is sent without the query text');
  });
});

test(
  'Apollo Client: a subscription over GraphQLWsLink (split link: HTTP for queries and mutations, graphql-ws for subscriptions) gets the current total, then the update of a transfer within 2 s',
  { timeout: 30_000 },
  async (t) => {
    const fetch = recordingFetch();
    const rec = new Recorder('Apollo Client (GraphQLWsLink)');
    const ws = createWsClient({
      url: wsUrl(),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionAckWaitTimeout: 5_000,
      on: {
        connected: () => rec.push('ws:connected'),
        message: (m) => rec.push('ws:message', m),
        closed: (e) => rec.push('ws:closed', e),
        error: (e) => rec.push('ws:error', e),
      },
    });
    const isSubscription = ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === Kind.OPERATION_DEFINITION && def.operation === 'subscription';
    };
    const link = ApolloLink.split(isSubscription, new GraphQLWsLink(ws), new HttpLink({ uri: demo().graphql, fetch }));
    const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
    let subscription;
    try {
      subscription = apollo.subscribe({ query: gql(LIVE_BALANCE) }).subscribe(rec.sink());
      const SINK = ['next', 'error', 'complete'];
      const first = await rec.entryAt(0, { kinds: SINK, timeoutMs: FIRST_EVENT_TIMEOUT_MS, what: 'first result (the current total)' });
      assert.equal(first.kind, 'next', `the first event is a result, got ${first.kind} ${show(first.value)}`);
      assert.equal(first.value.error, undefined, `an error in the first result: ${show(first.value)}`);
      assert.equal(first.value.data?.districtBalance?.district, DISTRICT, show(first.value));
      const before = totalOf(first.value);
      assert.ok(before > 0, `a positive total: ${show(first.value)}`);

      // The transfer goes through the same client, over HTTP (the split link's other side).
      const afterFirst = rec.entries.indexOf(first) + 1;
      const { transfer, respondedAt, attempts } = await transferOutOfGangnam('e2e-apollo-ws', async (input) => {
        const r = await apollo.mutate({ mutation: gql(TRANSFER_MUTATION), variables: { input } });
        assert.equal(r.error, undefined);
        return r.data.transfer;
      });
      const update = await rec.entryAt(afterFirst, {
        kinds: SINK,
        timeoutMs: Math.max(0, respondedAt + UPDATE_TIMEOUT_MS - performance.now()),
        what: `update within ${UPDATE_TIMEOUT_MS} ms of the transfer's response (transfer ${transfer.id}, total before ${before})`,
      });
      const latency = update.at - respondedAt;
      assert.equal(update.kind, 'next', `the event after the transfer is a result, got ${update.kind} ${show(update.value)}`);
      assert.equal(update.value.error, undefined, `an error in the update: ${show(update.value)}`);
      assert.equal(totalOf(update.value), before - AMOUNT, `the total less ${AMOUNT}: ${show(update.value)}`);
      const retried = attempts.length > 1 ? ` (the external bank failed ${attempts.length - 1} transfer(s) first; retried)` : '';
      t.diagnostic(`Apollo GraphQLWsLink: update ${latencyText(latency)}; total ${before} → ${before - AMOUNT} (transfer ${transfer.id})${retried}`);

      // The split worked: the mutation went over HTTP, the subscription only over the socket.
      assert.ok(fetch.calls.length >= 1 && fetch.calls.every((c) => JSON.parse(c.body).operationName === 'LiveTransfer'), 'only the mutation over HTTP');
      assert.ok(rec.entries.some((e) => e.kind === 'ws:message' && e.value.type === 'next'), 'results arrived over the socket');

      subscription.unsubscribe();
      await ws.dispose();
      const closed = await rec.entryAt(0, { kinds: ['ws:closed'], timeoutMs: 5_000, what: 'socket close after dispose' });
      assert.equal(closed.value.code, 1000, `the socket closed normally: ${show(closed.value)}`);
      assert.deepEqual(rec.errors, [], 'the observer saw no error');
      assert.ok(!rec.entries.some((e) => e.kind === 'ws:error'), 'the socket saw no error');
    } catch (err) {
      throw annotate(err, `${rec.describe()}\n--- what the HTTP link sent and saw ---\n${fetch.describe()}`);
    } finally {
      subscription?.unsubscribe();
      apollo.stop();
      await ws.dispose();
    }
  },
);

test(
  'Apollo Client: with accounts down, Customer.accounts falls back (data, [] or stale accounts, errors with fallback: true: BACKEND_UNAVAILABLE, then CIRCUIT_OPEN); after the reset, accounts and a closed breaker come back',
  { timeout: 60_000 },
  async (t) => {
    const { apollo, fetch } = client();
    const QUERY = gql`
      query CustomersWithAccounts($limit: Int, $offset: Int) {
        customers(limit: $limit, offset: $offset) {
          id
          accounts {
            id
          }
        }
      }
    `;
    // Windows of customers no other test asks for (the demo has 200): fresh cache keys for
    // `customers` (limit/offset) and for every customer's `accounts`, so the backend is called.
    let offset = 110;
    const run = async () => {
      const variables = { limit: 3, offset };
      offset += 3;
      const r = await apollo.query({ query: QUERY, variables, fetchPolicy: 'network-only', errorPolicy: 'all' });
      return { variables, data: r.data, error: r.error };
    };
    const breakerClosed = async () => {
      if ((await breakerOf('accounts')) === 'closed') return true;
      // A half-open breaker closes on calls that succeed: make one.
      await apollo.query({ query: ACCOUNT, variables: { id: 'A0002' }, fetchPolicy: 'network-only', errorPolicy: 'all' });
      return false;
    };
    const seen = [];
    const describe = () =>
      `--- the queries (offset, the codes of their errors, the accounts) ---\n${seen
        .map((s) => `  ${s.phase} offset ${s.variables.offset}: ${s.codes.join(',') || 'no errors'}; accounts ${JSON.stringify(s.data?.customers?.map((c) => c.accounts.length))}`)
        .join('\n')}\n--- what the client sent and saw ---\n${fetch.describe()}`;

    await showingWire(fetch, async () => {
      try {
        // Start from a closed breaker, or the first error could be CIRCUIT_OPEN already.
        assert.ok(await pollUntil(breakerClosed, { timeoutMs: 10_000, everyMs: 500 }), `the accounts breaker is not closed before the test: ${JSON.stringify(await healthz())}`);

        await setFaults('accounts', { down: true });
        let faultPhaseOk = false;
        try {
          for (let i = 0; i < 15; i++) {
            const r = await run();
            const errors = r.error ? (CombinedGraphQLErrors.is(r.error) ? r.error.errors : assert.fail(`not GraphQL errors: ${r.error}`)) : [];
            const codes = [...new Set(errors.map((e) => e.extensions?.code))];
            seen.push({ phase: 'down', ...r, codes });
            // Data is there: the customers, each with a list of accounts (the fallback, or stale).
            assert.equal(r.data?.customers?.length, 3, `data.customers (offset ${r.variables.offset}): ${JSON.stringify(r.data)}`);
            for (const c of r.data.customers) assert.ok(Array.isArray(c.accounts), `${c.id}.accounts is a list: ${JSON.stringify(c)}`);
            for (const e of errors) {
              const where = `error ${JSON.stringify(e)}`;
              assert.ok(['BACKEND_UNAVAILABLE', 'CIRCUIT_OPEN'].includes(e.extensions?.code), where);
              assert.equal(e.extensions?.backend, 'accounts', where);
              assert.equal(e.extensions?.fallback, true, where);
              assert.equal(e.path?.[0], 'customers', where);
              assert.equal(e.path?.[2], 'accounts', where);
              assert.ok(r.data.customers[e.path[1]], `the error's path names a customer of the data: ${where}`);
            }
            if (seen.filter((s) => s.codes.includes('CIRCUIT_OPEN')).length >= 2) break;
          }
          // The order: failures the backend answered, then the open breaker answering for it.
          const codes = seen.flatMap((s) => s.codes);
          const firstOpen = codes.indexOf('CIRCUIT_OPEN');
          assert.ok(codes.length > 0, 'accounts errors while the backend is down');
          assert.equal(codes[0], 'BACKEND_UNAVAILABLE', 'the first error is BACKEND_UNAVAILABLE');
          assert.ok(firstOpen > 0, 'then the breaker opens: CIRCUIT_OPEN');
          assert.ok(!codes.slice(firstOpen).includes('BACKEND_UNAVAILABLE'), 'no BACKEND_UNAVAILABLE once the breaker is open');
          assert.equal(await breakerOf('accounts'), 'open', '/healthz shows the accounts breaker open');
          const fallbacks = seen.flatMap((s) => s.data.customers.map((c) => (c.accounts.length ? 'stale' : '[]')));
          const count = (v) => fallbacks.filter((f) => f === v).length;
          t.diagnostic(
            `accounts down: ${seen.length} queries; errors ${seen.map((s) => s.codes.join('+') || 'none').join(' → ')}; fallback values: [] ×${count('[]')}, stale ×${count('stale')}`,
          );
          faultPhaseOk = true;
        } finally {
          await resetFaults('accounts');
          if (!faultPhaseOk) await pollUntil(breakerClosed, { timeoutMs: 10_000, everyMs: 500 }).catch(() => {}); // leave the demo healthy for the next tests
        }

        // Back up: within 10 s a query gets its accounts without errors and the breaker is closed.
        const resetAt = performance.now();
        let recovered = false;
        let breaker;
        while (!recovered && performance.now() - resetAt < 10_000) {
          await new Promise((r) => setTimeout(r, 500));
          const r = await run();
          const errors = CombinedGraphQLErrors.is(r.error) ? r.error.errors : r.error ? [r.error] : [];
          seen.push({ phase: 'reset', ...r, codes: [...new Set(errors.map((e) => e.extensions?.code ?? e.message))] });
          breaker = await breakerOf('accounts');
          recovered = errors.length === 0 && r.data.customers.some((c) => c.accounts.length > 0) && breaker === 'closed';
        }
        assert.ok(recovered, `within 10 s of the reset: a query with accounts and no errors, and the breaker closed (it is "${breaker}")`);
        t.diagnostic(`recovered ${Math.round(performance.now() - resetAt)} ms after the reset (${seen.filter((s) => s.phase === 'reset').length} queries); breaker closed`);
      } catch (err) {
        throw annotate(err, describe());
      }
    });
  },
);

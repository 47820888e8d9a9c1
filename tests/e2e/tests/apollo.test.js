// Apollo Client v4 in node (HttpLink / BatchHttpLink over fetch) against the demo gateway.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql, CombinedGraphQLErrors } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { annotate, demo, uniqueKey, withServiceDown } from '../lib/demo.js';
import { recordingFetch } from '../lib/recording-fetch.js';

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

test(
  'TODO(APQ): Apollo automatic persisted queries (PersistedQueryLink: hash first, then the query on PersistedQueryNotFound)',
  { skip: 'TODO: the gateway has no automatic persisted queries yet' },
  async () => {
    const fetch = recordingFetch();
    const sha256 = (s) => createHash('sha256').update(s).digest('hex');
    const link = new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: demo().graphql, fetch }));
    const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
    const first = await apollo.query({ query: CUSTOMER, variables: { id: 'C001' }, fetchPolicy: 'network-only' });
    assert.equal(first.data.customer.id, 'C001');
    const second = await apollo.query({ query: CUSTOMER, variables: { id: 'C001' }, fetchPolicy: 'network-only' });
    assert.equal(second.data.customer.id, 'C001');
    const last = JSON.parse(fetch.calls.at(-1).body);
    assert.equal(last.query, undefined, 'a known hash is sent without the query text');
  },
);

test(
  'TODO(subscriptions): Apollo Client subscription over HTTP (multipart or SSE) receives events',
  { skip: 'TODO: the gateway has no subscriptions yet' },
  async () => {
    assert.fail('write when the gateway serves subscriptions');
  },
);

test(
  'TODO(fault-fallback): a backend failure that falls back reports the fallback error code to Apollo Client',
  { skip: 'TODO: the gateway has no fault-fallback errors yet' },
  async () => {
    assert.fail('write when the gateway has fault-fallback errors');
  },
);

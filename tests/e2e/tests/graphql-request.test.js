// graphql-request (v7) against the demo gateway: the same basics as Apollo Client.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientError, GraphQLClient, gql } from 'graphql-request';
import { annotate, demo, uniqueKey, withServiceDown } from '../lib/demo.js';
import { recordingFetch } from '../lib/recording-fetch.js';

function client(options = {}) {
  const fetch = recordingFetch();
  return { gr: new GraphQLClient(demo().graphql, { fetch, ...options }), fetch };
}

async function showingWire(fetch, fn) {
  try {
    return await fn();
  } catch (err) {
    throw annotate(err, `--- what the client sent and saw ---\n${fetch.describe()}`);
  }
}

test('graphql-request: a query with variables', { timeout: 30_000 }, async () => {
  const { gr, fetch } = client();
  await showingWire(fetch, async () => {
    const data = await gr.request(
      gql`
        query DistrictCustomers($district: String!, $limit: Int) {
          district(name: $district) { district customers accounts totalBalance }
          customers(district: $district, limit: $limit) { id name district accounts { id balance } }
        }
      `,
      { district: 'Gangnam-gu', limit: 3 },
    );
    assert.equal(data.district.district, 'Gangnam-gu');
    assert.ok(data.district.customers > 0, 'the ledger counts customers in Gangnam-gu');
    assert.ok(data.customers.length > 0 && data.customers.length <= 3);
    for (const c of data.customers) assert.equal(c.district, 'Gangnam-gu');
  });
});

test('graphql-request: a mutation, then a read that sees it', { timeout: 30_000 }, async () => {
  const { gr, fetch } = client();
  await showingWire(fetch, async () => {
    const idempotencyKey = uniqueKey('e2e-graphql-request');
    const { transfer } = await gr.request(
      gql`
        mutation Send($input: TransferInput!) {
          transfer(input: $input) { id status amount fromAccount toAccount failureReason }
        }
      `,
      { input: { fromAccount: 'A0003', toAccount: 'A0002', amount: 777, idempotencyKey } },
    );
    assert.equal(transfer.status, 'COMPLETED', `transfer failed: ${transfer.failureReason}`);

    const read = await gr.request(
      gql`
        query Read($id: ID!, $account: ID!) {
          transfer(id: $id) { id amount status }
          account(id: $account) { transfers(last: 3) { id } }
        }
      `,
      { id: transfer.id, account: 'A0003' },
    );
    assert.deepEqual(read.transfer, { id: transfer.id, amount: 777, status: 'COMPLETED' });
    assert.equal(read.account.transfers[0]?.id, transfer.id);
  });
});

test('graphql-request: a broken backend is a ClientError carrying extensions.code BACKEND_UNAVAILABLE', { timeout: 30_000 }, async () => {
  const { gr, fetch } = client();
  await showingWire(fetch, async () => {
    await withServiceDown('ledger', async () => {
      const err = await gr.request(gql`{ transferStats { completed } }`).then(
        (d) => assert.fail(`expected an error, got ${JSON.stringify(d)}`),
        (e) => e,
      );
      assert.ok(err instanceof ClientError, `expected ClientError, got ${err}`);
      assert.equal(err.response.status, 200, 'a backend failure is still HTTP 200');
      const codes = err.response.errors.map((e) => e.extensions?.code);
      assert.deepEqual(codes, ['BACKEND_UNAVAILABLE'], JSON.stringify(err.response.errors));
      // transferStats is non-null: the null bubbles up to data.
      assert.equal(err.response.data, null);
    });
    // errorPolicy "all" keeps the data that could be fetched.
    const { gr: all } = client({ errorPolicy: 'all' });
    await withServiceDown('ledger', async () => {
      const res = await all.rawRequest(gql`{ customer(id: "C001") { id } district(name: "Gangnam-gu") { district } }`);
      assert.deepEqual(res.data, { customer: { id: 'C001' }, district: null });
      assert.equal(res.errors?.[0]?.extensions?.code, 'BACKEND_UNAVAILABLE', JSON.stringify(res.errors));
    });
  });
});

test('graphql-request: client.batchRequests sends several queries in one HTTP request', { timeout: 30_000 }, async () => {
  const { gr, fetch } = client();
  await showingWire(fetch, async () => {
    const results = await gr.batchRequests([
      { document: gql`query One($id: ID!) { customer(id: $id) { id } }`, variables: { id: 'C002' } },
      { document: gql`query Two { transfers(limit: 2) { id } }` },
    ]);
    assert.equal(fetch.calls.length, 1);
    assert.ok(Array.isArray(JSON.parse(fetch.calls[0].body)));
    assert.equal(results[0].data.customer.id, 'C002');
    assert.equal(results[1].data.transfers.length, 2);
  });
});

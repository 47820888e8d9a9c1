// Mosaic as an Apollo Federation v2 subgraph: `mosaic demo --federation` (started here, on its own
// ephemeral ports; not the demo of run.sh) composed with a graphql-js "loans" subgraph
// (@apollo/subgraph) under @apollo/composition and @theguild/federation-composition, and queried
// through the Apollo Gateway in both directions. Mosaic's answers through the gateway are compared
// with what Mosaic itself answers, and the mock bank's counters (/_stats) prove the batching.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kind, parse } from 'graphql';
import { annotate, postGraphQL, saw } from '../lib/demo.js';
import {
  composeWithApollo,
  composeWithGuild,
  describeErrors,
  queryOk,
  resetServiceStats,
  serviceStats,
  startFederation,
  withServiceUrlDown,
} from '../lib/federation.js';

/** How long the bank may take to answer completely again once the customers service is back (ms). */
const RECOVERY_TIMEOUT_MS = 15_000;

let fed;
before(async () => {
  fed = await startFederation();
}, { timeout: 60_000 });

after(async () => {
  await fed?.stop();
});

// ------------------------------------------------------------------------------------------------
// helpers

/** A query through the Apollo Gateway: what the client saw ({ status, text, body, ... }). */
function viaGateway(query, variables) {
  return postGraphQL({ query, variables }, { url: fed.gateway.url });
}

/** A query straight to Mosaic: its data (throws on errors). */
function fromMosaic(query, variables) {
  return queryOk(fed.mosaic.graphql, query, variables);
}

/** The gateway's answer, asserted to be data without errors. */
async function gatewayData(query, variables) {
  const res = await viaGateway(query, variables);
  assert.equal(res.status, 200, saw(res));
  assert.ok(res.body && !res.body.errors && res.body.data, `the gateway answered errors or no data:\n${saw(res)}`);
  return res.body.data;
}

const bank = () => fed.mosaic.services;

/** Resets the counters of the mock bank's services. */
async function resetBankStats() {
  await Promise.all(Object.values(bank()).map(resetServiceStats));
}

/** The counters of the customers and accounts services. */
async function bankStats() {
  const [customers, accounts] = await Promise.all([serviceStats(bank().customers), serviceStats(bank().accounts)]);
  return { customers, accounts };
}

function describeStats({ customers, accounts }) {
  return `customers ${JSON.stringify(customers)}; accounts ${JSON.stringify(accounts)}`;
}

/** The loans subgraph's loans of `customerId`, in its order, as `pick` shapes them. */
function loansOf(customerId, pick = (l) => ({ id: l.id, amount: l.amount })) {
  return fed.loans.loans.filter((l) => l.customerId === customerId).map(pick);
}

/** Runs `fn`; on failure adds the operations the loans subgraph received to the message. */
async function showingLoansRequests(fn) {
  try {
    return await fn();
  } catch (err) {
    const seen = fed.loans.requests.map((r, i) => `#${i + 1} ${r.query.replace(/\s+/g, ' ')} ${JSON.stringify(r.variables ?? {})}`);
    throw annotate(err, `--- what the loans subgraph received ---\n${seen.join('\n') || '(nothing)'}`);
  }
}

/** Fields of the object type `name` in an SDL. */
function fieldsOf(sdl, name) {
  const fields = new Set();
  for (const def of parse(sdl).definitions) {
    if ((def.kind === Kind.OBJECT_TYPE_DEFINITION || def.kind === Kind.OBJECT_TYPE_EXTENSION) && def.name.value === name) {
      for (const f of def.fields ?? []) fields.add(f.name.value);
    }
  }
  return fields;
}

/** What a composed supergraph must hold: both subgraphs' fields on the shared entities. */
function assertSupergraphHasBothSides(supergraphSdl, composer) {
  const customer = fieldsOf(supergraphSdl, 'Customer');
  const account = fieldsOf(supergraphSdl, 'Account');
  const loan = fieldsOf(supergraphSdl, 'Loan');
  const query = fieldsOf(supergraphSdl, 'Query');
  for (const f of ['id', 'name', 'district', 'tier', 'accounts', 'loans']) assert.ok(customer.has(f), `${composer}: Customer.${f} in the supergraph`);
  for (const f of ['id', 'balance', 'currency', 'owner']) assert.ok(account.has(f), `${composer}: Account.${f} in the supergraph`);
  for (const f of ['id', 'amount', 'customer', 'account']) assert.ok(loan.has(f), `${composer}: Loan.${f} in the supergraph`);
  for (const f of ['customer', 'customers', 'loans']) assert.ok(query.has(f), `${composer}: Query.${f} in the supergraph`);
  assert.match(supergraphSdl, /@join__type\(graph: MOSAIC, key: "id"\)/, `${composer}: Mosaic's entity keys joined`);
  assert.match(supergraphSdl, /@join__type\(graph: LOANS, key: "id"\)/, `${composer}: the loans subgraph's entity keys joined`);
}

// ------------------------------------------------------------------------------------------------
// the subgraph SDL and composition

test("federation: Mosaic's _service.sdl links Federation v2 and keys Customer and Account by id", () => {
  const sdl = fed.mosaicSdl;
  assert.match(sdl, /extend\s+schema\s+@link\(\s*url:\s*"https:\/\/specs\.apollo\.dev\/federation\/v2\.\d+"/, sdl);
  const keyed = (type) =>
    parse(sdl).definitions.some(
      (d) =>
        d.kind === Kind.OBJECT_TYPE_DEFINITION &&
        d.name.value === type &&
        d.directives.some(
          (dir) =>
            dir.name.value === 'key' &&
            dir.arguments.some((a) => a.name.value === 'fields' && a.value.kind === Kind.STRING && a.value.value.trim() === 'id'),
        ),
    );
  assert.ok(keyed('Customer'), `Customer @key(fields: "id") in:\n${sdl}`);
  assert.ok(keyed('Account'), `Account @key(fields: "id") in:\n${sdl}`);
  for (const f of ['customer', 'customers']) assert.ok(fieldsOf(sdl, 'Query').has(f), `Query.${f} in:\n${sdl}`);
});

test('federation: Mosaic composes with the loans subgraph under @apollo/composition', () => {
  const { supergraphSdl, errors } = composeWithApollo(fed.services);
  assert.deepEqual(errors, [], `composition errors:\n${describeErrors(errors)}\n--- Mosaic's SDL ---\n${fed.mosaicSdl}`);
  assertSupergraphHasBothSides(supergraphSdl, '@apollo/composition');
});

test('federation: Mosaic composes with the loans subgraph under @theguild/federation-composition', () => {
  const { supergraphSdl, errors } = composeWithGuild(fed.services);
  assert.deepEqual(errors, [], `composition errors:\n${describeErrors(errors)}\n--- Mosaic's SDL ---\n${fed.mosaicSdl}`);
  assertSupergraphHasBothSides(supergraphSdl, '@theguild/federation-composition');
});

// ------------------------------------------------------------------------------------------------
// loans → Mosaic

test('federation: loans → customer and account come from Mosaic exactly, one batched call per backend', { timeout: 30_000 }, async (t) => {
  await resetBankStats();
  const data = await gatewayData(`{
    loans { id amount customer { id name district tier } account { id balance currency customerId } }
  }`);
  const stats = await bankStats();
  t.diagnostic(`backend calls for the whole query: ${describeStats(stats)}`);

  const expected = [];
  for (const loan of fed.loans.loans) {
    const { customer } = await fromMosaic('query ($id: ID!) { customer(id: $id) { id name district tier } }', { id: loan.customerId });
    const account = loan.accountId
      ? (await fromMosaic('query ($id: ID!) { account(id: $id) { id balance currency customerId } }', { id: loan.accountId })).account
      : null;
    assert.ok(customer, `Mosaic knows customer ${loan.customerId}`);
    expected.push({ id: loan.id, amount: loan.amount, customer, account });
  }
  assert.deepEqual(data, { loans: expected });

  assert.equal(stats.customers.endpoints['GET /customers/batch'], 1, `one GET /customers/batch: ${describeStats(stats)}`);
  assert.equal(stats.customers.total, 1, `no other customers call: ${describeStats(stats)}`);
  assert.equal(stats.accounts.endpoints['GET /accounts'], 1, `one GET /accounts: ${describeStats(stats)}`);
  assert.equal(stats.accounts.total, 1, `no other accounts call: ${describeStats(stats)}`);
});

// ------------------------------------------------------------------------------------------------
// Mosaic → loans

test('federation: customer(id) → loans come from the loans subgraph, in one _entities request', { timeout: 30_000 }, async () => {
  const loan = fed.loans.loans[0];
  const { customer: direct } = await fromMosaic('query ($id: ID!) { customer(id: $id) { id name } }', { id: loan.customerId });
  fed.loans.reset();
  await showingLoansRequests(async () => {
    const data = await gatewayData('query ($id: ID!) { customer(id: $id) { id name loans { id amount } } }', { id: loan.customerId });
    assert.deepEqual(data, { customer: { ...direct, loans: loansOf(loan.customerId) } });
    assert.ok(data.customer.loans.length >= 2, 'this customer has two loans');
    assert.equal(fed.loans.entitiesRequests().length, 1, 'one _entities request to the loans subgraph');
  });
});

test('federation: customers(limit) → each customer with its loans, in one _entities request', { timeout: 30_000 }, async () => {
  const { customers: direct } = await fromMosaic('{ customers(limit: 10) { id name } }');
  fed.loans.reset();
  await showingLoansRequests(async () => {
    const data = await gatewayData('{ customers(limit: 10) { id name loans { id amount } } }');
    assert.deepEqual(data, { customers: direct.map((c) => ({ ...c, loans: loansOf(c.id) })) });
    const withLoans = data.customers.filter((c) => c.loans.length > 0).length;
    assert.ok(withLoans >= 2 && withLoans < data.customers.length, `some customers with loans, some without (${withLoans} of ${data.customers.length})`);
    assert.equal(fed.loans.entitiesRequests().length, 1, 'one _entities request to the loans subgraph');
  });
});

// ------------------------------------------------------------------------------------------------
// both directions, nested

test('federation: loans → customer → accounts (Mosaic) and → loans again, nested, exact', { timeout: 30_000 }, async (t) => {
  await resetBankStats();
  const data = await gatewayData(`{
    loans {
      id
      customer { id name accounts { id balance } loans { id amount } }
      account { id owner { id name loans { id } } }
    }
  }`);
  t.diagnostic(`backend calls: ${describeStats(await bankStats())}`);

  const expected = [];
  for (const loan of fed.loans.loans) {
    const { customer } = await fromMosaic('query ($id: ID!) { customer(id: $id) { id name accounts { id balance } } }', { id: loan.customerId });
    let account = null;
    if (loan.accountId) {
      const direct = (await fromMosaic('query ($id: ID!) { account(id: $id) { id owner { id name } } }', { id: loan.accountId })).account;
      account = { ...direct, owner: { ...direct.owner, loans: loansOf(direct.owner.id, (l) => ({ id: l.id })) } };
    }
    expected.push({ id: loan.id, customer: { ...customer, loans: loansOf(loan.customerId) }, account });
  }
  assert.deepEqual(data, { loans: expected });
});

test('federation: customer (Mosaic) → loans → account and customer (Mosaic), nested, exact', { timeout: 30_000 }, async () => {
  const loan = fed.loans.loans[0];
  const id = loan.customerId;
  const data = await gatewayData(
    `query ($id: ID!) {
      customer(id: $id) {
        id name tier
        loans { id amount account { id balance owner { id name } } customer { id district } }
      }
    }`,
    { id },
  );
  const { customer } = await fromMosaic('query ($id: ID!) { customer(id: $id) { id name tier district } }', { id });
  const loans = [];
  for (const l of loansOf(id, (x) => x)) {
    const account = l.accountId
      ? (await fromMosaic('query ($id: ID!) { account(id: $id) { id balance owner { id name } } }', { id: l.accountId })).account
      : null;
    loans.push({ id: l.id, amount: l.amount, account, customer: { id, district: customer.district } });
  }
  assert.deepEqual(data, { customer: { id, name: customer.name, tier: customer.tier, loans } });
});

// ------------------------------------------------------------------------------------------------
// failures

test('federation: customers service down → loans still answer, an error at loans[i].customer with a code; complete again after', { timeout: 45_000 }, async (t) => {
  const query = '{ loans { id amount customer { id name } } }';
  const down = await withServiceUrlDown(bank().customers, () => viaGateway(query));
  t.diagnostic(`with customers down the gateway answered: ${down.text.slice(0, 1500)}`);
  assert.equal(down.status, 200, saw(down));
  const { data, errors } = down.body ?? {};
  assert.ok(Array.isArray(errors) && errors.length > 0, `errors expected:\n${saw(down)}`);

  // The loans subgraph's own fields are all there; the customers Mosaic could not resolve are null.
  assert.ok(data?.loans, `the loans are still answered:\n${saw(down)}`);
  assert.deepEqual(
    data.loans.map((l) => ({ id: l.id, amount: l.amount })),
    fed.loans.loans.map((l) => ({ id: l.id, amount: l.amount })),
    saw(down),
  );
  for (const l of data.loans) assert.ok(l.customer === null || l.customer.name == null, `loan ${l.id}: no customer name while customers is down:\n${saw(down)}`);

  const atCustomer = errors.filter(
    (e) => Array.isArray(e.path) && e.path[0] === 'loans' && Number.isInteger(e.path[1]) && e.path[2] === 'customer',
  );
  assert.ok(atCustomer.length > 0, `an error whose path is ["loans", i, "customer", ...]:\n${saw(down)}`);
  for (const e of atCustomer) {
    assert.equal(typeof e.extensions?.code, 'string', `extensions.code on ${JSON.stringify(e)}`);
    assert.equal(e.extensions.code, 'BACKEND_UNAVAILABLE', JSON.stringify(e));
  }

  // Restored: complete again (bounded; the breaker of the customers backend may need a moment).
  const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
  let last;
  for (;;) {
    last = await viaGateway(query);
    if (last.status === 200 && !last.body?.errors && last.body?.data?.loans?.every((l) => l.customer?.name)) break;
    if (Date.now() > deadline) assert.fail(`not complete ${RECOVERY_TIMEOUT_MS / 1000} s after the customers service came back:\n${saw(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(
    last.body.data.loans.map((l) => l.customer.id),
    fed.loans.loans.map((l) => l.customerId),
  );
});

// ------------------------------------------------------------------------------------------------
// _entities straight to Mosaic

test("federation: Mosaic's _entities answers mixed representations in their order, null and an error for an unknown id", { timeout: 30_000 }, async (t) => {
  const [l1, , , l4] = fed.loans.loans;
  const customerIds = [...new Set(fed.loans.loans.map((l) => l.customerId))].slice(0, 3);
  assert.equal(customerIds.length, 3);
  const representations = [
    { __typename: 'Account', id: l4.accountId },
    { __typename: 'Customer', id: customerIds[2] },
    { __typename: 'Customer', id: customerIds[0] },
    { __typename: 'Customer', id: 'C-NO-SUCH-CUSTOMER' },
    { __typename: 'Account', id: l1.accountId },
    { __typename: 'Customer', id: customerIds[1] },
  ];
  const unknownAt = 3;

  await resetBankStats();
  const res = await postGraphQL(
    {
      query: `query ($representations: [_Any!]!) {
        _entities(representations: $representations) {
          __typename
          ... on Customer { id name district }
          ... on Account { id balance customerId }
        }
      }`,
      variables: { representations },
    },
    { url: fed.mosaic.graphql },
  );
  const stats = await bankStats();
  t.diagnostic(`backend calls: ${describeStats(stats)}`);
  assert.equal(res.status, 200, saw(res));

  const expected = [];
  for (const r of representations) {
    if (r.id === 'C-NO-SUCH-CUSTOMER') {
      expected.push(null);
    } else if (r.__typename === 'Customer') {
      const { customer } = await fromMosaic('query ($id: ID!) { customer(id: $id) { id name district } }', { id: r.id });
      expected.push({ __typename: 'Customer', ...customer });
    } else {
      const { account } = await fromMosaic('query ($id: ID!) { account(id: $id) { id balance customerId } }', { id: r.id });
      expected.push({ __typename: 'Account', ...account });
    }
  }
  assert.deepEqual(res.body?.data, { _entities: expected }, saw(res));

  const errors = res.body.errors ?? [];
  assert.ok(errors.length > 0, `an error for the unknown id:\n${saw(res)}`);
  assert.ok(
    errors.some((e) => Array.isArray(e.path) && e.path.length >= 2 && e.path[0] === '_entities' && e.path[1] === unknownAt),
    `an error with path ["_entities", ${unknownAt}]:\n${saw(res)}`,
  );
  for (const e of errors) assert.deepEqual(e.path?.slice(0, 2), ['_entities', unknownAt], `only the unknown representation fails:\n${saw(res)}`);

  assert.equal(stats.customers.endpoints['GET /customers/batch'], 1, `one GET /customers/batch: ${describeStats(stats)}`);
  assert.equal(stats.customers.total, 1, describeStats(stats));
  assert.equal(stats.accounts.endpoints['GET /accounts'], 1, `one GET /accounts: ${describeStats(stats)}`);
  assert.equal(stats.accounts.total, 1, describeStats(stats));
});

// Subscriptions as their clients see them: graphql-ws (graphql-transport-ws over WebSocket, at the
// GraphQL URL with ws://), graphql-sse (GraphQL over Server-Sent Events, distinct connections mode)
// and plain fetch reading the SSE stream. Each subscribes to the live Gangnam-gu balance, gets the
// current figures, sends a transfer out of Gangnam-gu through the gateway and must see the total
// drop by exactly that amount within 2 s of the mutation's response (the latency is printed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';
import { annotate, demo } from '../lib/demo.js';
import {
  AMOUNT,
  DISTRICT,
  FIRST_EVENT_TIMEOUT_MS,
  LIVE_BALANCE,
  Recorder,
  UPDATE_TIMEOUT_MS,
  healthz,
  latencyText,
  pollUntil,
  show,
  sseEvents,
  totalOf,
  transferOutOfGangnam,
  wsUrl,
} from '../lib/subscriptions.js';

/** What a subscriber's sink receives (the recorders also hold wire-level entries). */
const SINK = ['next', 'error', 'complete'];

/** A graphql-ws client on node (the `ws` package), every frame and socket event into `rec`. */
function wsClient(rec) {
  return createWsClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0, // a failure shows, instead of being retried quietly
    connectionAckWaitTimeout: 5_000,
    on: {
      connected: () => rec.push('ws:connected'),
      message: (m) => rec.push('ws:message', m),
      closed: (e) => rec.push('ws:closed', e),
      error: (e) => rec.push('ws:error', e),
    },
  });
}

/**
 * The scenario every client runs, on a recorder its sink feeds: the first event is the current
 * total of Gangnam-gu; after a transfer of AMOUNT out of it, the next event is the total less
 * AMOUNT, within UPDATE_TIMEOUT_MS of the mutation's response. Returns the measured latency (ms;
 * negative when the event came before the response) and the figures.
 */
async function snapshotThenUpdate(rec, keyPrefix, send) {
  const first = await rec.entryAt(0, { kinds: SINK, timeoutMs: FIRST_EVENT_TIMEOUT_MS, what: 'first event (the current total)' });
  assert.equal(first.kind, 'next', `the first event is a result, got ${first.kind} ${show(first.value)}`);
  assert.equal(first.value.errors, undefined, `errors in the first event: ${show(first.value)}`);
  assert.equal(first.value.data?.districtBalance?.district, DISTRICT, `the first event: ${show(first.value)}`);
  const before = totalOf(first.value);
  assert.ok(Number.isFinite(before) && before > 0, `a positive total in the first event: ${show(first.value)}`);

  const afterFirst = rec.entries.indexOf(first) + 1;
  const { transfer, respondedAt, attempts } = await transferOutOfGangnam(keyPrefix, send);
  const waitMs = Math.max(0, respondedAt + UPDATE_TIMEOUT_MS - performance.now());
  const update = await rec.entryAt(afterFirst, {
    kinds: SINK,
    timeoutMs: waitMs,
    what: `update within ${UPDATE_TIMEOUT_MS} ms of the transfer's response (transfer ${transfer.id}, total before ${before})`,
  });
  const latency = update.at - respondedAt;
  assert.equal(update.kind, 'next', `the event after the transfer is a result, got ${update.kind} ${show(update.value)}`);
  assert.equal(update.value.errors, undefined, `errors in the update: ${show(update.value)}`);
  assert.equal(update.value.data?.districtBalance?.district, DISTRICT);
  assert.equal(totalOf(update.value), before - AMOUNT, `the update's total is the first total less ${AMOUNT}: ${show(update.value)}`);
  assert.ok(latency <= UPDATE_TIMEOUT_MS, `the update came ${Math.round(latency)} ms after the mutation's response`);
  return { latency, before, after: before - AMOUNT, transfer, attempts: attempts.length };
}

function report(t, client, r) {
  const retried = r.attempts > 1 ? ` (the external bank failed ${r.attempts - 1} transfer(s) first; retried)` : '';
  t.diagnostic(`${client}: update ${latencyText(r.latency)}; total ${r.before} → ${r.after} (transfer ${r.transfer.id})${retried}`);
}

test(
  'graphql-ws: districtBalance gives the current total, then the update of a transfer within 2 s; dispose completes cleanly',
  { timeout: 30_000 },
  async (t) => {
    const rec = new Recorder('the graphql-ws client');
    const client = wsClient(rec);
    try {
      const wsBefore = (await healthz()).websocket_connections;
      const unsubscribe = client.subscribe({ query: LIVE_BALANCE }, rec.sink());
      const r = await snapshotThenUpdate(rec, 'e2e-graphql-ws', undefined);
      report(t, 'graphql-ws', r);

      // The socket is open now: one more than before.
      assert.equal((await healthz()).websocket_connections, wsBefore + 1, 'the gateway counts the open WebSocket');
      unsubscribe();
      await client.dispose();
      const closed = await rec.entryAt(0, { kinds: ['ws:closed'], timeoutMs: 5_000, what: 'socket close after dispose' });
      assert.equal(closed.value.code, 1000, `the socket closed normally: ${show(closed.value)}`);
      assert.deepEqual(rec.errors, [], 'the sink saw no error');
      assert.ok(!rec.entries.some((e) => e.kind === 'ws:error'), 'the socket saw no error');
      assert.equal(rec.entries.filter((e) => e.kind === 'ws:connected').length, 1, 'one connection, no reconnect');
      // The gateway let go of the socket too.
      let after;
      await pollUntil(async () => (after = (await healthz()).websocket_connections) === wsBefore, { timeoutMs: 3_000 });
      assert.equal(after, wsBefore, `the gateway's websocket_connections went back to ${wsBefore} after dispose`);
    } catch (err) {
      throw annotate(err, rec.describe());
    } finally {
      await client.dispose();
    }
  },
);

test(
  'graphql-ws: an invalid subscription gets an error message (the sink rejects with the GraphQL errors), not a hang; the socket stays usable',
  { timeout: 30_000 },
  async () => {
    const rec = new Recorder('the graphql-ws client');
    const client = wsClient(rec);
    try {
      const bad = `subscription Bad { districtBalance(district: "${DISTRICT}") { district noSuchField } }`;
      client.subscribe({ query: bad }, rec.sink());
      const got = await rec.entryAt(0, { kinds: SINK, timeoutMs: 5_000, what: 'answer to an invalid subscription' });
      assert.equal(got.kind, 'error', `an error, got ${got.kind} ${show(got.value)}`);
      assert.ok(Array.isArray(got.value) && got.value.length > 0, `the sink's error is the list of GraphQL errors: ${show(got.value)}`);
      for (const e of got.value) assert.equal(typeof e.message, 'string', `a GraphQL error: ${show(e)}`);
      assert.match(got.value.map((e) => e.message).join(' '), /noSuchField/, 'the error names the unknown field');
      const wire = rec.entries.find((e) => e.kind === 'ws:message' && e.value?.type === 'error');
      assert.ok(wire, 'the server sent a message of type "error"');
      assert.equal(rec.nexts.length, 0, 'no result for an invalid operation');

      // The error ended that operation, not the connection: the same socket serves the next one.
      const ok = new Recorder('the second operation');
      const stop = client.subscribe({ query: LIVE_BALANCE }, ok.sink());
      const first = await ok.entryAt(0, { kinds: SINK, timeoutMs: FIRST_EVENT_TIMEOUT_MS, what: 'first event' }).catch((err) => {
        throw annotate(err, ok.describe());
      });
      assert.equal(first.kind, 'next', ok.describe());
      assert.ok(totalOf(first.value) > 0, ok.describe());
      stop();
      assert.equal(rec.entries.filter((e) => e.kind === 'ws:connected').length, 1, 'one socket for both operations');
      assert.ok(!rec.entries.some((e) => e.kind === 'ws:closed'), 'the socket was not closed by the error');
    } catch (err) {
      throw annotate(err, rec.describe());
    } finally {
      await client.dispose();
    }
  },
);

test(
  'graphql-sse (distinct connections mode): districtBalance gives the current total, then the update of a transfer within 2 s',
  { timeout: 30_000 },
  async (t) => {
    const rec = new Recorder('the graphql-sse client');
    const requests = [];
    const client = createSseClient({
      url: demo().graphql,
      singleConnection: false,
      retryAttempts: 0,
      fetchFn: async (input, init = {}) => {
        const call = { url: String(input?.url ?? input), method: init.method, headers: init.headers, body: init.body };
        requests.push(call);
        rec.push('http:request', call);
        const res = await fetch(input, init);
        rec.push('http:response', { status: res.status, contentType: res.headers.get('content-type') });
        return res;
      },
    });
    try {
      const unsubscribe = client.subscribe({ query: LIVE_BALANCE }, rec.sink());
      const r = await snapshotThenUpdate(rec, 'e2e-graphql-sse', undefined);
      report(t, 'graphql-sse', r);
      unsubscribe();
      assert.deepEqual(rec.errors, [], 'the sink saw no error');
      // One POST asking for an event stream, answered with one.
      assert.equal(requests.length, 1, 'one request (distinct connections mode, no reservation)');
      assert.equal(requests[0].method, 'POST');
      assert.match(String(new Headers(requests[0].headers).get('accept')), /text\/event-stream/);
      const response = rec.entries.find((e) => e.kind === 'http:response').value;
      assert.equal(response.status, 200);
      assert.match(response.contentType ?? '', /^text\/event-stream/);
    } catch (err) {
      throw annotate(err, rec.describe());
    } finally {
      client.dispose();
    }
  },
);

/**
 * POSTs `payload` asking for an event stream and pumps its events into `rec` (kind = the SSE event
 * name, value = the parsed data, or undefined for an empty data line), then 'end' or 'stream-error'.
 * Returns { res, raw (the text read), done (resolves when the stream ends), abort }.
 */
async function openSse(payload, rec) {
  const controller = new AbortController();
  // Bounded: no stream outlives its test (abort() below ends it sooner).
  const timer = setTimeout(() => controller.abort(new Error('the SSE stream was open for 30 s')), 30_000);
  timer.unref();
  const res = await fetch(demo().graphql, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(payload),
    signal: controller.signal,
  });
  rec.push('http:response', { status: res.status, headers: Object.fromEntries(res.headers) });
  const raw = [];
  let aborted = false;
  const done = (async () => {
    try {
      for await (const ev of sseEvents(res.body, raw)) {
        let value;
        try {
          value = ev.data === '' ? undefined : JSON.parse(ev.data);
        } catch {
          value = `(not JSON) ${ev.data}`;
        }
        rec.push(ev.event, value);
      }
      rec.push('end');
    } catch (err) {
      if (!aborted) rec.push('stream-error', err);
    } finally {
      clearTimeout(timer);
    }
  })();
  return {
    res,
    raw,
    done,
    abort: () => {
      aborted = true;
      controller.abort();
    },
  };
}

test(
  'GraphQL over SSE with plain fetch: `event: next` per result; the current total, then the update of a transfer within 2 s',
  { timeout: 30_000 },
  async (t) => {
    const rec = new Recorder('fetch (the SSE stream)');
    let stream;
    try {
      stream = await openSse({ query: LIVE_BALANCE }, rec);
      assert.equal(stream.res.status, 200);
      assert.match(stream.res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const r = await snapshotThenUpdate(rec, 'e2e-sse-fetch', undefined);
      report(t, 'SSE (fetch)', r);
      assert.ok(!rec.entries.some((e) => e.kind === 'stream-error' || e.kind === 'end'), 'the stream stayed open');
      assert.match(stream.raw.join(''), /^event: next\ndata: \{.*\}\n\n/, 'framed as `event: next\\ndata: {json}\\n\\n`');
    } catch (err) {
      throw annotate(err, `${rec.describe()}\n--- the stream as read ---\n${stream?.raw.join('') ?? ''}`);
    } finally {
      stream?.abort();
    }
  },
);

test(
  'GraphQL over SSE with plain fetch: an operation that ends (a query; an invalid subscription) sends next, then `event: complete`, and the stream closes',
  { timeout: 30_000 },
  async (t) => {
    const cases = [
      { name: 'a query', query: `{ district(name: "${DISTRICT}") { district totalBalance } }`, ok: true },
      { name: 'an invalid subscription', query: `subscription { districtBalance(district: "${DISTRICT}") { noSuchField } }`, ok: false },
    ];
    for (const c of cases) {
      const rec = new Recorder(`fetch (${c.name} over SSE)`);
      let stream;
      try {
        stream = await openSse({ query: c.query }, rec);
        assert.equal(stream.res.status, 200);
        assert.match(stream.res.headers.get('content-type') ?? '', /^text\/event-stream/);
        await rec.entryAt(0, { kinds: ['end', 'stream-error'], timeoutMs: 5_000, what: 'end of the stream (it must not hang)' });
        const events = rec.entries.filter((e) => !e.kind.startsWith('http:'));
        assert.deepEqual(
          events.map((e) => e.kind),
          ['next', 'complete', 'end'],
          'one next, one complete, then the server closes the stream',
        );
        const result = events[0].value;
        if (c.ok) {
          assert.equal(result.errors, undefined, show(result));
          assert.ok(Number(result.data?.district?.totalBalance) > 0, `a positive total: ${show(result)}`);
        } else {
          assert.ok(Array.isArray(result.errors) && result.errors.length > 0, `GraphQL errors: ${show(result)}`);
          assert.match(result.errors.map((e) => e.message).join(' '), /noSuchField/);
          if ('data' in result) {
            t.diagnostic(`note: the request error over SSE carries "data": ${show(result.data)} (POST without SSE omits data)`);
          }
        }
        assert.equal(events[1].value, undefined, 'complete carries an empty data line');
        assert.match(stream.raw.join(''), /event: complete\ndata:\n\n$/, 'the stream ends with `event: complete\\ndata:\\n\\n`');
      } catch (err) {
        throw annotate(err, `${rec.describe()}\n--- the stream as read ---\n${stream?.raw.join('') ?? ''}`);
      } finally {
        stream?.abort();
      }
    }
  },
);

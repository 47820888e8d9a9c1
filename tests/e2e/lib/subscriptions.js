// Helpers of the subscription tests (graphql-ws, Apollo's GraphQLWsLink, graphql-sse, plain fetch):
// the live Gangnam-gu balance scenario, a recorder of what a subscriber saw (with arrival times), a
// transfer that moves the balance, a small Server-Sent Events parser, and the gateway's /healthz.

import { performance } from 'node:perf_hooks';
import { demo, fetchWithTimeout, postGraphQL, saw, uniqueKey } from './demo.js';

/** The subscription every client runs: the live total balance of Gangnam-gu. */
export const DISTRICT = 'Gangnam-gu';
export const LIVE_BALANCE = `subscription LiveGangnam { districtBalance(district: "${DISTRICT}") { district totalBalance } }`;

/** How long the first event (the current figures) may take (ms). */
export const FIRST_EVENT_TIMEOUT_MS = 10_000;
/** How long after the transfer's response its update may take (ms): the product's promise. */
export const UPDATE_TIMEOUT_MS = 2_000;
/** The amount each scenario transfers out of Gangnam-gu. */
export const AMOUNT = 1000;

/** The gateway's ws:// URL of the GraphQL endpoint (the same path as HTTP). */
export function wsUrl() {
  return demo().graphql.replace(/^http/, 'ws');
}

/**
 * Records what a subscriber saw, in order, each with its arrival time (performance.now()):
 * { kind: 'next' | 'error' | 'complete' | anything a test pushes, value, at }. `sink()` is an
 * observer for graphql-ws, graphql-sse and rxjs (Apollo) alike.
 */
export class Recorder {
  constructor(label) {
    this.label = label;
    this.start = performance.now();
    this.entries = [];
    this.waiters = new Set();
  }

  push(kind, value) {
    const entry = { kind, value, at: performance.now() };
    this.entries.push(entry);
    for (const w of this.waiters) w();
    return entry;
  }

  sink() {
    return {
      next: (value) => this.push('next', value),
      error: (err) => this.push('error', err),
      complete: () => this.push('complete'),
    };
  }

  get nexts() {
    return this.entries.filter((e) => e.kind === 'next');
  }

  get errors() {
    return this.entries.filter((e) => e.kind === 'error');
  }

  /**
   * The first entry at index >= `from` of one of `kinds` (default: any); rejects after `timeoutMs`
   * with everything seen so far.
   */
  entryAt(from, { kinds, timeoutMs, what }) {
    const find = () => this.entries.slice(from).find((e) => !kinds || kinds.includes(e.kind));
    const found = find();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const e = find();
        if (!e) return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Everything seen, one line each, with the time since the recorder was made. */
  describe() {
    const lines = this.entries.map((e) => `  +${Math.round(e.at - this.start)} ms ${e.kind}${e.value === undefined ? '' : ` ${show(e.value)}`}`);
    return `--- what ${this.label} saw (${this.entries.length}) ---\n${lines.join('\n') || '  (nothing)'}`;
  }
}

/** Any value as one line of text (errors with their name and message, arrays of them too). */
export function show(v) {
  if (v instanceof Error) return `${v.name}: ${v.message}${v.cause ? ` (cause: ${show(v.cause)})` : ''}`;
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (v && typeof v === 'object' && 'code' in v && 'reason' in v && 'wasClean' in v) {
    return `CloseEvent ${v.code} ${JSON.stringify(v.reason)} clean=${v.wasClean}`;
  }
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The district's total balance in a subscription result ({ data: { districtBalance } }). */
export function totalOf(result) {
  const v = result?.data?.districtBalance?.totalBalance;
  return v === undefined || v === null ? undefined : Number(v);
}

const TRANSFER = `mutation LiveTransfer($input: TransferInput!) {
  transfer(input: $input) { id status amount fromAccount toAccount failureReason }
}`;

/**
 * Moves AMOUNT out of Gangnam-gu: A0001 (C001's, who lives there) to an account at another bank,
 * through the gateway. `send(input)` runs the mutation and returns its `transfer`; by default a
 * plain POST. A transfer to another bank may fail when the (flaky by design) external bank failed
 * every verify attempt: it moved no money, so it is retried with a new key (at most 3 times).
 * Returns { transfer, respondedAt (performance.now() when the answer arrived), attempts }.
 */
export async function transferOutOfGangnam(prefix, send = sendByPost) {
  const attempts = [];
  for (let i = 1; i <= 3; i++) {
    const input = { fromAccount: 'A0001', toAccount: 'EXT-0042', toBank: 'Hana Bank', amount: AMOUNT, idempotencyKey: uniqueKey(prefix) };
    const transfer = await send(input);
    const respondedAt = performance.now();
    attempts.push(transfer);
    if (transfer?.status === 'COMPLETED') return { transfer, respondedAt, attempts };
    if (transfer?.status !== 'FAILED' || !/external/i.test(transfer.failureReason ?? '')) break;
  }
  throw new Error(`the transfer did not complete; the gateway answered:\n${attempts.map((a) => JSON.stringify(a)).join('\n')}`);
}

async function sendByPost(input) {
  const res = await postGraphQL({ query: TRANSFER, variables: { input } });
  if (res.status !== 200 || res.body?.errors || !res.body?.data?.transfer) {
    throw new Error(`the transfer mutation failed:\n${saw(res)}`);
  }
  return res.body.data.transfer;
}

export { TRANSFER as TRANSFER_MUTATION };

/** The text of a latency for the report: "12 ms" or "3 ms before the mutation's response". */
export function latencyText(ms) {
  const r = Math.round(ms);
  return r >= 0 ? `${r} ms after the mutation's response` : `${-r} ms before the mutation's response`;
}

/** `GET /healthz` on the gateway's main port (JSON). */
export async function healthz() {
  const url = `${new URL(demo().graphql).origin}/healthz`;
  const res = await fetchWithTimeout(url);
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET ${url} → HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
  }
}

/** The state of one backend's circuit breaker in /healthz ("closed", "open", "half_open"). */
export async function breakerOf(backend) {
  const h = await healthz();
  const b = h.backends?.find((x) => x.backend === backend);
  if (!b) throw new Error(`/healthz lists no backend "${backend}": ${JSON.stringify(h)}`);
  return b.breaker;
}

/** Polls `check` (async, truthy when done) every `everyMs` up to `timeoutMs`; returns its last value. */
export async function pollUntil(check, { timeoutMs, everyMs = 250 }) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (performance.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Server-Sent Events from a fetch Response's body, as they arrive: yields { event, data, id }
 * (event defaults to "message"; data lines joined with "\n"), per the WHATWG rules (comments and
 * unknown fields ignored, CRLF, CR and LF line ends). Pass `raw` (an array) to collect the text.
 */
export async function* sseEvents(body, raw = []) {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data = [];
  let id;
  let hasData = false;
  for await (const chunk of body) {
    const text = decoder.decode(chunk, { stream: true });
    raw.push(text);
    buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buffer);
      if (!m) break;
      // A lone CR at the buffer's end may be the first half of CRLF: wait for more.
      if (m[0] === '\r' && m.index === buffer.length - 1) break;
      const line = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      if (line === '') {
        // As EventSource does: a block without a data line dispatches nothing.
        if (hasData) yield { event: event || 'message', data: data.join('\n'), id };
        event = '';
        data = [];
        hasData = false;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') {
        data.push(value);
        hasData = true;
      } else if (field === 'id') id = value;
    }
  }
}

/**
 * POSTs one operation with `Accept: text/event-stream` (GraphQL over SSE, distinct connections
 * mode), reads the stream until its first `next` event, then closes it. Returns what the client
 * saw in the shape of postGraphQL's answer (so `saw(res)` prints it): { status, headers, text (the
 * stream as read), body (the first event's ExecutionResult, or undefined) }.
 */
export async function firstEventOverSse(payload, { timeoutMs = FIRST_EVENT_TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no next event within ${timeoutMs} ms`)), timeoutMs);
  const raw = [];
  let res;
  try {
    res = await fetch(demo().graphql, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(payload),
      signal: controller.signal,
    });
    const out = { status: res.status, headers: Object.fromEntries(res.headers), text: '', body: undefined };
    if (!/^text\/event-stream/.test(res.headers.get('content-type') ?? '')) {
      out.text = await res.text();
      return out;
    }
    try {
      for await (const ev of sseEvents(res.body, raw)) {
        if (ev.event !== 'next') continue;
        try {
          out.body = JSON.parse(ev.data);
        } catch {
          out.body = undefined;
        }
        break;
      }
    } catch (err) {
      raw.push(`\n(the stream failed: ${show(err)})`);
    }
    out.text = raw.join('');
    return out;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

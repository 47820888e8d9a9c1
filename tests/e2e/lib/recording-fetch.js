// A fetch that records every request a client library makes (and what came back), with a bounded
// time per request, so a test can assert on the wire and print what the client saw.

import { REQUEST_TIMEOUT_MS } from './demo.js';

export function recordingFetch() {
  const calls = [];
  const fn = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const call = { url, method: init.method ?? 'GET', headers: init.headers, body: init.body, status: null, response: null };
    calls.push(call);
    const res = await fetch(input, { ...init, signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    call.status = res.status;
    try {
      call.response = await res.clone().text();
    } catch {
      call.response = '(unreadable)';
    }
    return res;
  };
  fn.calls = calls;
  fn.reset = () => calls.splice(0, calls.length);
  fn.describe = () =>
    calls
      .map((c, i) => `#${i + 1} ${c.method} ${c.url}\n  sent: ${String(c.body ?? '').slice(0, 800)}\n  got:  HTTP ${c.status} ${String(c.response ?? '').slice(0, 1500)}`)
      .join('\n');
  return fn;
}

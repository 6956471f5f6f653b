/**
 * `POST /v1/messenger/ping` served straight from node:http, everything else handed to the Hono app.
 *
 * Why: the ping runs on every page view of every visitor, and a known visitor's ping does almost
 * no work of its own (ping-answers.ts). Measured here, building the web Request/Response pair and
 * running the middleware chain cost more than the ping itself: the Hono path reached about 0.3 of a
 * bare node:http server's rate, this one over 0.5 (bench/ping.bench.ts).
 *
 * What keeps the two paths alike: the same endpoint function (validation, app, origin, rate
 * limits, service: ping-endpoint.ts), the same body parser, the same problem+json answers, the same
 * CORS headers and request log line. Only requests it can take whole are taken: exactly this path,
 * with a Content-Length within the body limit; any other (chunked, oversized, with a query string,
 * preflight) goes to Hono unread. test/server/http/node-fast-path.test.ts compares both paths
 * answer by answer.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { ServiceError } from '../services/context.ts';
import type { PingEndpoint } from './ping-endpoint.ts';
import { problemBody } from './problem.ts';
import { BODY_LIMIT, parseJsonObject } from './read-body.ts';

const PING_PATH = '/v1/messenger/ping';
/** Host headers @hono/node-server accepts without a closer look; any other goes to it to decide. */
const VALID_HOST = /^[a-z0-9._-]+(?::(?:[1-5]\d{3,4}|[6-9]\d{3}))?$/;

export function withPingFastPath(fallback: RequestListener, ping: PingEndpoint, log: (line: Record<string, unknown>) => void): RequestListener {
  return (req, res) => {
    const length = req.headers['content-length'];
    const host = req.headers.host;
    if (req.method !== 'POST' || req.url !== PING_PATH || length === undefined || !/^\d+$/.test(length) || Number(length) > BODY_LIMIT
      || req.headers['transfer-encoding'] !== undefined || host === undefined || !VALID_HOST.test(host)) {
      fallback(req, res);
      return;
    }
    const started = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => void answer(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), started).catch(() => res.destroy()));
    req.once('error', () => {
      // The client went away mid-body: nothing to answer, but the request is still logged.
      res.destroy();
      log({ level: 'info', method: 'POST', path: PING_PATH, status: 499, ms: Math.round((performance.now() - started) * 10) / 10 });
    });
  };

  async function answer(req: IncomingMessage, res: ServerResponse, body: Buffer, started: number): Promise<void> {
    const origin = req.headers.origin;
    // As the messenger routes' CORS middleware: the answer names the calling origin (allowed or not, the gate decides).
    const cors: Record<string, string> = origin ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {};
    let status = 200;
    try {
      const json = JSON.stringify(await ping(parseJsonObject(body), origin, req.socket.remoteAddress ?? 'local'));
      // With a Content-Length, as Hono's adapter sends it (not chunked).
      const length = String(Buffer.byteLength(json));
      res.writeHead(200, origin
        ? ['content-type', 'application/json', 'content-length', length, 'access-control-allow-origin', origin, 'vary', 'Origin']
        : ['content-type', 'application/json', 'content-length', length]);
      res.end(json);
    } catch (error) {
      let problem: string;
      let headers: Record<string, string> = {};
      if (error instanceof ServiceError) {
        status = error.status;
        headers = error.headers;
        problem = JSON.stringify(problemBody(status, error.slug, error.message));
      } else {
        status = 500;
        log({ level: 'error', method: 'POST', path: PING_PATH, error: error instanceof Error ? error.stack ?? error.message : String(error) });
        problem = JSON.stringify(problemBody(500, 'internal', 'the server failed; nothing was changed'));
      }
      res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(problem)), ...headers, ...cors });
      res.end(problem);
    }
    log({ level: 'info', method: 'POST', path: PING_PATH, status, ms: Math.round((performance.now() - started) * 10) / 10 });
  }
}

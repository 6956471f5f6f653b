/**
 * Child process for the HTTP baselines: a plain node:http server on 127.0.0.1 that
 * - answers `POST /v1/messenger/ping` by reading and parsing the JSON body and answering a fixed
 *   JSON document (the real server's answer for the same visitor, given as argv[2]);
 * - keeps `GET /v1/messenger/stream` open as an SSE stream and, on `POST /reply`, writes the
 *   message to every open stream (an SSE echo), answering 201 with the message.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { onParentStop, tellParent } from '../lib/child.ts';

const answer = process.argv[2] ?? '{}';
const streams = new Set<ServerResponse>();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/v1/messenger/ping') {
    readBody(req).then((text) => {
      JSON.parse(text);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
    }, () => res.destroy());
    return;
  }
  if (req.method === 'GET' && path === '/v1/messenger/stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(`event: ready\ndata: {}\nretry: 2000\n\n`);
    streams.add(res);
    req.on('close', () => streams.delete(res));
    return;
  }
  if (req.method === 'POST' && path === '/reply') {
    readBody(req).then((text) => {
      const { body } = JSON.parse(text) as { body: string };
      const message = { id: `msg_${randomUUID()}`, body, author: { type: 'agent', id: 'agent' }, created_at: new Date().toISOString() };
      const data = JSON.stringify(message);
      for (const s of streams) s.write(`event: message\ndata: ${data}\n\n`);
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(data);
    }, () => res.destroy());
    return;
  }
  res.writeHead(404).end();
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  onParentStop(async () => {
    for (const s of streams) s.end();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  void tellParent({ url: `http://127.0.0.1:${port}` });
});

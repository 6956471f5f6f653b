/**
 * Request bodies: at most 64 KiB (413), valid UTF-8 and valid JSON (400). Read by counting bytes
 * as they arrive, so a body without Content-Length cannot grow past the limit in memory.
 */
import type { Context } from 'hono';
import { ServiceError } from '../services/context.ts';

export const BODY_LIMIT = 64 * 1024;

export async function readBodyBytes(c: Context, limit = BODY_LIMIT): Promise<Uint8Array> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) throw new ServiceError(413, 'body-too-large', `the body is over ${limit} bytes`);
  // With a declared length within the limit, the server's own buffered read is safe and much
  // cheaper (it skips building a full web Request); without one, count bytes as they stream in.
  if (declared !== undefined && /^\d+$/.test(declared)) return new Uint8Array(await c.req.raw.arrayBuffer());
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array();
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new ServiceError(413, 'body-too-large', `the body is over ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Parses a JSON object body. `requireJsonType` refuses other content types (admin calls). */
export async function readJson(c: Context, requireJsonType: boolean): Promise<unknown> {
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (requireJsonType && !type.startsWith('application/json')) throw new ServiceError(400, 'unsupported-content-type', 'send the body as application/json');
  const bytes = await readBodyBytes(c);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ServiceError(400, 'invalid-utf8', 'the body is not valid UTF-8');
  }
  if (text.includes('\u0000') || /(^|[^\\])\\u0000/i.test(text)) throw new ServiceError(400, 'invalid-input', 'the body contains a NUL character');
  if (text.trim() === '') return {};
  let value: unknown;
  // A `\uD800`-style escape can spell a lone surrogate: not text, and no database stores it as sent.
  let lone = false;
  const loneSurrogate = /[\uD800-\uDFFF]/u;
  const reviver = (key: string, v: unknown) => {
    if (loneSurrogate.test(key) || (typeof v === 'string' && loneSurrogate.test(v))) lone = true;
    return v;
  };
  try {
    value = text.includes('\\u') ? JSON.parse(text, reviver) : JSON.parse(text);
  } catch {
    throw new ServiceError(400, 'invalid-json', 'the body is not valid JSON');
  }
  if (lone) throw new ServiceError(400, 'invalid-unicode', 'the body spells a lone UTF-16 surrogate, which is not text');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ServiceError(400, 'invalid-json', 'the body must be a JSON object');
  return value;
}

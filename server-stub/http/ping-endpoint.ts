/**
 * `POST /v1/messenger/ping` from a parsed JSON body to its answer: validation, the gate (app,
 * origin, rate limits), the service. Shared by the Hono route and the node:http fast path
 * (node-fast-path.ts), so both answer alike.
 */
import type { Services } from '../services/context.ts';
import * as messenger from '../services/messenger.ts';
import { claim, type MessengerGate } from './messenger-gate.ts';
import * as schemas from './schemas.ts';

export type PingEndpoint = (body: unknown, origin: string | undefined, ip: string) => Promise<messenger.PingAnswer>;

export function createPingEndpoint(s: Services, gate: MessengerGate): PingEndpoint {
  return async (body, origin, ip) => {
    const input = schemas.parseInput(schemas.ping, body);
    const user = claim(input.user);
    const app = await gate(input.app_id, input.visitor_id, origin, ip);
    return messenger.ping(s, app, { visitor_id: input.visitor_id, user, lead: input.lead, attributes: input.attributes });
  };
}

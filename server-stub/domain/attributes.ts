/**
 * A contact's custom attributes, kept as one JSON object on its row. Pure: what setting them and
 * carrying them over in a merge (R6) do to that object.
 */
export type Attributes = Record<string, unknown>;

export function parseAttributes(text: string): Attributes {
  return JSON.parse(text) as Attributes;
}

/** Keys in order, so the stored text and every answer list them the same way. */
export function encodeAttributes(attributes: Attributes): string {
  return JSON.stringify(sortedAttributes(attributes));
}

export function sortedAttributes(attributes: Attributes): Attributes {
  return Object.fromEntries(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
}

/** Setting attributes: the given values replace the current ones, key by key. */
export function withAttributes(current: Attributes, changes: Attributes): { next: Attributes; changed: boolean } {
  const next = { ...current };
  let changed = false;
  for (const [key, value] of Object.entries(changes)) {
    if (Object.hasOwn(current, key) && JSON.stringify(current[key]) === JSON.stringify(value)) continue;
    put(next, key, value);
    changed = true;
  }
  return { next, changed };
}

/**
 * R6: a lead's attributes go to the user only where the user has no value for that key (a key
 * present with any value, null included, is a value: never overwritten).
 */
export function carryAttributes(user: Attributes, lead: Attributes): { next: Attributes; moved: number } {
  const next = { ...user };
  let moved = 0;
  for (const [key, value] of Object.entries(lead)) {
    if (Object.hasOwn(next, key)) continue;
    put(next, key, value);
    moved++;
  }
  return { next, moved };
}

/** An own property whatever the key: `o[key] = v` would treat `__proto__` as the prototype. */
function put(o: Attributes, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

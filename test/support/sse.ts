/**
 * Server-Sent Events read off a response body, for tests that hold a real stream open: calls
 * `onEvent` for each block that names an event, until the body ends (resolves) or fails (rejects).
 */
export async function readSse(reader: ReadableStreamDefaultReader<Uint8Array>, onEvent: (event: string, data: string | undefined) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let at;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      if (event) onEvent(event, /^data: (.*)$/m.exec(block)?.[1]);
    }
  }
}

/** Progress on stderr: a live line on a terminal, plain lines (at most one a second) otherwise. */
export interface Progress {
  update(done: number): void;
  done(): void;
}

export function createProgress(label: string, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now();
  let last = 0;
  let count = 0;
  const line = () => {
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    return `${label}: ${count.toLocaleString('en')} ${unit} done, ${Math.round(count / secs).toLocaleString('en')} ${unit}/s`;
  };
  return {
    update(done) {
      count = done;
      const now = Date.now();
      if (stream.isTTY) {
        stream.write(`\r${line()}   `);
      } else if (now - last >= 1000) {
        last = now;
        stream.write(`${line()}\n`);
      }
    },
    done() {
      stream.write(stream.isTTY ? `\r${line()}   \n` : `${line()}\n`);
    },
  };
}

/**
 * Runs SQLite's WAL checkpoints on a worker thread. A checkpoint copies the WAL back into the
 * database file and syncs both to disk; run by the connection that commits (SQLite's default), that
 * disk wait blocks the whole server, and in a bulk merge or an import it was most of the time spent
 * committing. Commits themselves are not synced (synchronous = NORMAL in WAL mode, which the main
 * connection keeps: the checkpoints' syncs are what keep the file sound after a power loss), so
 * with this worker running the main thread no longer waits for the disk on a commit.
 *
 * The worker never waits for a lock, so it cannot hold the server up; when it falls behind a stream
 * of large batches, the main connection's own automatic checkpoint (at a high threshold) still bounds
 * the WAL, and `onFailure` tells the main connection when the worker has stopped for any reason
 * other than `stop()`, so that it checkpoints at the usual threshold again.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface WalCheckpointer {
  /** Stops the worker and closes its connection; resolves once it has exited. */
  stop(): Promise<void>;
}

export interface WalCheckpointerOptions {
  intervalMs?: number;
  onFailure?: (reason: string) => void;
}

export function startWalCheckpointer(path: string, options: WalCheckpointerOptions = {}): WalCheckpointer {
  const workerData = { path, intervalMs: options.intervalMs ?? 100 };
  // execArgv: [] because the worker is plain JavaScript and needs none of the parent's loaders.
  // A plain path: Vite rewrites `new URL('./file', import.meta.url)` into a web address when this
  // module is loaded in a browser-like test environment.
  const file = join(dirname(fileURLToPath(import.meta.url)), 'wal-checkpoint-worker.mjs');
  // It allocates next to nothing: a small heap keeps the thread from adding to a bulk job's memory.
  const worker = new Worker(file, { workerData, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 } });
  // It must never keep a process alive on its own (a CLI run ends when its work ends).
  worker.unref();
  let stopping = false;
  let failed = false;
  const fail = (reason: string) => {
    if (stopping || failed) return;
    failed = true;
    options.onFailure?.(reason);
  };
  worker.on('message', (m: { stopped?: boolean; error?: string }) => {
    if (m.stopped && m.error !== undefined) fail(m.error);
  });
  worker.on('error', (error) => fail(error.message));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => {
    fail('the checkpoint worker exited');
    resolve();
  }));
  return {
    async stop() {
      if (!stopping) {
        stopping = true;
        // Waited for now, so the process stays up until the worker has closed its connection.
        worker.ref();
        worker.postMessage('stop');
      }
      await exited;
    },
  };
}

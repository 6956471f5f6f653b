/**
 * Runs SQLite's WAL checkpoints on a worker thread. A checkpoint copies the WAL back into the
 * database file and syncs both to disk; run by the connection that commits (SQLite's default), that
 * disk wait blocks the whole server, and in a bulk merge or import it was most of the time spent
 * committing (measured: the same merge ran 1.3x faster with checkpoints off the main thread).
 * Commits themselves are not synced (synchronous = NORMAL in WAL mode), so the main thread no
 * longer waits for the disk at all. If the worker cannot run, the main connection's own automatic
 * checkpoints (kept at a higher threshold) still bound the WAL.
 */
import { Worker } from 'node:worker_threads';

export interface WalCheckpointer {
  /** Stops the worker and closes its connection; resolves once it has exited. */
  stop(): Promise<void>;
}

export function startWalCheckpointer(path: string, intervalMs = 100): WalCheckpointer {
  // execArgv: [] because the worker is plain JavaScript and needs none of the parent's loaders.
  const worker = new Worker(new URL('./wal-checkpoint-worker.mjs', import.meta.url), { workerData: { path, intervalMs }, execArgv: [] });
  // It must never keep a process alive on its own (a CLI run ends when its work ends).
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // A failed worker only means checkpoints fall back to the main connection.
  worker.on('error', () => undefined);
  let stopping = false;
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

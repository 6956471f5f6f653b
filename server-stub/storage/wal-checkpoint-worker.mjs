// Runs SQLite WAL checkpoints on a thread of its own (see wal-checkpointer.ts for why). Plain
// JavaScript so that Node loads it as it is, under tsx, vitest or plain node alike.
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

const { path, intervalMs } = workerData;
const db = new SQLite(path, { fileMustExist: true });
// Never wait for a lock: what a reader or the writer still needs is copied on a later tick. (A
// RESTART checkpoint, which waits for readers while holding writers back, made the main
// connection fail with SQLITE_BUSY when it upgraded a read transaction to a write.)
db.pragma('busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let failures = 0;

const timer = setInterval(() => {
  try {
    checkpoint.get();
    failures = 0;
  } catch (error) {
    if (error?.code === 'SQLITE_BUSY' || error?.code === 'SQLITE_LOCKED') return;
    // Anything else (the file removed, a disk error): stop, and the main connection takes over.
    if (++failures >= 3) stop(String(error?.message ?? error));
  }
}, intervalMs);

function stop(error) {
  clearInterval(timer);
  db.close();
  parentPort.postMessage({ stopped: true, error });
  parentPort.close();
}

parentPort.on('message', (message) => {
  if (message === 'stop') stop(undefined);
});

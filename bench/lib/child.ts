/**
 * Runs a TypeScript script in a child Node process (`node --import tsx`), talking over IPC: the
 * child sends one message when ready, the parent sends `{ type: 'stop' }` to end it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const benchDir = fileURLToPath(new URL('../', import.meta.url));
export const repoDir = fileURLToPath(new URL('../../', import.meta.url));

export interface Child<T> {
  process: ChildProcess;
  ready: T;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Starts `script` (a path relative to bench/) and waits for its first IPC message. */
export function startChild<T>(script: string, args: string[] = [], options: { env?: Record<string, string>; nodeArgs?: string[]; timeoutMs?: number } = {}): Promise<Child<T>> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', `${benchDir}${script}`, ...args], {
    cwd: repoDir,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, PARLEY_RATE_LIMIT: 'off', ...(options.env ?? {}) },
  });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ type: 'stop' });
    else child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script}: no ready message within ${(options.timeoutMs ?? 60_000) / 1000} s`));
    }, options.timeoutMs ?? 60_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve({ process: child, ready: message as T, stop });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited before it was ready (code ${code}, signal ${signal})`));
    });
  });
}

export interface RunOptions {
  env?: Record<string, string>;
  nodeArgs?: string[];
  timeoutMs?: number;
  /** IPC messages with `type: 'progress'` (the others are results: the last one is returned). */
  onMessage?: (message: unknown) => void;
}

/** A child that overran its time budget and was killed. */
export class ChildTimeout extends Error {}

/** Runs a script to completion and returns the last IPC message it sent (its result). */
export function runChild<T>(script: string, args: string[] = [], options: RunOptions = {}): Promise<T> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', `${benchDir}${script}`, ...args], {
    cwd: repoDir,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, PARLEY_RATE_LIMIT: 'off', ...(options.env ?? {}) },
  });
  live.add(child);
  let last: unknown;
  let got = false;
  child.on('message', (m) => {
    if ((m as { type?: string }).type === 'progress') options.onMessage?.(m);
    else {
      last = m;
      got = true;
    }
  });
  const timeoutMs = options.timeoutMs ?? 600_000;
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      if (timedOut) {
        reject(new ChildTimeout(`${script}: did not finish within ${Math.round(timeoutMs / 1000)} s`));
      } else if (code === 0 && got) resolve(last as T);
      else reject(new Error(`${script} ${args.join(' ')} failed (code ${code}, signal ${signal})`));
    });
  });
}

/** In a child: sends a message to the parent (and waits until it is handed over). */
export function tellParent(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('not started by a bench (no IPC channel)'));
    process.send(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

/** In a child: runs `onStop` when the parent says stop or goes away. */
export function onParentStop(onStop: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    onStop().then(() => process.exit(0), (error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  };
  process.on('message', (m) => {
    if ((m as { type?: string }).type === 'stop') stop();
  });
  process.on('disconnect', stop);
  process.once('SIGTERM', stop);
}

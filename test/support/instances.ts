/** Starts server instances as child processes and waits until they listen. */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Instance {
  url: string;
  adminToken: string;
  identitySecret: string;
  process: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startInstance(env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/instance.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`instance did not start: ${stderr}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}: ${stderr}`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /LISTENING (\d+) (\S+) (\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        url: `http://127.0.0.1:${m[1]}`,
        adminToken: m[2]!,
        identitySecret: m[3]!,
        process: child,
        kill: (signal = 'SIGKILL') => new Promise((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once('exit', () => done());
          child.kill(signal);
        }),
      });
    });
  });
}

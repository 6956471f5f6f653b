/** Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per module. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function summariseProfile(path: string, top = 15): string[] {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const perFn = new Map<string, number>();
  const perModule = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? f.url.replace(/^.*\/node_modules\//, '~/').replace(/^file:\/\/.*?\/(server-stub|bench)\//, '$1/') : '(native)';
    const fnKey = `${f.functionName || '(anonymous)'}  ${where}:${f.lineNumber + 1}`;
    perFn.set(fnKey, (perFn.get(fnKey) ?? 0) + us);
    const mod = where.startsWith('~/') ? where.slice(2).split('/').slice(0, where.includes('/@') ? 2 : 1).join('/') : where.split(':')[0]!;
    perModule.set(mod, (perModule.get(mod) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const lines = [`total sampled ${(total / 1e6).toFixed(1)} s`, 'self time by module:'];
  for (const [k, us] of [...perModule].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`  ${pct(us)}  ${k}`);
  lines.push('self time by function:');
  for (const [k, us] of [...perFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${k}`);
  return lines;
}

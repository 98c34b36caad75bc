import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh log file path in a temporary directory removed after the test. */
export function tmpDb(name = 'demo.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-demo-'));
  dirs.push(dir);
  return join(dir, name);
}

/**
 * The package as users get it: build with tsconfig.build.json, `npm pack`, install the tarball into
 * a fresh Node project, type-check every TypeScript example of README.md against the installed
 * declarations, run the embedding example (and the other runnable ones), and use the installed
 * `keel` binary on the log the example wrote. The examples are read from README.md, so the README
 * cannot drift from what the package does.
 *
 * Nothing is written inside the repository: the build goes to a staging directory (the repo's own
 * `dist/` would make `bin/keel.js` run stale compiled code instead of the sources).
 *
 * better-sqlite3 is installed with `--ignore-scripts` and given the native addon the repository's
 * own `npm ci` built (same version, same Node): its install script compiles SQLite from source when
 * no prebuilt binary can be downloaded, which takes minutes on a small machine and tests
 * better-sqlite3 rather than Keel.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Build, pack and install: about a minute on two idle cores, several under load. */
const SETUP_TIMEOUT_MS = 240_000;
/** One child process (a tsc run, an npm command). */
const STEP_TIMEOUT_MS = 150_000;
/** One test: a type-check or a few child processes. */
const TEST_TIMEOUT_MS = 120_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** npm run by `npm test` exports its own prefix and package; a nested npm must not see them. */
function childEnv(): NodeJS.ProcessEnv {
  const keep = new Set([
    'npm_config_cache',
    'npm_config_userconfig',
    'npm_config_globalconfig',
    'npm_config_cafile',
    'npm_config_registry',
  ]);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'INIT_CWD' || (k.toLowerCase().startsWith('npm_') && !keep.has(k.toLowerCase()))) continue;
    env[k] = v;
  }
  env.NO_COLOR = '1';
  return env;
}

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
function run(file: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((done, fail) => {
    execFile(
      file,
      args,
      { cwd, env: childEnv(), timeout: STEP_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          fail(new Error(`${file} ${args.join(' ')} could not run: ${error.message}\n${stderr}`));
          return;
        }
        done({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

/** Like {@link run}, but a non-zero exit fails with the command's output. */
async function ok(file: string, args: readonly string[], cwd: string): Promise<string> {
  const r = await run(file, args, cwd);
  if (r.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

const readme = readFileSync(join(repo, 'README.md'), 'utf8');

/** The fenced TypeScript block after `<!-- embed-example -->` in README.md. */
function readmeExample(): string {
  const m = /<!-- embed-example -->\s*```ts\n([\s\S]*?)\n```/.exec(readme);
  if (!m?.[1]) throw new Error('README.md has no ```ts block after <!-- embed-example -->');
  return m[1];
}

/** The ```ts blocks marked `<!-- run-example -->`: complete programs without network access. */
function readmeRunnable(): string[] {
  return [...readme.matchAll(/<!-- run-example -->\s*```ts\n([\s\S]*?)\n```/g)].map((m) => m[1] ?? '');
}

/** TypeScript → an ES module Node runs (types stripped by the compiler, nothing else changed). */
function toModule(code: string): string {
  return ts.transpileModule(code, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText;
}

/** Every fenced ```ts block of README.md, in order. */
function readmeTypeScript(): string[] {
  return [...readme.matchAll(/^```ts\n([\s\S]*?)\n```$/gm)].map((m) => m[1] ?? '');
}

/** The version of the package installed in `dir`. */
function versionAt(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Optional peers the README's examples import: installed next to keel, as a user would. */
const PEERS = ['openai', 'ai', '@statelyai/inspect', 'pg', 'ioredis'];

/** Relative module specifiers of a compiled ES module. */
function relativeImports(js: string): string[] {
  const specs: string[] = [];
  for (const m of js.matchAll(/(?:from\s*|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    if (m[1]) specs.push(m[1]);
  }
  return specs;
}

interface PackedFile {
  path: string;
}

const work = mkdtempSync(join(tmpdir(), 'keel-pack-'));
const stage = join(work, 'stage');
const app = join(work, 'app');
const npm = 'npm';
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  files: string[];
  bin: Record<string, string>;
  exports: Record<string, string | { types?: string; default: string }>;
};
let packed: Set<string>;
let tarball: string;

beforeAll(async () => {
  // 1. Build exactly as `npm run build` does, into the staging directory.
  mkdirSync(stage, { recursive: true });
  await ok(
    process.execPath,
    [
      join(repo, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      join(stage, 'dist'),
    ],
    repo,
  );
  // 2. Stage everything else `files` ships, then pack it.
  copyFileSync(join(repo, 'package.json'), join(stage, 'package.json'));
  for (const entry of pkg.files) {
    if (entry === 'dist' || entry.startsWith('dist/')) continue;
    cpSync(join(repo, entry), join(stage, entry), { recursive: true });
  }
  const out = await ok(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], stage);
  const [info] = JSON.parse(out) as [{ filename: string; files: PackedFile[] }];
  tarball = join(work, info.filename);
  packed = new Set(info.files.map((f) => f.path));
  // 3. A fresh project that installs the tarball (dependencies from the registry / npm cache).
  mkdirSync(app);
  await ok(npm, ['init', '-y'], app);
  // The repository's versions, so the install is served from the npm cache `npm ci` filled.
  const peers = PEERS.map((name) => `${name}@${versionAt(join(repo, 'node_modules', name))}`);
  await ok(
    npm,
    ['install', tarball, ...peers, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
    app,
  );
  const ours = join(repo, 'node_modules/better-sqlite3');
  const theirs = join(app, 'node_modules/better-sqlite3');
  const addon = 'build/Release/better_sqlite3.node';
  if (versionAt(ours) === versionAt(theirs) && existsSync(join(ours, addon))) {
    mkdirSync(join(theirs, 'build/Release'), { recursive: true });
    copyFileSync(join(ours, addon), join(theirs, addon));
  } else {
    await ok(npm, ['rebuild', 'better-sqlite3'], app);
  }
}, SETUP_TIMEOUT_MS);

// ~10,000 files: on a busy disk their removal alone can take longer than vitest's default hook timeout.
afterAll(() => rm(work, { recursive: true, force: true }), SETUP_TIMEOUT_MS);

describe('the npm package', () => {
  it('ships the compiled API with its type declarations, the binary and the dashboard, and no sources', () => {
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'bin/keel.js', 'dashboards/keel.json']) {
      expect(packed, f).toContain(f);
    }
    const sources = [...packed].filter(
      (f) => f.startsWith('test/') || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
    );
    expect(sources).toEqual([]);
    const declarations = readFileSync(join(stage, 'dist/src/index.d.ts'), 'utf8');
    for (const name of ['createRuntime', 'agent', 'seq', 'par', 'vote', 'cascade', 'simulated']) {
      expect(declarations).toMatch(new RegExp(`\\b${name}\\b`));
    }
  });

  it('holds the target of every export and bin entry, and every file a packed module imports', () => {
    const targets = Object.values(pkg.exports).flatMap((t) =>
      typeof t === 'string' ? [t] : [t.default, ...(t.types ? [t.types] : [])],
    );
    for (const t of [...targets, ...Object.values(pkg.bin)]) {
      expect(packed, `package.json points at ${t}`).toContain(posix.normalize(t));
    }
    const missing: string[] = [];
    for (const file of packed) {
      if (!file.endsWith('.js') || !file.startsWith('dist/')) continue;
      for (const spec of relativeImports(readFileSync(join(stage, file), 'utf8'))) {
        const target = posix.join(posix.dirname(file), spec);
        if (!packed.has(target)) missing.push(`${file} imports ${target}`);
      }
    }
    expect(missing, 'add the folders these live in to "files" in package.json').toEqual([]);
  });

  it(
    'type-checks every TypeScript example of the README against the installed declarations',
    async () => {
      const blocks = readmeTypeScript();
      expect(blocks.length).toBeGreaterThan(1);
      expect(blocks).toContain(readmeExample());
      const files = blocks.map((code, i) => {
        const file = `readme-${i + 1}.mts`;
        writeFileSync(join(app, file), `${code}\nexport {};\n`);
        return file;
      });
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [join(repo, 'node_modules/@types')],
          },
          files,
        }),
      );
      const r = await run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', '.'], app);
      expect(r.stdout + r.stderr).toBe('');
      expect(r.code).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'loads the subpath exports once their optional peers are installed',
    async () => {
      const probe = [
        "const { llmAgent } = await import('keel/agents/llm');",
        "const { openaiCompatible } = await import('keel/providers/openai');",
        "const { aiSdk } = await import('keel/providers/ai-sdk');",
        "const { postgres } = await import('keel/postgres');",
        "const { redis } = await import('keel/redis');",
        "const { startInvoiceService } = await import('keel/demos/embed');",
        "const { createReportFold } = await import('keel/analysis');",
        "const { circuitBreakerMachine } = await import('keel/machines');",
        "const { createMetrics } = await import('keel/observability');",
        "const { isStoreUnavailableError } = await import('keel/errors');",
        "const { clockScheduler } = await import('keel/testing');",
        'console.log([typeof llmAgent, typeof openaiCompatible, typeof aiSdk, typeof postgres, typeof redis, typeof startInvoiceService].join(" "));',
        'console.log([typeof createReportFold, typeof circuitBreakerMachine, typeof createMetrics, typeof isStoreUnavailableError, typeof clockScheduler].join(" "));',
      ].join('\n');
      writeFileSync(join(app, 'subpaths.mjs'), probe);
      expect((await ok(process.execPath, ['subpaths.mjs'], app)).trim().split('\n')).toEqual([
        'function function function function function function',
        'function object function function function',
      ]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'commits through the compiled writer thread of the installed package (no TypeScript loader there)',
    async () => {
      const probe = [
        "import { createRuntime, agent } from 'keel';",
        "const rt = createRuntime({ db: 'thread.db', writer: 'thread' });",
        "const echo = agent({ name: 'echo', model: 'gpt-4', run: async (x) => ({ value: x }) });",
        "const runs = await Promise.all(['a', 'b', 'c'].map((x) => rt.run(echo, x)));",
        'const verified = rt.store.verify();',
        'await rt.close();',
        'console.log(JSON.stringify({ values: runs.map((r) => r.value), ok: verified.ok, events: verified.events }));',
      ].join('\n');
      writeFileSync(join(app, 'thread.mjs'), probe);
      const line = (await ok(process.execPath, ['thread.mjs'], app)).trim().split('\n').at(-1) ?? '';
      expect(JSON.parse(line)).toEqual({ values: ['a', 'b', 'c'], ok: true, events: 15 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "runs the README's embedding example and the installed keel binary on the log it wrote",
    async () => {
      writeFileSync(join(app, 'embed.mjs'), toModule(readmeExample()));
      const printed = await ok(process.execPath, ['embed.mjs'], app);
      const line = printed.trim().split('\n').at(-1) ?? '';
      const result = JSON.parse(line) as { workflowId: string; costUsd: number; agentsCalled: number };
      expect(result.workflowId).toMatch(/^wf_/);
      expect(result.agentsCalled).toBe(3);
      expect(result.costUsd).toBeGreaterThan(0);
      expect(existsSync(join(app, 'keel.db'))).toBe(true);

      const keel = join(app, 'node_modules/.bin/keel');
      const help = await ok(keel, ['--help'], app);
      for (const command of ['audit', 'demo', 'report', 'replay', 'whatif', 'export', 'serve']) {
        expect(help).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
      }
      expect(await ok(keel, ['audit', 'verify', '--db', 'keel.db'], app)).toMatch(/^OK: \d+ events/);
      const trace = await ok(keel, ['audit', 'trace', result.workflowId, '--db', 'keel.db'], app);
      expect(trace).toContain('workflow.completed');
      const usage = await run(keel, ['audit', 'verify', '--no-such-option'], app);
      expect(usage.code).toBe(2);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "runs the README's topology and configuration examples",
    async () => {
      const examples = readmeRunnable();
      expect(examples.length).toBeGreaterThan(0);
      const dir = join(app, 'examples');
      mkdirSync(dir);
      for (const [i, code] of examples.entries()) {
        writeFileSync(join(dir, `example-${i + 1}.mjs`), toModule(code));
        await ok(process.execPath, [`example-${i + 1}.mjs`], dir);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'runs a demo from the installed binary and replays its log identically',
    async () => {
      const keel = join(app, 'node_modules/.bin/keel');
      const out = await ok(
        keel,
        ['demo', 'fraud', '--count', '20', '--db', 'demo.db', '--json', '--quiet'],
        app,
      );
      const demo = JSON.parse(out) as { demo: string; decisions: { compared: number; same: number } };
      expect(demo.demo).toBe('fraud');
      expect(demo.decisions.compared).toBe(20);
      expect(await ok(keel, ['audit', 'verify', '--db', 'demo.db'], app)).toMatch(/^OK: \d+ events/);
      const replay = await ok(keel, ['replay', 'all', '--db', 'demo.db'], app);
      expect(replay).toMatch(/40 workflow\(s\) replayed with 0 model calls: 40 identical, 0 diverged/);
    },
    TEST_TIMEOUT_MS,
  );
});

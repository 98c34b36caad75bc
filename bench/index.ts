/**
 * Runs every Keel benchmark, each in its own process (so one's heap and JIT state cannot colour
 * another's), streams their output, then prints one table of every goal and whether it was met.
 *
 *   node --import tsx bench/index.ts [--quick] [--only agent,memory] [--tsx]
 *
 * By default the benches run as JavaScript compiled by `tsc` into a temp folder, as a service runs
 * Keel from `dist/`: tsx (esbuild with keepNames) wraps every named closure in a `__name()` call,
 * which costs a `defineProperty` each time a closure is created and inflated the per-child overhead
 * of `par` by ~40%. `--tsx` runs the TypeScript sources through tsx instead.
 *
 * Child processes: agent, supervisor, workflows (its replay-scan rows come from the eventlog run
 * here instead of a second one), memory (with --expose-gc), limits, breaker and eventlog. The last two are
 * other scripts' own: `--quick` reaches them as a small iteration count and `KEEL_BENCH_EVENTS`.
 * Then scaleout and postgres (Keel on Postgres vs on SQLite at 256 in flight), which start their
 * own PostgreSQL unless `KEEL_BENCH_PG_URL` names one.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  JSON_MARKER,
  calibrate,
  isMain,
  loadavg,
  parseFlags,
  verdict,
  type BenchReport,
  type GoalResult,
} from './harness.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(benchDir);

/**
 * Compiles bench/, src/ and machines/ with the project's compiler options into a temp folder that
 * resolves the project's node_modules. Returns the folder. Type errors elsewhere in a tree that is
 * being worked on do not stop tsc from emitting; a missing output does.
 */
export function compile(): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-build-'));
  const tsconfig = path.join(out, 'tsconfig.json');
  fs.writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: path.join(root, 'tsconfig.json'),
      compilerOptions: {
        rootDir: root,
        outDir: out,
        noEmit: false,
        declaration: false,
        sourceMap: false,
        incremental: false,
      },
      include: ['bench', 'src', 'machines'].map((d) => path.join(root, d)),
    }),
  );
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', tsconfig], { cwd: root, encoding: 'utf8' });
  if (!fs.existsSync(path.join(out, 'bench', 'agent.bench.js'))) {
    throw new Error(`bench: tsc emitted nothing into ${out}:\n${r.stdout}${r.stderr}`);
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  fs.copyFileSync(path.join(root, 'package.json'), path.join(out, 'package.json'));
  return out;
}

/** One bench process to run. */
interface Job {
  name: string;
  script: string;
  nodeArgs: string[];
  args: string[];
  env: Record<string, string>;
}

/** The jobs of a run, in order. */
export function jobs(quick: boolean): Job[] {
  const q = quick ? ['--quick'] : [];
  return [
    { name: 'agent', script: 'agent.bench.ts', nodeArgs: [], args: [...q, '--json'], env: {} },
    { name: 'supervisor', script: 'supervisor.bench.ts', nodeArgs: [], args: [...q, '--json'], env: {} },
    {
      name: 'workflows',
      script: 'workflows.bench.ts',
      nodeArgs: [],
      args: [...q, '--json', '--no-scan'],
      env: {},
    },
    { name: 'memory', script: 'memory.bench.ts', nodeArgs: ['--expose-gc'], args: [...q, '--json'], env: {} },
    { name: 'bytes', script: 'bytes.bench.ts', nodeArgs: [], args: [...q, '--json'], env: {} },
    { name: 'breaker', script: 'breaker.bench.ts', nodeArgs: [], args: quick ? ['2000'] : [], env: {} },
    {
      name: 'eventlog',
      script: 'eventlog.bench.ts',
      nodeArgs: [],
      args: [],
      env: quick ? { KEEL_BENCH_EVENTS: '5000' } : {},
    },
    { name: 'scaleout', script: 'scaleout.bench.ts', nodeArgs: [], args: [...q, '--json'], env: {} },
    { name: 'postgres', script: 'postgres.bench.ts', nodeArgs: [], args: [...q, '--json'], env: {} },
    { name: 'limits', script: 'limits.bench.ts', nodeArgs: [], args: [...q, '--json'], env: {} },
  ];
}

/**
 * Runs one job — the compiled script under `compiled/bench/` when given, else the TypeScript source
 * through tsx — echoing its output (minus the JSON line). Resolves with its stdout and exit code.
 */
function runJob(job: Job, compiled: string | undefined): Promise<{ stdout: string; code: number }> {
  const script = compiled
    ? [path.join(compiled, 'bench', job.script.replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', path.join(benchDir, job.script)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...job.nodeArgs, ...script, ...job.args], {
      cwd: root,
      env: { ...process.env, ...job.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (!line.startsWith(JSON_MARKER)) console.log(line);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending && !pending.startsWith(JSON_MARKER)) console.log(pending);
      resolve({ stdout, code: code ?? 1 });
    });
  });
}

/** The report a `--json` bench printed, if any. */
export function reportOf(stdout: string): BenchReport | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(JSON_MARKER));
  return line === undefined ? undefined : (JSON.parse(line.slice(JSON_MARKER.length)) as BenchReport);
}

/** Goals read from the breaker bench's closing line. */
export function breakerGoals(stdout: string): GoalResult[] {
  const m = /keel gate overhead is ([\d.]+)x opossum's/.exec(stdout);
  if (!m?.[1]) return [];
  const r = Number(m[1]);
  return [
    { goal: "breaker gate overhead <= opossum's (breaker bench)", measured: `${r.toFixed(2)}x`, met: r <= 1 },
  ];
}

/** Goals read from the eventlog bench's table: rows whose note states a goal. */
export function eventlogGoals(stdout: string): GoalResult[] {
  const out: GoalResult[] = [];
  for (const line of stdout.split('\n')) {
    const cells = line.split(/\s{3,}/);
    const [name, value, unit, note] = cells;
    if (!name || !value || !unit || !note?.includes('goal')) continue;
    const ratioGoal = /([\d.]+)x of [\w ]+? by wall time, ([\d.]+)x by cpu \(goal >= ([\d.]+)x\)/.exec(note);
    if (ratioGoal?.[1] && ratioGoal[2] && ratioGoal[3]) {
      const target = Number(ratioGoal[3]);
      out.push({
        goal: `${name.trim()} >= ${target}x raw`,
        measured: `${ratioGoal[1]}x`,
        met: Number(ratioGoal[1]) >= target,
        cpuMeasured: `${ratioGoal[2]}x`,
        cpuMet: Number(ratioGoal[2]) >= target,
      });
      continue;
    }
    const rateGoal = /\(goal >= ([\d,]+)\)/.exec(note);
    if (rateGoal?.[1]) {
      const measured = Number(value.replace(/,/g, ''));
      const target = Number(rateGoal[1].replace(/,/g, ''));
      out.push({
        goal: `${name.trim()} >= ${rateGoal[1]} ${unit.trim()}`,
        measured: `${value} ${unit.trim()}`,
        met: measured >= target,
      });
    }
  }
  return out;
}

/** The commit measured, and how many files under src/ and machines/ differ from it. */
function revision(): string {
  const git = (...args: string[]): string =>
    spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD') || 'unknown';
  const dirty = git('status', '--short', '--', 'src', 'machines').split('\n').filter(Boolean).length;
  return dirty > 0 ? `${head} + ${dirty} uncommitted file(s) in src/, machines/` : head;
}

/** CPU model from /proc/cpuinfo (or os.cpus()). */
function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

async function main(): Promise<void> {
  const flags = parseFlags();
  const onlyArg = process.argv.indexOf('--only');
  const only = onlyArg >= 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : undefined;
  const started = new Date();
  const loads: string[] = [loadavg()];
  console.log(
    `Keel benchmarks${flags.quick ? ' (--quick: figures not meaningful)' : ''}: ${started.toISOString()}\n` +
      `node ${process.version}, ${os.cpus().length} cpus (${cpuModel()}), load ${loads[0]}\n` +
      `revision ${revision()}`,
  );
  const cal = calibrate();
  console.log(
    `calibration (cpu per op): JSON.stringify small object ${cal.jsonUs.toFixed(2)} us, ` +
      `sha256 of 200 B ${cal.sha256Us.toFixed(2)} us, 3-state XState actor create+start+2 events ${cal.actorUs.toFixed(1)} us`,
  );
  const compiled = process.argv.includes('--tsx') ? undefined : compile();
  console.log(
    compiled ? `running tsc output from ${compiled}` : 'running the TypeScript sources through tsx',
  );
  const goals: { bench: string; g: GoalResult }[] = [];
  for (const job of jobs(flags.quick)) {
    if (only && !only.has(job.name)) continue;
    console.log(`\n######## ${job.name} (load ${loadavg()})`);
    const { stdout, code } = await runJob(job, compiled);
    loads.push(loadavg());
    if (code !== 0) {
      goals.push({ bench: job.name, g: { goal: 'bench ran', measured: `exit code ${code}`, met: false } });
      continue;
    }
    const found =
      job.name === 'breaker'
        ? breakerGoals(stdout)
        : job.name === 'eventlog'
          ? eventlogGoals(stdout)
          : (reportOf(stdout)?.goals ?? []);
    for (const g of found) goals.push({ bench: job.name, g });
  }
  if (compiled) fs.rmSync(compiled, { recursive: true, force: true });
  const minutes = ((Date.now() - started.getTime()) / 60_000).toFixed(1);
  console.log(`\n######## summary (${minutes} min; load averages seen: ${loads.join(' | ')})\n`);
  const rows = goals.map(({ bench, g }) => [
    bench,
    verdict(g),
    g.goal,
    g.measured,
    g.cpuMeasured === undefined ? '' : `${g.cpuMeasured} (${verdict(g, true)})`,
  ]);
  const header = ['bench', 'wall', 'goal', 'measured (wall)', 'by cpu time'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

if (isMain(import.meta.url)) await main();

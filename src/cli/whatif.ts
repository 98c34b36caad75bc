/**
 * `keel whatif`: re-evaluates the recorded workflows under another cascade threshold, vote stop
 * rule or cache TTL, with no model call, and projects the cost to a weekly volume — the
 * tutorial's "Confidence Threshold Tuning" table, from one recorded run.
 *
 * Exit codes: 0 printed · 1 the log holds no run the policy applies to · 2 wrong arguments ·
 * 3 the log could not be read.
 */
import type { Command } from 'commander';
import {
  createCacheWhatIf,
  createCascadeWhatIf,
  createVoteWhatIf,
  foldEvents,
  type Accuracy,
  type CacheFigures,
  type CacheWhatIf,
  type CascadeSiteWhatIf,
  type CascadeWhatIf,
  type VolumeProjection,
  type VoteSiteWhatIf,
  type VoteStop,
  type VoteWhatIf,
} from '../analysis.js';
import {
  CliError,
  EXIT,
  STORE_OPTION_HELP,
  SCHEMA_OPTION_HELP,
  durationArg,
  logName,
  openLog,
  type Io,
} from './io.js';

interface WhatIfFlags {
  db: string;
  store?: string;
  schema?: string;
  cascadeThreshold?: string;
  voteStop?: string;
  cacheTtl?: string;
  volume?: string;
  path?: string;
  agent?: string;
  cacheScope?: string;
  json?: boolean;
}

function list(name: string, value: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw new CliError(`${name} needs at least one value, e.g. ${name} 0.95,0.9,0.85`);
  return items;
}

/** `0.95,0.9,0.85` → thresholds in [0, 1]. */
export function parseThresholds(value: string): number[] {
  return list('--cascade-threshold', value).map((s) => {
    const t = Number(s);
    if (!Number.isFinite(t) || t < 0 || t > 1)
      throw new CliError(
        `--cascade-threshold values must be confidences in [0, 1], e.g. 0.95,0.9,0.85; got "${s}"`,
      );
    return t;
  });
}

/** `decided,all,3` → stop rules. */
export function parseStops(value: string): VoteStop[] {
  return list('--vote-stop', value).map((s): VoteStop => {
    if (s === 'decided' || s === 'all') return s;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1)
      throw new CliError(
        `--vote-stop values must be decided, all or a number of votes >= 1 (e.g. 3); got "${s}"`,
      );
    return n;
  });
}

/** `24h`, `90m`, `3600s`, `7d`, `500ms` (a bare number is ms) → ms. */
export function parseDuration(name: string, value: string): number {
  return durationArg(name, value, { bareMs: true, what: 'values must be durations' });
}

/** `20000/week`, `20,000`, `3000/day` → runs per week. */
export function parseVolume(value: string): number {
  const m = /^(\d[\d,_]*(?:\.\d+)?)\s*(?:\/\s*(week|wk|w|day|d))?$/i.exec(value.trim());
  const n = m ? Number((m[1] ?? '').replace(/[,_]/g, '')) : NaN;
  if (!m || !(n > 0) || !Number.isFinite(n))
    throw new CliError(`--volume must be runs per week like 20000/week (or 3000/day); got "${value}"`);
  const per = (m[2] ?? 'week').toLowerCase();
  return per === 'day' || per === 'd' ? n * 7 : n;
}

function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['w', 604_800_000],
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const money = (x: number, digits = 2): string =>
  `${x < 0 ? '-' : ''}$${Math.abs(x).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
const share = (x: number): string => `${(x * 100).toFixed(1)}%`;
const accuracy = (a: Accuracy): string => (a.ratio === null ? 'unknown' : share(a.ratio));
const perRun = (x: number | null): string => (x === null ? 'unknown' : money(x, 4));

/** Columns shared by every table when a volume is given. */
function volumeCells(v: VolumeProjection | null | undefined, baseline: boolean): string[] {
  if (v === undefined) return [];
  if (v === null) return ['unknown', 'unknown', ...(baseline ? ['unknown'] : [])];
  return [
    money(v.costPerWeekUsd),
    money(v.costPerYearUsd),
    ...(baseline ? [v.savingPerYearUsd === undefined ? '-' : money(v.savingPerYearUsd)] : []),
  ];
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function formatCascadeSite(s: CascadeSiteWhatIf, volume: number | undefined): string {
  const stages = s.stages.map((x) => (x.model ? `${x.name} (${x.model})` : x.name)).join(' → ');
  const rule =
    typeof s.recordedRule === 'number' ? `threshold ${s.recordedRule}` : `accept ${s.recordedRule}`;
  const last = s.stages[s.stages.length - 1]?.name ?? 'last stage';
  const withVolume = volume !== undefined;
  const head = [
    'Threshold',
    `Cheap (${s.stages[0]?.name ?? 'stage 0'})`,
    'Escalated',
    'Accuracy',
    'Cost/run',
    ...(withVolume ? ['Cost/week', 'Cost/year', `Saving/year vs ${last} only`] : []),
  ];
  const rows = [
    [
      `recorded (${rule})`,
      share(s.recorded.cheapShare),
      share(s.recorded.escalatedShare),
      accuracy(s.recorded.accuracy),
      perRun(s.recorded.costPerRunUsd),
      ...volumeCells(s.recorded.volume, true),
    ],
    ...s.rows.map((r) => [
      r.threshold.toFixed(2),
      share(r.cheapShare),
      share(r.escalatedShare),
      accuracy(r.accuracy),
      perRun(r.costPerRunUsd),
      ...volumeCells(r.volume, true),
    ]),
  ];
  const notes: string[] = [];
  const b = s.lastStageOnly;
  notes.push(
    b.costPerRunUsd === null
      ? `Baseline (${last} only): unknown — no recorded run reached ${last}.`
      : `Baseline (${last} only, estimated from ${b.samples} runs that reached it): ${money(b.costPerRunUsd, 4)}/run` +
          (b.volume
            ? `, ${money(b.volume.costPerWeekUsd)}/week, ${money(b.volume.costPerYearUsd)}/year`
            : ''),
  );
  if (s.rows.some((r) => r.unknown > 0))
    notes.push(
      'unknown: a stricter threshold needs a stage the record never ran; record with the strictest threshold to evaluate every looser one exactly.',
    );
  if (s.recorded.accuracy.labeled === 0)
    notes.push(
      'Accuracy: no ground truth in the log (record it with rt.feedback(workflowId, { correct, expected })).',
    );
  else if (s.rows.some((r) => r.accuracy.ratio === null))
    notes.push(
      `Accuracy from ${s.recorded.accuracy.labeled} runs with feedback; unknown where the answer changes and the feedback has no expected value.`,
    );
  if (!withVolume) notes.push('Pass --volume 20000/week for weekly and yearly figures.');
  return [
    `Cascade ${s.path} (workflow ${s.workflow}): ${s.runs} runs, ${stages}, recorded at ${rule}`,
    '',
    table(head, rows),
    '',
    ...notes,
  ].join('\n');
}

function formatVoteSite(s: VoteSiteWhatIf, volume: number | undefined): string {
  const withVolume = volume !== undefined;
  const dist = (d: Record<string, number>): string =>
    Object.entries(d)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
  const head = [
    'Stop',
    'Agents/run',
    'Runs by agents',
    'Changed',
    'Accuracy',
    'Cost/run',
    ...(withVolume ? ['Cost/week', 'Cost/year', 'Saving/year vs all voters'] : []),
  ];
  const rows = [
    [
      `recorded (${s.recordedRule})`,
      s.recorded.meanAgentsUsed === null ? 'unknown' : s.recorded.meanAgentsUsed.toFixed(2),
      dist(s.recorded.agentsUsed),
      '-',
      accuracy(s.recorded.accuracy),
      perRun(s.recorded.costPerRunUsd),
      ...volumeCells(s.recorded.volume, true),
    ],
    ...s.rows.map((r) => [
      String(r.stop),
      r.meanAgentsUsed === null ? 'unknown' : r.meanAgentsUsed.toFixed(2),
      dist(r.agentsUsed) + (r.unknown > 0 ? ` (${r.unknown} unknown)` : ''),
      String(r.changed),
      accuracy(r.accuracy),
      perRun(r.costPerRunUsd),
      ...volumeCells(r.volume, true),
    ]),
  ];
  const notes: string[] = [];
  const a = s.allVoters;
  notes.push(
    a.costPerRunUsd === null
      ? 'Baseline (all voters): unknown — some voter never ran.'
      : `Baseline (all ${s.voters.length} voters${a.estimated ? ', estimated' : ''}): ${money(a.costPerRunUsd, 4)}/run` +
          (a.volume
            ? `, ${money(a.volume.costPerWeekUsd)}/week, ${money(a.volume.costPerYearUsd)}/year`
            : ''),
  );
  if (s.limitation) notes.push(`Limitation: ${s.limitation}.`);
  if (s.rows.some((r) => r.unknown > 0))
    notes.push(
      "unknown: the rule needs votes the record never cast; record with stop: 'all' to evaluate every rule.",
    );
  if (!withVolume) notes.push('Pass --volume 10000/week for weekly and yearly figures.');
  return [
    `Vote ${s.path} (workflow ${s.workflow}): ${s.runs} runs, ${s.voters.length} voters, launched ${s.launch}`,
    '',
    table(head, rows),
    '',
    ...notes,
  ].join('\n');
}

function formatCache(r: CacheWhatIf): string {
  const withVolume = r.volumePerWeek !== undefined;
  const head = [
    'TTL',
    'Lookups',
    'Hits',
    'Hit rate',
    'Cost',
    'Cost/run',
    'Estimated',
    ...(withVolume ? ['Cost/week', 'Cost/year', 'Saving/year vs no cache'] : []),
  ];
  const cells = (label: string, f: CacheFigures): string[] => [
    label,
    String(f.lookups),
    String(f.hits),
    share(f.hitRate),
    money(f.costUsd, 4),
    money(f.costPerRunUsd, 4),
    String(f.estimatedLookups),
    ...volumeCells(f.volume, true),
  ];
  const notes = [
    r.scope === 'log'
      ? 'Assumes one cache shared by every workflow of the log (a cache file or Redis); runtimes that each had their own memory cache (keel demo runs each variant so) hit less: pass --cache-scope workflow.'
      : 'Assumes one cache per workflow name (each variant run by a runtime with its own memory cache, as keel demo does); a cache shared by every workflow: --cache-scope log.',
    'Estimated: lookups that hit in the record but would miss under this TTL; their call is priced from the same key’s recorded call.',
  ];
  if (!withVolume) notes.push('Pass --volume 10000/week for weekly and yearly figures.');
  return [
    `Cache: ${r.recorded.lookups} lookups by ${r.runs} workflows (agents: ${r.agents.join(', ')})`,
    '',
    table(head, [
      cells('recorded', r.recorded),
      cells('no cache', r.noCache),
      ...r.rows.map((row) => cells(formatDuration(row.ttlMs), row)),
    ]),
    '',
    ...notes,
  ].join('\n');
}

/** Registers `keel whatif`. */
export function registerWhatIf(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('whatif')
    .description(
      'replay the log under another cascade threshold, vote stop rule or cache TTL (no model calls) and project the cost',
    )
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--cascade-threshold <list>', 'confidence thresholds to evaluate, e.g. 0.95,0.9,0.85')
    .option(
      '--vote-stop <list>',
      'stop rules to evaluate: decided, all, or a number of votes, e.g. decided,all,3',
    )
    .option('--cache-ttl <list>', 'cache TTLs to evaluate, e.g. 1h,24h,7d')
    .option('--volume <n/week>', 'runs per week to project costs to, e.g. 20000/week')
    .option('--path <node>', 'only the cascade or vote at this node path (as printed)')
    .option('--agent <name>', 'with --cache-ttl: only this cached agent')
    .option(
      '--cache-scope <log|workflow>',
      'with --cache-ttl: one cache for the whole log (default), or one per workflow name',
    )
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExit codes: 0 printed, 1 no run in the log the policy applies to, 2 wrong arguments, 3 the log could not be read.',
    )
    .action(async (o: WhatIfFlags) => {
      const given = [o.cascadeThreshold, o.voteStop, o.cacheTtl].filter((x) => x !== undefined).length;
      if (given !== 1) {
        throw new CliError(
          given === 0
            ? 'say what to change: --cascade-threshold 0.95,0.9,0.85, --vote-stop decided,all or --cache-ttl 1h,24h'
            : 'give one of --cascade-threshold, --vote-stop or --cache-ttl per run',
        );
      }
      if (o.agent !== undefined && o.cacheTtl === undefined)
        throw new CliError('--agent applies to --cache-ttl only');
      if (o.cacheScope !== undefined && o.cacheTtl === undefined)
        throw new CliError('--cache-scope applies to --cache-ttl only');
      if (o.cacheScope !== undefined && o.cacheScope !== 'log' && o.cacheScope !== 'workflow')
        throw new CliError(
          `--cache-scope must be log (one cache for the whole log) or workflow (one per workflow name), got "${o.cacheScope}"`,
        );
      if (o.path !== undefined && o.cacheTtl !== undefined)
        throw new CliError(
          '--path applies to --cascade-threshold and --vote-stop; use --agent with --cache-ttl',
        );
      const thresholds = o.cascadeThreshold !== undefined ? parseThresholds(o.cascadeThreshold) : undefined;
      const stops = o.voteStop !== undefined ? parseStops(o.voteStop) : undefined;
      const ttls =
        o.cacheTtl !== undefined
          ? list('--cache-ttl', o.cacheTtl).map((s) => parseDuration('--cache-ttl', s))
          : undefined;
      const volume = o.volume !== undefined ? parseVolume(o.volume) : undefined;
      const vol = volume !== undefined ? { volumePerWeek: volume } : {};
      const where = o.path !== undefined ? { path: o.path } : {};

      const store = await openLog(o);
      let text: string;
      let json: unknown;
      let empty: string | undefined;
      try {
        if (thresholds) {
          const fold = createCascadeWhatIf({ thresholds, ...vol, ...where });
          const r: CascadeWhatIf = await foldEvents(fold, store.iterate());
          json = { whatIf: 'cascade', ...r };
          text = r.sites.map((s) => formatCascadeSite(s, volume)).join('\n\n');
          if (r.sites.length === 0)
            empty = `no cascade runs in ${logName(o)}${o.path !== undefined ? ` at path ${o.path}` : ''}`;
        } else if (stops) {
          const fold = createVoteWhatIf({ stops, ...vol, ...where });
          const r: VoteWhatIf = await foldEvents(fold, store.iterate());
          json = { whatIf: 'vote', ...r };
          text = r.sites.map((s) => formatVoteSite(s, volume)).join('\n\n');
          if (r.sites.length === 0)
            empty = `no vote runs in ${logName(o)}${o.path !== undefined ? ` at path ${o.path}` : ''}`;
        } else {
          const fold = createCacheWhatIf({
            ttlsMs: ttls ?? [],
            ...vol,
            ...(o.agent !== undefined ? { agent: o.agent } : {}),
            ...(o.cacheScope === 'workflow' || o.cacheScope === 'log' ? { scope: o.cacheScope } : {}),
          });
          const r = await foldEvents(fold, store.iterate());
          json = { whatIf: 'cache', ...r };
          text = formatCache(r);
          if (r.recorded.lookups === 0)
            empty = `no cache lookups in ${logName(o)}${o.agent !== undefined ? ` by agent ${o.agent}` : ''}`;
        }
      } finally {
        await store.close();
      }
      if (o.json) io.out(JSON.stringify(json, null, 2));
      else if (empty === undefined) io.out(text);
      if (empty !== undefined) {
        io.err(`keel whatif: ${empty}; nothing to re-evaluate (run a workflow that uses it first)`);
        setExit(EXIT.failed);
        return;
      }
      setExit(EXIT.ok);
    });
}

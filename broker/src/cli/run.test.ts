import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import { flagSpecs, parseArgv } from './args.ts';
import { defineCommand, type AnyCommand } from './command.ts';
import { renderProgress } from './progress.ts';
import { runCli } from './run.ts';
import { renderTable } from './table.ts';

function capture(): { streams: { stdout: PassThrough; stderr: PassThrough; stdin: PassThrough }; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  stdout.on('data', (b: Buffer) => o.push(b));
  stderr.on('data', (b: Buffer) => e.push(b));
  return { streams: { stdout, stderr, stdin: new PassThrough() }, out: () => Buffer.concat(o).toString(), err: () => Buffer.concat(e).toString() };
}

const seen: unknown[] = [];
const demo = defineCommand({
  name: 'demo',
  summary: 'a demo',
  usage: '--path <p> [--verbose] [--broker <b>]...',
  options: z.object({
    path: z.string().min(1).describe('where'),
    verbose: z.boolean().default(false),
    broker: z.array(z.string()).default([]),
    limit: z.coerce.number().int().positive().optional(),
  }),
  async run(args, io) {
    seen.push(args);
    if (args.path === 'corrupt') throw new LanceError('CORRUPT', 'bad crc at byte 12');
    if (args.path === 'missing') throw new LanceError('NOT_FOUND', 'missing: no such file');
    io.emit({ ok: true, path: args.path }, () => `path=${args.path}`);
    return 0;
  },
});
const groupsList = defineCommand({
  name: 'groups list',
  summary: 'list groups',
  usage: '',
  options: z.object({}),
  async run(_a, io) {
    io.out('groups!');
    return 0;
  },
});
const cmds: AnyCommand[] = [demo, groupsList];

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = capture();
  const code = await runCli(argv, cmds, c.streams);
  return { code, out: c.out(), err: c.err() };
}

describe('argument parsing', () => {
  it('derives flag kinds from the zod schema', () => {
    const specs = flagSpecs(demo.options);
    expect(specs.map((s) => [s.flag, s.kind, s.required])).toEqual([
      ['path', 'value', true],
      ['verbose', 'boolean', false],
      ['broker', 'repeated', false],
      ['limit', 'value', false],
    ]);
    expect(specs[0]!.description).toBe('where');
  });

  it('accepts --flag value, --flag=value, booleans, repeated flags and --', () => {
    const specs = flagSpecs(demo.options);
    const p = parseArgv(['--path=a=b', '--verbose', '--broker', 'x', '--broker=y', '--limit', '5'], specs, 'h');
    expect(p.values).toEqual({ path: 'a=b', verbose: true, broker: ['x', 'y'], limit: '5' });
    expect(parseArgv(['--verbose=false', '--', '--path'], specs, 'h')).toEqual({ values: { verbose: false }, positionals: ['--path'] });
    expect(parseArgv(['--path', '-'], specs, 'h').values.path).toBe('-');
  });

  it('rejects unknown, value-less and duplicated flags with one line naming the flag', () => {
    const specs = flagSpecs(demo.options);
    expect(() => parseArgv(['--nope'], specs, 'see x')).toThrow('unknown flag --nope (see x)');
    expect(() => parseArgv(['--path'], specs, 'see x')).toThrow('flag --path needs a value');
    expect(() => parseArgv(['--path', '--verbose'], specs, 'see x')).toThrow('flag --path needs a value');
    expect(() => parseArgv(['--path', 'a', '--path', 'b'], specs, 'see x')).toThrow('flag --path given more than once');
    expect(() => parseArgv(['--verbose=maybe'], specs, 'see x')).toThrow('--verbose is a switch');
  });
});

describe('runCli', () => {
  it('runs a command with validated, typed options', async () => {
    seen.length = 0;
    const r = await run(['demo', '--path', 'p', '--limit=3']);
    expect(r).toEqual({ code: 0, out: 'path=p\n', err: '' });
    expect(seen[0]).toEqual({ path: 'p', verbose: false, broker: [], limit: 3 });
    const j = await run(['demo', '--path', 'p', '--json']);
    expect(JSON.parse(j.out)).toEqual({ ok: true, path: 'p' });
  });

  it('usage errors: exactly one stderr line naming the flag, exit 2', async () => {
    for (const [argv, msg] of [
      [['demo'], 'lnc: USAGE: missing required flag --path (see lnc demo --help)'],
      [['demo', '--path', 'p', '--what'], 'lnc: USAGE: unknown flag --what (see lnc demo --help)'],
      [['demo', '--path', 'p', '--limit', '-3x'], 'lnc: USAGE: invalid value for --limit'],
      [['demo', '--path', 'p', 'stray'], 'lnc: USAGE: unexpected argument "stray"'],
      [['nosuch'], 'lnc: USAGE: unknown command "nosuch"'],
      [['groups'], 'lnc: USAGE: "groups" needs a sub-command: groups list'],
    ] as const) {
      const r = await run([...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n').filter(Boolean), argv.join(' ')).toHaveLength(1);
      expect(r.err.startsWith(msg), `${r.err} vs ${msg}`).toBe(true);
      expect(r.out).toBe('');
    }
  });

  it('maps LanceError codes to exit codes (CORRUPT → 1, others → 2) and prints code: message', async () => {
    const c = await run(['demo', '--path', 'corrupt']);
    expect(c).toEqual({ code: 1, out: '', err: 'lnc: CORRUPT: bad crc at byte 12\n' });
    const m = await run(['demo', '--path', 'missing', '--json']);
    expect(m.code).toBe(2);
    expect(m.err).toBe('lnc: NOT_FOUND: missing: no such file\n');
    expect(JSON.parse(m.out)).toEqual({ error: { code: 'NOT_FOUND', message: 'missing: no such file' } });
  });

  it('prints help: global, per command, per group, and dispatches sub-commands with spaces', async () => {
    const g = await run(['--help']);
    expect(g.code).toBe(0);
    expect(g.out).toContain('demo');
    expect(g.out).toContain('groups list');
    const h = await run(['demo', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('usage: lnc demo --path <p>');
    expect(h.out).toMatch(/--path <value>\s+\(required\) where/);
    expect(h.out).toContain('--broker <value> (repeatable)');
    expect((await run(['groups', '--help'])).out).toContain('lnc groups list');
    expect(await run(['groups', 'list'])).toEqual({ code: 0, out: 'groups!\n', err: '' });
    expect((await run([])).code).toBe(2);
  });
});

describe('output helpers', () => {
  it('renders tables with right-aligned numbers and a progress bar line', () => {
    expect(renderTable(['name', 'n'], [['a', 1], ['bbb', 100]])).toBe('name    n\na       1\nbbb   100');
    expect(renderProgress('scan', 512, 1024, 10)).toBe('scan [#####.....]  50% 512 B/1.0 KiB');
  });
});

describe('the real command list', () => {
  it('every registered command has a unique name and prints its help', async () => {
    const { commands } = await import('./commands.ts');
    const names = commands.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of ['scan', 'verify-data', 'repair', 'rebuild-index', 'inspect-index', 'export-topic', 'import-topic']) expect(names).toContain(name);
    for (const c of commands) {
      const cap = capture();
      const code = await runCli([...c.name.split(' '), '--help'], commands, cap.streams);
      expect(code, c.name).toBe(0);
      expect(cap.out(), c.name).toContain(`usage: lnc ${c.name}`);
    }
  });
});

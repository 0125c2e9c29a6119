/**
 * The `lnc` dispatcher: finds the command (longest match of leading words, so `groups list` works), parses and
 * validates its flags, runs it, and maps errors to one stderr line + exit code. No process globals are touched, so
 * tests can call runCli in-process with captured streams.
 */
import type { Readable, Writable } from 'node:stream';
import { isLanceError, LanceError, type LanceErrorCode } from '../common/errors.ts';
import { flagSpecs, GLOBAL_FLAGS, parseArgv, validateOptions, type FlagSpec } from './args.ts';
import { ExitCode, type AnyCommand, type CommandIO } from './command.ts';
import { createProgress } from './progress.ts';

export interface RunStreams {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
}

/** CORRUPT means "the data has a problem" (1); everything else a user can cause is usage/I/O (2). */
export function exitCodeFor(code: LanceErrorCode): number {
  return code === 'CORRUPT' ? ExitCode.PROBLEMS : ExitCode.USAGE;
}

export function formatError(e: unknown): { line: string; exit: number } {
  if (isLanceError(e)) return { line: `lnc: ${e.code}: ${e.message}`, exit: exitCodeFor(e.code) };
  const msg = e instanceof Error ? e.message : String(e);
  return { line: `lnc: INTERNAL: ${msg}`, exit: ExitCode.USAGE };
}

function progressDelay(): number | undefined {
  const v = Number(process.env.LNC_PROGRESS_DELAY_MS);
  return Number.isFinite(v) && v >= 0 && process.env.LNC_PROGRESS_DELAY_MS !== '' ? v : undefined;
}

function makeIO(streams: RunStreams, json: boolean): CommandIO {
  return {
    ...streams,
    json,
    out: (line) => void streams.stdout.write(line + '\n'),
    err: (line) => void streams.stderr.write(line + '\n'),
    emit(value, human) {
      streams.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
    },
    // LNC_PROGRESS_DELAY_MS: how long work must last before the bar appears (default 300; tests use 0)
    progress: (label, total) => createProgress(streams.stderr, label, total, { enabled: !json, showAfterMs: progressDelay() }),
  };
}

/** Finds the command whose (space-separated) name matches the most leading words of argv. */
export function resolveCommand(
  argv: readonly string[],
  commands: readonly AnyCommand[],
): { command: AnyCommand; rest: string[] } | { group: string; members: AnyCommand[] } | null {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  for (let n = words.length; n > 0; n--) {
    const name = words.slice(0, n).join(' ');
    const command = commands.find((c) => c.name === name);
    if (command) return { command, rest: argv.slice(n) };
  }
  if (words.length > 0) {
    const prefix = words.join(' ') + ' ';
    const members = commands.filter((c) => c.name.startsWith(prefix));
    if (members.length > 0) return { group: words.join(' '), members };
  }
  return null;
}

export function globalHelp(commands: readonly AnyCommand[]): string {
  const w = Math.max(...commands.map((c) => c.name.length), 4);
  const lines = [
    'lnc — the Lance operator / on-call CLI',
    '',
    'usage: lnc <command> [flags]      lnc <command> --help',
    '',
    'commands:',
    ...[...commands].sort((a, b) => a.name.localeCompare(b.name)).map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'global flags: --json (machine-readable output on stdout), --help',
    'exit codes: 0 healthy, 1 problems found, 2 usage or I/O error',
  ];
  return lines.join('\n');
}

function flagLine(s: FlagSpec): [string, string] {
  const left = s.kind === 'boolean' ? `--${s.flag}` : s.kind === 'repeated' ? `--${s.flag} <value> (repeatable)` : `--${s.flag} <value>`;
  const right = (s.required ? '(required) ' : '') + (s.description ?? '');
  return [left, right.trim()];
}

export function commandHelp(cmd: AnyCommand): string {
  const rows = [...flagSpecs(cmd.options), ...GLOBAL_FLAGS].map(flagLine);
  const w = Math.max(...rows.map(([l]) => l.length));
  const lines = [`lnc ${cmd.name} — ${cmd.summary}`, '', `usage: lnc ${cmd.name} ${cmd.usage}`.trimEnd(), '', 'flags:'];
  for (const [l, r] of rows) lines.push(`  ${l.padEnd(w)}  ${r}`.trimEnd());
  if (cmd.details) lines.push('', cmd.details.trimEnd());
  return lines.join('\n');
}

export async function runCli(argv: readonly string[], commands: readonly AnyCommand[], streams: RunStreams): Promise<number> {
  const errLine = (s: string): void => void streams.stderr.write(s + '\n');
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    const topic = argv[0] === 'help' ? argv.slice(1) : [];
    const hit = topic.length > 0 ? resolveCommand(topic, commands) : null;
    if (hit && 'command' in hit) streams.stdout.write(commandHelp(hit.command) + '\n');
    else streams.stdout.write(globalHelp(commands) + '\n');
    return argv.length === 0 ? ExitCode.USAGE : ExitCode.OK;
  }
  const hit = resolveCommand(argv, commands);
  if (hit === null) {
    const first = argv.find((a) => !a.startsWith('-')) ?? argv[0];
    errLine(`lnc: USAGE: unknown command "${first}" (see lnc --help)`);
    return ExitCode.USAGE;
  }
  if ('group' in hit) {
    const wantsHelp = argv.includes('--help') || argv.includes('-h');
    const text = [`lnc ${hit.group} — sub-commands:`, ...hit.members.map((c) => `  lnc ${c.name}  ${c.summary}`)].join('\n');
    if (wantsHelp) {
      streams.stdout.write(text + '\n');
      return ExitCode.OK;
    }
    errLine(`lnc: USAGE: "${hit.group}" needs a sub-command: ${hit.members.map((c) => c.name).join(', ')} (see lnc ${hit.group} --help)`);
    return ExitCode.USAGE;
  }
  const { command, rest } = hit;
  const hint = `see lnc ${command.name} --help`;
  let json = false;
  try {
    const parsed = parseArgv(rest, [...flagSpecs(command.options), ...GLOBAL_FLAGS], hint);
    json = parsed.values.json === true;
    if (parsed.values.help === true) {
      streams.stdout.write(commandHelp(command) + '\n');
      return ExitCode.OK;
    }
    delete parsed.values.json;
    delete parsed.values.help;
    const args = validateOptions(command.options, parsed, hint);
    return await command.run(args, makeIO(streams, json));
  } catch (e) {
    const { line, exit } = formatError(e);
    errLine(line.replace(/\n/g, ' '));
    // With --json the caller also gets the error as the one JSON document on stdout.
    if (json) streams.stdout.write(JSON.stringify({ error: isLanceError(e) ? e.toJSON() : new LanceError('INTERNAL', String(e)).toJSON() }) + '\n');
    return exit;
  }
}

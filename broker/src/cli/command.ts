/**
 * The `lnc` command contract. A command is a plain module-level value; broker/src/cli/commands.ts lists them all.
 *
 * To add a command: create `broker/src/cli/<name>.ts` exporting `defineCommand({...})`, then add ONE import line and
 * one array entry in commands.ts. Names may contain spaces for sub-commands (`'groups list'`, `'backups list'`):
 * the dispatcher matches the longest run of leading words, and `lnc groups` alone lists the `groups …` commands.
 *
 * Options are a zod object. Keys are camelCase; on the command line they are kebab-case (`failFast` ⇔ `--fail-fast`).
 * The flag kind is derived from the schema:
 *   - z.boolean()            → boolean flag (`--verbose`, `--verbose=true|false`)
 *   - z.array(...)           → repeated flag (`--broker a --broker b` → ['a','b'])
 *   - anything else          → value flag (`--path x` or `--path=x`), handed to zod as a string
 *                              (use z.coerce.number() for numbers)
 *   - key `_` (an array)     → positional arguments; without it, positionals are a usage error.
 * `--json` and `--help` are global: never declare them. `io.json` tells the command which output to print.
 */
import type { Readable, Writable } from 'node:stream';
import type { z } from 'zod';
import type { Progress } from './progress.ts';

/** Exit codes (the runbook's contract): 0 healthy, 1 problems found in the data, 2 usage or I/O error. */
export const ExitCode = {
  OK: 0,
  PROBLEMS: 1,
  USAGE: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface CommandIO {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  /** `--json` was given: print exactly one JSON document on stdout (machine-readable), nothing else on stdout. */
  json: boolean;
  /** write a line (a newline is appended) to stdout */
  out(line: string): void;
  /** write a line to stderr (notes, warnings; never data) */
  err(line: string): void;
  /** print `value` as JSON (when io.json) or the human text produced by `human()` */
  emit(value: unknown, human: () => string): void;
  /** a progress bar on stderr when stderr is a TTY and not --json; a no-op otherwise */
  progress(label: string, totalBytes: number): Progress;
}

export type OptionsSchema = z.ZodObject<z.ZodRawShape>;

export interface Command<S extends OptionsSchema = OptionsSchema> {
  /** e.g. 'scan' or 'groups list' */
  name: string;
  /** one line for `lnc --help` */
  summary: string;
  /** the synopsis after `lnc <name> `, e.g. '--path <segment>.lnc [--verbose]' (flags are listed from the schema;
   *  describe each with zod's .describe()) */
  usage: string;
  /** optional paragraphs printed at the end of `--help` (examples, path mappings) */
  details?: string;
  options: S;
  run(args: z.infer<S>, io: CommandIO): Promise<number>;
}

/** Identity helper that keeps the inferred option type of `run`'s `args`. */
export function defineCommand<S extends OptionsSchema>(cmd: Command<S>): Command<S> {
  return cmd;
}

/** Erases the schema type so commands of different shapes fit one array. */
export type AnyCommand = Command<OptionsSchema>;

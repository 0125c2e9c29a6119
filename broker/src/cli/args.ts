/**
 * Argument parsing for `lnc`: pure functions (argv in, values or a LanceError('USAGE') out).
 * Flag kinds come from the command's zod schema (see command.ts); zod then validates the values.
 */
import type { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import type { OptionsSchema } from './command.ts';

export type FlagKind = 'boolean' | 'value' | 'repeated';

export interface FlagSpec {
  /** schema key (camelCase) */
  key: string;
  /** command-line name without dashes (kebab-case) */
  flag: string;
  kind: FlagKind;
  /** no default and not optional */
  required: boolean;
  description: string | undefined;
}

/** Flags every command accepts; handled by the dispatcher, never declared by commands. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { key: 'json', flag: 'json', kind: 'boolean', required: false, description: 'print machine-readable JSON on stdout' },
  { key: 'help', flag: 'help', kind: 'boolean', required: false, description: 'print this help' },
];

export const POSITIONAL_KEY = '_';

export function camelToKebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

interface ZodNodeLike {
  def: { type: string; innerType?: ZodNodeLike; in?: ZodNodeLike };
  description?: string;
}

/** Derives the flag table from a zod object schema (unwrapping optional/default/nullable/pipe). */
export function flagSpecs(schema: OptionsSchema): FlagSpec[] {
  const specs: FlagSpec[] = [];
  for (const [key, field] of Object.entries(schema.shape)) {
    if (key === POSITIONAL_KEY) continue;
    let node = field as unknown as ZodNodeLike;
    let required = true;
    let description = node.description;
    for (;;) {
      const t = node.def.type;
      if (t === 'optional' || t === 'default' || t === 'prefault' || t === 'nullable') required = false;
      const next = node.def.innerType ?? (t === 'pipe' ? node.def.in : undefined);
      if (!next) break;
      node = next;
      description ??= node.description;
    }
    const kind: FlagKind = node.def.type === 'boolean' ? 'boolean' : node.def.type === 'array' ? 'repeated' : 'value';
    specs.push({ key, flag: camelToKebab(key), kind, required: required && kind !== 'boolean', description });
  }
  return specs;
}

export function acceptsPositionals(schema: OptionsSchema): boolean {
  return POSITIONAL_KEY in schema.shape;
}

export interface ParsedArgv {
  values: Record<string, unknown>;
  positionals: string[];
}

/**
 * Parses `--flag value`, `--flag=value`, boolean `--flag` / `--flag=true|false`, repeated flags, `--` (end of flags).
 * @param helpHint appended to every usage error, e.g. "see lnc scan --help"
 */
export function parseArgv(argv: readonly string[], specs: readonly FlagSpec[], helpHint: string): ParsedArgv {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const usage = (msg: string, flag?: string): LanceError =>
    new LanceError('USAGE', `${msg} (${helpHint})`, flag === undefined ? undefined : { flag: `--${flag}` });
  let i = 0;
  let flagsEnded = false;
  while (i < argv.length) {
    const tok = argv[i++]!;
    if (flagsEnded || !tok.startsWith('-') || tok === '-') {
      positionals.push(tok);
      continue;
    }
    if (tok === '--') {
      flagsEnded = true;
      continue;
    }
    if (tok === '-h') {
      values.help = true;
      continue;
    }
    if (!tok.startsWith('--')) throw usage(`unknown flag ${tok}: flags are written --name`, tok.replace(/^-+/, ''));
    const eq = tok.indexOf('=');
    const name = eq === -1 ? tok.slice(2) : tok.slice(2, eq);
    const inline = eq === -1 ? undefined : tok.slice(eq + 1);
    const spec = byFlag.get(name);
    if (!spec) throw usage(`unknown flag --${name}`, name);
    if (spec.kind === 'boolean') {
      if (inline === undefined) values[spec.key] = true;
      else if (inline === 'true') values[spec.key] = true;
      else if (inline === 'false') values[spec.key] = false;
      else throw usage(`flag --${name} is a switch: use --${name} or --${name}=true|false, got "${inline}"`, name);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw usage(`flag --${name} needs a value`, name);
      value = next;
      i++;
    }
    if (spec.kind === 'repeated') {
      const prev = values[spec.key];
      values[spec.key] = Array.isArray(prev) ? [...(prev as unknown[]), value] : [value];
    } else {
      if (values[spec.key] !== undefined) throw usage(`flag --${name} given more than once`, name);
      values[spec.key] = value;
    }
  }
  return { values, positionals };
}

/** Validates parsed values with the command's schema; the first problem becomes ONE usage line naming the flag. */
export function validateOptions<S extends OptionsSchema>(
  schema: S,
  parsed: ParsedArgv,
  helpHint: string,
): z.infer<S> {
  const input: Record<string, unknown> = { ...parsed.values };
  if (acceptsPositionals(schema)) input[POSITIONAL_KEY] = parsed.positionals;
  else if (parsed.positionals.length > 0) {
    throw new LanceError('USAGE', `unexpected argument "${parsed.positionals[0]}" (${helpHint})`, { argument: parsed.positionals[0] });
  }
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = issue.path[0];
  if (typeof key !== 'string') throw new LanceError('USAGE', `invalid arguments: ${issue.message} (${helpHint})`);
  if (key === POSITIONAL_KEY) throw new LanceError('USAGE', `invalid argument: ${issue.message} (${helpHint})`);
  const flag = `--${camelToKebab(key)}`;
  if (input[key] === undefined) throw new LanceError('USAGE', `missing required flag ${flag} (${helpHint})`, { flag });
  throw new LanceError('USAGE', `invalid value for ${flag}: ${issue.message} (${helpHint})`, { flag });
}

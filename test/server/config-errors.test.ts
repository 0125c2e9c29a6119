/** `lance` refuses bad input with ONE line naming the key or flag, and exit code 2. */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { killAll, runLanceToExit } from './helpers.ts';

let dir: string;
afterEach(() => killAll());
afterAll(async () => {
  killAll();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('lance config errors', () => {
  it('invalid config file, env value, unknown flag and missing config each give one line and exit 2', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lance-cfg-'));
    const yaml = path.join(dir, 'lance.yaml');
    await writeFile(yaml, `dataDir: ${dir}/data\nstorage:\n  segmentBytes: -1\n`);
    const toml = path.join(dir, 'lance.toml');
    await writeFile(toml, 'data_dir = "/x"\n[listeners.kafka]\nport = "not a number"\n');

    const [badYaml, badToml, badEnv, unknownFlag, unknownKey, missing, help, cluster] = await Promise.all([
      runLanceToExit(['--config', yaml]),
      runLanceToExit(['--config', toml]),
      runLanceToExit(['--standalone', '--data-dir', `${dir}/data`], { LANCE_ADMIN_PORT: 'abc' }),
      runLanceToExit(['--standalone', '--bogus']),
      (async () => {
        const f = path.join(dir, 'typo.yaml');
        await writeFile(f, 'readonly: true\n');
        return runLanceToExit(['--config', f]);
      })(),
      runLanceToExit(['--config', path.join(dir, 'nope.yaml')]),
      runLanceToExit(['--help']),
      runLanceToExit(['--data-dir', `${dir}/data`], { LANCE_STANDALONE: 'false' }),
    ]);

    expect(badYaml.code).toBe(2);
    expect(oneLine(badYaml.stderr)).toBe('lance: INVALID_CONFIG: storage.segmentBytes: expected a positive integer');
    expect(badToml.code).toBe(2);
    expect(oneLine(badToml.stderr)).toBe('lance: INVALID_CONFIG: listeners.kafka.port: expected a port number 0-65535');
    expect(badEnv.code).toBe(2);
    expect(oneLine(badEnv.stderr)).toBe('lance: INVALID_CONFIG: LANCE_ADMIN_PORT (listeners.admin.port): expected an integer, got "abc"');
    expect(unknownFlag.code).toBe(2);
    expect(oneLine(unknownFlag.stderr)).toBe('lance: USAGE: unknown flag --bogus (see lance --help)');
    expect(unknownKey.code).toBe(2);
    expect(oneLine(unknownKey.stderr)).toBe('lance: INVALID_CONFIG: readonly: unknown key');
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toContain(`lance: NOT_FOUND: --config: ${path.join(dir, 'nope.yaml')}`);
    expect(cluster.code).toBe(2);
    expect(oneLine(cluster.stderr)).toMatch(/^lance: INVALID_CONFIG: standalone: false needs cluster\.peers/);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--standalone');
    expect(help.stdout).toContain('--read-only');
  }, 120000); // spawns real processes: generous on a loaded box (a wait bound, not a speed assertion)
});

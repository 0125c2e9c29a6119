import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { atomicWriteFile, atomicWriteJson } from './fsutil.ts';
import { LanceError } from './errors.ts';

describe('atomicWriteFile', () => {
  it('replaces the content and leaves no temp file behind', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-fsutil-'));
    try {
      const f = path.join(dir, 'node.json');
      await writeFile(f, 'old');
      await atomicWriteJson(f, { clusterId: 'c1', nodeId: 3 });
      expect(JSON.parse(await readFile(f, 'utf8'))).toEqual({ clusterId: 'c1', nodeId: 3 });
      expect(await readdir(dir)).toEqual(['node.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with a LanceError naming the path when the directory is missing', async () => {
    const f = path.join(tmpdir(), 'lance-no-such-dir-' + process.pid, 'x.json');
    await expect(atomicWriteFile(f, 'x')).rejects.toSatisfy((e: unknown) => e instanceof LanceError && e.code === 'NOT_FOUND' && e.message.includes(f));
  });
});

import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createTopic, deleteTopic, getTopicById, getTopicByName, listTopics, partitionDir, setPartitionCount, topicMetaPath, updateTopicConfig, validateTopicName } from './catalog.ts';
import { isLanceError } from '../common/errors.ts';

describe('topic catalog', () => {
  it('creates topics with ids 1, 2, 3, finds them by id and name, updates config, deletes', async () => {
    const data = await mkdtemp(path.join(tmpdir(), 'lance-cat-'));
    try {
      const a = await createTopic(data, 'orders', 3, { retentionMs: 0 });
      const b = await createTopic(data, 'payments.v1', 1);
      expect([a.id, b.id]).toEqual([1, 2]);
      expect(a.uuid).toMatch(/^[0-9a-f]{32}$/);
      expect(a.config.retentionMs).toBe(0);
      expect(fs.existsSync(partitionDir(data, 1, 2))).toBe(true);
      expect(JSON.parse(fs.readFileSync(topicMetaPath(data, 1), 'utf8')).name).toBe('orders');
      expect((await getTopicByName(data, 'payments.v1'))?.id).toBe(2);
      expect((await getTopicById(data, 1))?.partitions).toBe(3);
      expect(await getTopicById(data, 9)).toBeNull();
      await expect(createTopic(data, 'orders', 1)).rejects.toSatisfy((e: unknown) => isLanceError(e, 'CONFLICT'));
      const u = await updateTopicConfig(data, 1, { retentionBytes: 1000 });
      expect(u.config).toMatchObject({ retentionBytes: 1000, retentionMs: 0 });
      await expect(updateTopicConfig(data, 1, { retentionBytes: -1 })).rejects.toThrow(/retentionBytes/);
      const grown = await setPartitionCount(data, 1, 5);
      expect(grown.partitions).toBe(5);
      expect(fs.existsSync(partitionDir(data, 1, 4))).toBe(true);
      expect((await getTopicById(data, 1))?.partitions).toBe(5);
      await expect(setPartitionCount(data, 1, 5)).rejects.toThrow(/has 5; the new count must be a larger integer/);
      await expect(setPartitionCount(data, 42, 7)).rejects.toSatisfy((e: unknown) => isLanceError(e, 'NOT_FOUND'));
      await deleteTopic(data, 1);
      expect((await listTopics(data)).map((t) => t.name)).toEqual(['payments.v1']);
      // ids are not reused while a higher one exists
      expect((await createTopic(data, 'third', 1)).id).toBe(3);
      // concurrent creates get distinct ids
      const many = await Promise.all(['x1', 'x2', 'x3'].map((n) => createTopic(data, n, 1)));
      expect(new Set(many.map((m) => m.id)).size).toBe(3);
      // a corrupt topic.json is reported with its path
      fs.writeFileSync(topicMetaPath(data, 2), '{"id": "two"}');
      await expect(getTopicById(data, 2)).rejects.toThrow(/topic_2\/topic\.json: field id/);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  it('validates topic names like Kafka', () => {
    for (const ok of ['a', 'A.b_c-9', 'x'.repeat(249)]) expect(() => validateTopicName(ok)).not.toThrow();
    expect(() => validateTopicName('')).toThrow(/empty/);
    expect(() => validateTopicName('.')).toThrow(/not allowed/);
    expect(() => validateTopicName('..')).toThrow(/not allowed/);
    expect(() => validateTopicName('x'.repeat(250))).toThrow(/250 characters/);
    expect(() => validateTopicName('a/b')).toThrow(/character "\/"/);
    expect(() => validateTopicName('a b')).toThrow(/character " "/);
  });
});

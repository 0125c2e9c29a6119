// The s3rver harness itself: a real listening process, killed by pid, its data dir removed.
import { access } from 'node:fs/promises';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { s3rverConfig, startS3rver } from './harness.ts';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('startS3rver', () => {
  it('runs s3rver in its own process with the bucket created, and stop() kills it by pid and removes its dir', async () => {
    const s3 = await startS3rver({ bucket: 'harness-bucket', extraBuckets: ['second-bucket'] });
    try {
      expect(s3.pid).not.toBe(process.pid);
      expect(s3.alive()).toBe(true);
      expect(await canConnect(s3.port)).toBe(true);
      for (const bucket of ['harness-bucket', 'second-bucket']) {
        const store = createObjectStore(s3rverConfig(s3.endpoint, bucket));
        await store.put('k', Buffer.from(bucket));
        expect((await store.get('k')).toString()).toBe(bucket);
        await store.close();
      }
    } finally {
      await s3.stop();
    }
    expect(s3.alive()).toBe(false);
    expect(() => process.kill(s3.pid, 0)).toThrow(); // ESRCH: no such process
    await expect(access(s3.dir)).rejects.toThrow();
    await s3.stop(); // idempotent
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProducerState, maybeSaveProducerState, PRODUCER_STATE_FILE, ProducerStateTable, saveProducerState, type ScannableLog } from '../../broker/src/kafka/producer-state.ts';
import { existsSync, readFileSync } from 'node:fs';
import { buildRecordBatch } from '../../broker/src/kafka/records.ts';

const b = (producerId: number, producerEpoch: number, baseSequence: number, offsetCount = 1) => ({ producerId, producerEpoch, baseSequence, offsetCount });

describe('idempotent producer sequence checker', () => {
  it('accepts in-order batches, answers a retried batch with its original offset, rejects gaps and fenced epochs', () => {
    const t = new ProducerStateTable();
    expect(t.check(b(7, 0, 0, 3))).toEqual({ kind: 'append' });
    t.observe(b(7, 0, 0, 3), 100);
    expect(t.check(b(7, 0, 3, 2))).toEqual({ kind: 'append' });
    t.observe(b(7, 0, 3, 2), 103);
    expect(t.check(b(7, 0, 0, 3))).toEqual({ kind: 'duplicate', baseOffset: 100 });
    expect(t.check(b(7, 0, 3, 2))).toEqual({ kind: 'duplicate', baseOffset: 103 });
    expect(t.check(b(7, 0, 6, 1)).kind).toBe('out-of-order'); // gap: 5 is missing
    expect(t.check(b(7, 1, 5, 1)).kind).toBe('out-of-order'); // a new epoch must start at 0
    expect(t.check(b(7, 1, 0, 1))).toEqual({ kind: 'append' });
    t.observe(b(7, 1, 0, 1), 105);
    expect(t.check(b(7, 0, 5, 1)).kind).toBe('fenced');
    expect(t.check(b(-1, -1, -1, 4))).toEqual({ kind: 'append' }); // not idempotent
    expect(t.check(b(99, 0, 42, 1))).toEqual({ kind: 'append' }); // unknown producer (state gone): accepted as Kafka ≥ 2.5 does
  });

  it('only the last 5 batches are remembered; sequences wrap at 2^31-1', () => {
    const t = new ProducerStateTable();
    for (let i = 0; i < 7; i++) t.observe(b(1, 0, i, 1), i);
    expect(t.check(b(1, 0, 1, 1)).kind).toBe('out-of-order'); // fell out of the cache: not a known duplicate
    expect(t.check(b(1, 0, 2, 1))).toEqual({ kind: 'duplicate', baseOffset: 2 });
    const w = new ProducerStateTable();
    w.observe(b(2, 0, 0x7ffffffe, 2), 0); // sequences 2^31-2, 2^31-1
    expect(w.check(b(2, 0, 0, 1))).toEqual({ kind: 'append' });
  });

  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('rebuilds from the log alone and from a snapshot + the log after it (same state)', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lance-pstate-'));
    const entries = [0, 1, 2, 3].map((i) => ({
      type: 1, firstOffset: i * 2, offsetCount: 2,
      payload: buildRecordBatch([{ key: null, value: Buffer.from(`r${i}`), headers: [], timestamp: 1 }, { key: null, value: Buffer.from(`s${i}`), headers: [], timestamp: 1 }], { producerId: 5, producerEpoch: 0, baseSequence: i * 2 }),
    }));
    const log = (upTo: number): ScannableLog => ({
      logStartOffset: 0,
      nextOffset: upTo * 2,
      read: async (from) => entries.slice(0, upTo).filter((e) => e.firstOffset + e.offsetCount > from),
    });
    const full = await loadProducerState(dir, log(4));
    expect(full.check(b(5, 0, 6, 2))).toEqual({ kind: 'duplicate', baseOffset: 6 });
    expect(full.check(b(5, 0, 8, 1))).toEqual({ kind: 'append' });
    await saveProducerState(dir, await loadProducerState(dir, log(2)));
    const fromSnap = await loadProducerState(dir, log(4));
    expect(fromSnap.snapshot()).toEqual(full.snapshot());
    // a snapshot beyond the log end (log truncated after it) is ignored
    const shorter = await loadProducerState(dir, log(1));
    expect(shorter.check(b(5, 0, 2, 2))).toEqual({ kind: 'append' });
  });

  it('periodic snapshot: started after `every` observed batches, one at a time', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lance-pstate-'));
    const t = new ProducerStateTable();
    t.observe(b(3, 0, 0, 1), 0);
    maybeSaveProducerState(dir, t, 2, () => undefined);
    expect(t.saving).toBe(false);
    expect(existsSync(path.join(dir, PRODUCER_STATE_FILE))).toBe(false);
    t.observe(b(3, 0, 1, 1), 1);
    maybeSaveProducerState(dir, t, 2, () => undefined);
    expect(t.saving).toBe(true);
    await new Promise<void>((resolve) => {
      const poll = (): void => (t.saving ? void setImmediate(poll) : resolve());
      poll();
    });
    expect(JSON.parse(readFileSync(path.join(dir, PRODUCER_STATE_FILE), 'utf8'))).toMatchObject({ nextOffset: 2, producers: [{ producerId: 3, epoch: 0 }] });
  });
});

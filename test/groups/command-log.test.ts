import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileGroupCommandLog } from '../../broker/src/groups/command-log.ts';
import { applyGroupCommand, emptyGroupsState, snapshotOf, type GroupCommand } from '../../broker/src/groups/commands.ts';
import { FileProducerIdAllocator, withErrorCode } from '../../broker/src/groups/service.ts';
import { silentLogger } from '../../broker/src/common/log.ts';

const logger = silentLogger;
let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const commit = (offset: number, partition = 0): GroupCommand => ({
  type: 'offsets', groupId: 'g', offsets: [{ topic: 't', partition, offset, leaderEpoch: -1, metadata: `m${offset}`, commitTimestamp: 1000 + offset }],
});

describe('standalone group command log (<data>/groups)', () => {
  it('restores exactly the applied state from the log alone and from snapshot + the commands after it', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lance-glog-'));
    const expected = emptyGroupsState();
    let log = await FileGroupCommandLog.open(dir, logger);
    const cmds: GroupCommand[] = [
      { type: 'group', groupId: 'g', protocolType: 'consumer', protocol: 'range', generation: 3, leader: 'm1', members: [{ memberId: 'm1', groupInstanceId: null, clientId: 'c', clientHost: 'h', assignment: 'AAE=' }] },
      commit(5), commit(9, 1), commit(7), { type: 'group', groupId: 'other', protocolType: 'consumer', protocol: null, generation: 1, leader: null, members: [] },
      { type: 'group-delete', groupId: 'other' }, { type: 'offsets-delete', groupId: 'g', partitions: [{ topic: 't', partition: 1 }] },
    ];
    for (const c of cmds) {
      await log.append([c]);
      applyGroupCommand(expected, c);
    }
    await log.close();
    log = await FileGroupCommandLog.open(dir, logger);
    expect(snapshotOf(await log.restore())).toEqual(snapshotOf(expected));
    await log.snapshot(expected);
    await log.append([commit(11)]);
    applyGroupCommand(expected, commit(11));
    await log.close();
    log = await FileGroupCommandLog.open(dir, logger);
    const restored = await log.restore();
    expect(snapshotOf(restored)).toEqual(snapshotOf(expected));
    expect(restored.groups.get('g')!.offsets.get('t\u00000')).toMatchObject({ offset: 11, metadata: 'm11' });
    await log.close();
  });

  it('a damaged snapshot is refused with CORRUPT naming the file (never silently dropped offsets)', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lance-glog-'));
    const log = await FileGroupCommandLog.open(dir, logger);
    writeFileSync(path.join(dir, 'groups', 'snapshot.json'), '{"version":1,"nextOffset":"x"}');
    await expect(log.restore()).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringContaining('snapshot.json') });
    await log.close();
  });

  it('producer ids are unique across restarts (reserved in durable blocks)', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lance-pid-'));
    const a = await FileProducerIdAllocator.open(dir);
    const first = [await a.allocate(), await a.allocate()];
    const b = await FileProducerIdAllocator.open(dir); // as after a crash: the rest of the block is skipped
    const next = await b.allocate();
    expect(first).toEqual([0, 1]);
    expect(next).toBeGreaterThan(1);
  });

  it('a reply whose commands could not be made durable carries the error in every errorCode', () => {
    const body = { throttleTimeMs: 0, topics: [{ name: 't', partitions: [{ partitionIndex: 0, errorCode: 0 }] }] };
    expect(withErrorCode(body, 15)).toEqual({ throttleTimeMs: 0, topics: [{ name: 't', partitions: [{ partitionIndex: 0, errorCode: 15 }] }] });
  });
});

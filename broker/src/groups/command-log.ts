/**
 * The persistence seam of the group coordinator and its standalone implementation.
 *
 * Standalone: `<data>/groups/log/` is a PartitionLog (the storage engine's segment files). Every `append(cmds)` is
 * one DATA entry holding a RecordBatch v2 with one record whose value is the JSON array of commands; it resolves
 * when that entry is fsynced (group commit). `<data>/groups/snapshot.json` (atomic temp→fsync→rename→fsync dir) holds
 * the whole state and the log offset it covers; after a snapshot the segments entirely below that offset are
 * deleted. `restore()` = snapshot + the commands after it, applied in order with `applyGroupCommand`.
 * Cluster mode implements the same interface on the metadata Raft log (append resolves when committed).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import { atomicWriteJson, mkdirDurable } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import { PartitionLog } from '../storage/partition-log.ts';
import { EntryType } from '../storage/types.ts';
import { decodeRecordBatches, encodeRecordBatch } from '../server/records.ts';
import {
  applyGroupCommand, emptyGroupsState, groupCommandSchema, groupSchemaParts, snapshotOf, stateFromSnapshot, type GroupCommand, type GroupsState,
} from './commands.ts';

export { groupCommandSchema };

export interface GroupCommandLog {
  /** resolves when the commands are durable (standalone) or committed (cluster) */
  append(cmds: GroupCommand[]): Promise<void>;
  /** the state rebuilt from the last snapshot plus every later command */
  restore(): Promise<GroupsState>;
  /** writes a snapshot of `state` (which must include every appended command) and compacts what it covers */
  snapshot(state: GroupsState): Promise<void>;
  close(): Promise<void>;
}

const { offsetSchema, memberSchema, tp } = groupSchemaParts;

const snapshotSchema = z.object({
  version: z.literal(1),
  /** log offset of the first command NOT included */
  nextOffset: z.number().int().nonnegative(),
  groups: z.array(z.object({
    groupId: z.string(), protocolType: z.string(), protocol: z.string().nullable(), generation: z.number().int(), leader: z.string().nullable(),
    members: z.array(memberSchema), offsets: z.array(z.object({ ...tp, ...offsetSchema.shape })),
  })),
});

const READ_CHUNK = 1 << 20;

export class FileGroupCommandLog implements GroupCommandLog {
  private constructor(
    private readonly dir: string,
    private readonly log: PartitionLog,
    private readonly logger: Logger,
  ) {}

  static async open(dataDir: string, logger: Logger): Promise<FileGroupCommandLog> {
    const dir = path.join(dataDir, 'groups');
    await mkdirDurable(dir);
    const log = await PartitionLog.open(path.join(dir, 'log'), {}, logger.child({ component: 'group-log' }));
    return new FileGroupCommandLog(dir, log, logger);
  }

  private get snapshotPath(): string {
    return path.join(this.dir, 'snapshot.json');
  }

  append(cmds: GroupCommand[]): Promise<void> {
    if (cmds.length === 0) return Promise.resolve();
    const now = Date.now();
    const batch = encodeRecordBatch([{ key: null, value: Buffer.from(JSON.stringify(cmds)), headers: [], timestamp: now }]);
    try {
      const res = this.log.append([{ type: EntryType.DATA, term: 1, offsetCount: batch.offsetCount, maxTimestamp: batch.maxTimestamp, payload: batch.bytes }]);
      return res.durable;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async restore(): Promise<GroupsState> {
    let state = emptyGroupsState();
    let from = this.log.logStartOffset;
    let raw: string | null = null;
    try {
      raw = await fsp.readFile(this.snapshotPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new LanceError('IO', `cannot read ${this.snapshotPath}: ${String(e)}`, { path: this.snapshotPath });
    }
    if (raw !== null) {
      let parsed: z.infer<typeof snapshotSchema>;
      try {
        parsed = snapshotSchema.parse(JSON.parse(raw));
      } catch (e) {
        throw new LanceError('CORRUPT', `${this.snapshotPath}: not a valid group snapshot: ${(e as Error).message}`, { path: this.snapshotPath });
      }
      state = stateFromSnapshot(parsed);
      from = Math.max(from, parsed.nextOffset);
    }
    const end = this.log.nextOffset;
    let applied = 0;
    while (from < end) {
      const entries = await this.log.read(from, READ_CHUNK);
      if (entries.length === 0) break;
      for (const e of entries) {
        if (e.firstOffset + e.offsetCount <= from) continue;
        if (e.type === EntryType.DATA) {
          for (const rec of decodeRecordBatches(e.payload)) {
            if (rec.value === null) continue;
            const at = `${path.join(this.dir, 'log')} offset ${e.firstOffset}`;
            let cmds: GroupCommand[];
            try {
              cmds = z.array(groupCommandSchema).parse(JSON.parse(rec.value.toString('utf8')));
            } catch (err) {
              throw new LanceError('CORRUPT', `group command log ${at}: invalid command: ${(err as Error).message}`, { offset: e.firstOffset });
            }
            for (const c of cmds) applyGroupCommand(state, c);
            applied += cmds.length;
          }
        }
        from = e.firstOffset + e.offsetCount;
      }
    }
    this.logger.info({ groups: state.groups.size, commandsReplayed: applied, snapshot: raw !== null }, 'group state restored');
    return state;
  }

  async snapshot(state: GroupsState): Promise<void> {
    // taken synchronously: the state and the offset describe the same moment (commands keep arriving meanwhile)
    const nextOffset = this.log.nextOffset;
    const snap = { version: 1, nextOffset, ...snapshotOf(state) };
    await this.log.flush();
    await atomicWriteJson(this.snapshotPath, snap);
    // the snapshot is durable: segments wholly below it are no longer needed
    await this.log.truncateBeforeOffset(nextOffset);
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

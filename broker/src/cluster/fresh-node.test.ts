import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../common/log.ts';
import { VOTE_HOLD, type VoteHoldRelease } from '../raft/types.ts';
import { ensureNodeIdentity } from '../server/node-identity.ts';
import { FreshNodeHold, clearVoteHold, groupStartsHeld, markRestored, markerCanClear } from './fresh-node.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'lance-fresh-'));
  dirs.push(d);
  return d;
}
const rel = (commitIndex: number): VoteHoldRelease => ({ reason: 'caught-up', term: 3, vote: 1, leader: 1, heard: { 1: 3 }, heldMs: 5, commitIndex });
const onDisk = async (d: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path.join(d, 'node.json'), 'utf8')) as Record<string, unknown>;

describe('fresh storage and the vote hold marker', () => {
  it('pure decisions: a group starts held only on fresh storage without term/vote; the marker clears only when all is released', () => {
    expect(groupStartsHeld(true, { term: 0, vote: null, commit: 0 })).toBe(true);
    expect(groupStartsHeld(true, { term: 0, vote: null, commit: 1 })).toBe(true); // bootstrap entry committed, nothing else
    expect(groupStartsHeld(true, { term: 2, vote: 1, commit: 5 })).toBe(false); // released before a restart
    expect(groupStartsHeld(true, { term: 2, vote: VOTE_HOLD, commit: 5 })).toBe(false); // the core holds it by itself
    expect(groupStartsHeld(false, { term: 0, vote: null, commit: 0 })).toBe(false); // not fresh
    expect(markerCanClear({ pending: true, reconciledAfterMeta: true, heldGroups: 0 })).toBe(true);
    expect(markerCanClear({ pending: true, reconciledAfterMeta: false, heldGroups: 0 })).toBe(false);
    expect(markerCanClear({ pending: true, reconciledAfterMeta: true, heldGroups: 1 })).toBe(false);
    expect(markerCanClear({ pending: false, reconciledAfterMeta: true, heldGroups: 0 })).toBe(false);
  });

  it('a new node.json is marked; the marker is cleared after the metadata release, a reconcile past it and every partition release', async () => {
    const d = await tmp();
    const id = await ensureNodeIdentity(d, { clusterId: 'c1', nodeId: 2 });
    expect(id.voteHold).toBe('pending');
    expect((await onDisk(d)).voteHold).toBe('pending');
    // a restart before the clear: still pending (the node.json exists now, but its marker says fresh)
    expect((await ensureNodeIdentity(d, { clusterId: 'c1', nodeId: 2 })).voteHold).toBe('pending');
    let reconciles = 0;
    const h = await FreshNodeHold.open(d, '__meta', silentLogger, () => reconciles++);
    expect(h.pending).toBe(true);
    h.onHeld('__meta');
    h.onHeld('topic_1/0');
    h.reconcileDone(0, false); // metadata still held: does not count
    h.onReleased('__meta', rel(10));
    expect(reconciles).toBe(1);
    h.reconcileDone(7, true); // started before the metadata reached the release point
    h.onReleased('topic_1/0', rel(3));
    await h.settled();
    expect((await onDisk(d)).voteHold).toBe('pending');
    h.onHeld('topic_1/1'); // opened by the next reconcile
    h.reconcileDone(10, true);
    await h.settled();
    expect((await onDisk(d)).voteHold).toBe('pending');
    h.onRemoved('topic_1/1'); // (or released)
    await h.settled();
    expect(h.pending).toBe(false);
    expect(await onDisk(d)).toEqual({ version: 1, clusterId: 'c1', nodeId: 2, createdAt: id.createdAt });
    // after the clear, groups without state are not held (partitions created later start with all voters at 0)
    expect(h.shouldHold('topic_2/0', { term: 0, vote: null, commit: 0 })).toBe(false);
    expect((await FreshNodeHold.open(d, '__meta', silentLogger)).pending).toBe(false);
  });

  it('a metadata group released in an earlier process counts once it caught up with a leader', async () => {
    const d = await tmp();
    await ensureNodeIdentity(d, { clusterId: 'c1', nodeId: 2 });
    const h = await FreshNodeHold.open(d, '__meta', silentLogger);
    h.reconcileDone(4, false);
    await h.settled();
    expect(h.pending).toBe(true);
    h.reconcileDone(4, true);
    await h.settled();
    expect(h.pending).toBe(false);
    expect((await onDisk(d)).voteHold).toBeUndefined();
  });

  it('markRestored: a data dir rebuilt by a restore is not fresh', async () => {
    const d = await tmp();
    await ensureNodeIdentity(d, { clusterId: 'c1', nodeId: 5 });
    await markRestored(d);
    expect((await onDisk(d)).voteHold).toBeUndefined();
    expect((await FreshNodeHold.open(d, '__meta', silentLogger)).pending).toBe(false);
    expect(await clearVoteHold(d)).toBe(false); // idempotent
    const empty = await tmp();
    await markRestored(empty); // no node.json yet: nothing to do
    expect((await FreshNodeHold.open(empty, '__meta', silentLogger)).pending).toBe(false);
  });
});

/**
 * ClusterBroker: the multi-Raft broker behind the Kafka layer (KafkaBackend) and the admin API in cluster mode.
 *
 * - "__meta" group over all bootstrap peers, log at `<data>/wal/`; its leader is the CONTROLLER. Topic create/
 *   delete/partitions/config changes on any node are forwarded to the controller over the raft transport (RPC
 *   frames), proposed there as JSON commands (CONTROL entries) and answered once applied (committed).
 * - One Raft group per partition replica hosted here, log = the partition's segment log `<data>/topic_<id>/<p>/`.
 *   Every node opens/closes its partition groups as the applied metadata says.
 * - Produce: leader only (else NOT_LEADER → Kafka NOT_LEADER_OR_FOLLOWER). acks=-1 resolves when the entry is
 *   committed (majority fsynced) with its term unchanged; acks=1 after the leader's own fsync; acks=0 at once.
 *   HW = the offset after the last committed entry; fetch serves only data below the HW (any replica can serve).
 * - Fenced node: Kafka produce/fetch get NOT_LEADER (clients refresh metadata), and every Raft node is fenced.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isLanceError, LanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type {
  BrokerEndpoint, ConfigEntry, CreateTopicRequest as KafkaCreateTopicRequest, CreateTopicResult, FetchResult, KafkaBackend,
  ListOffsetResult, PartitionMetadata, ProduceResult, TopicMetadata, ValidatedBatch,
} from '../kafka/backend.ts';
import { ListOffsetsTimestamp } from '../kafka/backend.ts';
import type {
  ClusterActionResponse, ClusterGroup, ClusterView, ConsumedRecord, CreateTopicRequest, FetchQuery, FetchResponse, MembersRequest,
  PartitionState, ProduceRequest, ProduceResponse, TopicDetail, TopicSummary, TransferLeaderRequest,
  Member, MemberActionResponse, MemberEndpoints, MembersList,
} from '../admin/schemas.ts';
import { quorum } from '../raft/config.ts';
import type { RaftStatus } from '../raft/types.ts';
import { FreshNodeHold, registerVoteHoldGauge } from './fresh-node.ts';
import type { RaftEntry, RaftStateEvent, Role } from '../raft/types.ts';
import { setPartitionLeaderEpoch } from '../storage/record-batch.ts';
import { readCommittedBatches } from '../storage/read-committed.ts';
import { EntryType, type LogOptions } from '../storage/types.ts';
import { logOptions, type LanceConfig } from '../server/config.ts';
import { ReplicatedProducerState } from '../kafka/producer-state.ts';
import { parseKafkaTopicConfigs } from '../server/local-broker.ts';
import type { BrokerMetrics } from '../server/metrics.ts';
import { decodeRecordBatches, encodeRecordBatch, partitionForKey, type SimpleRecord } from '../server/records.ts';
import type { ClusterPeer } from './config.ts';
import {
  acceptReport, activeBrokers, applyCommand, assignReplicas, BrokerInfoSchema, decodeCommand, emptyMetadata, encodeCommand, foundersOf, isRemoved,
  META_GROUP, MetaCommandSchema, nextMembershipStep, partitionGroup, planRemoval, planUnderReplicated,
  type BrokerInfo, type MetaCommand, type MetadataState, type PartitionLeader, type TopicState,
} from './metadata.ts';
import { offsetCountOf, PartitionRaftLog, type QuarantineInfo } from './partition-raft-log.ts';
import { RaftHost } from './raft-host.ts';
import { CHUNK_TIMEOUT_MS, parseChunkRequest, SEGMENT_CHUNK_METHOD, SegmentTransferMetrics } from './segment-transfer.ts';
import { Transport } from './transport.ts';

/** a follower counts as in-sync when its match index is within this many entries of the leader's last index */
export const ISR_MAX_LAG_ENTRIES = 1000;
const CONTROLLER_WAIT_MS = 10_000;
const RPC_TIMEOUT_MS = 15_000;

interface Waiter {
  lastIndex: number;
  term: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface PartitionRuntime {
  group: string;
  topic: string;
  topicNumericId: number;
  partition: number;
  log: PartitionRaftLog;
  /** offset after the last committed entry */
  hw: number;
  commitIndex: number;
  role: Role;
  term: number;
  leader: number | null;
  /**
   * The last leader this replica knew and its term: the Metadata answer while it knows none (an isolated old leader
   * that stepped down, a follower during an election). Kafka brokers answer their last known leader too; "no leader"
   * (LEADER_NOT_AVAILABLE) makes kafkajs retry Metadata on this same broker for its whole retry budget (seen as
   * 20-39 s without acks behind a partitioned leader) instead of asking another broker.
   */
  lastLeader: { id: number; term: number } | null;
  commitWaiters: Waiter[];
  durableWaiters: Waiter[];
  /** idempotent producers' sequences, from the replicated batches (kafka/producer-state.ts) */
  producers: ReplicatedProducerState;
}

export interface ClusterBrokerOptions {
  config: LanceConfig;
  clusterId: string;
  nodeId: number;
  peers: ClusterPeer[];
  logger: Logger;
  metrics?: BrokerMetrics;
  version?: string;
  /** raft listener (host, port); port 0 = any (tests) */
  raftHost: string;
  raftPort: number;
  /** advertised Kafka endpoint of this node (from the peers list by default) */
  onQuarantine?: (q: QuarantineInfo) => void;
  /** founding voters of the metadata group (cluster.bootstrapVoters; default: every peer) */
  founders?: number[];
  /** bootstrap the metadata group (a founder not told to join); false: wait to be added (default: founder) */
  bootstrap?: boolean;
}

/** a learner is promoted once it is at most this many entries behind (the Raft core's own limit is 64) */
const PROMOTE_MAX_LAG = 64;
/** a member counts as alive (for removals and quorum checks) when its leader heard from it this recently */
const ALIVE_MS = 2_000;
/** membership duties (controller and partition leaders) run on this cadence */
const MEMBERSHIP_TICK_MS = 100;

function sortedIds(ids: readonly number[]): number[] {
  return [...ids].sort((a, b) => a - b);
}

function sameReport(a: PartitionLeader | null | undefined, b: PartitionLeader): boolean {
  return !!a && a.leader === b.leader && a.term === b.term && a.voters.join() === b.voters.join() && a.learners.join() === b.learners.join();
}

/**
 * Pure: the leader a replica that knows no current leader names in Kafka Metadata. Its last known leader with that
 * leader's epoch (like a Kafka broker's metadata cache: never newer than the truth) — unless that is itself: a
 * replica that stepped down (an isolated old leader) KNOWS it does not lead, and a client whose only connection is
 * to it would loop on it (Produce → NOT_LEADER_OR_FOLLOWER → Metadata from the same broker → itself again). It then
 * names the other replicas in turn (`turn`: one per answer), so the client connects to them and learns the
 * majority's leader there (a wrong guess answers NOT_LEADER_OR_FOLLOWER: the client refreshes again).
 */
export function metadataLeaderHint(self: number, last: { id: number; term: number }, replicas: readonly number[], turn: number): { id: number; term: number } {
  if (last.id !== self) return last;
  const others = replicas.filter((r) => r !== self);
  return others.length === 0 ? last : { id: others[turn % others.length]!, term: last.term };
}

function notFound(topic: string, partition?: number): LanceError {
  return partition === undefined
    ? new LanceError('NOT_FOUND', `topic "${topic}" does not exist`, { topic })
    : new LanceError('NOT_FOUND', `topic "${topic}" has no partition ${partition}`, { topic, partition });
}

function notLeader(what: string, leader: number | null): LanceError {
  return new LanceError('NOT_LEADER', `${what}: this node is not the leader${leader !== null && leader >= 0 ? ` (leader: node ${leader})` : ' (no leader right now)'}`, { leader });
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

export class ClusterBroker implements KafkaBackend {
  readonly clusterId: string;
  readonly nodeId: number;
  private readonly opts: ClusterBrokerOptions;
  private readonly logger: Logger;
  private readonly config: LanceConfig;
  private readonly events = new EventEmitter();
  private readonly startedAt = new Date().toISOString();
  readonly transport: Transport;
  readonly host: RaftHost;
  private meta: MetadataState = emptyMetadata();
  private metaRole: Role = 'follower';
  private metaTerm = 0;
  private metaLeader: number | null = null;
  /** term in which this node is the controller AND has applied its own no-op (its state is complete); else null */
  private metaReadyTerm: number | null = null;
  /** controller requests served by other modules (cluster-groups.ts) */
  private readonly extraControllerOps = new Map<string, (body: unknown) => Promise<unknown>>();
  private readonly metaWaiters = new Map<number, Waiter & { result?: { ok: boolean; error?: string } }>();
  private readonly parts = new Map<string, PartitionRuntime>();
  private reconcileChain: Promise<void> = Promise.resolve();
  private reconcileQueued = false;
  private closed = false;
  private adminEndpoint = { host: '', port: 0 };
  private kafkaUp = false;
  private nextPartitionRr = 0;
  private membershipTimer: NodeJS.Timeout | null = null;
  /** membership work in flight (keys: "report:<group>", "founders"), so a slow controller never gets piles */
  private readonly inflight = new Set<string>();
  /** last membership step issued per group and when: the same step is not re-issued within a second */
  private readonly lastStep = new Map<string, { key: string; at: number }>();
  private lastReconcileNudge = 0;
  private warnedRemoved = false;
  private segMetrics: SegmentTransferMetrics | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRunning = false;
  /** fresh storage: vote hold bookkeeping and node.json's marker (fresh-node.ts) */
  private freshHold: FreshNodeHold | undefined;
  /** rotates metadataLeaderHint's guesses */
  private hintTurn = 0;

  private constructor(opts: ClusterBrokerOptions) {
    this.opts = opts;
    this.clusterId = opts.clusterId;
    this.nodeId = opts.nodeId;
    this.logger = opts.logger.child({ component: 'cluster' });
    this.config = opts.config;
    this.events.setMaxListeners(0);
    this.transport = new Transport({
      nodeId: opts.nodeId, clusterId: opts.clusterId, host: opts.raftHost, port: opts.raftPort,
      peers: opts.peers.map((p) => ({ nodeId: p.nodeId, host: p.host, port: p.raftPort })),
      logger: this.logger.child({ component: 'transport' }),
      maxFrameBytes: Math.max(opts.config.maxFrameBytes + (1 << 20), 64 << 20),
      onMessage: (group, m) => this.host.receive(group, m),
      onRpc: (_from, method, body) => this.controllerOp(method, body),
      acceptUnknownPeers: true,
      onBinRpc: (_from, method, header) => this.serveSegmentChunk(method, header),
      onPeerDown: (peer) => this.host.peerDisconnected(peer),
    });
    this.host = new RaftHost({
      nodeId: opts.nodeId, logger: this.logger.child({ component: 'raft' }),
      send: (group, m) => this.transport.send(group, m),
      raft: { maxBytesPerAppend: 4 << 20, maxEntriesPerAppend: 1024, ...opts.config.cluster?.raft },
    });
  }

  static async open(opts: ClusterBrokerOptions): Promise<ClusterBroker> {
    const b = new ClusterBroker(opts);
    if (!opts.peers.some((p) => p.nodeId === opts.nodeId)) {
      throw new LanceError('INVALID_CONFIG', `cluster.peers: this node's id ${opts.nodeId} is not in the peers list (${opts.peers.map((p) => p.nodeId).join(', ')})`, { key: 'cluster.peers' });
    }
    const metaLog = await PartitionRaftLog.open({
      dir: path.join(opts.config.dataDir, 'wal'), dataDir: opts.config.dataDir, group: META_GROUP,
      logOptions: b.storageOptions(), logger: b.logger, ...(opts.onQuarantine ? { onQuarantine: opts.onQuarantine } : {}),
    });
    const founders = sortedIds(opts.founders ?? opts.peers.map((p) => p.nodeId));
    const bootstrap = opts.bootstrap ?? founders.includes(opts.nodeId);
    b.freshHold = await FreshNodeHold.open(opts.config.dataDir, META_GROUP, b.logger, () => b.scheduleReconcile());
    b.host.setVoteHold(b.freshHold);
    if (opts.metrics) registerVoteHoldGauge(opts.metrics.registry, () => b.host.heldGroups().length);
    // Only founders bootstrap (entry 1 = the founding config, identical on each); a joining node starts with an
    // empty log and no membership: it neither campaigns nor votes until the controller adds it.
    b.host.addGroup(META_GROUP, metaLog, bootstrap ? { voters: founders, learners: [] } : undefined, {
      onCommitted: (entries) => b.applyMeta(entries),
      onState: (ev) => b.onMetaState(ev),
    });
    await b.transport.start();
    b.host.start();
    b.retentionTimer = setInterval(() => void b.runRetention(), opts.config.storage.retentionCheckIntervalMs);
    b.retentionTimer.unref();
    b.membershipTimer = setInterval(() => b.membershipTick(), MEMBERSHIP_TICK_MS);
    b.membershipTimer.unref();
    b.logger.info({ peers: opts.peers.map((p) => p.nodeId), founders, mode: bootstrap ? 'founder' : 'join', raftPort: b.transport.port }, 'cluster node started');
    return b;
  }

  private storageOptions(): Partial<LogOptions> {
    const o = logOptions(this.config);
    return { segmentBytes: o.segmentBytes, segmentMs: o.segmentMs, indexIntervalBytes: o.indexIntervalBytes, flush: o.flush };
  }

  get raftPort(): number {
    return this.transport.port;
  }

  // ---------------------------------------------------------------- metadata group

  private onMetaState(ev: RaftStateEvent): void {
    this.metaRole = ev.role;
    this.metaTerm = ev.term;
    this.metaLeader = ev.leader;
    if (ev.role !== 'leader' || ev.term !== this.metaReadyTerm) this.metaReadyTerm = null;
    if (ev.role !== 'leader') {
      for (const [i, w] of this.metaWaiters) {
        this.metaWaiters.delete(i);
        w.reject(notLeader('metadata change', ev.leader));
      }
    }
    this.events.emit('change');
  }

  private applyMeta(entries: RaftEntry[]): void {
    let changed = false;
    for (const e of entries) {
      let result: { ok: boolean; error?: string } = { ok: true };
      if (e.type === EntryType.CONTROL) {
        try {
          result = applyCommand(this.meta, e.index, decodeCommand(e.data, `metadata entry ${e.index}`));
          changed = true;
        } catch (err) {
          this.logger.error({ err, index: e.index }, 'metadata: undecodable command skipped');
          result = { ok: false, error: 'undecodable command' };
          this.meta.applied = e.index;
        }
      } else {
        this.meta.applied = e.index;
        // the no-op of our own term: every earlier entry is applied, the controller's state is complete
        if (e.type === EntryType.NOOP && this.metaRole === 'leader' && e.term === this.metaTerm) this.metaReadyTerm = e.term;
      }
      const w = this.metaWaiters.get(e.index);
      if (w) {
        this.metaWaiters.delete(e.index);
        if (w.term !== e.term) w.reject(notLeader('metadata change (superseded by a new controller)', this.metaLeader));
        else {
          w.result = result;
          w.resolve();
        }
      }
    }
    if (changed) this.scheduleReconcile();
    if (changed || entries.some((e) => e.type === EntryType.CONFIG)) this.syncPeers();
    if (changed && !this.warnedRemoved && isRemoved(this.meta, this.nodeId)) {
      // ids are never reused: this process serves nothing once its groups have dropped it; stop it (or start the
      // replacement with a new id and `lnc members add` it)
      this.warnedRemoved = true;
      this.logger.error({ nodeId: this.nodeId }, 'this node id was removed from the cluster (lnc members remove); it will hold no replica');
    }
    this.events.emit('change');
  }

  /** The transport dials members it learned from the metadata (brokers added after bootstrap, changed addresses). */
  private syncPeers(): void {
    for (const b of activeBrokers(this.meta)) {
      // This node's own peers list wins for the ids it names: it is the current local truth (the operator rewrites
      // peers.yaml; a test may route each pair through its own proxy). The registry supplies members added later.
      if (b.nodeId === this.nodeId || b.raftPort === 0 || this.opts.peers.some((p) => p.nodeId === b.nodeId)) continue;
      this.transport.setPeer({ nodeId: b.nodeId, host: b.host, port: b.raftPort });
    }
    // A removed broker that no group lists any more is no longer dialled: its address may now belong to its
    // replacement (the operator reuses a pod's host for the new node id), which would otherwise receive our
    // connections for the old id and see them replace its real connection from us.
    const cfg = this.metaStatus()?.config;
    for (const id of this.meta.removed ?? []) {
      if (id === this.nodeId || !cfg || cfg.voters.includes(id) || cfg.learners.includes(id) || this.listedInPartitions(id)) continue;
      this.transport.removePeer(id);
    }
  }

  private async proposeMeta(c: MetaCommand): Promise<{ ok: boolean; error?: string }> {
    const r = this.host.step(META_GROUP, (n) => n.propose([{ type: EntryType.CONTROL, data: encodeCommand(c) }]));
    let waiter: (Waiter & { result?: { ok: boolean; error?: string } }) | undefined;
    await this.withTimeout(new Promise<void>((resolve, reject) => {
      waiter = { lastIndex: r.lastIndex, term: r.term, resolve, reject };
      this.metaWaiters.set(r.lastIndex, waiter);
    }), RPC_TIMEOUT_MS, `metadata change ${c.op}`);
    return waiter?.result ?? { ok: true };
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new LanceError('TIMEOUT', `${what}: not committed within ${ms} ms`)), ms);
      p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e); });
    });
  }

  controllerId(): number {
    return this.metaLeader ?? -1;
  }

  /** Waits (on state changes, not by polling) until `cond` holds or `ms` passes. */
  private waitFor(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const on = (): void => {
        if (cond()) { cleanup(); resolve(true); }
      };
      const t = setTimeout(() => { cleanup(); resolve(cond()); }, ms);
      const cleanup = (): void => { clearTimeout(t); this.events.off('change', on); };
      this.events.on('change', on);
    });
  }

  /** Runs a controller operation here (if controller) or forwards it to the controller. */
  private async onController(method: string, body: unknown): Promise<unknown> {
    const known = await this.waitFor(() => this.metaLeader !== null, CONTROLLER_WAIT_MS);
    if (!known || this.metaLeader === null) throw new LanceError('TIMEOUT', `no controller elected within ${CONTROLLER_WAIT_MS} ms (is a majority of cluster.peers up?)`);
    if (this.metaLeader === this.nodeId) return this.controllerOp(method, body);
    return this.transport.rpc(this.metaLeader, method, body, RPC_TIMEOUT_MS);
  }

  /** Brokers new replicas may go to: the registry's members; before the controller registered the founders, them. */
  private liveBrokers(): number[] {
    const active = activeBrokers(this.meta).map((b) => b.nodeId);
    if (active.length > 0) return active;
    return sortedIds(this.opts.founders ?? this.opts.peers.map((p) => p.nodeId)).filter((id) => !isRemoved(this.meta, id));
  }

  private staticInfo(id: number): BrokerInfo | undefined {
    const p = this.opts.peers.find((x) => x.nodeId === id);
    return p ? { nodeId: p.nodeId, host: p.host, kafkaPort: p.kafkaPort, adminPort: p.adminPort, raftPort: p.raftPort } : undefined;
  }

  private metaStatus(): RaftStatus | undefined {
    return this.host.node(META_GROUP)?.status();
  }

  /**
   * Controller: members of the metadata group that the registry does not know yet (the founders, on a new
   * cluster) are registered from the static peers list, all in one command. Resolves when none is missing.
   */
  private async ensureRegistry(): Promise<void> {
    const st = this.metaStatus();
    if (!st) return;
    const missing = [...st.config.voters, ...st.config.learners].filter((id) => !this.meta.brokers[String(id)] && !isRemoved(this.meta, id));
    const infos = missing.map((id) => this.staticInfo(id)).filter((x): x is BrokerInfo => x !== undefined);
    if (infos.length === 0) return;
    const res = await this.proposeMeta({ op: 'registerBrokers', brokers: infos });
    if (!res.ok) throw new LanceError('CONFLICT', `registering the founding brokers failed: ${res.error ?? 'refused'}`);
  }

  // ---------------------------------------------------------------- membership (controller + partition leaders)

  /**
   * Runs every MEMBERSHIP_TICK_MS on every node. The controller registers founders and moves the metadata group's
   * membership toward the registry's members; each partition leader reports {leader, term, membership} to the
   * controller when the metadata's copy differs, and moves its group's membership toward the target assignment.
   * One single-server change per group at a time (the Raft core refuses overlapping ones; we retry next tick).
   */
  private membershipTick(): void {
    if (this.closed) return;
    try {
      if (this.metaRole === 'leader' && this.metaReadyTerm === this.metaTerm) this.controllerTick();
      this.partitionTick();
    } catch (e) {
      this.logger.warn({ err: e }, 'membership tick failed');
    }
  }

  private once(key: string, fn: () => Promise<unknown>): void {
    if (this.inflight.has(key)) return;
    this.inflight.add(key);
    void fn().catch((e: unknown) => this.logger.debug({ err: e, key }, 'membership: retrying later'))
      .finally(() => this.inflight.delete(key));
  }

  private controllerTick(): void {
    const st = this.metaStatus();
    if (!st || st.role !== 'leader') return;
    const members = [...st.config.voters, ...st.config.learners];
    if (members.some((id) => !this.meta.brokers[String(id)] && !isRemoved(this.meta, id))) {
      this.once('founders', () => this.ensureRegistry());
      return; // no membership decisions on an incomplete registry
    }
    // A removed broker stays in the metadata group until no partition group lists it any more: it must still see
    // the leaders' reports that drop it, to close and delete its replicas (the last entries it applies).
    const target = activeBrokers(this.meta).map((b) => b.nodeId);
    for (const id of this.meta.removed ?? []) {
      if (members.includes(id) && this.listedInPartitions(id)) target.push(id);
    }
    if (target.length > 0) this.driveGroup(META_GROUP, st, target);
  }

  /** some partition leader's last report still lists `id` as a voter or learner */
  private listedInPartitions(id: number): boolean {
    return Object.values(this.meta.topics).some((t) => (t.leaders ?? []).some((r) => !!r && (r.voters.includes(id) || r.learners.includes(id))));
  }

  private partitionTick(): void {
    let stray = false;
    for (const rt of this.parts.values()) {
      const t = this.meta.topics[rt.topic];
      if (!t || t.id !== rt.topicNumericId) continue;
      const target = t.assignment[rt.partition];
      if (!target) continue;
      if (!target.includes(this.nodeId)) stray = true;
      if (rt.role !== 'leader') continue;
      const st = this.host.node(rt.group)?.status();
      if (!st || st.role !== 'leader') continue;
      const mine: PartitionLeader = { leader: this.nodeId, term: st.term, voters: sortedIds(st.config.voters), learners: sortedIds(st.config.learners) };
      if (!sameReport(t.leaders?.[rt.partition], mine) && acceptReport(t.leaders?.[rt.partition] ?? null, mine)) {
        this.once(`report:${rt.group}`, () => this.onController('reportPartition', { name: t.name, id: t.id, partition: rt.partition, state: mine }));
      }
      this.driveGroup(rt.group, st, target);
    }
    // a replica this node no longer should hold is dropped once its group's membership no longer lists us
    const now = performance.now();
    if (stray && now - this.lastReconcileNudge > 500) {
      this.lastReconcileNudge = now;
      this.scheduleReconcile();
    }
  }

  /** One step of nextMembershipStep on a group this node leads. */
  private driveGroup(gid: string, st: RaftStatus, target: readonly number[]): void {
    const prog = (id: number) => st.progress.find((f) => f.id === id);
    const lag = (id: number): number => (id === this.nodeId ? 0 : prog(id)?.lag ?? Infinity);
    const alive = (id: number): boolean => id === this.nodeId || (prog(id)?.lastHeardMsAgo ?? Infinity) < ALIVE_MS;
    const step = nextMembershipStep(this.nodeId, st.config, target, lag, alive, PROMOTE_MAX_LAG);
    if (!step) return;
    const key = JSON.stringify(step);
    const now = performance.now();
    const last = this.lastStep.get(gid);
    if (last && last.key === key && now - last.at < 1000) return;
    this.lastStep.set(gid, { key, at: now });
    try {
      this.host.step(gid, (n) => {
        if (step.kind === 'transfer') n.transferLeadership(step.to);
        else if (step.kind === 'addLearner') n.addLearner(step.nodeId);
        else if (step.kind === 'promote') n.promote(step.nodeId);
        else n.removeServer(step.nodeId);
      });
      this.logger.info({ group: gid, step, voters: st.config.voters, learners: st.config.learners, target }, 'membership change');
    } catch (e) {
      // CONFLICT: another change is uncommitted, the leader's no-op is not committed yet, or the learner lags: retry
      if (!isLanceError(e, 'CONFLICT')) this.logger.warn({ err: e, group: gid, step }, 'membership change refused');
    }
  }

  private async controllerAddMember(raw: unknown): Promise<MemberActionResponse> {
    const r = BrokerInfoSchema.safeParse(raw);
    if (!r.success) throw new LanceError('INVALID_ARGUMENT', `member: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const info = r.data;
    const id = info.nodeId;
    await this.ensureRegistry();
    if (isRemoved(this.meta, id)) {
      throw new LanceError('CONFLICT', `nodeId: node id ${id} was removed from this cluster; node ids are never reused (start the new broker with a new id)`, { field: 'nodeId', reason: 'removed' });
    }
    for (const o of activeBrokers(this.meta)) {
      if (o.nodeId === id || o.host !== info.host) continue;
      for (const k of ['kafkaPort', 'adminPort', 'raftPort'] as const) {
        if ([o.kafkaPort, o.adminPort, o.raftPort].includes(info[k])) {
          throw new LanceError('INVALID_ARGUMENT', `${k}: ${info.host}:${info[k]} is already used by node ${o.nodeId}`, { field: k, nodeId: o.nodeId });
        }
      }
    }
    const cur = this.meta.brokers[String(id)];
    const same = cur !== undefined && cur.host === info.host && cur.kafkaPort === info.kafkaPort && cur.adminPort === info.adminPort && cur.raftPort === info.raftPort;
    const reassign = planUnderReplicated(this.meta, id);
    if (same && reassign.length === 0) return { ok: true, changed: false, message: `node ${id} is already a member (${info.host})` };
    const res = await this.proposeMeta({ op: 'registerBroker', broker: info, reassign });
    if (!res.ok) throw new LanceError('CONFLICT', `node ${id}: ${res.error ?? 'refused'}`, { field: 'nodeId' });
    return {
      ok: true, changed: true,
      message: `node ${id} registered at ${info.host} (kafka ${info.kafkaPort}, admin ${info.adminPort}, raft ${info.raftPort}); it joins the metadata group as a learner and is promoted once caught up; ${reassign.length} under-replicated partition(s) gain it as a replica`,
    };
  }

  private async controllerRemoveMember(id: number): Promise<MemberActionResponse> {
    await this.ensureRegistry();
    if (isRemoved(this.meta, id)) return { ok: true, changed: false, message: `node ${id} is already removed` };
    const st = this.metaStatus();
    const inConfig = !!st && (st.config.voters.includes(id) || st.config.learners.includes(id));
    if (!this.meta.brokers[String(id)] && !inConfig) {
      throw new LanceError('NOT_FOUND', `nodeId: node ${id} is not a member (members: ${activeBrokers(this.meta).map((b) => b.nodeId).join(', ')})`, { field: 'nodeId' });
    }
    const remaining = activeBrokers(this.meta).filter((b) => b.nodeId !== id);
    if (remaining.length === 0) throw new LanceError('CONFLICT', `nodeId: node ${id} is the last member; a cluster cannot remove its last broker`, { field: 'nodeId', reason: 'last-member' });
    if (st) {
      const voters = st.config.voters.filter((v) => v !== id);
      if (voters.length === 0) throw new LanceError('CONFLICT', `nodeId: node ${id} is the metadata group's last voter`, { field: 'nodeId', reason: 'last-voter' });
      const live = voters.filter((v) => v === this.nodeId || (this.transport.connected(v) && (st.progress.find((f) => f.id === v)?.lastHeardMsAgo ?? Infinity) < ALIVE_MS));
      if (live.length < quorum(voters)) {
        throw new LanceError('CONFLICT', `nodeId: removing node ${id} would leave the metadata group without a live majority: voters after removal ${voters.join(', ')}, reachable ${live.join(', ') || 'none'} (need ${quorum(voters)}); bring members back first`, { field: 'nodeId', reason: 'quorum', voters, live });
      }
    }
    // A dead node that a partition group still needs for its majority (RF 1 or 2 with that node, or two dead
    // replicas of RF 3): no leader can change that group any more, its data lives (only) there. Refuse rather than
    // promise a move that cannot happen.
    const metaProgress = st?.progress ?? [];
    // alive = connected now AND heard lately: a crashed peer's connection closes at once, while its last-heard age
    // needs ALIVE_MS to pass (a removal right after a crash was planned as if the node were still there)
    const alive = (n: number): boolean => n === this.nodeId || (this.transport.connected(n) && (metaProgress.find((f) => f.id === n)?.lastHeardMsAgo ?? Infinity) < ALIVE_MS);
    if (!alive(id)) {
      const stuck: string[] = [];
      for (const t of Object.values(this.meta.topics)) {
        t.assignment.forEach((replicas, p) => {
          // the leader's report is the group's real membership; before any report, the assignment
          const voters = t.leaders?.[p]?.voters ?? replicas;
          if (!voters.includes(id)) return;
          if (voters.filter((v) => v !== id && alive(v)).length < quorum(voters)) stuck.push(`${t.name}-${p}`);
        });
      }
      if (stuck.length > 0) {
        throw new LanceError('CONFLICT', `nodeId: node ${id} is down and ${stuck.join(', ')} cannot reach a majority without it (their replicas: only node ${id} or too few live ones); bring node ${id} back, or delete those topics, before removing it`, { field: 'nodeId', reason: 'partition-quorum', partitions: stuck });
      }
    }
    const plan = planRemoval(this.meta, id);
    if (plan.orphaned.length > 0) {
      throw new LanceError('CONFLICT', `nodeId: removing node ${id} would leave ${plan.orphaned.join(', ')} without any replica (no other broker)`, { field: 'nodeId', reason: 'orphaned', partitions: plan.orphaned });
    }
    const res = await this.proposeMeta({ op: 'unregisterBroker', nodeId: id, reassign: plan.reassign });
    if (!res.ok) throw new LanceError('CONFLICT', `node ${id}: ${res.error ?? 'refused'}`, { field: 'nodeId' });
    return {
      ok: true, changed: true,
      message: `node ${id} removed from the registry; ${plan.reassign.length} partition(s) reassigned; the metadata group${id === this.nodeId ? ' (after a leadership transfer)' : ''} and each partition group drop it one change at a time`,
    };
  }

  private async controllerReport(body: Record<string, unknown>): Promise<unknown> {
    const r = MetaCommandSchema.safeParse({ op: 'reportPartition', name: body.name, id: body.id, partition: body.partition, state: body.state });
    if (!r.success || r.data.op !== 'reportPartition') throw new LanceError('INVALID_ARGUMENT', 'reportPartition: malformed report');
    const c = r.data;
    const t = this.meta.topics[c.name];
    if (!t || t.id !== c.id) return { accepted: false };
    if (!acceptReport(t.leaders?.[c.partition] ?? null, c.state) || sameReport(t.leaders?.[c.partition], c.state)) return { accepted: false };
    const res = await this.proposeMeta(c);
    return { accepted: res.ok };
  }

  // ---------------------------------------------------------------- membership (admin API, any node)

  async addMember(nodeId: number, ep: MemberEndpoints): Promise<MemberActionResponse> {
    return await this.onController('memberAdd', { broker: { nodeId, ...ep } }) as MemberActionResponse;
  }

  async removeMember(nodeId: number): Promise<MemberActionResponse> {
    return await this.onController('memberRemove', { nodeId }) as MemberActionResponse;
  }

  /** The registry as this node's applied metadata and metadata-group membership show it. */
  listMembers(): MembersList {
    const cfg = this.metaStatus()?.config ?? { voters: [], learners: [] };
    const ids = new Set<number>([...Object.keys(this.meta.brokers).map(Number), ...cfg.voters, ...cfg.learners]);
    const members: Member[] = [];
    for (const id of sortedIds([...ids])) {
      const info = this.meta.brokers[String(id)] ?? this.staticInfo(id) ?? { nodeId: id, host: '', kafkaPort: 0, adminPort: 0, raftPort: 0 };
      const role = cfg.voters.includes(id) ? 'voter' : cfg.learners.includes(id) ? 'learner' : 'none';
      let assigned = 0;
      let voter = 0;
      let learner = 0;
      let settled = true;
      for (const t of Object.values(this.meta.topics)) {
        t.assignment.forEach((replicas, p) => {
          const rep = t.leaders?.[p] ?? null;
          const isVoter = !!rep && rep.voters.includes(id);
          if (isVoter) voter++;
          if (rep?.learners.includes(id)) learner++;
          if (replicas.includes(id)) {
            assigned++;
            if (!isVoter) settled = false;
          }
        });
      }
      const removed = isRemoved(this.meta, id);
      const state: Member['state'] = removed
        ? (role !== 'none' || voter + learner > 0 ? 'removing' : 'removed')
        : (role === 'voter' && settled && this.meta.brokers[String(id)] !== undefined ? 'active' : 'joining');
      members.push({ ...info, nodeId: id, role, state, controller: id === this.metaLeader, partitions: { assigned, voter, learner } });
    }
    return { controllerId: this.controllerId(), members };
  }

  /** Controller side of forwarded requests (also called locally). Inputs are re-validated: they crossed the wire. */
  private async controllerOp(method: string, body: unknown): Promise<unknown> {
    if (this.metaRole !== 'leader') throw notLeader(`controller request ${method}`, this.metaLeader);
    const b = (body ?? {}) as Record<string, unknown>;
    const name = typeof b.name === 'string' ? b.name : '';
    switch (method) {
      case 'createTopic': {
        const partitions = Number(b.partitions);
        const rf = Number(b.rf);
        const config = (b.config ?? {}) as Record<string, string>;
        const assignment = Array.isArray(b.assignment) ? (b.assignment as number[][]) : [];
        this.validateTopicName(name);
        if (this.meta.topics[name]) throw new LanceError('CONFLICT', `topic "${name}" already exists`, { topic: name });
        const brokers = this.liveBrokers();
        const rfEff = rf > 0 ? rf : Math.min(3, brokers.length);
        const parts = partitions > 0 ? partitions : this.config.topics.defaultPartitions;
        if (!Number.isInteger(parts) || parts < 1 || parts > 10_000) throw new LanceError('INVALID_ARGUMENT', `numPartitions: expected 1..10000, got ${partitions}`, { field: 'numPartitions' });
        let assign: number[][];
        if (assignment.length > 0) {
          for (const a of assignment) {
            if (!Array.isArray(a) || a.length === 0 || a.some((id) => !brokers.includes(id)) || new Set(a).size !== a.length) {
              throw new LanceError('INVALID_ARGUMENT', `assignments: ${JSON.stringify(a)} must list distinct known broker ids (${brokers.join(', ')})`, { field: 'assignments' });
            }
          }
          assign = assignment;
        } else {
          assign = assignReplicas(brokers, parts, rfEff, Object.keys(this.meta.topics).length);
        }
        parseKafkaTopicConfigs(config);
        if (b.validateOnly === true) return { topicId: '', partitions: assign.length, rf: assign[0]!.length };
        const topicId = randomUUID();
        const res = await this.proposeMeta({ op: 'createTopic', name, topicId, partitions: assign.length, rf: assign[0]!.length, config, assignment: assign });
        if (!res.ok) throw new LanceError('CONFLICT', res.error ?? `topic "${name}" already exists`, { topic: name });
        return { topicId, partitions: assign.length, rf: assign[0]!.length };
      }
      case 'deleteTopic': {
        if (!this.meta.topics[name]) throw notFound(name);
        const res = await this.proposeMeta({ op: 'deleteTopic', name });
        if (!res.ok) throw notFound(name);
        return {};
      }
      case 'createPartitions': {
        const t = this.meta.topics[name];
        if (!t) throw notFound(name);
        const total = Number(b.totalCount);
        if (!Number.isInteger(total) || total <= t.assignment.length) {
          throw new LanceError('INVALID_ARGUMENT', `numPartitions: topic "${name}" has ${t.assignment.length} partitions; the new count must be larger, got ${total}`, { field: 'numPartitions' });
        }
        const add = assignReplicas(this.liveBrokers(), total - t.assignment.length, t.rf, t.id, t.assignment.length);
        if (b.validateOnly === true) return {};
        const res = await this.proposeMeta({ op: 'createPartitions', name, assignment: add });
        if (!res.ok) throw notFound(name);
        return {};
      }
      case 'alterConfig': {
        if (!this.meta.topics[name]) throw notFound(name);
        const config = (b.config ?? {}) as Record<string, string>;
        parseKafkaTopicConfigs(config);
        if (b.validateOnly === true) return {};
        const res = await this.proposeMeta({ op: 'alterConfig', name, config });
        if (!res.ok) throw notFound(name);
        return {};
      }
      case 'memberAdd':
        return this.controllerAddMember(b.broker);
      case 'memberRemove': {
        const id = Number(b.nodeId);
        if (!Number.isInteger(id) || id < 0) throw new LanceError('INVALID_ARGUMENT', `nodeId: expected a non-negative integer, got ${String(b.nodeId)}`, { field: 'nodeId' });
        return this.controllerRemoveMember(id);
      }
      case 'reportPartition':
        return this.controllerReport(b);
      default: {
        const extra = this.extraControllerOps.get(method);
        if (extra) return extra(body);
        throw new LanceError('UNSUPPORTED', `unknown controller request "${method}"`);
      }
    }
  }

  private validateTopicName(name: string): void {
    if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
      throw new LanceError('INVALID_ARGUMENT', `topic: "${name}" is not a valid topic name (1-249 of [A-Za-z0-9._-], not "." or "..")`, { field: 'topic' });
    }
    if (name.startsWith('__')) throw new LanceError('INVALID_ARGUMENT', `topic: names starting with "__" are reserved for internal topics`, { field: 'topic' });
  }

  // ---------------------------------------------------------------- partition groups

  private scheduleReconcile(): void {
    if (this.reconcileQueued) return;
    this.reconcileQueued = true;
    this.reconcileChain = this.reconcileChain.then(async () => {
      this.reconcileQueued = false;
      await this.reconcile();
    }).catch((e: unknown) => this.logger.error({ err: e }, 'partition reconcile failed'));
  }

  private async reconcile(): Promise<void> {
    if (this.closed) return;
    const metaApplied = this.meta.applied;
    const metaCaughtUp = this.host.caughtUpWithLeader(META_GROUP);
    const want = new Map<string, { t: TopicState; p: number; replicas: number[]; founders: number[] }>();
    for (const t of Object.values(this.meta.topics)) {
      const founders = foundersOf(t);
      t.assignment.forEach((replicas, p) => {
        if (replicas.includes(this.nodeId)) want.set(partitionGroup(t, p), { t, p, replicas, founders: founders[p] ?? replicas });
      });
    }
    for (const [gid, rt] of this.parts) {
      if (want.has(gid)) continue;
      if (this.stillMember(rt)) continue; // moved away: keep serving until the group's membership drops us
      this.parts.delete(gid);
      for (const w of [...rt.commitWaiters, ...rt.durableWaiters]) w.reject(notFound(rt.topic, rt.partition));
      await this.host.removeGroup(gid);
      const topicDir = path.join(this.config.dataDir, `topic_${rt.topicNumericId}`);
      await fsp.rm(path.join(topicDir, String(rt.partition)), { recursive: true, force: true });
      await fsp.rmdir(topicDir).catch(() => undefined);
      this.logger.info({ group: gid, topic: rt.topic, partition: rt.partition }, 'partition replica removed');
    }
    for (const [gid, w] of want) {
      if (this.parts.has(gid) || this.closed) continue;
      const log = await PartitionRaftLog.open({
        dir: path.join(this.config.dataDir, `topic_${w.t.id}`, String(w.p)), dataDir: this.config.dataDir, group: gid,
        logOptions: this.storageOptions(), logger: this.logger,
        ...(this.opts.onQuarantine ? { onQuarantine: this.opts.onQuarantine } : {}),
        transfer: this.transferOptions(gid),
      });
      if (this.closed) { await log.close(); return; }
      const rt: PartitionRuntime = {
        group: gid, topic: w.t.name, topicNumericId: w.t.id, partition: w.p, log, hw: log.floorNextOffset, commitIndex: 0,
        role: 'follower', term: 0, leader: null, lastLeader: null, commitWaiters: [], durableWaiters: [], producers: new ReplicatedProducerState(),
      };
      this.parts.set(gid, rt);
      // batches below the snapshot floor are not re-applied: the producer state reads them from the log
      if (log.floorNextOffset > log.pl.logStartOffset) void rt.producers.seed(log.pl, log.floorNextOffset, (err) => this.logger.warn({ err, group: gid }, 'producer state scan failed'));
      // Founders bootstrap the group (entry 1 = the founding voters, identical on each); a replica added later starts
      // empty and is brought in by the leader (learner → promote).
      const bootstrap = w.founders.includes(this.nodeId) ? { voters: sortedIds(w.founders), learners: [] } : undefined;
      this.host.addGroup(gid, log, bootstrap, {
        onCommitted: (entries, commitIndex) => this.applyPartition(rt, entries, commitIndex),
        onState: (ev) => this.onPartitionState(rt, ev),
        onDurable: (durableIndex) => this.resolveWaiters(rt, rt.durableWaiters, durableIndex),
        // segment transfer installed the log up to meta.index: the HW jumps to the descriptor's offset
        onRestore: (snap) => {
          rt.hw = PartitionRaftLog.snapshotNextOffset(snap.data);
          rt.commitIndex = snap.meta.index;
          // the segments are still being pulled: the scan reads the log once the install is done
          void rt.producers.seed(rt.log.afterInstall(), rt.hw, (err) => this.logger.warn({ err, group: gid }, 'producer state scan failed'));
          this.events.emit('hw', rt.topic, rt.partition, rt.hw);
        },
      });
      this.logger.info({ group: gid, topic: w.t.name, partition: w.p, replicas: w.replicas }, 'partition replica started');
    }
    this.freshHold?.reconcileDone(metaApplied, metaCaughtUp);
    this.events.emit('change');
  }

  /**
   * A replica that the target assignment no longer lists stays open while its group's membership still contains
   * this node (the leader may still need it: a replacement catches up first, or it leads and transfers first), unless
   * the leader's newer report says it was dropped (a removed member may never see the entry that removed it).
   */
  private stillMember(rt: PartitionRuntime): boolean {
    const t = this.meta.topics[rt.topic];
    if (!t || t.id !== rt.topicNumericId) return false;
    const st = this.host.node(rt.group)?.status();
    if (!st || (!st.config.voters.includes(this.nodeId) && !st.config.learners.includes(this.nodeId))) return false;
    const rep = t.leaders?.[rt.partition];
    if (rep && rep.term >= st.term && !rep.voters.includes(this.nodeId) && !rep.learners.includes(this.nodeId)) return false;
    return true;
  }

  private applyPartition(rt: PartitionRuntime, entries: RaftEntry[], commitIndex: number): void {
    for (const e of entries) {
      if (e.type === EntryType.DATA) rt.producers.onCommitted(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength), rt.hw);
      // the no-op of the leader's own term: everything before it is committed, so the producer state is complete
      else if (e.type === EntryType.NOOP && rt.role === 'leader' && e.term === rt.term) rt.producers.leaderReady();
      rt.hw += offsetCountOf(e);
    }
    rt.commitIndex = commitIndex;
    this.resolveWaiters(rt, rt.commitWaiters, commitIndex);
    this.events.emit('hw', rt.topic, rt.partition, rt.hw);
  }

  private resolveWaiters(rt: PartitionRuntime, list: Waiter[], upTo: number): void {
    while (list.length > 0 && list[0]!.lastIndex <= upTo) {
      const w = list.shift()!;
      // the entry at lastIndex must still be ours (same term): otherwise a new leader overwrote it
      if (rt.log.term(w.lastIndex) === w.term) w.resolve();
      else w.reject(notLeader(`${rt.topic}-${rt.partition}`, rt.leader));
    }
  }

  private onPartitionState(rt: PartitionRuntime, ev: RaftStateEvent): void {
    const wasLeader = rt.role === 'leader';
    if (ev.role !== 'leader' || ev.term !== rt.term) rt.producers.stepDown();
    rt.role = ev.role;
    rt.term = ev.term;
    rt.leader = ev.leader;
    if (ev.leader !== null) rt.lastLeader = { id: ev.leader, term: ev.term };
    if (wasLeader && ev.role !== 'leader') {
      for (const w of [...rt.commitWaiters.splice(0), ...rt.durableWaiters.splice(0)]) w.reject(notLeader(`${rt.topic}-${rt.partition}`, ev.leader));
    }
    this.events.emit('change');
  }

  // ---------------------------------------------------------------- segment transfer + retention (segment-transfer.ts)

  private transferOptions(gid: string): NonNullable<Parameters<typeof PartitionRaftLog.open>[0]['transfer']> {
    this.segMetrics ??= this.opts.metrics ? new SegmentTransferMetrics(this.opts.metrics.registry) : undefined;
    return {
      nodeId: this.nodeId,
      fetch: async (source, req) => (await this.transport.binRpc(source, SEGMENT_CHUNK_METHOD, req, CHUNK_TIMEOUT_MS)).data,
      leaderHint: () => this.host.node(gid)?.currentLeader ?? null,
      ...(this.segMetrics ? { metrics: this.segMetrics } : {}),
    };
  }

  private async serveSegmentChunk(method: string, header: unknown): Promise<{ header: unknown; data: Buffer }> {
    const req = parseChunkRequest(method, header);
    const rt = this.parts.get(req.group);
    if (!rt) throw new LanceError('NOT_FOUND', `${req.group}: node ${this.nodeId} holds no replica of this group`, { group: req.group });
    return { header: { pos: req.pos }, data: await rt.log.readSegmentChunk(req) };
  }

  /** retention per partition replica (topic config over the broker default), at most up to the applied index */
  private async runRetention(): Promise<void> {
    if (this.retentionRunning || this.closed) return;
    this.retentionRunning = true;
    try {
      for (const rt of [...this.parts.values()]) {
        const t = this.meta.topics[rt.topic];
        const applied = this.host.node(rt.group)?.status().appliedIndex ?? 0;
        if (!t || this.closed) continue;
        const policy = logOptions(this.config, parseKafkaTopicConfigs(t.config)).retention;
        const gone = await rt.log.enforceRetention(policy, applied, this.retentionGuard?.(rt.topic, rt.partition)).catch((e: unknown) => {
          this.logger.warn({ err: e, group: rt.group }, 'retention pass failed');
          return [];
        });
        if (gone.length > 0) this.opts.metrics?.retentionDeletedSegments.inc({ topic: rt.topic }, gone.length);
      }
    } finally {
      this.retentionRunning = false;
    }
  }

  // ---------------------------------------------------------------- KafkaBackend

  /**
   * Kafka Metadata brokers: the registry's members (before the founders are registered: the static peers), plus a
   * removed broker that is still reported as some partition's leader (clients must be able to reach who they are
   * told leads).
   */
  brokers(): BrokerEndpoint[] {
    const active = activeBrokers(this.meta);
    const list: BrokerInfo[] = active.length > 0 ? [...active] : this.opts.peers.map((p) => this.staticInfo(p.nodeId)!);
    const known = new Set(list.map((b) => b.nodeId));
    for (const t of Object.values(this.meta.topics)) {
      for (const rep of t.leaders ?? []) {
        const info = rep ? this.meta.brokers[String(rep.leader)] : undefined;
        if (info && !known.has(info.nodeId)) { list.push(info); known.add(info.nodeId); }
      }
    }
    return list.sort((a, b) => a.nodeId - b.nodeId).map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.kafkaPort, rack: null }));
  }

  isReadOnly(): boolean {
    return this.config.readOnly;
  }

  private assertWritable(what: string): void {
    if (this.config.readOnly) throw new LanceError('READ_ONLY', `${what}: broker is read-only`);
  }

  private assertNotFenced(what: string): void {
    if (this.host.isFenced()) throw new LanceError('NOT_LEADER', `${what}: node ${this.nodeId} is fenced and serves no client traffic`, { leader: null });
  }

  private partitionMeta(t: TopicState, p: number): PartitionMetadata {
    const replicas = t.assignment[p]!;
    const rt = this.parts.get(partitionGroup(t, p));
    let leaderId = -1;
    let epoch = 0;
    let isr = replicas;
    if (rt && !this.host.isFenced()) {
      if (rt.leader !== null) {
        leaderId = rt.leader;
        epoch = rt.term;
      } else if (rt.lastLeader) {
        // the epoch it led in, never newer than the truth: a client that has seen the new leader keeps it
        const hint = metadataLeaderHint(this.nodeId, rt.lastLeader, replicas, this.hintTurn++);
        leaderId = hint.id;
        epoch = hint.term;
      } else {
        epoch = rt.term;
      }
      if (rt.role === 'leader') {
        const st = this.host.node(rt.group)?.status();
        if (st) {
          isr = [this.nodeId, ...st.progress.filter((f) => f.voter && f.id !== this.nodeId && f.lag <= ISR_MAX_LAG_ENTRIES && f.lastHeardMsAgo < 10_000).map((f) => f.id)].sort((a, b) => a - b);
        }
      }
    } else if (!rt && !this.host.isFenced()) {
      // No replica here: what the partition's leader last reported to the controller. Reports only move forward in
      // term, so the epoch given is never newer than the truth (a client that meets a newer leader refreshes).
      const rep = t.leaders?.[p];
      if (rep) {
        leaderId = rep.leader;
        epoch = rep.term;
        isr = rep.voters;
      }
    }
    return { partition: p, leaderId, leaderEpoch: epoch, replicas: [...replicas], isr: [...isr], offlineReplicas: [] };
  }

  private topicMetadata(t: TopicState): TopicMetadata {
    return { name: t.name, topicId: t.topicId, isInternal: false, partitions: t.assignment.map((_, p) => this.partitionMeta(t, p)) };
  }

  listTopics(): TopicMetadata[] {
    return Object.values(this.meta.topics).sort((a, b) => a.name.localeCompare(b.name)).map((t) => this.topicMetadata(t));
  }

  getTopic(name: string): TopicMetadata | undefined {
    const t = this.meta.topics[name];
    return t ? this.topicMetadata(t) : undefined;
  }

  getTopicById(topicId: string): TopicMetadata | undefined {
    const t = Object.values(this.meta.topics).find((x) => x.topicId === topicId);
    return t ? this.topicMetadata(t) : undefined;
  }

  autoCreateTopic(name: string): boolean {
    if (!this.config.topics.autoCreate || this.config.readOnly || !TOPIC_NAME.test(name) || name.startsWith('__')) return false;
    void this.onController('createTopic', { name, partitions: this.config.topics.defaultPartitions, rf: -1, config: {} })
      .catch((e: unknown) => { if (!isLanceError(e, 'CONFLICT')) this.logger.warn({ err: e, topic: name }, 'auto-create failed'); });
    return true;
  }

  async createTopic(req: KafkaCreateTopicRequest): Promise<CreateTopicResult> {
    this.assertWritable(`creating topic "${req.name}"`);
    this.validateTopicName(req.name);
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.configs)) if (v !== null) config[k] = v;
    parseKafkaTopicConfigs(config);
    const r = await this.onController('createTopic', {
      name: req.name, partitions: req.numPartitions, rf: req.replicationFactor, config,
      assignment: req.assignments.sort((a, b) => a.partition - b.partition).map((a) => a.brokerIds), validateOnly: req.validateOnly,
    }) as { topicId: string; partitions: number; rf: number };
    if (!req.validateOnly) await this.waitFor(() => this.meta.topics[req.name] !== undefined, CONTROLLER_WAIT_MS);
    return { topicId: r.topicId, numPartitions: r.partitions, replicationFactor: r.rf, configs: this.configEntries(config) };
  }

  async deleteTopic(name: string): Promise<void> {
    this.assertWritable(`deleting topic "${name}"`);
    await this.onController('deleteTopic', { name });
    await this.waitFor(() => this.meta.topics[name] === undefined, CONTROLLER_WAIT_MS);
  }

  async createPartitions(name: string, totalCount: number, validateOnly: boolean): Promise<void> {
    this.assertWritable(`adding partitions to "${name}"`);
    await this.onController('createPartitions', { name, totalCount, validateOnly });
    if (!validateOnly) await this.waitFor(() => (this.meta.topics[name]?.assignment.length ?? 0) >= totalCount, CONTROLLER_WAIT_MS);
  }

  private runtime(topic: string, partition: number): PartitionRuntime {
    const t = this.meta.topics[topic];
    if (!t) throw notFound(topic);
    if (partition < 0 || partition >= t.assignment.length) throw notFound(topic, partition);
    const rt = this.parts.get(partitionGroup(t, partition));
    if (!rt) {
      throw new LanceError('NOT_LEADER', `${topic}-${partition}: node ${this.nodeId} holds no replica (replicas: ${t.assignment[partition]!.join(', ')})`, { leader: null });
    }
    return rt;
  }

  produce(topic: string, partition: number, batches: ValidatedBatch[], acks: -1 | 0 | 1, timeoutMs: number): Promise<ProduceResult> {
    try {
      const what = `${topic}-${partition}`;
      this.assertWritable(`produce to ${what}`);
      this.assertNotFenced(`produce to ${what}`);
      if (batches.length === 0) throw new LanceError('INVALID_ARGUMENT', 'produce: no record batches', { field: 'records' });
      const rt = this.runtime(topic, partition);
      if (rt.role !== 'leader') throw notLeader(`produce to ${what}`, rt.leader);
      const seq = rt.producers.check(batches, what);
      if (seq.kind === 'duplicate') {
        // a retried idempotent batch already in the log: its original offset, once committed (acks=0: at once)
        const base = { baseOffset: seq.baseOffset, logAppendTimeMs: -1, logStartOffset: rt.log.pl.logStartOffset };
        return acks === 0 ? Promise.resolve(base) : this.waitCommitted(rt, seq.baseOffset, timeoutMs).then(() => base);
      }
      const base = rt.log.nextOffset;
      const p = this.proposeData(rt, batches.map((b) => b.bytes), acks, timeoutMs); // throws if nothing was proposed
      if (base !== null) rt.producers.onProposed(batches, base);
      return p.then((baseOffset) => ({ baseOffset, logAppendTimeMs: -1, logStartOffset: 0 }));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** resolves once the partition's HW passes `offset`; NOT_LEADER if this node stops leading first */
  private waitCommitted(rt: PartitionRuntime, offset: number, timeoutMs: number): Promise<void> {
    const what = `${rt.topic}-${rt.partition}`;
    const term = rt.term;
    const ms = timeoutMs > 0 ? timeoutMs : 30_000;
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (rt.hw > offset) { cleanup(); resolve(); } else if (rt.role !== 'leader' || rt.term !== term) { cleanup(); reject(notLeader(`produce to ${what}`, rt.leader)); }
      };
      const timer = setTimeout(() => { cleanup(); reject(new LanceError('TIMEOUT', `${what}: offset ${offset} not committed within ${ms} ms`)); }, ms);
      const cleanup = (): void => { clearTimeout(timer); this.events.off('hw', check); this.events.off('change', check); };
      this.events.on('hw', check);
      this.events.on('change', check);
      check();
    });
  }

  private proposeData(rt: PartitionRuntime, batches: Buffer[], acks: -1 | 0 | 1, timeoutMs: number): Promise<number> {
    const what = `${rt.topic}-${rt.partition}`;
    if (rt.role !== 'leader') throw notLeader(`produce to ${what}`, rt.leader);
    const base = rt.log.nextOffset;
    if (base === null) throw notLeader(`produce to ${what} (log catching up)`, rt.leader);
    for (const b of batches) setPartitionLeaderEpoch(b, rt.term);
    const r = this.host.step(rt.group, (n) => n.propose(batches.map((b) => ({ type: EntryType.DATA, data: b }))));
    const records = batches.length;
    this.opts.metrics?.recordsIn.inc({ topic: rt.topic }, records);
    if (acks === 0) return Promise.resolve(base);
    const list = acks === -1 ? rt.commitWaiters : rt.durableWaiters;
    const p = new Promise<void>((resolve, reject) => list.push({ lastIndex: r.lastIndex, term: r.term, resolve, reject }));
    const timed = timeoutMs > 0 ? this.withTimeout(p, timeoutMs, what) : p;
    return timed.then(() => base);
  }

  async fetch(topic: string, partition: number, offset: number, maxBytes: number): Promise<FetchResult> {
    this.assertNotFenced(`fetch from ${topic}-${partition}`);
    const rt = this.runtime(topic, partition);
    const hw = rt.hw;
    // not rt.log.pl: a segment install swaps the log under a read (clientLog answers a retriable NOT_LEADER then)
    const pl = rt.log.clientLog(`${topic}-${partition}`);
    const logStartOffset = pl.logStartOffset;
    const end = Math.max(hw, rt.log.nextOffset ?? hw);
    if (offset < logStartOffset || offset > end) {
      throw new LanceError('OFFSET_OUT_OF_RANGE', `${topic}-${partition}: offset ${offset} is outside ${logStartOffset}..${end}`, { offset, logStartOffset, highWatermark: hw });
    }
    const base = { highWatermark: hw, lastStableOffset: hw, logStartOffset };
    // offset in (hw, log end]: data exists here but is not committed yet (e.g. a new leader relearning the HW)
    if (offset >= hw) return { ...base, records: Buffer.alloc(0) };
    return { ...base, records: await readCommittedBatches((from, max) => pl.read(from, max), offset, hw, maxBytes) };
  }

  onHighWatermark(listener: (topic: string, partition: number, highWatermark: number) => void): () => void {
    this.events.on('hw', listener);
    return () => this.events.off('hw', listener);
  }

  async listOffsets(topic: string, partition: number, timestamp: number): Promise<ListOffsetResult> {
    const rt = this.runtime(topic, partition);
    // a follower installing segments answers NOT_LEADER (retriable): the log whose offsets it would give is being replaced
    const log = rt.log.clientLog(`${topic}-${partition}`);
    if (timestamp === ListOffsetsTimestamp.EARLIEST) return { offset: log.logStartOffset, timestamp: -1, leaderEpoch: rt.term };
    if (timestamp === ListOffsetsTimestamp.LATEST || timestamp === ListOffsetsTimestamp.MAX_TIMESTAMP) return { offset: rt.hw, timestamp: -1, leaderEpoch: rt.term };
    if (timestamp < 0) throw new LanceError('INVALID_ARGUMENT', `timestamp: ${timestamp} is not a valid ListOffsets timestamp`, { field: 'timestamp' });
    const found = await rt.log.pl.offsetForTimestamp(timestamp);
    if (found === null || found.offset >= rt.hw) return { offset: -1, timestamp: -1, leaderEpoch: rt.term };
    return { offset: found.offset, timestamp: found.timestamp, leaderEpoch: rt.term };
  }

  private configEntries(config: Record<string, string>): ConfigEntry[] {
    const s = this.config.storage;
    const defaults: Record<string, string> = {
      'retention.ms': String(s.retentionMs === 0 ? -1 : s.retentionMs),
      'retention.bytes': String(s.retentionBytes === 0 ? -1 : s.retentionBytes),
      'segment.bytes': String(s.segmentBytes),
      'segment.ms': String(s.segmentMs),
    };
    const types: Record<string, ConfigEntry['type']> = { 'retention.ms': 'LONG', 'retention.bytes': 'LONG', 'segment.bytes': 'INT', 'segment.ms': 'LONG' };
    const out: ConfigEntry[] = Object.entries(defaults).map(([name, def]) => ({
      name, value: config[name] ?? def, readOnly: false, isDefault: config[name] === undefined, isSensitive: false,
      source: config[name] === undefined ? 'DEFAULT' : 'TOPIC', type: types[name]!, documentation: null,
    }));
    out.push({ name: 'cleanup.policy', value: 'delete', readOnly: true, isDefault: true, isSensitive: false, source: 'DEFAULT', type: 'LIST', documentation: null });
    return out;
  }

  async describeTopicConfigs(topic: string): Promise<ConfigEntry[]> {
    const t = this.meta.topics[topic];
    if (!t) throw notFound(topic);
    return this.configEntries(t.config);
  }

  async describeBrokerConfigs(): Promise<ConfigEntry[]> {
    const e = (name: string, value: string, type: ConfigEntry['type']): ConfigEntry => ({
      name, value, readOnly: true, isDefault: false, isSensitive: false, source: 'STATIC_BROKER', type, documentation: null,
    });
    return [
      e('broker.id', String(this.nodeId), 'INT'),
      e('num.partitions', String(this.config.topics.defaultPartitions), 'INT'),
      e('default.replication.factor', String(Math.min(3, this.liveBrokers().length)), 'SHORT'),
      e('auto.create.topics.enable', String(this.config.topics.autoCreate), 'BOOLEAN'),
      e('read.only', String(this.config.readOnly), 'BOOLEAN'),
    ];
  }

  async alterTopicConfigs(topic: string, configs: Record<string, string | null>, validateOnly: boolean): Promise<void> {
    this.assertWritable(`altering configs of "${topic}"`);
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(configs)) if (v !== null) config[k] = v;
    parseKafkaTopicConfigs(config);
    await this.onController('alterConfig', { name: topic, config, validateOnly });
  }

  // ---------------------------------------------------------------- hooks for the consumer-group layer (cluster-groups.ts)

  /** the applied metadata state (read only: callers must not mutate it) */
  metadataState(): Readonly<MetadataState> {
    return this.meta;
  }

  /** the metadata term in which this node is the controller with a complete applied state, else null */
  controllerReadyTerm(): number | null {
    return this.metaRole === 'leader' ? this.metaReadyTerm : null;
  }

  /** metadata index proposed last (controller) — a restarted group service waits until this is applied */
  metadataLastIndex(): number {
    return this.host.node(META_GROUP)?.status().lastIndex ?? 0;
  }

  /** listener for any role/leader/applied-state change (metadata or partitions); returns the unsubscribe */
  onStateChange(listener: () => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  /** controller only: propose one metadata command, resolved with its apply result once committed */
  proposeMetadata(c: MetaCommand): Promise<{ ok: boolean; error?: string }> {
    if (this.metaRole !== 'leader') return Promise.reject(notLeader(`metadata change ${c.op}`, this.metaLeader));
    try {
      return this.proposeMeta(c);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** runs a registered controller request here (controller) or on the controller (RPC over the raft transport) */
  callController(method: string, body: unknown): Promise<unknown> {
    return this.onController(method, body);
  }

  /** serves `method` on the controller (see callController); inputs arrive from the wire: validate them */
  registerControllerOp(method: string, fn: (body: unknown) => Promise<unknown>): void {
    this.extraControllerOps.set(method, fn);
  }

  /** the Kafka endpoint of a node (from the peers list), or null */
  kafkaEndpointOf(nodeId: number): BrokerEndpoint | null {
    return this.brokers().find((b) => b.nodeId === nodeId) ?? null;
  }

  /** HW of this node's replica of a partition (consumer lag), or null when it holds none */
  highWatermarkOf(topic: string, partition: number): number | null {
    const t = this.meta.topics[topic];
    if (!t) return null;
    return this.parts.get(partitionGroup(t, partition))?.hw ?? null;
  }

  private retentionGuard: ((topic: string, partition: number) => Parameters<PartitionRaftLog['enforceRetention']>[2]) | undefined;

  /** tiering hook: which sealed segments retention may delete on this replica (a leader keeps un-uploaded ones) */
  setRetentionGuard(fn: (topic: string, partition: number) => Parameters<PartitionRaftLog['enforceRetention']>[2]): void {
    this.retentionGuard = fn;
  }

  /** tiering hook (tiering/cluster-dr.ts): this node's partition replicas, read live; only leaders upload */
  tieringReplicas(): Array<{
    topic: string; topicId: string; partition: number; log(): PartitionRaftLog['pl']; term(): number; leading(): boolean; hw(): number;
    retention(): { retentionMs: number; retentionBytes: number };
  }> {
    const out = [];
    for (const rt of this.parts.values()) {
      const t = this.meta.topics[rt.topic];
      if (!t) continue;
      out.push({
        topic: rt.topic, topicId: t.topicId, partition: rt.partition, log: () => rt.log.pl, term: () => rt.term, hw: () => rt.hw,
        leading: () => !this.closed && rt.role === 'leader' && this.parts.get(rt.group) === rt,
        retention: () => {
          const r = logOptions(this.config, parseKafkaTopicConfigs(this.meta.topics[rt.topic]?.config ?? {})).retention;
          return { retentionMs: r.retentionMs, retentionBytes: r.retentionBytes };
        },
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- runtime hooks (same shape as LocalBroker)

  setKafkaEndpoint(_host: string, _port: number): void {
    this.kafkaUp = true;
  }

  setAdminEndpoint(host: string, port: number): void {
    this.adminEndpoint = { host, port };
  }

  setKafkaDown(): void {
    this.kafkaUp = false;
  }

  readiness(): { storage: boolean; kafka: boolean } {
    return { storage: !this.closed, kafka: this.kafkaUp };
  }

  updateGauges(): void {
    const m = this.opts.metrics;
    if (!m) return;
    for (const rt of this.parts.values()) {
      const labels = { topic: rt.topic, partition: String(rt.partition) };
      m.logEndOffset.set(labels, rt.log.nextOffset ?? rt.hw);
      m.logStartOffset.set(labels, rt.log.pl.logStartOffset);
      m.highWatermark.set(labels, rt.hw);
    }
  }

  /** waits until every local partition group and the metadata group are idle enough to close */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.membershipTimer) clearInterval(this.membershipTimer);
    this.membershipTimer = null;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.reconcileChain.catch(() => undefined);
    for (const rt of this.parts.values()) {
      for (const w of [...rt.commitWaiters.splice(0), ...rt.durableWaiters.splice(0)]) w.reject(new LanceError('IO', 'broker shutting down'));
    }
    for (const w of this.metaWaiters.values()) w.reject(new LanceError('IO', 'broker shutting down'));
    this.metaWaiters.clear();
    this.events.emit('closed');
    await this.transport.close();
    await this.host.close();
  }

  // ---------------------------------------------------------------- admin

  private groupTopic(gid: string): { topic: string | null; partition: number | null } {
    const rt = this.parts.get(gid);
    return rt ? { topic: rt.topic, partition: rt.partition } : { topic: null, partition: null };
  }

  clusterGroups(): ClusterGroup[] {
    return this.host.status().map(({ group, status: s }) => ({
      group, ...this.groupTopic(group), role: s.role, term: s.term, leader: s.leader, commitIndex: s.commitIndex, lastIndex: s.lastIndex,
      voters: [...s.config.voters], learners: [...s.config.learners],
      followers: s.progress.filter((f) => f.id !== this.nodeId).map((f) => ({ nodeId: f.id, voter: f.voter, matchIndex: f.match, lag: f.lag })),
    })).sort((a, b) => (a.group === META_GROUP ? -1 : b.group === META_GROUP ? 1 : a.group.localeCompare(b.group)));
  }

  private partitionStates(t: TopicState): PartitionState[] {
    return t.assignment.map((_, p) => {
      const rt = this.parts.get(partitionGroup(t, p));
      const segs = rt?.log.pl.segments() ?? [];
      return {
        partition: p, leader: rt?.leader ?? -1, logStartOffset: rt?.log.pl.logStartOffset ?? 0, logEndOffset: rt ? (rt.log.nextOffset ?? rt.hw) : 0,
        highWatermark: rt?.hw ?? 0, sizeBytes: segs.reduce((n, s) => n + s.sizeBytes, 0), segments: segs.length,
      };
    });
  }

  clusterView(): ClusterView {
    const me = this.opts.peers.find((p) => p.nodeId === this.nodeId)!;
    return {
      clusterId: this.clusterId, nodeId: this.nodeId, readOnly: this.config.readOnly,
      role: this.metaRole === 'leader' ? 'leader' : this.metaStatus()?.config.learners.includes(this.nodeId) ? 'learner' : 'follower',
      version: this.opts.version ?? '0.0.0', startedAt: this.startedAt,
      listeners: { kafka: { host: me.host, port: me.kafkaPort }, admin: this.adminEndpoint },
      brokers: this.brokers().map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port })),
      topics: Object.values(this.meta.topics).sort((a, b) => a.id - b.id).map((t) => ({ id: t.id, name: t.name, topicId: t.topicId, partitions: this.partitionStates(t) })),
      controllerId: this.controllerId(), fenced: this.host.isFenced(), groups: this.clusterGroups(),
    };
  }

  private summary(t: TopicState): TopicSummary {
    const p = parseKafkaTopicConfigs(t.config);
    const s = this.config.storage;
    return {
      id: t.id, name: t.name, partitions: t.assignment.length, topicId: t.topicId, replicationFactor: t.rf,
      config: { retentionMs: p.retentionMs ?? s.retentionMs, retentionBytes: p.retentionBytes ?? s.retentionBytes, segmentBytes: p.segmentBytes ?? s.segmentBytes },
    };
  }

  adminListTopics(): TopicSummary[] {
    return Object.values(this.meta.topics).sort((a, b) => a.id - b.id).map((t) => this.summary(t));
  }

  adminGetTopic(name: string): TopicDetail {
    const t = this.meta.topics[name];
    if (!t) throw notFound(name);
    return { ...this.summary(t), partitionStates: this.partitionStates(t) };
  }

  async adminCreateTopic(req: CreateTopicRequest): Promise<TopicSummary> {
    const config: Record<string, string> = {};
    if (req.config?.retentionMs !== undefined) config['retention.ms'] = String(req.config.retentionMs === 0 ? -1 : req.config.retentionMs);
    if (req.config?.retentionBytes !== undefined) config['retention.bytes'] = String(req.config.retentionBytes === 0 ? -1 : req.config.retentionBytes);
    if (req.config?.segmentBytes !== undefined) config['segment.bytes'] = String(req.config.segmentBytes);
    await this.createTopic({ name: req.name, numPartitions: req.partitions ?? -1, replicationFactor: -1, assignments: [], configs: config, validateOnly: false });
    return this.adminGetTopic(req.name);
  }

  async adminDeleteTopic(name: string): Promise<{ deleted: string; id: number }> {
    const t = this.meta.topics[name];
    if (!t) throw notFound(name);
    await this.deleteTopic(name);
    return { deleted: name, id: t.id };
  }

  /** Admin produce: one batch per partition, answered once committed (acks=all). Leader partitions only. */
  async adminProduce(topic: string, req: ProduceRequest): Promise<ProduceResponse> {
    this.assertWritable(`produce to ${topic}`);
    this.assertNotFenced(`produce to ${topic}`);
    const t = this.meta.topics[topic];
    if (!t) throw notFound(topic);
    const n = t.assignment.length;
    const enc = req.encoding ?? 'utf8';
    const buf = (s: string | null | undefined): Buffer | null => (s === null || s === undefined ? null : Buffer.from(s, enc));
    const now = Date.now();
    const byPartition = new Map<number, SimpleRecord[]>();
    req.records.forEach((r, i) => {
      const key = buf(r.key);
      let partition: number;
      if (r.partition !== undefined) {
        if (r.partition >= n) throw new LanceError('INVALID_ARGUMENT', `records.${i}.partition: topic "${topic}" has partitions 0-${n - 1}, got ${r.partition}`, { field: `records.${i}.partition` });
        partition = r.partition;
      } else if (key !== null) {
        partition = partitionForKey(key, n);
      } else {
        partition = this.nextPartitionRr++ % n;
      }
      const headers = Object.entries(r.headers ?? {}).map(([k, v]) => ({ key: k, value: Buffer.from(v, enc) }));
      const list = byPartition.get(partition) ?? [];
      list.push({ key, value: buf(r.value), headers, timestamp: r.timestamp ?? now });
      byPartition.set(partition, list);
    });
    const pending = [...byPartition.entries()].sort((a, b) => a[0] - b[0]).map(([partition, records]) => {
      const rt = this.runtime(topic, partition);
      const done = this.proposeData(rt, [encodeRecordBatch(records).bytes], -1, 30_000);
      return { partition, count: records.length, done };
    });
    const out = [];
    for (const p of pending) out.push({ partition: p.partition, baseOffset: await p.done, count: p.count });
    return { topic, partitions: out };
  }

  /** Admin fetch: committed records of this node's replica (any replica serves; followers may lag the leader's HW). */
  async adminFetch(topic: string, partition: number, q: FetchQuery, signal: AbortSignal): Promise<FetchResponse> {
    const rt = this.runtime(topic, partition);
    const offset = q.offset ?? rt.log.pl.logStartOffset;
    if (q.waitMs > 0 && rt.hw <= offset) {
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(timer); this.events.off('hw', onHw); signal.removeEventListener('abort', done); resolve(); };
        const onHw = (tp: string, p: number, hw: number): void => { if (tp === topic && p === partition && hw > offset) done(); };
        const timer = setTimeout(done, q.waitMs);
        this.events.on('hw', onHw);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    const r = await this.fetch(topic, partition, offset, q.maxBytes);
    const records: ConsumedRecord[] = [];
    let next = offset;
    for (const rec of decodeRecordBatches(r.records)) {
      if (rec.offset < offset) continue;
      if (records.length >= q.max) break;
      records.push({
        offset: rec.offset, timestamp: rec.timestamp, key: rec.key?.toString(q.encoding) ?? null, value: rec.value?.toString(q.encoding) ?? null,
        headers: Object.fromEntries(rec.headers.map((h) => [h.key, h.value?.toString(q.encoding) ?? ''])),
      });
      next = rec.offset + 1;
    }
    return { topic, partition, encoding: q.encoding, logStartOffset: r.logStartOffset, highWatermark: r.highWatermark, nextOffset: Math.max(next, offset), records };
  }

  // ---------------------------------------------------------------- cluster admin (members, transfer, fence)

  members(req: MembersRequest): ClusterActionResponse {
    const gid = req.group ?? META_GROUP;
    const r = this.host.step(gid, (n) => {
      if (n.status().role !== 'leader') throw notLeader(`membership change of ${gid}`, n.status().leader);
      return req.action === 'add-learner' ? n.addLearner(req.nodeId) : req.action === 'promote' ? n.promote(req.nodeId) : n.removeServer(req.nodeId);
    });
    return { ok: true, message: `${req.action} node ${req.nodeId} in ${gid}: proposed at index ${r.index}` };
  }

  transferLeader(req: TransferLeaderRequest): ClusterActionResponse {
    const gid = req.group ?? META_GROUP;
    this.host.step(gid, (n) => {
      if (n.status().role !== 'leader') throw notLeader(`leadership transfer of ${gid}`, n.status().leader);
      n.transferLeadership(req.to);
    });
    return { ok: true, message: `${gid}: transferring leadership to node ${req.to}` };
  }

  setFenced(fenced: boolean): ClusterActionResponse {
    this.host.setFenced(fenced);
    this.logger.warn({ fenced }, fenced ? 'node fenced: no client traffic, no votes' : 'node unfenced');
    this.events.emit('change');
    return { ok: true, message: fenced ? `node ${this.nodeId} fenced` : `node ${this.nodeId} unfenced` };
  }
}

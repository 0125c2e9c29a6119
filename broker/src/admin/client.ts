/**
 * Typed client of a broker's admin API (port 1992). Used by `lnc` online commands and by the operator, which may
 * import ONLY this module of the broker (plus what it imports: ./schemas.ts and common/errors.ts). Every response
 * is validated with zod; an error response becomes a LanceError carrying the server's code and message.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { z } from 'zod';
import { LanceError, type LanceErrorCode } from '../common/errors.ts';
import {
  GroupDetailSchema, GroupListSchema, ResetOffsetsResponseSchema, type GroupDetail, type GroupSummary, type ResetOffsetsRequest, type ResetOffsetsResponse,
  ClusterActionResponseSchema, ClusterViewSchema, CreateTopicRequestSchema, DeleteTopicResponseSchema, ErrorBodySchema, FetchResponseSchema, LiveSchema,
  ProduceRequestSchema, ProduceResponseSchema, ReadySchema, TopicDetailSchema, TopicListSchema, TopicSummarySchema,
  MemberActionResponseSchema, MemberEndpointsSchema, MembersListSchema, type MemberActionResponse, type MemberEndpoints, type MembersList,
  type ClusterActionResponse, type ClusterView, type MembersRequest, type TransferLeaderRequest, type CreateTopicRequest, type Encoding, type FetchResponse, type ProduceRequest, type ProduceResponse,
  type Ready, type TopicDetail, type TopicSummary,
  NodeStatusSchema, type NodeStatus,
} from './schemas.ts';

export * from './schemas.ts';

export const DEFAULT_ADMIN_PORT = 1992;

const KNOWN_CODES: ReadonlySet<string> = new Set<LanceErrorCode>([
  'USAGE', 'IO', 'NOT_FOUND', 'CORRUPT', 'INVALID_CONFIG', 'INVALID_ARGUMENT', 'OFFSET_OUT_OF_RANGE', 'NOT_LEADER',
  'READ_ONLY', 'FENCED', 'TIMEOUT', 'CONFLICT', 'UNSUPPORTED', 'INTERNAL',
]);

/**
 * `--server` value → base URL: `host:port`, `host` (port 1992), `[::1]:1992`, or a full `http(s)://` URL.
 * Throws USAGE naming the value when it cannot be one.
 */
export function parseServerAddress(server: string): string {
  const s = server.trim();
  if (/^https?:\/\//.test(s)) {
    try {
      const u = new URL(s);
      return `${u.protocol}//${u.host}`;
    } catch {
      throw new LanceError('USAGE', `--server: not a valid URL: ${JSON.stringify(server)}`);
    }
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(s);
  if (!m) throw new LanceError('USAGE', `--server: expected host:port (e.g. localhost:1992), got ${JSON.stringify(server)}`);
  const port = m[2] === undefined ? DEFAULT_ADMIN_PORT : Number(m[2]);
  if (port < 1 || port > 65535) throw new LanceError('USAGE', `--server: port ${port} is out of range 1-65535`);
  return `http://${m[1]}:${port}`;
}

export interface AdminClientOptions {
  /** per-request timeout (ms) on top of any server-side wait; default 30 s */
  timeoutMs?: number;
}

export interface FetchRecordsOptions {
  offset?: number;
  max?: number;
  maxBytes?: number;
  waitMs?: number;
  encoding?: Encoding;
}

export class AdminClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;

  /** `server`: anything parseServerAddress accepts (e.g. "localhost:1992" or "http://10.0.0.5:1992") */
  constructor(server: string, opts: AdminClientOptions = {}) {
    this.baseUrl = parseServerAddress(server);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  live(): Promise<{ status: 'ok' }> {
    return this.request('GET', '/health/live', LiveSchema);
  }

  /** `GET /v1/node`: cold-start state (fresh / restoring from a cold-starting node, running from a broker). */
  node(): Promise<NodeStatus> {
    return this.request('GET', '/v1/node', NodeStatusSchema);
  }

  /** Never throws for "not ready" (503): returns the checks. */
  async ready(): Promise<Ready> {
    return this.request('GET', '/health/ready', ReadySchema, undefined, { acceptStatus: [503] });
  }

  async metricsText(): Promise<string> {
    const res = await this.send('GET', '/metrics');
    if (!res.ok) throw this.errorFrom(res.status, res.text, '/metrics');
    return res.text;
  }

  cluster(): Promise<ClusterView> {
    return this.request('GET', '/v1/cluster', ClusterViewSchema);
  }

  /** cluster mode: single-server membership change (default group "__meta") */
  members(req: MembersRequest): Promise<ClusterActionResponse> {
    return this.request('POST', '/v1/members', ClusterActionResponseSchema, req);
  }

  /** cluster mode: every broker of the registry with its role and membership state */
  listMembers(): Promise<MembersList> {
    return this.request('GET', '/v1/members', MembersListSchema);
  }

  /** cluster mode: make `nodeId` a member (idempotent); the catch-up and promotions run asynchronously */
  addMember(nodeId: number, ep: MemberEndpoints): Promise<MemberActionResponse> {
    return this.request('PUT', `/v1/members/${nodeId}`, MemberActionResponseSchema, MemberEndpointsSchema.parse(ep));
  }

  /** cluster mode: retire `nodeId` (idempotent); its replicas move to other brokers asynchronously */
  removeMember(nodeId: number): Promise<MemberActionResponse> {
    return this.request('DELETE', `/v1/members/${nodeId}`, MemberActionResponseSchema);
  }

  transferLeader(req: TransferLeaderRequest): Promise<ClusterActionResponse> {
    return this.request('POST', '/v1/transfer-leader', ClusterActionResponseSchema, req);
  }

  fence(): Promise<ClusterActionResponse> {
    return this.request('POST', '/v1/fence', ClusterActionResponseSchema, {});
  }

  unfence(): Promise<ClusterActionResponse> {
    return this.request('POST', '/v1/unfence', ClusterActionResponseSchema, {});
  }

  listGroups(): Promise<GroupSummary[]> {
    return this.request('GET', '/v1/groups', GroupListSchema);
  }

  describeGroup(group: string): Promise<GroupDetail> {
    return this.request('GET', `/v1/groups/${encodeURIComponent(group)}`, GroupDetailSchema);
  }

  resetOffsets(group: string, req: ResetOffsetsRequest): Promise<ResetOffsetsResponse> {
    return this.request('POST', `/v1/groups/${encodeURIComponent(group)}/reset-offsets`, ResetOffsetsResponseSchema, req);
  }

  listTopics(): Promise<TopicSummary[]> {
    return this.request('GET', '/v1/topics', TopicListSchema);
  }

  getTopic(name: string): Promise<TopicDetail> {
    return this.request('GET', `/v1/topics/${encodeURIComponent(name)}`, TopicDetailSchema);
  }

  createTopic(req: CreateTopicRequest): Promise<TopicSummary> {
    return this.request('POST', '/v1/topics', TopicSummarySchema, CreateTopicRequestSchema.parse(req));
  }

  deleteTopic(name: string): Promise<{ deleted: string; id: number }> {
    return this.request('DELETE', `/v1/topics/${encodeURIComponent(name)}`, DeleteTopicResponseSchema);
  }

  /** Appends records; resolves after they are durable (fsynced). */
  produce(topic: string, req: ProduceRequest): Promise<ProduceResponse> {
    return this.request('POST', `/v1/topics/${encodeURIComponent(topic)}/records`, ProduceResponseSchema, ProduceRequestSchema.parse(req));
  }

  fetchRecords(topic: string, partition: number, opts: FetchRecordsOptions = {}): Promise<FetchResponse> {
    const q = new URLSearchParams();
    if (opts.offset !== undefined) q.set('offset', String(opts.offset));
    if (opts.max !== undefined) q.set('max', String(opts.max));
    if (opts.maxBytes !== undefined) q.set('maxBytes', String(opts.maxBytes));
    if (opts.waitMs !== undefined) q.set('waitMs', String(opts.waitMs));
    if (opts.encoding !== undefined) q.set('encoding', opts.encoding);
    const qs = q.toString();
    const path = `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records${qs ? `?${qs}` : ''}`;
    return this.request('GET', path, FetchResponseSchema, undefined, { extraTimeoutMs: opts.waitMs ?? 0 });
  }

  /**
   * One HTTP exchange with node:http(s) (not fetch: WHATWG fetch refuses "bad ports" such as 6000 or 6665-6669,
   * which are legitimate admin ports here).
   */
  private send(method: string, path: string, body?: unknown, extraTimeoutMs = 0): Promise<{ status: number; ok: boolean; text: string }> {
    const url = new URL(this.baseUrl + path);
    const timeout = this.timeoutMs + extraTimeoutMs;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        timeout,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (e) => reject(new LanceError('IO', `${method} ${url.href}: response interrupted (${e.message})`, { url: url.href }, { cause: e })));
      });
      req.on('timeout', () => {
        req.destroy();
        reject(new LanceError('TIMEOUT', `${method} ${url.href}: no answer within ${timeout} ms`, { url: url.href }));
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        reject(new LanceError('IO', `${method} ${url.href}: cannot reach the admin API (${e.code ?? e.message})`, { url: url.href }, { cause: e }));
      });
      req.end(payload);
    });
  }

  private errorFrom(status: number, text: string, path: string): LanceError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const body = ErrorBodySchema.safeParse(parsed);
    if (body.success) {
      const code = KNOWN_CODES.has(body.data.code) ? (body.data.code as LanceErrorCode) : 'INTERNAL';
      return new LanceError(code, body.data.message, { ...body.data.details, status, path });
    }
    return new LanceError('IO', `${path}: HTTP ${status}: ${text.slice(0, 200)}`, { status, path });
  }

  private async request<S extends z.ZodType>(
    method: string, path: string, schema: S, body?: unknown, opts: { acceptStatus?: number[]; extraTimeoutMs?: number } = {},
  ): Promise<z.infer<S>> {
    const res = await this.send(method, path, body, opts.extraTimeoutMs);
    const text = res.text;
    if (!res.ok && !(opts.acceptStatus ?? []).includes(res.status)) throw this.errorFrom(res.status, text, path);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new LanceError('IO', `${method} ${path}: response is not JSON: ${text.slice(0, 200)}`, { path });
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new LanceError('IO', `${method} ${path}: unexpected response: ${issue.path.join('.') || '(body)'}: ${issue.message}`, { path });
    }
    return r.data;
  }
}

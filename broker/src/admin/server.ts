/**
 * The admin HTTP API on port 1992 (node:http, no framework): health, Prometheus metrics, and /v1 JSON endpoints.
 * Routing, body limits, zod validation and error mapping live here; the domain work is the AdminService's.
 * Errors are JSON `{code, message, details?}` with an HTTP status derived from the LanceError code.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLanceError, LanceError, type LanceErrorCode } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import {
  CreateTopicRequestSchema, FetchQuerySchema, MembersRequestSchema, ProduceRequestSchema, RECORD_LIMITS, TransferLeaderRequestSchema,
  ResetOffsetsRequestSchema, type GroupDetail, type GroupSummary, type ResetOffsetsRequest, type ResetOffsetsResponse,
  type ClusterActionResponse, type MembersRequest, type TransferLeaderRequest,
  MemberEndpointsSchema, type MemberActionResponse, type MemberEndpoints, type MembersList,
  type ClusterView, type CreateTopicRequest, type FetchQuery, type FetchResponse, type ProduceRequest, type ProduceResponse,
  type Ready, type TopicDetail, type TopicSummary, type NodeStatus,
} from './schemas.ts';

export interface AdminService {
  readiness(): Ready['checks'];
  cluster(): ClusterView | Promise<ClusterView>;
  /** `GET /v1/node` (cluster mode: what a cold-starting peer asks; absent: 501) */
  node?(): NodeStatus | Promise<NodeStatus>;
  listTopics(): TopicSummary[] | Promise<TopicSummary[]>;
  /** throws NOT_FOUND */
  getTopic(name: string): TopicDetail | Promise<TopicDetail>;
  createTopic(req: CreateTopicRequest): Promise<TopicSummary>;
  deleteTopic(name: string): Promise<{ deleted: string; id: number }>;
  produce(topic: string, req: ProduceRequest): Promise<ProduceResponse>;
  /** `signal` aborts a wait for data (client gone, server shutting down) */
  fetch(topic: string, partition: number, q: FetchQuery, signal: AbortSignal): Promise<FetchResponse>;
  /** consumer groups (absent: /v1/groups answers 501 UNSUPPORTED) */
  groups?: {
    list(): GroupSummary[] | Promise<GroupSummary[]>;
    /** throws NOT_FOUND */
    describe(group: string): GroupDetail | Promise<GroupDetail>;
    /** throws CONFLICT when the group has members */
    resetOffsets(group: string, req: ResetOffsetsRequest): Promise<ResetOffsetsResponse>;
  };
  /** cluster mode only (absent: the routes answer 501 UNSUPPORTED "standalone node") */
  clusterAdmin?: {
    members(req: MembersRequest): ClusterActionResponse | Promise<ClusterActionResponse>;
    transferLeader(req: TransferLeaderRequest): ClusterActionResponse | Promise<ClusterActionResponse>;
    setFenced(fenced: boolean): ClusterActionResponse | Promise<ClusterActionResponse>;
    /** cluster membership (broker registry); absent: the /v1/members/{id} routes answer 501 */
    listMembers?(): MembersList | Promise<MembersList>;
    addMember?(nodeId: number, ep: MemberEndpoints): Promise<MemberActionResponse>;
    removeMember?(nodeId: number): Promise<MemberActionResponse>;
  };
}

function groupsOf(service: AdminService): NonNullable<AdminService['groups']> {
  if (!service.groups) throw new LanceError('UNSUPPORTED', 'this broker has no group coordinator attached');
  return service.groups;
}

function clusterOnly(service: AdminService): NonNullable<AdminService['clusterAdmin']> {
  if (!service.clusterAdmin) throw new LanceError('UNSUPPORTED', 'this node runs standalone: membership, leadership transfer and fencing need cluster mode (cluster.peers)');
  return service.clusterAdmin;
}

function memberId(raw: string): number {
  if (!/^\d{1,9}$/.test(raw)) throw new LanceError('INVALID_ARGUMENT', `nodeId: expected a non-negative integer in the path /v1/members/{nodeId}, got ${JSON.stringify(raw)}`, { field: 'nodeId' });
  return Number(raw);
}

export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  service: AdminService;
  metrics: MetricsSource;
  logger: Logger;
  /** called once per request with the route pattern and status (for lance_admin_requests_total) */
  onRequest?: (route: string, status: number) => void;
}

export interface AdminServerHandle {
  port: number;
  /** stop accepting, abort waits, let in-flight requests finish, close idle keep-alive sockets */
  close(): Promise<void>;
}

const STATUS: Record<LanceErrorCode, number> = {
  USAGE: 400,
  INVALID_ARGUMENT: 400,
  INVALID_CONFIG: 400,
  NOT_FOUND: 404,
  OFFSET_OUT_OF_RANGE: 416,
  CONFLICT: 409,
  READ_ONLY: 409,
  FENCED: 409,
  NOT_LEADER: 503,
  TIMEOUT: 504,
  UNSUPPORTED: 501,
  CORRUPT: 500,
  IO: 500,
  INTERNAL: 500,
};

export function httpStatusFor(code: LanceErrorCode): number {
  return STATUS[code];
}

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function sendJsonRaw(res: http.ServerResponse, status: number, body: unknown, closing = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...(closing ? { connection: 'close' } : {}),
  });
  res.end(text);
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Over the limit: keep draining without storing, so the client can read the 413 instead of a reset.
    if (size <= limit) chunks.push(chunk);
  }
  if (size > limit) throw new HttpError(413, 'INVALID_ARGUMENT', `request body of ${size} bytes exceeds the limit of ${limit} bytes`);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'INVALID_ARGUMENT', 'request body: expected JSON, got nothing');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'INVALID_ARGUMENT', `request body: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

function validate<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string; code: string; keys?: string[] }[] } } }, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let field = issue.path.map(String).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    field = [field, issue.keys[0]].filter(Boolean).join('.');
    message = 'unknown field';
  }
  throw new LanceError('INVALID_ARGUMENT', `${what}: ${field || '(body)'}: ${message}`, { field: field || undefined });
}

type Handler = (ctx: { req: http.IncomingMessage; res: http.ServerResponse; params: string[]; url: URL; signal: AbortSignal }) => Promise<void>;

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServerHandle> {
  const { service, logger } = opts;
  const shutdown = new AbortController();
  const sendJson = (res: http.ServerResponse, status: number, body: unknown): void => sendJsonRaw(res, status, body, shutdown.signal.aborted);

  const routes: Array<{ method: string; pattern: RegExp; name: string; handler: Handler }> = [
    { method: 'GET', pattern: /^\/health\/live$/, name: '/health/live', handler: async ({ res }) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'GET', pattern: /^\/health\/ready$/, name: '/health/ready', handler: async ({ res }) => {
        const checks = service.readiness();
        const ok = checks.storage && checks.kafka && !shutdown.signal.aborted;
        sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not-ready', checks });
      },
    },
    {
      method: 'GET', pattern: /^\/metrics$/, name: '/metrics', handler: async ({ res }) => {
        const text = await opts.metrics.metrics();
        res.writeHead(200, { 'content-type': opts.metrics.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(text);
      },
    },
    { method: 'GET', pattern: /^\/v1\/cluster$/, name: '/v1/cluster', handler: async ({ res }) => sendJson(res, 200, await service.cluster()) },
    {
      method: 'GET', pattern: /^\/v1\/node$/, name: '/v1/node', handler: async ({ res }) => {
        if (!service.node) throw new LanceError('UNSUPPORTED', 'this node runs standalone: /v1/node (cold-start state) is a cluster-mode route');
        sendJson(res, 200, await service.node());
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/members$/, name: '/v1/members', handler: async ({ req, res }) => {
        const body = validate(MembersRequestSchema, await readBody(req, 64 * 1024), 'members');
        sendJson(res, 200, await clusterOnly(service).members(body));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/members$/, name: '/v1/members', handler: async ({ res }) => {
        const c = clusterOnly(service);
        if (!c.listMembers) throw new LanceError('UNSUPPORTED', 'this broker does not support membership listing');
        sendJson(res, 200, await c.listMembers());
      },
    },
    {
      method: 'PUT', pattern: /^\/v1\/members\/([^/]+)$/, name: '/v1/members/:id', handler: async ({ req, res, params }) => {
        const id = memberId(params[0]!);
        const body = validate(MemberEndpointsSchema, await readBody(req, 64 * 1024), 'add member');
        const c = clusterOnly(service);
        if (!c.addMember) throw new LanceError('UNSUPPORTED', 'this broker does not support membership changes');
        sendJson(res, 200, await c.addMember(id, body));
      },
    },
    {
      method: 'DELETE', pattern: /^\/v1\/members\/([^/]+)$/, name: '/v1/members/:id', handler: async ({ res, params }) => {
        const id = memberId(params[0]!);
        const c = clusterOnly(service);
        if (!c.removeMember) throw new LanceError('UNSUPPORTED', 'this broker does not support membership changes');
        sendJson(res, 200, await c.removeMember(id));
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/transfer-leader$/, name: '/v1/transfer-leader', handler: async ({ req, res }) => {
        const body = validate(TransferLeaderRequestSchema, await readBody(req, 64 * 1024), 'transfer-leader');
        sendJson(res, 200, await clusterOnly(service).transferLeader(body));
      },
    },
    { method: 'POST', pattern: /^\/v1\/fence$/, name: '/v1/fence', handler: async ({ res }) => sendJson(res, 200, await clusterOnly(service).setFenced(true)) },
    { method: 'POST', pattern: /^\/v1\/unfence$/, name: '/v1/unfence', handler: async ({ res }) => sendJson(res, 200, await clusterOnly(service).setFenced(false)) },
    { method: 'GET', pattern: /^\/v1\/groups$/, name: '/v1/groups', handler: async ({ res }) => sendJson(res, 200, await groupsOf(service).list()) },
    { method: 'GET', pattern: /^\/v1\/groups\/([^/]+)$/, name: '/v1/groups/:group', handler: async ({ res, params }) => sendJson(res, 200, await groupsOf(service).describe(params[0]!)) },
    {
      method: 'POST', pattern: /^\/v1\/groups\/([^/]+)\/reset-offsets$/, name: '/v1/groups/:group/reset-offsets', handler: async ({ req, res, params }) => {
        const body = validate(ResetOffsetsRequestSchema, await readBody(req, 64 * 1024), 'reset-offsets');
        sendJson(res, 200, await groupsOf(service).resetOffsets(params[0]!, body));
      },
    },
    { method: 'GET', pattern: /^\/v1\/topics$/, name: '/v1/topics', handler: async ({ res }) => sendJson(res, 200, await service.listTopics()) },
    {
      method: 'POST', pattern: /^\/v1\/topics$/, name: '/v1/topics', handler: async ({ req, res }) => {
        const body = validate(CreateTopicRequestSchema, await readBody(req, 64 * 1024), 'create topic');
        sendJson(res, 201, await service.createTopic(body));
      },
    },
    { method: 'GET', pattern: /^\/v1\/topics\/([^/]+)$/, name: '/v1/topics/:name', handler: async ({ res, params }) => sendJson(res, 200, await service.getTopic(params[0]!)) },
    { method: 'DELETE', pattern: /^\/v1\/topics\/([^/]+)$/, name: '/v1/topics/:name', handler: async ({ res, params }) => sendJson(res, 200, await service.deleteTopic(params[0]!)) },
    {
      method: 'POST', pattern: /^\/v1\/topics\/([^/]+)\/records$/, name: '/v1/topics/:name/records', handler: async ({ req, res, params }) => {
        const body = validate(ProduceRequestSchema, await readBody(req, RECORD_LIMITS.maxBodyBytes), 'produce');
        sendJson(res, 200, await service.produce(params[0]!, body));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/topics\/([^/]+)\/partitions\/([^/]+)\/records$/, name: '/v1/topics/:name/partitions/:p/records',
      handler: async ({ res, params, url, signal }) => {
        const partition = Number(params[1]);
        if (!Number.isInteger(partition) || partition < 0) throw new LanceError('INVALID_ARGUMENT', `partition: expected a non-negative integer, got ${JSON.stringify(params[1])}`, { field: 'partition' });
        const q = validate(FetchQuerySchema, Object.fromEntries(url.searchParams), 'fetch query');
        sendJson(res, 200, await service.fetch(params[0]!, partition, q, signal));
      },
    },
  ];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const clientGone = new AbortController();
    res.on('close', () => clientGone.abort());
    // While shutting down, answer in-flight requests with `Connection: close` and drop their sockets right after,
    // so close() does not wait for keep-alive timeouts.
    res.on('finish', () => {
      if (shutdown.signal.aborted) server.closeIdleConnections();
    });
    const signal = AbortSignal.any([clientGone.signal, shutdown.signal]);
    let routeName = 'unmatched';
    const run = async (): Promise<void> => {
      const matching = routes.filter((r) => r.pattern.test(url.pathname));
      if (matching.length === 0) throw new HttpError(404, 'NOT_FOUND', `no such endpoint: ${url.pathname}`);
      const route = matching.find((r) => r.method === req.method);
      if (!route) {
        res.setHeader('allow', matching.map((r) => r.method).join(', '));
        throw new HttpError(405, 'INVALID_ARGUMENT', `${req.method} not allowed on ${url.pathname}`);
      }
      routeName = route.name;
      let params: string[];
      try {
        params = route.pattern.exec(url.pathname)!.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        throw new HttpError(400, 'INVALID_ARGUMENT', `bad percent-encoding in ${url.pathname}`);
      }
      await route.handler({ req, res, params, url, signal });
    };
    run().catch((e: unknown) => {
      let status: number;
      let body: { code: string; message: string; details?: Record<string, unknown> };
      if (e instanceof HttpError) {
        status = e.status;
        body = { code: e.code, message: e.message };
      } else if (isLanceError(e)) {
        status = httpStatusFor(e.code);
        body = e.toJSON();
      } else {
        status = 500;
        body = { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
        logger.error({ err: e, path: url.pathname }, 'admin request failed');
      }
      if (status >= 500) logger.warn({ path: url.pathname, code: body.code, msg2: body.message }, 'admin request error');
      if (res.headersSent) res.destroy();
      else sendJson(res, status, body);
    }).finally(() => {
      opts.onRequest?.(routeName, res.statusCode);
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      const msg = code === 'EADDRINUSE'
        ? `admin API: port ${opts.port} on ${opts.host} is already in use (another broker running?); choose another with listeners.admin.port / LANCE_ADMIN_PORT / --admin-port`
        : `admin API: cannot listen on ${opts.host}:${opts.port}: ${code ?? e.message}`;
      reject(new LanceError('IO', msg, { host: opts.host, port: opts.port }, { cause: e }));
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: opts.host, port }, 'admin API listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        shutdown.abort();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

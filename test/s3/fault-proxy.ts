/**
 * A fault-injecting HTTP reverse proxy between an S3 client and s3rver (path-style requests). Rules are
 * programmable at run time: answer 5xx, stall (accept and never answer), answer slowly, reset the connection, cut
 * a response mid-body, flip a byte of a request or response body, "lose" a write (answer 200 with a valid-looking
 * ETag without forwarding it) or lose the answer to a write that did happen. Probabilistic rules draw from a seeded PRNG, so a failing run can be replayed.
 *
 * Used to prove that the layers above never use a corrupt object, never treat a lost upload as done, and never hang.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type S3Op =
  | 'ListBuckets' | 'CreateBucket' | 'ListObjects' | 'ListObjectsV2' | 'PutObject' | 'CopyObject' | 'GetObject'
  | 'HeadObject' | 'DeleteObject' | 'DeleteObjects' | 'CreateMultipartUpload' | 'UploadPart'
  | 'CompleteMultipartUpload' | 'AbortMultipartUpload' | 'Other';

/** Pure: which S3 operation a path-style request is. */
export function s3Operation(method: string, rawUrl: string, headers: http.IncomingHttpHeaders = {}): S3Op {
  const u = new URL(rawUrl, 'http://x');
  const q = u.searchParams;
  const parts = u.pathname.split('/').filter((_, i) => i > 0);
  const hasKey = parts.length > 1 && parts.slice(1).join('/') !== '';
  const m = method.toUpperCase();
  if (parts.length === 0 || parts[0] === '') return m === 'GET' ? 'ListBuckets' : 'Other';
  if (!hasKey) {
    if (m === 'PUT') return 'CreateBucket';
    if (m === 'POST' && q.has('delete')) return 'DeleteObjects';
    if (m === 'GET') return q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    return 'Other';
  }
  if (m === 'PUT') {
    if (q.has('partNumber') && q.has('uploadId')) return 'UploadPart';
    return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
  }
  if (m === 'POST') {
    if (q.has('uploads')) return 'CreateMultipartUpload';
    if (q.has('uploadId')) return 'CompleteMultipartUpload';
    return 'Other';
  }
  if (m === 'DELETE') return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  if (m === 'GET') return 'GetObject';
  if (m === 'HEAD') return 'HeadObject';
  return 'Other';
}

export interface RequestInfo {
  op: S3Op;
  method: string;
  url: string;
  /** the object key (path-style: everything after the bucket), '' for bucket-level requests */
  key: string;
  headers: http.IncomingHttpHeaders;
}

export type FaultAction =
  /** answer with this status and an S3 XML error body, without forwarding */
  | { kind: 'error'; status?: number; code?: string }
  /** accept the request and never answer (until the client gives up or the proxy closes) */
  | { kind: 'stall' }
  /** forward, then deliver the response body `chunkBytes` at a time every `intervalMs` */
  | { kind: 'slow'; chunkBytes: number; intervalMs: number }
  /** destroy the client connection without answering */
  | { kind: 'reset' }
  /** forward, send the headers and `afterBytes` of the response body, then destroy the connection */
  | { kind: 'cut-response'; afterBytes: number }
  /** forward, flip one byte of the response body (default: the middle one) */
  | { kind: 'corrupt-response'; offset?: number }
  /** forward (the request takes effect), then reset the client connection: the answer is lost */
  | { kind: 'lose-response' }
  /** flip one byte of the request body (default: the middle one), then forward */
  | { kind: 'corrupt-request'; offset?: number }
  /**
   * answer 200 with ETag = MD5 of the body (what S3 would say) but never forward the request; completing a multipart
   * upload with a lost part then fails with 400 InvalidPart, as on S3
   */
  | { kind: 'lose' };

export interface FaultRule {
  name?: string;
  match: (req: RequestInfo) => boolean;
  action: FaultAction;
  /** apply to the first N matching requests only (default: every one) */
  times?: number;
  /** apply to each matching request with this probability (seeded PRNG) */
  probability?: number;
}

export interface RequestRecord {
  op: S3Op;
  method: string;
  url: string;
  key: string;
  /** the rule applied, if any */
  fault: string | undefined;
  /** status sent to the client (undefined when none was sent) */
  status: number | undefined;
}

export interface FaultProxy {
  endpoint: string;
  port: number;
  /** returns a function that removes the rule */
  addRule(rule: FaultRule): () => void;
  clearRules(): void;
  /** every request seen, in arrival order */
  readonly requests: RequestRecord[];
  /** how many times each named rule fired */
  fired(name: string): number;
  close(): Promise<void>;
}

/** mulberry32: tiny seeded PRNG for reproducible probabilistic faults */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** S3 operations by name, for rule matchers: `match: op('UploadPart')`. */
export function op(...ops: S3Op[]): (r: RequestInfo) => boolean {
  return (r) => ops.includes(r.op);
}

function flip(buf: Buffer, offset: number | undefined): Buffer {
  if (buf.length === 0) return buf;
  const out = Buffer.from(buf);
  const i = Math.min(buf.length - 1, offset ?? Math.floor(buf.length / 2));
  out[i] = out[i]! ^ 0xff;
  return out;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export async function startFaultProxy(upstream: string, opts: { seed?: number } = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  const random = seededRandom(opts.seed ?? 1);
  const rules: { rule: FaultRule; used: number }[] = [];
  const firedCount = new Map<string, number>();
  const requests: RequestRecord[] = [];
  const sockets = new Set<Socket>();
  /** multipart uploads with a part the proxy "lost": completing them fails like on S3 */
  const lostUploads = new Set<string>();

  const pick = (info: RequestInfo): FaultRule | undefined => {
    for (const r of rules) {
      if (!r.rule.match(info)) continue;
      if (r.rule.times !== undefined && r.used >= r.rule.times) continue;
      if (r.rule.probability !== undefined && random() >= r.rule.probability) continue;
      r.used++;
      const name = r.rule.name ?? r.rule.action.kind;
      firedCount.set(name, (firedCount.get(name) ?? 0) + 1);
      return r.rule;
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => {
      req.socket.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const pathname = new URL(url, 'http://x').pathname;
    const key = decodeURIComponent(pathname.split('/').slice(2).join('/'));
    const info: RequestInfo = { op: s3Operation(req.method ?? 'GET', url, req.headers), method: req.method ?? 'GET', url, key, headers: req.headers };
    const body = await readAll(req);
    const rule = pick(info);
    const record: RequestRecord = { op: info.op, method: info.method, url, key, fault: rule ? (rule.name ?? rule.action.kind) : undefined, status: undefined };
    requests.push(record);
    const a = rule?.action;

    if (a?.kind === 'error') {
      const status = a.status ?? 500;
      const code = a.code ?? (status === 503 ? 'SlowDown' : 'InternalError');
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by fault proxy</Message><RequestId>fault</RequestId></Error>`;
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': req.method === 'HEAD' ? 0 : Buffer.byteLength(xml) });
      res.end(req.method === 'HEAD' ? undefined : xml);
      return;
    }
    if (a?.kind === 'stall') return; // keep the socket open, answer nothing; close() destroys it
    if (a?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (a?.kind === 'lose') {
      if (info.op === 'UploadPart') lostUploads.add(new URL(url, 'http://x').searchParams.get('uploadId') ?? '');
      record.status = 200;
      res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"`, 'content-length': 0 });
      res.end();
      return;
    }

    if (info.op === 'CompleteMultipartUpload' && lostUploads.has(new URL(url, 'http://x').searchParams.get('uploadId') ?? '')) {
      // What real S3 answers when a listed part was never stored. (s3rver would crash reading the missing part.)
      const xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidPart</Code><Message>One or more of the specified parts could not be found.</Message></Error>';
      record.status = 400;
      res.writeHead(400, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
      return;
    }

    const sent = a?.kind === 'corrupt-request' ? flip(body, a.offset) : body;
    const headers = { ...req.headers };
    delete headers.expect; // the body is already here; no 100-continue dance with the upstream
    headers['content-length'] = String(sent.length);
    if (sent.length === 0 && req.method !== 'PUT' && req.method !== 'POST') delete headers['content-length'];

    const upRes = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const upReq = http.request({ host: up.hostname, port: up.port, method: req.method, path: url, headers }, resolve);
      upReq.on('error', reject);
      upReq.end(sent);
    }).catch((e: unknown) => {
      record.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`fault proxy: upstream error: ${String(e)}`);
      return undefined;
    });
    if (!upRes) return;
    record.status = upRes.statusCode;
    const status = upRes.statusCode ?? 502;

    if (a?.kind === 'lose-response') {
      upRes.resume();
      upRes.once('end', () => req.socket.destroy());
      return;
    }
    if (a?.kind === 'corrupt-response') {
      const data = flip(await readAll(upRes), a.offset);
      res.writeHead(status, upRes.headers);
      res.end(data);
      return;
    }
    if (a?.kind === 'cut-response') {
      const data = await readAll(upRes);
      res.writeHead(status, upRes.headers);
      res.write(data.subarray(0, Math.min(a.afterBytes, Math.max(0, data.length - 1))), () => {
        req.socket.destroy();
      });
      return;
    }
    if (a?.kind === 'slow') {
      const data = await readAll(upRes);
      res.writeHead(status, upRes.headers);
      for (let i = 0; i < data.length; i += a.chunkBytes) {
        if (res.destroyed) return;
        res.write(data.subarray(i, i + a.chunkBytes));
        await new Promise((r) => setTimeout(r, a.intervalMs));
      }
      res.end();
      return;
    }
    res.writeHead(status, upRes.headers);
    upRes.pipe(res);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    addRule(rule) {
      const entry = { rule, used: 0 };
      rules.push(entry);
      return () => {
        const i = rules.indexOf(entry);
        if (i >= 0) rules.splice(i, 1);
      };
    },
    clearRules() {
      rules.length = 0;
    },
    requests,
    fired: (name) => firedCount.get(name) ?? 0,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Kubernetes `Status` error bodies. Every failure the stand-in returns is a KubeStatusError carrying the exact
 * reason/code pair a real kube-apiserver would use, so clients (kubectl, client-node, the operator) branch the same way.
 */
export interface StatusCause { reason?: string; message: string; field?: string }

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, unknown>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; uid?: string; retryAfterSeconds?: number };
  code: number;
}

export class KubeStatusError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusBody['details'];

  constructor(code: number, reason: string, message: string, details?: StatusBody['details']) {
    super(message);
    this.name = 'KubeStatusError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): StatusBody {
    const s: StatusBody = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

export interface GroupKind { group: string; kind: string; plural: string }

function resourceName(gk: GroupKind): string {
  return gk.group ? `${gk.plural}.${gk.group}` : gk.plural;
}

export const errors = {
  notFound(gk: GroupKind, name: string): KubeStatusError {
    return new KubeStatusError(404, 'NotFound', `${resourceName(gk)} "${name}" not found`, { name, group: gk.group, kind: gk.plural });
  },
  alreadyExists(gk: GroupKind, name: string): KubeStatusError {
    return new KubeStatusError(409, 'AlreadyExists', `${resourceName(gk)} "${name}" already exists`, { name, group: gk.group, kind: gk.plural });
  },
  conflict(gk: GroupKind, name: string, why: string): KubeStatusError {
    return new KubeStatusError(409, 'Conflict', `Operation cannot be fulfilled on ${resourceName(gk)} "${name}": ${why}`, { name, group: gk.group, kind: gk.plural });
  },
  invalid(gk: GroupKind, name: string, causes: StatusCause[]): KubeStatusError {
    const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(', ');
    return new KubeStatusError(422, 'Invalid', `${gk.kind}${gk.group ? '.' + gk.group : ''} "${name}" is invalid: ${list}`, {
      name, group: gk.group, kind: gk.kind,
      causes: causes.map((c) => ({ reason: c.reason ?? 'FieldValueInvalid', message: c.field ? `${c.message}` : c.message, field: c.field ?? '' })),
    });
  },
  badRequest(message: string): KubeStatusError {
    return new KubeStatusError(400, 'BadRequest', message);
  },
  methodNotAllowed(message: string): KubeStatusError {
    return new KubeStatusError(405, 'MethodNotAllowed', message);
  },
  gone(message: string): KubeStatusError {
    return new KubeStatusError(410, 'Expired', message);
  },
  unsupportedMediaType(contentType: string): KubeStatusError {
    return new KubeStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${contentType})`);
  },
  pathNotFound(path: string): KubeStatusError {
    return new KubeStatusError(404, 'NotFound', `the server could not find the requested resource (path ${path})`);
  },
  internal(message: string): KubeStatusError {
    return new KubeStatusError(500, 'InternalError', message);
  },
};

export function successStatus(details?: StatusBody['details']): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', ...(details ? { details } : {}) };
}

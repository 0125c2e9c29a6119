import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (test/kube/ is two levels down). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Image → process mapping, the one place that says what a container image "is" on this machine. `entrypoint` plays
 * the role of the image's ENTRYPOINT (replaced by container.command) and `cmd` its CMD (replaced by container.args).
 */
export interface ImageSpec {
  entrypoint: string[];
  cmd: string[];
  /** Programs on the image's PATH: a `command[0]` with this basename runs the mapped argv instead. */
  bin?: Record<string, string[]>;
}

const node = process.execPath;
/** The project's CLIs as the broker image ships them (`lance` server, `lnc` tool). */
const LANCE_BINS: Record<string, string[]> = {
  lance: [node, path.join(REPO_ROOT, 'bin', 'lance.js')],
  lnc: [node, path.join(REPO_ROOT, 'bin', 'lnc.js')],
  node: [node],
};

export const IMAGES: { match: RegExp; spec: ImageSpec; note: string }[] = [
  { match: /^(.*\/)?lance\/broker(:.*)?$/, spec: { entrypoint: [node, path.join(REPO_ROOT, 'bin', 'lance.js')], cmd: [], bin: LANCE_BINS }, note: 'the broker server (bin/lance.js); `lance`/`lnc` commands map to bin/*.js' },
  { match: /^(.*\/)?lance\/operator(:.*)?$/, spec: { entrypoint: [node, path.join(REPO_ROOT, 'bin', 'lance-operator.js')], cmd: [], bin: LANCE_BINS }, note: 'the operator (bin/lance-operator.js → operator/src/main.ts; `--import tsx` would resolve tsx from the pod dir)' },
  { match: /^(.*\/)?lance\/test-http(:.*)?$/, spec: { entrypoint: [node, path.join(REPO_ROOT, 'test', 'kube', 'images', 'test-http.mjs')], cmd: [] }, note: 'tiny HTTP test server' },
  { match: /^(.*\/)?(busybox|alpine|debian|ubuntu)(:.*)?$/, spec: { entrypoint: [], cmd: ['sh'] }, note: 'host shell utilities: command/args run as-is on the host' },
  { match: /^(.*\/)?node(:.*)?$/, spec: { entrypoint: [], cmd: [node] }, note: 'the host node binary' },
];

export function resolveImage(image: string): ImageSpec | undefined {
  return IMAGES.find((i) => i.match.test(image))?.spec;
}

/** The argv a container runs, with Docker/Kubernetes command/args override rules. */
export function containerArgv(image: ImageSpec, command: string[] | undefined, args: string[] | undefined): string[] {
  const entry = command && command.length ? command : image.entrypoint;
  const cmd = args !== undefined && (args.length || command) ? args : (command && command.length ? [] : image.cmd);
  const argv = [...entry, ...cmd];
  const mapped = command && command.length ? image.bin?.[path.basename(command[0])] : undefined;
  if (mapped) return [...mapped, ...argv.slice(1)];
  // `node` as a command means the host node binary (images built FROM node rely on it being on PATH).
  if (argv[0] === 'node') argv[0] = node;
  return argv;
}

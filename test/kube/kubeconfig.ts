import path from 'node:path';
import { atomicWriteFile } from '../../broker/src/common/fsutil.ts';

/** Writes a kubeconfig pointing at the stand-in (plain HTTP, no auth) and returns its path. */
export async function writeKubeconfig(dir: string, server: string, namespace = 'default'): Promise<string> {
  const file = path.join(dir, 'kubeconfig');
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: lance-standin',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true', // plain HTTP; client-node refuses http:// without it
    'users:',
    '- name: lance-standin',
    '  user:',
    '    token: standin',
    'contexts:',
    '- name: lance-standin',
    '  context:',
    '    cluster: lance-standin',
    '    user: lance-standin',
    `    namespace: ${namespace}`,
    'current-context: lance-standin',
    '',
  ].join('\n');
  await atomicWriteFile(file, text);
  return file;
}

import { describe, expect, it } from 'vitest';
import { parseOperatorArgs } from './main.ts';

describe('operator flags', () => {
  it('parses every flag, with defaults', () => {
    expect(parseOperatorArgs([])).toEqual({ namespaces: [], healthPort: 8081, metricsPort: 8080, leaderElect: false, leaseName: 'lance-operator', brokerBindAddress: 'any' });
    expect(parseOperatorArgs(['--kubeconfig', '/k', '--namespace', 'a,b', '-n', 'c', '--health-port=0', '--metrics-port', '9090', '--leader-elect', '--lease-name', 'l', '--lease-namespace', 'ops', '--broker-bind-address', 'podIP', '--bind-address', '127.0.0.5']))
      .toEqual({ kubeconfig: '/k', namespaces: ['a', 'b', 'c'], healthPort: 0, metricsPort: 9090, leaderElect: true, leaseName: 'l', leaseNamespace: 'ops', brokerBindAddress: 'podIP', bindAddress: '127.0.0.5' });
  });
  it('errors name the flag and carry USAGE', () => {
    expect(() => parseOperatorArgs(['--health-port', 'x'])).toThrow(/--health-port/);
    expect(() => parseOperatorArgs(['--health-port', '70000'])).toThrow(/--health-port/);
    expect(() => parseOperatorArgs(['--namespace', 'Bad_NS'])).toThrow(/--namespace/);
    expect(() => parseOperatorArgs(['--broker-bind-address', 'x'])).toThrow(/--broker-bind-address/);
    expect(parseOperatorArgs(['--node-lost-grace-seconds', '30']).nodeLostGraceSeconds).toBe(30);
    expect(() => parseOperatorArgs(['--node-lost-grace-seconds', '-1'])).toThrow(/--node-lost-grace-seconds/);
    expect(() => parseOperatorArgs(['--bogus'])).toThrow(/unknown flag --bogus/);
    expect(() => parseOperatorArgs(['--lease-name'])).toThrow(/--lease-name: needs a value/);
    let err: unknown;
    try { parseOperatorArgs(['--bogus']); } catch (e) { err = e; }
    expect(err).toMatchObject({ code: 'USAGE' });
  });
});

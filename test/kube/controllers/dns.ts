import fs from 'node:fs';
import path from 'node:path';
import { Controller } from './base.ts';
import type { Store } from '../store.ts';
import { matchLabels, selectorFromObject } from '../selectors.ts';
import { isPodReady } from './util.ts';

/**
 * Cluster DNS records as a JSON file (`<dataDir>/hosts.json`: fqdn → IPv4 list), read by images/dns-preload.mjs
 * inside pod processes. Records: `<hostname>.<subdomain>.<ns>.svc.cluster.local` for pods whose subdomain names a
 * Service in their namespace (StatefulSet pods), and `<svc>.<ns>.svc.cluster.local` → the Service's pod IPs (ready
 * ones, or all with publishNotReadyAddresses). There are no virtual IPs: a Service name resolves to pod IPs, so
 * clients must use the target port.
 */
export class DnsController extends Controller {
  private last = '';
  readonly file: string;

  constructor(store: Store, dataDir: string) {
    super(store, 500);
    this.file = path.join(dataDir, 'hosts.json');
  }

  protected override interested(ev: { tk: string }): boolean { return ev.tk === '/pods' || ev.tk === '/services'; }

  protected reconcile(): void {
    const s = this.store;
    const pods = s.list(s.type('', 'pods')!, undefined).items.filter((p) => p.status?.podIP && !p.metadata.deletionTimestamp);
    const services = s.list(s.type('', 'services')!, undefined).items;
    const recs: Record<string, string[]> = {};
    const add = (name: string, ip: string) => { const k = name.toLowerCase(); (recs[k] ??= []).includes(ip) || recs[k].push(ip); };
    const svcNames = new Set(services.map((x) => `${x.metadata.namespace}/${x.metadata.name}`));
    for (const p of pods) {
      const ns = p.metadata.namespace!;
      if (p.spec.hostname && p.spec.subdomain && svcNames.has(`${ns}/${p.spec.subdomain}`)) add(`${p.spec.hostname}.${p.spec.subdomain}.${ns}.svc.cluster.local`, p.status.podIP);
    }
    for (const svc of services) {
      if (!svc.spec?.selector) continue;
      const ns = svc.metadata.namespace!;
      const reqs = selectorFromObject({ matchLabels: svc.spec.selector });
      for (const p of pods) {
        if (p.metadata.namespace !== ns || !matchLabels(reqs, p.metadata.labels)) continue;
        if (svc.spec.publishNotReadyAddresses || isPodReady(p)) add(`${svc.metadata.name}.${ns}.svc.cluster.local`, p.status.podIP);
      }
    }
    const sorted = JSON.stringify(Object.fromEntries(Object.keys(recs).sort().map((k) => [k, recs[k]])));
    if (sorted === this.last) return;
    // Readers poll this file on every lookup: replace it atomically so they never see half of it.
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, sorted);
    fs.renameSync(tmp, this.file);
    this.last = sorted;
  }
}

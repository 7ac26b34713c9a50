// Live figures for the web console (issue 25): this node's decision and SIP counters since it
// started, read from the same Prometheus registry /metrics exposes. A client polls and draws the
// rates from the differences. Who may read them: node-status.ts.

import type { Registry } from 'prom-client';
import { send } from '../envelope.ts';
import type { RouteSpec } from '../route.ts';
import { nodeCounters } from '../../services/node-status.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The registry as /metrics reads it now, SIP workers' counters included (app.ts). */
    currentMetrics: () => Promise<Registry>;
  }
}

/** The sum of a counter's series whose labels pass `keep`; 0 for a counter not registered here. */
async function total(registry: Registry, name: string, keep: (labels: Partial<Record<string, string | number>>) => boolean = () => true): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.reduce((sum, sample) => (keep(sample.labels) ? sum + sample.value : sum), 0);
}

export const routes: RouteSpec[] = [
  {
    method: 'GET',
    url: '/v2/stats',
    summary: "This node's decisions (allowed, denied) and SIP requests (forwarded, rejected) since start (superduper)",
    handler: async ({ request, reply, actor }) => {
      const counters = await nodeCounters(actor, async () => {
        const registry = await request.server.currentMetrics();
        const decided = (result: string) => total(registry, 'ipwarden_decisions_total', (labels) => labels.result === result);
        return {
          decisions: { allowed: await decided('allow'), denied: await decided('deny') },
          sip: { forwarded: await total(registry, 'ipwarden_sip_packets_forwarded_total'), rejected: await total(registry, 'ipwarden_sip_requests_rejected_total') },
        };
      });
      return send(request, reply, counters);
    },
  },
];

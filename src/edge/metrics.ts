// The edge's Prometheus counters, all named ipwarden_sip_*. Label children are cached so the
// per-packet cost is one increment, not a label lookup.
import { Counter, type Registry } from 'prom-client';
import type { Outcome } from './pipeline.ts';

export interface EdgeMetrics {
  count(outcome: Outcome): void;
  received(): void;
  socketError(): void;
}

export function createEdgeMetrics(registry: Registry): EdgeMetrics {
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name: `ipwarden_sip_${name}`, help, labelNames, registers: [registry] });
  const received = counter('packets_received_total', 'UDP datagrams received by the SIP edge');
  const forwarded = byLabel(counter('packets_forwarded_total', 'SIP messages relayed, by direction', ['direction']));
  const rejected = byLabel(counter('requests_rejected_total', 'SIP requests refused, by reason', ['reason']));
  const malformed = counter('packets_malformed_total', 'Datagrams dropped as unparsable SIP');
  const dropped = byLabel(counter('packets_dropped_total', 'SIP messages dropped unanswered, by reason', ['reason']));
  const socketErrors = counter('socket_errors_total', 'Errors reported by the edge socket (failed sends)');

  return {
    received: () => received.inc(),
    socketError: () => socketErrors.inc(),
    count(outcome) {
      switch (outcome.action) {
        case 'forward':
          return forwarded(outcome.direction).inc();
        case 'reject':
          return rejected(outcome.reason).inc();
        case 'drop':
          return dropped(outcome.reason).inc();
        case 'malformed':
          return malformed.inc();
      }
    },
  };
}

function byLabel(metric: Counter): (label: string) => Counter.Internal {
  const children = new Map<string, Counter.Internal>();
  return (label) => {
    let found = children.get(label);
    if (found === undefined) children.set(label, (found = metric.labels(label)));
    return found;
  };
}

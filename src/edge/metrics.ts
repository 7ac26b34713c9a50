// The edge's Prometheus counters, all named ipwarden_sip_*. Counted per packet, so each series is
// bound once (../metrics.ts) and a count is one increment.
import type { Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram, type CounterSeries } from '../metrics.ts';
import type { Outcome } from './pipeline.ts';

export interface EdgeMetrics {
  count(outcome: Outcome): void;
  received(): void;
  socketError(): void;
  /** How long the receive queue had been non-empty when a datagram was read, ms. */
  queueDelay(ms: number): void;
  /** An outbound request sent from this address (a dedicated IP, or the main socket's). */
  sentFrom(ip: string): void;
}

export function createEdgeMetrics(registry: Registry): EdgeMetrics {
  const family = (name: string, help: string) => new LabelledCounter(`ipwarden_sip_${name}`, help).register(registry);
  // An unlabelled counter is shown (as 0) from the start.
  const single = (name: string, help: string) => family(name, help).seriesOf('', {});
  const received = single('packets_received_total', 'UDP datagrams received by the SIP edge');
  const forwarded = byLabel(family('packets_forwarded_total', 'SIP messages relayed, by direction'), 'direction');
  const rejected = byLabel(family('requests_rejected_total', 'SIP requests refused, by reason'), 'reason');
  const malformed = single('packets_malformed_total', 'Datagrams dropped as unparsable SIP');
  const dropped = byLabel(family('packets_dropped_total', 'SIP messages dropped unanswered, by reason'), 'reason');
  const socketErrors = single('socket_errors_total', 'Errors reported by the edge socket (failed sends)');
  const queueDelay = new LabelledHistogram(
    'ipwarden_sip_queue_delay_seconds',
    'How long the receive queue had been non-empty when a datagram was read (new calls get 503 past 0.1 s)',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  )
    .register(registry)
    .seriesOf('', {});
  // api.md §7.1; its refusals are the 403s in requests_rejected_total{reason="dedicated_ip_not_assigned"}.
  const egress = byLabel(family('egress_requests_total', 'Outbound requests sent to carriers, by the address they left from'), 'ip');

  return {
    received: () => void received.value++,
    socketError: () => void socketErrors.value++,
    queueDelay: (ms) => queueDelay.observe(ms / 1000),
    sentFrom: (ip) => void egress(ip).value++,
    count(outcome) {
      switch (outcome.action) {
        case 'forward':
          forwarded(outcome.direction).value++;
          return;
        case 'reject':
          rejected(outcome.reason).value++;
          return;
        case 'drop':
          dropped(outcome.reason).value++;
          return;
        case 'malformed':
          malformed.value++;
          return;
      }
    },
  };
}

/** The series of one label's value, bound on first use (the values are constant strings). */
function byLabel(counter: LabelledCounter, label: string): (value: string) => CounterSeries {
  const bound = new Map<string, CounterSeries>();
  return (value) => {
    let series = bound.get(value);
    if (series === undefined) bound.set(value, (series = counter.seriesOf(value, { [label]: value })));
    return series;
  };
}

// Prometheus metrics of the HTTP side: requests by route and status, and their latency, bound
// once per route (the families are in ../metrics.ts).

import type { Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram, type CounterSeries, type HistogramSeries } from '../metrics.ts';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** A route's series, bound once: the latency histogram and a counter per status code. */
export class RouteSeries {
  private readonly byStatus = new Map<number, CounterSeries>();
  readonly latency: HistogramSeries;
  constructor(
    private readonly metrics: HttpMetrics,
    readonly method: string,
    readonly route: string,
  ) {
    this.latency = metrics.latency.seriesOf(`${method} ${route}`, { method, route });
  }

  /** Counts one answered request and its latency in ms. */
  record(status: number, ms: number): void {
    let counter = this.byStatus.get(status);
    if (counter === undefined) {
      const code = String(status);
      this.byStatus.set(status, (counter = this.metrics.requests.seriesOf(`${this.method} ${this.route} ${code}`, { method: this.method, route: this.route, status: code })));
    }
    counter.value++;
    this.latency.observe(ms / 1000);
  }
}

export class HttpMetrics {
  readonly requests = new LabelledCounter('ipwarden_http_requests_total', 'HTTP requests by route and status');
  readonly latency = new LabelledHistogram('ipwarden_http_request_duration_seconds', 'HTTP request latency by route', BUCKETS);
  private readonly routes = new Map<string, RouteSeries>();

  constructor(registry: Registry) {
    this.requests.register(registry);
    this.latency.register(registry);
  }

  /** The series of one (method, route); bind it once per route where possible. */
  route(method: string, route: string): RouteSeries {
    const key = `${method} ${route}`;
    let series = this.routes.get(key);
    if (series === undefined) this.routes.set(key, (series = new RouteSeries(this, method, route)));
    return series;
  }
}

// The metrics contract: what a component exposes (families of samples) and where it goes (an HTTP address or a file).

export type MetricType = 'counter' | 'gauge';

export interface Sample {
  /** Label name -> value; values are any string (escaped when rendered). */
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  /** [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total. */
  name: string;
  help: string;
  type: MetricType;
  samples: readonly Sample[];
}

/** Anything that can report its metrics now (read at each scrape or textfile write). */
export interface MetricsSource {
  metrics(): MetricFamily[] | Promise<MetricFamily[]>;
}

// Where metrics go is config (a lower layer than metrics/): the spec type is declared there.
export type { MetricsSpec } from '../config/schema';

/** A running exporter: started once, stopped once. */
export interface MetricsExporter {
  start(): Promise<void>;
  /** The listener's address (the port a 0 resolved to), null for a textfile. */
  address(): { host: string; port: number } | null;
  stop(): Promise<void>;
}

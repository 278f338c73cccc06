// NATS connection options from config: servers, TLS files and credentials, every file read with a size bound.
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { NatsConnSpec } from '../../config/schema';
import { readBounded, readPem } from '../../safefs';

const CREDS_LIMIT = 64 * 1024;

/**
 * Builds client options. Files are read now (at start, as the syslog output does) so that a missing key is reported
 * before the daemon runs, and no later path swap can make the client read something else.
 */
export function natsOptions(c: NatsConnSpec, name: string, retryMs: number): NodeConnectionOptions {
  const o: NodeConnectionOptions = {
    servers: c.servers,
    name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: retryMs,
    // The first connection is retried by the caller, so each failure (bad TLS, refused credentials) is reported.
    waitOnFirstConnect: false,
  };
  if (c.user !== null) {
    o.user = c.user;
    o.pass = c.password ?? '';
  }
  if (c.token !== null) o.token = c.token;
  if (c.creds !== null)
    o.authenticator = credsAuthenticator(
      readBounded(c.creds, { limit: CREDS_LIMIT, what: 'NATS credentials file' }).data,
    );
  if (c.tls) {
    const t = c.tls;
    const read = (p: string, what: string): string => readPem(p, what).toString('utf8');
    o.tls = {
      ...(t.ca ? { ca: read(t.ca, 'TLS CA file') } : {}),
      ...(t.cert ? { cert: read(t.cert, 'TLS certificate file') } : {}),
      ...(t.key ? { key: read(t.key, 'TLS key file') } : {}),
      ...(t.verify ? {} : { rejectUnauthorized: false }),
      ...(t.serverName ? { servername: t.serverName } : {}),
    } as NodeConnectionOptions['tls'];
  }
  return o;
}

export async function natsConnect(c: NatsConnSpec, name: string, retryMs: number): Promise<NatsConnection> {
  return connect(natsOptions(c, name, retryMs));
}

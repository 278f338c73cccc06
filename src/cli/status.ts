// `auditmux status`: the kernel's audit status in auditctl -s form, plus the running daemon's counters.
import { AuditClient } from '../kernel/client';
import { Feature } from '../kernel/constants';
import type { AuditStatus } from '../kernel/wire';
import { ttyEscape } from '../search/escape';
import { textTable } from './table';

export function formatKernelStatus(s: AuditStatus, loginuidImmutable: { value: boolean; locked: boolean }): string {
  return [
    `enabled ${s.enabled}`,
    `failure ${s.failure}`,
    `pid ${s.pid}`,
    `rate_limit ${s.rateLimit}`,
    `backlog_limit ${s.backlogLimit}`,
    `lost ${s.lost}`,
    `backlog ${s.backlog}`,
    `backlog_wait_time ${s.backlogWaitTime}`,
    `backlog_wait_time_actual ${s.backlogWaitTimeActual}`,
    `loginuid_immutable ${loginuidImmutable.value ? 1 : 0} ${loginuidImmutable.locked ? 'locked' : 'unlocked'}`,
  ].join('\n');
}

export async function readKernelStatus(): Promise<string> {
  const c = await AuditClient.open();
  try {
    const s = await c.getStatus();
    const f = await c.getFeatures();
    const bit = 1 << Feature.LOGINUID_IMMUTABLE;
    return formatKernelStatus(s, { value: (f.features & bit) !== 0, locked: (f.lock & bit) !== 0 });
  } finally {
    c.close();
  }
}

/**
 * Flattens the daemon's counters object into `name value` lines under a heading. Values can carry text from others
 * (a remote server's DISKFULL reply text in an output's lastError): controls are escaped before the terminal sees them.
 */
export function formatCounters(title: string, counters: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = prefix ? [] : [title];
  for (const [k, v] of Object.entries(counters)) {
    if (v && typeof v === 'object' && !Array.isArray(v))
      out.push(...formatCounters(title, v as Record<string, unknown>, `${prefix}${k}.`));
    else out.push(ttyEscape(`${prefix}${k} ${Array.isArray(v) ? v.join(',') : String(v)}`));
  }
  return out;
}

/** `aux list` as a table: one row a daemon, columns padded. */
export function formatAuxRows(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return 'no auxiliary daemons';
  const cols = [
    'name',
    'state',
    'isolation',
    'pid',
    'queued',
    'peak',
    'delivered',
    'dropped',
    'resent',
    'restarts',
    'template',
    'log',
  ];
  // An inline daemon has no process of its own: its pid column says so instead of showing 0.
  // Names and paths were validated when the daemon was added, but a table on a terminal escapes whatever it shows.
  // A template's daemon names its template and the value it was made for (a tenant's value: escaped like the rest).
  const cell = (r: Record<string, unknown>, c: string): string => {
    if (c === 'pid' && r.isolation === 'inline') return '-';
    if (c === 'template') return r.template ? ttyEscape(`${String(r.template)}=${String(r.templateValue)}`) : '-';
    return ttyEscape(String(r[c] ?? ''));
  };
  return textTable([cols, ...rows.map((r) => cols.map((c) => cell(r, c)))]);
}

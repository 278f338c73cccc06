// Resolves user and group names to ids from /etc/passwd and /etc/group, without shelling out.
import { ConfigError, type SourcePos } from '../errors';
import { readAccountText } from '../rules/accounts';

export interface UserIds {
  uid: number;
  gid: number;
  home: string;
}

function table(path: string): string[][] {
  return (readAccountText(path) ?? '')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function lookupUser(name: string, pos: SourcePos, etc = '/etc'): UserIds {
  if (/^\d+$/.test(name)) {
    const uid = Number(name);
    const row = table(`${etc}/passwd`).find((r) => Number(r[2]) === uid);
    return { uid, gid: row ? Number(row[3]) : uid, home: row?.[5] ?? '/' };
  }
  const row = table(`${etc}/passwd`).find((r) => r[0] === name);
  if (!row) throw new ConfigError(pos, `unknown user "${name}"`);
  return { uid: Number(row[2]), gid: Number(row[3]), home: row[5] ?? '/' };
}

export function lookupGroup(name: string, pos: SourcePos, etc = '/etc'): number {
  if (/^\d+$/.test(name)) return Number(name);
  const row = table(`${etc}/group`).find((r) => r[0] === name);
  if (!row) throw new ConfigError(pos, `unknown group "${name}"`);
  return Number(row[2]);
}

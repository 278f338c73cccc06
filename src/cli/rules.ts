// `auditmux rules load|list|delete`: the rules module against the kernel, with or without a running daemon.
import { AuditClient } from '../kernel/client';
import { applyRules, decodeRule, formatRules, loadRulesPath } from '../rules';

export async function rulesLoad(
  path: string,
  opts: { ignoreErrors: boolean },
): Promise<{ added: number; deleted: number; errors: string[] }> {
  const commands = loadRulesPath(path);
  const c = await AuditClient.open();
  try {
    const s = await applyRules(c, commands, { ignoreErrors: opts.ignoreErrors, hostWide: true });
    return { added: s.added, deleted: s.deleted, errors: s.errors.map((e) => e.message) };
  } finally {
    c.close();
  }
}

export async function rulesList(key?: string): Promise<string> {
  const c = await AuditClient.open();
  try {
    const rules = (await c.listRules()).map((b) => decodeRule(b));
    const shown = key === undefined ? rules : rules.filter((r) => r.keys.includes(key));
    return shown.length === 0 ? 'No rules' : formatRules(shown).join('\n');
  } finally {
    c.close();
  }
}

export async function rulesDelete(key?: string): Promise<number> {
  const c = await AuditClient.open();
  try {
    let n = 0;
    for (const b of await c.listRules()) {
      if (key !== undefined && !decodeRule(b).keys.includes(key)) continue;
      await c.deleteRule(b);
      n++;
    }
    return n;
  } finally {
    c.close();
  }
}

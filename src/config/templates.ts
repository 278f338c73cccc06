// `daemon_templates:`: one auxiliary daemon per container metadata value; the reader, and the sanitiser that turns an
// untrusted value (a namespace, a label a tenant chose) into a daemon name and a log path that cannot escape.
import { createHash } from 'node:crypto';
import { isAbsolute, resolve as resolvePath, sep } from 'node:path';
import { ConfigError } from '../errors';
import { META_FIELDS, type MetaField } from '../contid/container-selector';
import { readContainerSelector } from './route-selectors';
import { account, configPath, readOutput } from './log';
import {
  blockForUserProblem,
  buildDaemonConfig,
  DAEMON_NAME_RE,
  readIsolation,
  readMaxRestarts,
  readQueue,
} from './daemon-config';
import {
  DEFAULT_MAX_RESTARTS,
  DEFAULT_OUTPUT,
  DEFAULT_QUEUE,
  defaultIsolation,
  TEMPLATE_IDLE_ACTIONS,
  type DaemonConfig,
  type DaemonTemplate,
  type TemplateKey,
} from './schema';
import type { Entry, Walker } from './walk';

const TEMPLATE_KEYS = [
  'name',
  'key',
  'container',
  'max',
  'idle',
  'rules',
  'log',
  'queue',
  'user',
  'isolation',
  'max_restarts',
] as const;
const IDLE_KEYS = ['after', 'action'] as const;

/** A template's name is the prefix of its daemons' names: short, so the value keeps most of the 63 characters. */
export const TEMPLATE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,23}$/;
export const TEMPLATE_MAX = Object.freeze({ min: 1, max: 1000, default: 64 });
/** Idle time bounds: a second (tests, busy hosts) to thirty days. */
export const IDLE_AFTER = Object.freeze({ minMs: 1000, maxMs: 30 * 24 * 3600 * 1000, defaultMs: 10 * 60 * 1000 });
/** Placeholders a log pattern may use; anything else in braces is refused. */
const PLACEHOLDERS = ['{value}', '{name}', '{template}'] as const;
/** A value longer than this is a mistake or an attack (Kubernetes caps namespaces at 63, label values at 63). */
export const TEMPLATE_VALUE_MAX = 1024;
const LABEL_KEY_RE = /^[A-Za-z0-9._/-]{1,253}$/;

/** `namespace`, `label.team` -> the key; null when it is neither a metadata field nor a label. */
export function parseTemplateKey(text: string): TemplateKey | null {
  if ((META_FIELDS as readonly string[]).includes(text)) return { field: text as MetaField };
  if (text.startsWith('label.') && LABEL_KEY_RE.test(text.slice(6))) return { label: text.slice(6) };
  return null;
}

const SAFE_PART_RE = /^[a-z0-9][a-z0-9_-]*$/;
/** The tail templateValuePart gives a value it hashes: 8 hex digits, alone or after a `-`. */
const HASHED_RE = /(^|-)[0-9a-f]{8}$/;

/**
 * The part of a daemon name (and of its log path) that stands for `value`: the value itself when it is already a
 * safe name of at most `maxLen` characters; otherwise a lowercase slug of it and 8 hex digits of its SHA-256, so two
 * values never share a daemon by accident (a deliberate collision is caught by the manager, which refuses it). The
 * result only has [a-z0-9_-] and starts with a letter or digit: no `/`, no `.`, so never `..` or an absolute path.
 * null for a value that cannot be a tenant (empty, too long).
 */
export function templateValuePart(value: string, maxLen: number): string | null {
  if (value.length === 0 || value.length > TEMPLATE_VALUE_MAX) return null;
  // A safe value that already looks hashed (`slug-1a2b3c4d`, `1a2b3c4d`) is hashed too: kept as it is, it was the
  // name another value is turned into (`Team.A` and `team-a-e52fa1d7`), so whoever came first took the other's.
  if (SAFE_PART_RE.test(value) && value.length <= maxLen && !HASHED_RE.test(value)) return value;
  const hash = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 8);
  const room = Math.max(0, maxLen - hash.length - 1);
  const slug = value
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .slice(0, room)
    .replace(/^[-_]+/, '')
    .replace(/[-_]+$/, '');
  return slug ? `${slug}-${hash}` : hash;
}

/** The daemon a template makes for `value` (null: no daemon for it): `<template>-<value part>`, within NAME_RE. */
export function templateDaemonName(template: string, value: string): string | null {
  const part = templateValuePart(value, 62 - template.length);
  if (part === null) return null;
  const name = `${template}-${part}`;
  return DAEMON_NAME_RE.test(name) ? name : null;
}

/** The fixed directory a log pattern's files all live under: everything before its first placeholder. */
export function patternBaseDir(pattern: string): string {
  const i = pattern.indexOf('{');
  const head = i < 0 ? pattern : pattern.slice(0, i);
  return head.slice(0, head.lastIndexOf('/') + 1) || '/';
}

/** Why `pattern` cannot be a template's log file pattern, or null. */
export function logPatternProblem(pattern: string): string | null {
  if (!isAbsolute(pattern)) return 'must be an absolute path';
  const rest = pattern.replace(/\{(value|name|template)\}/g, '');
  if (/[{}]/.test(rest)) return `may only use the placeholders ${PLACEHOLDERS.join(', ')}`;
  if (!pattern.includes('{value}') && !pattern.includes('{name}'))
    return 'must contain {value} or {name}: every daemon of a template needs a log of its own';
  if (pattern.split('/').some((c) => c === '..' || c === '.')) return 'may not contain . or .. components';
  if (pattern.endsWith('/')) return 'must name a file, not a directory';
  return null;
}

/**
 * A daemon's log file from the pattern: placeholders replaced by the sanitised part and name only, then checked once
 * more to lie under the pattern's fixed directory (defence in depth: the sanitiser already allows no `/` or `.`).
 */
export function templateLogFile(pattern: string, template: string, part: string, name: string): string | null {
  const file = pattern.replaceAll('{value}', part).replaceAll('{name}', name).replaceAll('{template}', template);
  const base = patternBaseDir(pattern);
  const abs = resolvePath(file);
  if (abs !== file || !abs.startsWith(base.endsWith(sep) ? base : base + sep)) return null;
  return file;
}

/**
 * The config of the daemon `template` makes for a value, log file already resolved from the pattern; built by the
 * one builder, so a template's daemon is the same as one written under `daemons:` with the same settings.
 */
export function templateDaemonConfig(t: DaemonTemplate, name: string, logFile: string): DaemonConfig {
  return buildDaemonConfig(
    {
      name,
      pos: t.pos,
      rules: t.rules,
      log: { ...t.log, file: logFile },
      queue: t.queue,
      user: t.user,
      isolation: t.isolation,
      maxRestarts: t.maxRestarts,
      outputs: [],
    },
    // Unused: the log file is always given.
    logFile,
  );
}

/** `10m`, `90s`, `2h`, `1d` or a number of seconds, in milliseconds; null when it is none of them. */
export function parseDuration(text: string): number | null {
  const m = /^([0-9]{1,7})(s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** Reads `daemon_templates:`; template names must not be daemon names of the file. */
export function readTemplates(
  w: Walker,
  e: Entry,
  hostLogFile: string,
  daemonNames: readonly string[],
  baseDir: string,
): DaemonTemplate[] {
  const items = w.sequence(e.value, 'daemon_templates', e.key);
  if (!items) return [];
  const out: DaemonTemplate[] = [];
  items.forEach((item, i) => {
    const where = `daemon_templates[${i}]`;
    const m = w.mapping(item, where, TEMPLATE_KEYS);
    if (!m) return;
    const node = w.resolve(item);
    const pos = w.posOf(node, item);
    const nameE = m.get('name');
    const keyE = m.get('key');
    if (!nameE || !keyE)
      return w.error(node, `${where} needs a name and a key (the metadata field it splits by)`, item);
    const name = w.string(nameE, `${where}.name`);
    if (name === undefined) return;
    if (!TEMPLATE_NAME_RE.test(name))
      return w.error(nameE.value, `${where}.name "${name.slice(0, 70)}" must match ${TEMPLATE_NAME_RE.source}`);
    if (name === 'host') return w.error(nameE.value, `${where}.name "host" is reserved for the host daemon`);
    if (out.some((t) => t.name === name))
      return w.error(nameE.value, `duplicate daemon template name "${name}"`, nameE.key);
    if (daemonNames.includes(name))
      return w.error(nameE.value, `${where}.name "${name}" is also the name of a daemon`, nameE.key);
    const clash = out.find((t) => name.startsWith(`${t.name}-`) || t.name.startsWith(`${name}-`));
    if (clash)
      return w.error(
        nameE.value,
        `${where}.name "${name}" and template "${clash.name}" would make daemons of the same names`,
        nameE.key,
      );
    const keyText = w.string(keyE, `${where}.key`);
    if (keyText === undefined) return;
    const key = parseTemplateKey(keyText);
    if (!key)
      return w.error(
        keyE.value,
        `${where}.key must be one of ${META_FIELDS.join(', ')} or label.<name>, got "${keyText.slice(0, 70)}"`,
      );
    const t: DaemonTemplate = {
      name,
      key,
      keyText,
      container: null,
      max: TEMPLATE_MAX.default,
      idle: { afterMs: IDLE_AFTER.defaultMs, action: 'keep' },
      rules: null,
      log: { file: '', ...DEFAULT_OUTPUT },
      logPattern: null,
      queue: { ...DEFAULT_QUEUE },
      user: null,
      isolation: 'inline',
      maxRestarts: DEFAULT_MAX_RESTARTS,
      pos,
    };
    let x: Entry | undefined;
    if ((x = m.get('container'))) t.container = readContainerSelector(w, x, where) ?? null;
    if ((x = m.get('max'))) t.max = w.integer(x, `${where}.max`, TEMPLATE_MAX.min, TEMPLATE_MAX.max) ?? t.max;
    if ((x = m.get('idle'))) {
      const im = w.mapping(x.value, `${where}.idle`, IDLE_KEYS, x.key);
      let y: Entry | undefined;
      if (im && (y = im.get('after'))) {
        const s = w.string(y, `${where}.idle.after`);
        const ms = s === undefined ? null : parseDuration(s);
        if (ms === null || ms < IDLE_AFTER.minMs || ms > IDLE_AFTER.maxMs)
          w.error(y.value, `${where}.idle.after must be a duration from 1s to 30d (90s, 10m, 2h), got "${s ?? ''}"`);
        else t.idle.afterMs = ms;
      }
      if (im && (y = im.get('action')))
        t.idle.action = w.choice(y, `${where}.idle.action`, TEMPLATE_IDLE_ACTIONS) ?? t.idle.action;
    }
    if ((x = m.get('rules'))) {
      const r = w.nullableString(x, `${where}.rules`);
      if (r !== null && r !== undefined) t.rules = configPath(w, x, `${where}.rules`, r, baseDir) ?? null;
    }
    if ((x = m.get('user')) && w.resolve(x.value) !== null) t.user = account(w, x, `${where}.user`) ?? null;
    t.isolation = defaultIsolation(t.user);
    if ((x = m.get('log'))) {
      t.log = readOutput(w, x, `${where}.log`, baseDir, '');
      const fileE = w.sources.get(`${where}.log.file`);
      if (t.log.file && fileE) {
        const bad = logPatternProblem(t.log.file);
        if (bad) w.errors.push(new ConfigError(fileE, `${where}.log.file ${bad}`));
        else t.logPattern = t.log.file;
      }
    }
    if ((x = m.get('queue'))) t.queue = readQueue(w, x, where) ?? t.queue;
    if ((x = m.get('isolation'))) t.isolation = readIsolation(w, x, where, t.user) ?? t.isolation;
    if ((x = m.get('max_restarts'))) t.maxRestarts = readMaxRestarts(w, x, where) ?? t.maxRestarts;
    const blocked = blockForUserProblem(t.user, t.queue.overflow);
    if (blocked)
      w.errors.push(new ConfigError(w.sources.get(`${where}.queue.overflow`) ?? t.pos, `${where}.queue.${blocked}`));
    if (t.logPattern && (t.logPattern === hostLogFile || patternBaseDir(t.logPattern) === '/'))
      w.error(node, `${where}.log.file must lie in a directory of its own, not beside the host log or at /`, item);
    const meets = t.logPattern ? out.find((o) => patternsMeet(o, t)) : undefined;
    if (meets) {
      w.errors.push(
        new ConfigError(
          w.sources.get(`${where}.log.file`) ?? pos,
          `${where}.log.file ${t.logPattern} can name the same file as daemon template "${meets.name}"'s ` +
            `${meets.logPattern}: give each template a directory of its own, or use {name} in both`,
        ),
      );
    }
    out.push(t);
  });
  return out;
}

/**
 * Whether two templates' log patterns can give one file: their fixed directories (with {template} put in) are the
 * same or one holds the other, unless both name the file by {name} (daemon names are unique). A namespace's label
 * value would otherwise make another template's daemon write into that namespace's log.
 */
function patternsMeet(a: DaemonTemplate, b: DaemonTemplate): boolean {
  if (!a.logPattern || !b.logPattern) return false;
  if (a.logPattern.includes('{name}') && b.logPattern.includes('{name}')) return false;
  const dirA = patternBaseDir(a.logPattern.replaceAll('{template}', a.name));
  const dirB = patternBaseDir(b.logPattern.replaceAll('{template}', b.name));
  return dirA.startsWith(dirB) || dirB.startsWith(dirA);
}

/** Two templates are the same daemons when everything but the cap and the idle policy is the same. */
export function sameTemplateDaemons(a: DaemonTemplate, b: DaemonTemplate): boolean {
  const strip = (t: DaemonTemplate): unknown => ({ ...t, max: 0, idle: null, pos: null });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

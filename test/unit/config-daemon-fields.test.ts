// A daemon's queue, isolation and max_restarts read the same under `daemons:` and `daemon_templates:`: the same bad
// value gives the same error (code, exit code, file:line:col and wording, up to the section's name).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, UsageError } from '../../src/errors';
import { planAuxAdd } from '../../src/daemon/aux-add';
import type { AuxAddArgs } from '../../src/daemon/control-commands';
import { parseConfig } from '../../src/config';

const FILE = '/etc/auditmux/test.yaml';

function firstError(lines: string[]): ConfigError {
  try {
    parseConfig(lines.join('\n'), FILE);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail(`expected a ConfigError for:\n${lines.join('\n')}`);
}

/**
 * The error `fields` give in each section. The template's `key:` comes last so that the fields sit on the same lines
 * and columns in both files.
 */
function bothErrors(fields: string[]): { daemon: ConfigError; template: ConfigError } {
  const daemon = firstError(['daemons:', '  - name: a', ...fields]);
  const template = firstError(['daemon_templates:', '  - name: a', ...fields, '    key: namespace']);
  return { daemon, template };
}

const CASES: { what: string; fields: string[]; reason: RegExp }[] = [
  { what: 'queue depth 0', fields: ['    queue: { depth: 0 }'], reason: /queue\.depth must be between 1 and/ },
  { what: 'queue depth too big', fields: ['    queue: { depth: 10000001 }'], reason: /queue\.depth must be/ },
  { what: 'queue depth a word', fields: ['    queue: { depth: many }'], reason: /must be an integer/ },
  { what: 'overflow typo', fields: ['    queue: { overflow: drop_old }'], reason: /did you mean "drop_oldest"/ },
  {
    what: 'block_timeout_ms without overflow: block',
    fields: ['    queue: { overflow: drop_newest, block_timeout_ms: 5 }'],
    reason: /block_timeout_ms only applies to overflow: block \(overflow is drop_newest\)/,
  },
  {
    what: 'block_timeout_ms out of range',
    fields: ['    queue: { overflow: block, block_timeout_ms: 600001 }'],
    reason: /block_timeout_ms must be between 0 and 600000/,
  },
  { what: 'unknown queue key', fields: ['    queue: { dept: 5 }'], reason: /unknown key "dept" in .*\.queue/ },
  { what: 'queue not a mapping', fields: ['    queue: 5'], reason: /queue must be a mapping/ },
  {
    what: 'inline isolation with a user',
    fields: ['    user: nobody', '    isolation: inline'],
    reason: /isolation: inline cannot run as user "nobody"/,
  },
  {
    // The process is the tenant's: never acknowledging, it would hold the host's kernel intake paused.
    what: 'overflow: block with a user',
    fields: ['    user: nobody', '    queue: { overflow: block }'],
    reason: /queue\.overflow: block cannot be used by a daemon that runs as user "nobody": its process could pause/,
  },
  { what: 'isolation typo', fields: ['    isolation: proces'], reason: /isolation must be one of inline, process/ },
  { what: 'max_restarts out of range', fields: ['    max_restarts: 10001'], reason: /between 0 and 10000/ },
];

describe('daemon fields read alike in daemons: and daemon_templates:', () => {
  for (const c of CASES) {
    it(c.what, () => {
      const { daemon, template } = bothErrors(c.fields);
      assert.match(daemon.reason, c.reason);
      assert.ok(daemon.reason.includes('daemons[0]'), daemon.reason);
      assert.equal(template.code, daemon.code);
      assert.equal(template.exitCode, daemon.exitCode);
      assert.deepEqual(template.pos, daemon.pos);
      assert.match(daemon.message, new RegExp(`^${FILE}:\\d+:\\d+: `));
      assert.equal(template.message.replaceAll('daemon_templates[0]', 'daemons[0]'), daemon.message);
    });
  }
});

describe('aux add', () => {
  it('refuses --overflow block for a daemon with --user, as the config file does, before anything is made', () => {
    const ctx = {
      hostLogFile: '/nonexistent/auditmux/audit.log',
      registry: { has: () => false, templates: { knows: () => false } } as unknown as Parameters<
        typeof planAuxAdd
      >[1]['registry'],
      refuse: (): never => assert.fail('no rules to refuse'),
    };
    assert.throws(
      () => planAuxAdd({ name: 't', contid: ['100'], overflow: 'block', user: 'nobody' } as AuxAddArgs, ctx),
      (e: UsageError) =>
        e instanceof UsageError &&
        /--overflow: block cannot be used by a daemon that runs as user "nobody"/.test(e.message),
    );
  });
});

// Typed forms of auditctl rules and rule-file commands shared by the parser, codec, formatter and applier.
import type { SourcePos } from '../errors';

/** One entry of audit_rule_data's fields/values/fieldflags arrays. */
export interface RuleField {
  /** Field number (AUDIT_* field, e.g. Field.uid). */
  field: number;
  /** Operator bits as the kernel stores them (Op.*). */
  op: number;
  /** u32 value; for string fields the byte length of `str`. */
  value: number;
  /** Path, key, label or exe text of a string field. */
  str?: string;
  /** The contid field's u64 (sent as 8 host-order bytes in buf). */
  u64?: bigint;
}

/** A rule in the shape of struct audit_rule_data. */
export interface Rule {
  /** Filter list, plus AUDIT_FILTER_PREPEND (0x10) for -A. */
  flags: number;
  action: number;
  /** 64 u32 words of syscall bits. */
  mask: Uint32Array;
  fields: RuleField[];
  /** The FILTERKEY text split at \x01, empty keys dropped as auditctl's strtok does. */
  keys: string[];
}

export type RuleCommand =
  | { kind: 'add'; rule: Rule; pos: SourcePos; text: string }
  | { kind: 'delete'; rule: Rule; pos: SourcePos; text: string }
  /** -D, or -D -k key: key matches as a substring of the rule's whole key text, like auditctl. */
  | { kind: 'deleteAll'; key?: string; pos: SourcePos; text: string }
  | { kind: 'enabled'; value: number; pos: SourcePos; text: string }
  | { kind: 'failure'; value: number; pos: SourcePos; text: string }
  | { kind: 'rateLimit'; value: number; pos: SourcePos; text: string }
  | { kind: 'backlogLimit'; value: number; pos: SourcePos; text: string }
  | { kind: 'backlogWaitTime'; value: number; pos: SourcePos; text: string }
  | { kind: 'resetLost'; pos: SourcePos; text: string }
  | { kind: 'loginuidImmutable'; pos: SourcePos; text: string }
  /** -i: report errors of later lines and go on; -c: also go on, but the load counts as failed. */
  | { kind: 'ignoreErrors'; continueMode: boolean; pos: SourcePos; text: string }
  /** A line that failed to parse after -i/-c was seen: kept so the applier reports it in order. */
  | { kind: 'invalid'; error: import('../errors').RuleError; pos: SourcePos; text: string };

export type RuleCommandKind = RuleCommand['kind'];

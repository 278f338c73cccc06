// The rules module's public API: auditctl-language parsing, audit_rule_data codec, `auditctl -l` text, loading.
export { parseRules, parseLine, type ParseContext } from './parser';
export { loadRulesPath, mergeRulesDir, naturalCompare, rulesFilesIn } from './loader';
export { encodeRule, decodeRule, ruleKeyMatches } from './codec';
export { formatRule, formatRules, type FormatState } from './format';
export { applyRules, type ApplyOptions, type ApplySummary, type RuleKernel } from './apply';
export type { Rule, RuleField, RuleCommand, RuleCommandKind } from './types';

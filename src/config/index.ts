// Public surface of the configuration module: load/parse/check auditmux.yaml and the compiled routing-table helpers.
export { analyzeConfig, loadConfig, parseConfig, readConfigText, MAX_CONFIG_BYTES, type ConfigAnalysis } from './load';
export { checkConfig, checkEnvironment, configToPlain, formatCheckReport, type CheckOptions } from './check';
export {
  CONTID_MAX,
  contidPatternMatches,
  contidSelectorsMatch,
  parseContidSelector,
  parseContidValue,
} from '../contid/selectors';
export { cgroupGlobMatches, compileCgroupGlob, contidForCgroup, type CompiledGlob } from '../contid/cgroup-glob';
export { RECORD_TYPES } from './record-types';
export { recordTypeNumber } from '../vocab/msgtypes';
export * from './schema';
export { parseTemplateKey, templateDaemonName, templateLogFile, templateValuePart } from './templates';

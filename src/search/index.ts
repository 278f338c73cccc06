// Public surface of log search and reporting: the two CLI entry points and the pieces tests and tools build on.
export { runSearch, runReport, type SearchIo } from './cli';
export { compileCriteria, parseTime, parseSerials, type Criteria, type CriteriaSpec } from './criteria';
export { scanEvents, type SearchEvent, type ScanStats, type ScanOptions } from './scan';
export { inputFromPath, inputsForDaemon, directoryInputs, rotationSeries, readLines, type LogInput } from './inputs';
export { Interpreter, jsonEvent, rawEvent, textEvent, type JsonEvent, type OutputFormat } from './format';
export { ReportBuilder, htmlReport, jsonReport, textReport } from './report';

/**
 * Structured logging like klog, on winston.
 *
 * Contract:
 * - `info` is verbosity 0; `v(n).info` logs only when `n <= --v`. The check happens before any
 *   formatting, so a disabled `v(n).info(...)` costs one comparison and a call on a shared no-op.
 * - `warn` and `error` always log. `error(msg, err)` renders `err` with `describeError` (status
 *   code, reason and message for API errors) and adds the stack when `--v >= 4`.
 * - `child(fields)` returns a logger whose lines all carry `fields` (e.g. `{controller: 'endpoints'}`).
 * - Logging never throws: values that JSON cannot encode (cycles, bigint) are rendered safely.
 *
 * Formats:
 * - `json`, one object a line: `{"ts":"2024-11-24T14:03:05.123Z","level":"info","msg":"...","v":0,
 *   "controller":"endpoints","object":{"name":"web","namespace":"default"}}`.
 * - `text`, klog-like: `I1124 14:03:05.123000] "msg" controller="endpoints" object="default/web"`.
 *   The first letter is the severity (I, W, E); the time is local.
 */
import winston from 'winston';
import { describeError } from './kube/errors.ts';

export type LogFields = Record<string, unknown>;
export type LogFormat = 'json' | 'text';

export interface VerboseLogger {
  info(msg: string, fields?: LogFields): void;
}

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, err?: unknown, fields?: LogFields): void;
  /** A logger for verbosity `level`; a no-op when `level` > the configured verbosity. */
  v(level: number): VerboseLogger;
  enabled(level: number): boolean;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  format: LogFormat;
  verbosity: number;
  /** Where lines go; stderr by default. Tests pass a stream they read back. */
  stream?: NodeJS.WritableStream;
}

/**
 * A reference to a Kubernetes object in a log line: `{name, namespace}` in JSON, `namespace/name`
 * in text (klog's `KObj`).
 */
export class ObjectRef {
  readonly name: string;
  readonly namespace: string | undefined;

  constructor(name: string, namespace?: string) {
    this.name = name;
    this.namespace = namespace || undefined;
  }

  toJSON(): { name: string; namespace?: string } {
    return this.namespace ? { name: this.name, namespace: this.namespace } : { name: this.name };
  }

  toString(): string {
    return this.namespace ? `${this.namespace}/${this.name}` : this.name;
  }
}

/** klog's `KRef`. */
export function kref(namespace: string | undefined, name: string): ObjectRef {
  return new ObjectRef(name, namespace);
}

/** Text on a terminal, JSON otherwise (in a cluster stderr is not a TTY). */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'text' : 'json';
}

type Severity = 'info' | 'warn' | 'error';

/** What a logger hands winston, under a symbol so user fields never collide with winston's keys. */
interface LogRecord {
  ts: number;
  severity: Severity;
  msg: string;
  v: number | undefined;
  err: unknown;
  hasErr: boolean;
  fields: LogFields[];
}

const RECORD = Symbol('scm.log.record');
const MESSAGE = Symbol.for('message');

interface Sink {
  readonly verbosity: number;
  readonly write: (record: LogRecord) => void;
}

const NOP_VERBOSE: VerboseLogger = { info: () => {} };

class StructuredLogger implements Logger {
  private readonly sink: Sink;
  /** Fields of this logger and its parents, outermost first; merged only when a line is written. */
  private readonly scope: LogFields[];
  private readonly verbose = new Map<number, VerboseLogger>();

  constructor(sink: Sink, scope: LogFields[]) {
    this.sink = sink;
    this.scope = scope;
  }

  info(msg: string, fields?: LogFields): void {
    this.emit('info', msg, 0, undefined, false, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.emit('warn', msg, undefined, undefined, false, fields);
  }

  error(msg: string, err?: unknown, fields?: LogFields): void {
    this.emit('error', msg, undefined, err, err !== undefined, fields);
  }

  v(level: number): VerboseLogger {
    if (level > this.sink.verbosity) return NOP_VERBOSE;
    let logger = this.verbose.get(level);
    if (!logger) {
      logger = { info: (msg, fields) => this.emit('info', msg, level, undefined, false, fields) };
      this.verbose.set(level, logger);
    }
    return logger;
  }

  enabled(level: number): boolean {
    return level <= this.sink.verbosity;
  }

  child(fields: LogFields): Logger {
    return new StructuredLogger(this.sink, [...this.scope, fields]);
  }

  private emit(
    severity: Severity,
    msg: string,
    v: number | undefined,
    err: unknown,
    hasErr: boolean,
    fields: LogFields | undefined,
  ): void {
    try {
      this.sink.write({
        ts: Date.now(),
        severity,
        msg,
        v,
        err,
        hasErr,
        fields: fields ? [...this.scope, fields] : this.scope,
      });
    } catch {
      // Logging must never take the process down.
    }
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  const verbosity = Math.max(0, Math.trunc(opts.verbosity));
  const withStack = verbosity >= 4;
  const render = opts.format === 'json' ? renderJson : renderText;
  const format = winston.format((info) => {
    const record = info[RECORD] as LogRecord | undefined;
    if (record) info[MESSAGE] = render(record, withStack);
    return info;
  })();
  const logger = winston.createLogger({
    levels: { error: 0, warn: 1, info: 2 },
    level: 'info',
    format,
    exitOnError: false,
    transports: [new winston.transports.Stream({ stream: opts.stream ?? process.stderr, eol: '\n' })],
  });
  // A broken stderr (EPIPE) must not crash the process through an unhandled 'error' event.
  logger.on('error', () => {});
  const sink: Sink = {
    verbosity,
    write: (record) => {
      logger.log({ level: record.severity, message: record.msg, [RECORD]: record });
    },
  };
  return new StructuredLogger(sink, []);
}

/** A logger that drops everything; for tests and for code paths that need no output. */
export const nopLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
  v: () => NOP_VERBOSE,
  enabled: () => false,
  child: () => nopLogger,
};

// ---------------------------------------------------------------------------------------------
// Rendering

function mergedFields(record: LogRecord): LogFields {
  if (record.fields.length === 1) return record.fields[0] ?? {};
  const merged: LogFields = {};
  for (const f of record.fields) Object.assign(merged, f);
  return merged;
}

function errorMessage(err: unknown): string {
  try {
    return describeError(err);
  } catch {
    return String(err);
  }
}

function errorStack(err: unknown): string | undefined {
  return err instanceof Error && typeof err.stack === 'string' ? err.stack : undefined;
}

/** JSON.stringify that cannot throw: Errors become messages, bigints strings, cycles "[Circular]". */
function safeStringify(value: unknown): string {
  // Ancestors of the value being visited (json-stringify-safe's technique): a value repeated in
  // siblings is fine, only a value inside itself is a cycle.
  const ancestors: unknown[] = [];
  try {
    return JSON.stringify(value, function (this: unknown, _key: string, v: unknown): unknown {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Error) return errorMessage(v);
      if (ancestors.length > 0) {
        const at = ancestors.indexOf(this);
        if (at === -1) ancestors.push(this);
        else ancestors.length = at + 1;
        if (v !== null && typeof v === 'object' && ancestors.includes(v)) return '[Circular]';
      } else {
        ancestors.push(v);
      }
      return v;
    });
  } catch (e) {
    return JSON.stringify(`[unserializable: ${e instanceof Error ? e.message : String(e)}]`);
  }
}

const RESERVED = new Set(['ts', 'level', 'msg', 'v', 'err', 'stack']);

function renderJson(record: LogRecord, withStack: boolean): string {
  const out: Record<string, unknown> = {
    ts: new Date(record.ts).toISOString(),
    level: record.severity,
    msg: record.msg,
  };
  if (record.v !== undefined) out.v = record.v;
  if (record.hasErr) {
    out.err = errorMessage(record.err);
    const stack = withStack ? errorStack(record.err) : undefined;
    if (stack) out.stack = stack;
  }
  for (const [k, val] of Object.entries(mergedFields(record))) {
    if (val === undefined) continue;
    // User fields never overwrite the envelope; they are kept under a prefixed key instead.
    out[RESERVED.has(k) ? `field.${k}` : k] = val;
  }
  return safeStringify(out);
}

const SEVERITY_LETTER: Record<Severity, string> = { info: 'I', warn: 'W', error: 'E' };

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function textValue(val: unknown): string {
  if (val instanceof ObjectRef) return JSON.stringify(val.toString());
  if (val instanceof Error) return JSON.stringify(errorMessage(val));
  if (typeof val === 'string') return JSON.stringify(val);
  if (typeof val === 'number' || typeof val === 'boolean' || typeof val === 'bigint') return String(val);
  if (val === null) return 'null';
  return safeStringify(val);
}

function renderText(record: LogRecord, withStack: boolean): string {
  const d = new Date(record.ts);
  let line =
    `${SEVERITY_LETTER[record.severity]}${pad(d.getMonth() + 1)}${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}000] ` +
    JSON.stringify(record.msg);
  if (record.hasErr) line += ` err=${JSON.stringify(errorMessage(record.err))}`;
  for (const [k, val] of Object.entries(mergedFields(record))) {
    if (val === undefined) continue;
    line += ` ${k}=${textValue(val)}`;
  }
  const stack = record.hasErr && withStack ? errorStack(record.err) : undefined;
  if (stack) line += `\n${stack}`;
  return line;
}

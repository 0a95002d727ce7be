/**
 * A Dockerfile parser for the subset our Dockerfile uses, so `make image-check` can interpret it on
 * a machine without a container engine: FROM (`AS name`), WORKDIR, COPY (plain, `--from=stage`,
 * several sources), RUN (shell form), ENV (`k=v` pairs and the legacy `k v`), USER, ENTRYPOINT
 * (exec form), comments and line continuations. Everything else is rejected with the line it is
 * on, because silently skipping an instruction would make the host layout differ from the image
 * without anyone noticing. Pure: text in, stages out.
 */

export type Instruction =
  | { kind: 'WORKDIR'; line: number; path: string }
  | {
      kind: 'COPY';
      line: number;
      /** Index of the earlier stage to copy from (`--from=`); undefined: the build context. */
      fromStage?: number;
      sources: string[];
      dest: string;
    }
  | { kind: 'RUN'; line: number; command: string }
  | { kind: 'ENV'; line: number; vars: Record<string, string> }
  | { kind: 'USER'; line: number; user: string }
  | { kind: 'ENTRYPOINT'; line: number; args: string[] };

export interface Stage {
  /** The base image (`FROM <image>`), or the name of an earlier stage to start from. */
  image: string;
  /** `AS <name>`, lower-cased as Docker compares stage names. */
  name?: string;
  line: number;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** In file order; the last one is the image. */
  stages: Stage[];
}

export class DockerfileError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`Dockerfile line ${line}: ${message}`);
    this.name = 'DockerfileError';
    this.line = line;
  }
}

const SUPPORTED = ['FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'ENTRYPOINT'];
// Real instructions we do not interpret: named in the error so it says "not supported here"
// rather than "unknown".
const KNOWN_UNSUPPORTED = [
  'ADD',
  'ARG',
  'CMD',
  'EXPOSE',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'SHELL',
  'STOPSIGNAL',
  'VOLUME',
];
const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface LogicalLine {
  line: number;
  text: string;
}

const isComment = (raw: string): boolean => /^\s*#/.test(raw);
const CONTINUATION = /\\[ \t]*$/;

/**
 * Joins continued lines the way Docker does: the trailing backslash goes, the next line is
 * appended as it is (its indentation kept), and comment or blank lines inside a continuation are
 * dropped. An instruction is numbered by its first line.
 */
function logicalLines(text: string): LogicalLine[] {
  const raw = text.split(/\r?\n/);
  const out: LogicalLine[] = [];
  for (let i = 0; i < raw.length; i++) {
    if (isComment(raw[i]) || raw[i].trim() === '') continue;
    const line = i + 1;
    let joined = raw[i];
    while (CONTINUATION.test(joined)) {
      joined = joined.replace(CONTINUATION, '');
      i++;
      while (i < raw.length && (isComment(raw[i]) || raw[i].trim() === '')) i++;
      if (i >= raw.length) break;
      joined += raw[i];
    }
    out.push({ line, text: joined.trim() });
  }
  return out;
}

function rejectSubstitution(line: number, kind: string, text: string): void {
  // Docker would expand $VAR / ${VAR} here; interpreting the text literally would be wrong.
  if (/\$[{A-Za-z_]/.test(text))
    throw new DockerfileError(line, `${kind}: variable substitution is not supported`);
}

function parseFrom(line: number, args: string): { image: string; name?: string } {
  const words = args.split(/\s+/).filter((w) => w !== '');
  if (words.some((w) => w.startsWith('--')))
    throw new DockerfileError(
      line,
      `FROM: flags are not supported (${words.find((w) => w.startsWith('--'))})`,
    );
  if (words.length === 1) return { image: words[0] };
  if (words.length === 3 && words[1].toLowerCase() === 'as') {
    const name = words[2].toLowerCase();
    if (!STAGE_NAME.test(name)) throw new DockerfileError(line, `FROM: invalid stage name "${words[2]}"`);
    return { image: words[0], name };
  }
  throw new DockerfileError(line, 'FROM: expected "FROM <image>" or "FROM <image> AS <name>"');
}

function parseCopy(
  line: number,
  args: string,
  earlier: readonly Stage[],
): Extract<Instruction, { kind: 'COPY' }> {
  let rest = args;
  let fromStage: number | undefined;
  for (let m = /^(--[a-z-]+)(?:=(\S*))?\s*/.exec(rest); m; m = /^(--[a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
    if (m[1] !== '--from') throw new DockerfileError(line, `COPY: the ${m[1]} flag is not supported`);
    const ref = (m[2] ?? '').toLowerCase();
    const index = /^\d+$/.test(ref) ? Number(ref) : earlier.findIndex((s) => s.name === ref);
    if (index < 0 || index >= earlier.length)
      throw new DockerfileError(line, `COPY: --from=${m[2] ?? ''} names no earlier stage`);
    fromStage = index;
    rest = rest.slice(m[0].length);
  }
  let paths: string[];
  if (rest.startsWith('[')) {
    paths = parseJsonStrings(line, 'COPY', rest);
  } else {
    paths = rest.split(/\s+/).filter((w) => w !== '');
  }
  if (paths.length < 2)
    throw new DockerfileError(line, 'COPY: expected at least one source and a destination');
  const sources = paths.slice(0, -1);
  const dest = paths[paths.length - 1];
  for (const p of paths) rejectSubstitution(line, 'COPY', p);
  const wildcard = sources.find((s) => /[*?[]/.test(s));
  if (wildcard !== undefined)
    throw new DockerfileError(line, `COPY: wildcards are not supported (${wildcard})`);
  if (sources.length > 1 && !dest.endsWith('/'))
    throw new DockerfileError(
      line,
      'COPY: with several sources the destination must be a folder ending in /',
    );
  return fromStage === undefined
    ? { kind: 'COPY', line, sources, dest }
    : { kind: 'COPY', line, fromStage, sources, dest };
}

function parseJsonStrings(line: number, kind: string, text: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DockerfileError(line, `${kind}: not a valid JSON array: ${text}`);
  }
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string'))
    throw new DockerfileError(line, `${kind}: expected a JSON array of strings`);
  return value;
}

/** Splits `k=v k2="v 2"` into words, honouring double quotes, single quotes and backslashes. */
function shellWords(line: number, text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new DockerfileError(line, `ENV: unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

function parseEnv(line: number, args: string): Record<string, string> {
  rejectSubstitution(line, 'ENV', args.replace(/'[^']*'/g, "''"));
  const first = /^\S+/.exec(args)?.[0] ?? '';
  const vars: Record<string, string> = {};
  if (!first.includes('=')) {
    // Legacy form: the rest of the line, spaces included, is the value.
    const value = args.slice(first.length).trim();
    if (!ENV_KEY.test(first) || value === '')
      throw new DockerfileError(line, 'ENV: expected "k=v ..." or "k v"');
    vars[first] = value;
    return vars;
  }
  for (const word of shellWords(line, args)) {
    const eq = word.indexOf('=');
    const key = word.slice(0, eq);
    if (eq < 0 || !ENV_KEY.test(key)) throw new DockerfileError(line, `ENV: expected k=v, got "${word}"`);
    vars[key] = word.slice(eq + 1);
  }
  return vars;
}

function parseInstruction(
  line: number,
  keyword: string,
  args: string,
  earlier: readonly Stage[],
): Instruction {
  switch (keyword) {
    case 'WORKDIR':
      rejectSubstitution(line, 'WORKDIR', args);
      if (args === '') throw new DockerfileError(line, 'WORKDIR: expected a path');
      return { kind: 'WORKDIR', line, path: args };
    case 'COPY':
      return parseCopy(line, args, earlier);
    case 'RUN':
      if (args === '') throw new DockerfileError(line, 'RUN: expected a command');
      if (args.startsWith('['))
        throw new DockerfileError(line, 'RUN: the exec (JSON) form is not supported; use the shell form');
      if (args.startsWith('--'))
        throw new DockerfileError(line, `RUN: flags are not supported (${args.split(/\s/)[0]})`);
      if (/<<-?\s*["']?[A-Za-z_]/.test(args))
        throw new DockerfileError(line, 'RUN: heredocs are not supported');
      return { kind: 'RUN', line, command: args };
    case 'ENV':
      return { kind: 'ENV', line, vars: parseEnv(line, args) };
    case 'USER':
      rejectSubstitution(line, 'USER', args);
      if (!/^[^\s:]+(:[^\s:]+)?$/.test(args))
        throw new DockerfileError(line, 'USER: expected <user>[:<group>]');
      return { kind: 'USER', line, user: args };
    case 'ENTRYPOINT': {
      if (!args.startsWith('['))
        throw new DockerfileError(
          line,
          'ENTRYPOINT: the shell form is not supported; use the exec (JSON) form',
        );
      const entry = parseJsonStrings(line, 'ENTRYPOINT', args);
      if (entry.length === 0) throw new DockerfileError(line, 'ENTRYPOINT: expected a command');
      return { kind: 'ENTRYPOINT', line, args: entry };
    }
    default:
      throw new DockerfileError(line, `unexpected instruction ${keyword}`);
  }
}

export function parseDockerfile(text: string): Dockerfile {
  const stages: Stage[] = [];
  for (const { line, text: instruction } of logicalLines(text)) {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(instruction)!;
    const keyword = m[1].toUpperCase();
    const args = m[2].trim();
    if (!SUPPORTED.includes(keyword)) {
      throw new DockerfileError(
        line,
        KNOWN_UNSUPPORTED.includes(keyword)
          ? `${keyword} is not supported (the host layout interprets ${SUPPORTED.join(', ')})`
          : `unknown instruction "${m[1]}"`,
      );
    }
    if (keyword === 'FROM') {
      const { image, name } = parseFrom(line, args);
      if (name !== undefined && stages.some((s) => s.name === name))
        throw new DockerfileError(line, `FROM: a stage named "${name}" already exists`);
      stages.push(
        name === undefined ? { image, line, instructions: [] } : { image, name, line, instructions: [] },
      );
      continue;
    }
    const current = stages.at(-1);
    if (!current) throw new DockerfileError(line, `${keyword} before the first FROM`);
    current.instructions.push(parseInstruction(line, keyword, args, stages.slice(0, -1)));
  }
  if (stages.length === 0) throw new DockerfileError(1, 'no FROM: a Dockerfile needs at least one stage');
  return { stages };
}

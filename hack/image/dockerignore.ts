/**
 * `.dockerignore` matching, so the host layout's COPY sees the build context Docker would send:
 * patterns are relative to the context root (`node_modules` is the top-level one only; a leading
 * `**` segment matches at any depth), `*` and `?` stay within one path segment, `**` spans any
 * number of them, a pattern that matches a folder excludes what is under it, `!` re-includes, and
 * the last matching pattern wins. Pure.
 */

export interface IgnoreRule {
  pattern: string;
  exception: boolean;
  regex: RegExp;
}

function globToRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else {
        re += '.*';
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      re += body.startsWith('^') || body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += pattern[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Cleans a pattern like Go's filepath.Clean, relative to the context root. */
function cleanPattern(pattern: string): string {
  const parts: string[] = [];
  for (const part of pattern.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exception = line.startsWith('!');
    const pattern = cleanPattern((exception ? line.slice(1) : line).trim());
    if (pattern === '') continue;
    rules.push({ pattern, exception, regex: globToRegex(pattern) });
  }
  return rules;
}

/** Whether `relPath` (relative to the context root, `/`-separated) is left out of the context. */
export function isIgnored(rules: readonly IgnoreRule[], relPath: string): boolean {
  const parts = cleanPattern(relPath).split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (prefixes.some((p) => rule.regex.test(p))) ignored = !rule.exception;
  }
  return ignored;
}

/** Whether some `!` rule could bring back a path under an ignored folder (then it must be walked). */
export function hasExceptions(rules: readonly IgnoreRule[]): boolean {
  return rules.some((r) => r.exception);
}

/**
 * hack/image/dockerfile.ts (the Dockerfile subset `make image-check` interprets) and
 * hack/image/dockerignore.ts (the build context it copies from): exact stages, and errors that
 * name the line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { DockerfileError, parseDockerfile, type Dockerfile } from '../../hack/image/dockerfile.ts';
import { isIgnored, parseDockerignore } from '../../hack/image/dockerignore.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

function errorOf(text: string): DockerfileError {
  try {
    parseDockerfile(text);
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileError');
}

describe('parseDockerfile', () => {
  it('splits a two-stage file into stages with every instruction and the line it starts on', () => {
    const text = [
      '# syntax comment',
      'FROM node:24-bookworm-slim AS build',
      'WORKDIR /app',
      'COPY package.json package-lock.json ./',
      'RUN npm ci',
      '',
      'FROM node:24-bookworm-slim',
      'WORKDIR /app',
      'ENV NODE_ENV=production',
      'COPY --from=build /app/dist dist',
      'USER 65532:65532',
      'ENTRYPOINT ["node", "dist/cmd/manager.js"]',
    ].join('\n');
    expect(parseDockerfile(text)).to.deep.equal({
      stages: [
        {
          image: 'node:24-bookworm-slim',
          name: 'build',
          line: 2,
          instructions: [
            { kind: 'WORKDIR', line: 3, path: '/app' },
            { kind: 'COPY', line: 4, sources: ['package.json', 'package-lock.json'], dest: './' },
            { kind: 'RUN', line: 5, command: 'npm ci' },
          ],
        },
        {
          image: 'node:24-bookworm-slim',
          line: 7,
          instructions: [
            { kind: 'WORKDIR', line: 8, path: '/app' },
            { kind: 'ENV', line: 9, vars: { NODE_ENV: 'production' } },
            { kind: 'COPY', line: 10, fromStage: 0, sources: ['/app/dist'], dest: 'dist' },
            { kind: 'USER', line: 11, user: '65532:65532' },
            { kind: 'ENTRYPOINT', line: 12, args: ['node', 'dist/cmd/manager.js'] },
          ],
        },
      ],
    } satisfies Dockerfile);
  });

  it('joins continued lines as Docker does: backslash dropped, indentation kept, comments inside skipped', () => {
    const text = 'FROM a\nRUN one && \\\n  # a comment inside\n\n  two \\\n  three\nUSER 1';
    expect(parseDockerfile(text).stages[0].instructions).to.deep.equal([
      { kind: 'RUN', line: 2, command: 'one &&   two   three' },
      { kind: 'USER', line: 7, user: '1' },
    ]);
  });

  it('reads keywords in any case, stage names lower-cased, and --from by name or index', () => {
    const text = 'from a As Build\nfrom b\ncopy --from=BUILD x y\nCOPY --from=0 /z /w/';
    expect(parseDockerfile(text).stages.map((s) => [s.name, s.instructions])).to.deep.equal([
      ['build', []],
      [
        undefined,
        [
          { kind: 'COPY', line: 3, fromStage: 0, sources: ['x'], dest: 'y' },
          { kind: 'COPY', line: 4, fromStage: 0, sources: ['/z'], dest: '/w/' },
        ],
      ],
    ]);
  });

  it('reads ENV pairs with quotes and escapes, and the legacy "key value" form', () => {
    const text = 'FROM a\nENV A=1 B="two words" C=\'it\\s\' D=x\\ y\nENV E the rest  of it';
    expect(parseDockerfile(text).stages[0].instructions).to.deep.equal([
      { kind: 'ENV', line: 2, vars: { A: '1', B: 'two words', C: 'it\\s', D: 'x y' } },
      { kind: 'ENV', line: 3, vars: { E: 'the rest  of it' } },
    ]);
  });

  it('reads COPY in JSON form', () => {
    expect(parseDockerfile('FROM a\nCOPY ["a b", "c/"]').stages[0].instructions).to.deep.equal([
      { kind: 'COPY', line: 2, sources: ['a b'], dest: 'c/' },
    ]);
  });

  it("parses the repo's own Dockerfile into a build stage and a final stage that copies from it", () => {
    const { stages } = parseDockerfile(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
    expect(stages.map((s) => s.name)).to.deep.equal(['build', undefined]);
    expect(
      stages[1].instructions.filter((i) => i.kind === 'COPY').map((i) => [i.fromStage, i.sources, i.dest]),
    ).to.deep.equal([
      [0, ['/app/package.json'], './'],
      [0, ['/app/node_modules'], 'node_modules'],
      [0, ['/app/dist'], 'dist'],
    ]);
  });

  const errors: [string, string, string][] = [
    [
      'an instruction it does not interpret',
      'FROM a\n\nCMD ["x"]',
      'Dockerfile line 3: CMD is not supported',
    ],
    ['an unknown instruction', 'FROM a\nFOO bar', 'Dockerfile line 2: unknown instruction "FOO"'],
    ['an instruction before FROM', '# c\nRUN x\nFROM a', 'Dockerfile line 2: RUN before the first FROM'],
    ['a file without FROM', '# nothing\n', 'Dockerfile line 1: no FROM'],
    ['FROM --platform', 'FROM --platform=linux/amd64 a', 'Dockerfile line 1: FROM: flags are not supported'],
    [
      'a duplicate stage name',
      'FROM a AS x\nFROM b AS X',
      'Dockerfile line 2: FROM: a stage named "x" already exists',
    ],
    [
      'COPY --chown',
      'FROM a\nCOPY --chown=1 a b',
      'Dockerfile line 2: COPY: the --chown flag is not supported',
    ],
    [
      'COPY --from a later stage',
      'FROM a AS x\nCOPY --from=y a b\nFROM b AS y',
      'Dockerfile line 2: COPY: --from=y names no earlier stage',
    ],
    [
      'COPY --from its own stage',
      'FROM a AS x\nCOPY --from=0 a b',
      'Dockerfile line 2: COPY: --from=0 names no earlier stage',
    ],
    [
      'COPY with a wildcard',
      'FROM a\nCOPY *.json ./',
      'Dockerfile line 2: COPY: wildcards are not supported (*.json)',
    ],
    [
      'COPY of several sources to a file',
      'FROM a\nCOPY a b c',
      'Dockerfile line 2: COPY: with several sources the destination must be a folder',
    ],
    ['COPY with one path', 'FROM a\nCOPY a', 'Dockerfile line 2: COPY: expected at least one source'],
    [
      'a variable in COPY',
      'FROM a\nCOPY $SRC ./',
      'Dockerfile line 2: COPY: variable substitution is not supported',
    ],
    [
      'RUN in exec form',
      'FROM a\nRUN ["sh"]',
      'Dockerfile line 2: RUN: the exec (JSON) form is not supported',
    ],
    [
      'RUN --mount',
      'FROM a\nRUN --mount=type=cache x',
      'Dockerfile line 2: RUN: flags are not supported (--mount=type=cache)',
    ],
    ['a RUN heredoc', 'FROM a\nRUN <<EOF\nx\nEOF', 'Dockerfile line 2: RUN: heredocs are not supported'],
    [
      'ENTRYPOINT in shell form',
      'FROM a\nENTRYPOINT node x.js',
      'Dockerfile line 2: ENTRYPOINT: the shell form is not supported',
    ],
    [
      'ENTRYPOINT with a non-string',
      'FROM a\nENTRYPOINT ["node", 1]',
      'Dockerfile line 2: ENTRYPOINT: expected a JSON array of strings',
    ],
    ['ENV without a value', 'FROM a\nENV A', 'Dockerfile line 2: ENV: expected "k=v ..." or "k v"'],
    [
      'ENV with a variable',
      'FROM a\nENV A=$B',
      'Dockerfile line 2: ENV: variable substitution is not supported',
    ],
    ['an unterminated ENV quote', 'FROM a\nENV A="x', 'Dockerfile line 2: ENV: unterminated " quote'],
    [
      'a continued instruction, by its first line',
      'FROM a\nRUN x \\\n  y\nUSER a b',
      'Dockerfile line 4: USER: expected <user>[:<group>]',
    ],
  ];
  for (const [what, text, message] of errors) {
    it(`rejects ${what}, naming the line`, () => {
      const err = errorOf(text);
      expect(err.message.startsWith(message), err.message).to.equal(true);
      expect(err.line).to.equal(Number(/line (\d+)/.exec(message)![1]));
    });
  }
});

describe('.dockerignore matching', () => {
  const rules = parseDockerignore(
    ['# comment', 'node_modules', '/dist/', '**/*.log', 'docs/*.md', '!docs/KEEP.md', ' .git ', ''].join(
      '\n',
    ),
  );

  it('leaves out a top-level folder and everything under it, but not a nested folder of that name', () => {
    expect(isIgnored(rules, 'node_modules')).to.equal(true);
    expect(isIgnored(rules, 'node_modules/x/package.json')).to.equal(true);
    expect(isIgnored(rules, 'shared/node_modules')).to.equal(false);
    expect(isIgnored(rules, 'dist/cmd/manager.js')).to.equal(true);
    expect(isIgnored(rules, '.git/HEAD')).to.equal(true);
  });

  it('matches ** across folders and * within one', () => {
    expect(isIgnored(rules, 'a.log')).to.equal(true);
    expect(isIgnored(rules, 'shared/x/a.log')).to.equal(true);
    expect(isIgnored(rules, 'docs/A.md')).to.equal(true);
    expect(isIgnored(rules, 'docs/sub/A.md')).to.equal(false);
  });

  it('lets the last matching rule win, so ! brings a path back', () => {
    expect(isIgnored(rules, 'docs/KEEP.md')).to.equal(false);
    expect(isIgnored(parseDockerignore('!a\na'), 'a')).to.equal(true);
  });

  it("leaves out of the repo's context nothing the Dockerfile copies", () => {
    const repoRules = parseDockerignore(fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8'));
    const copied = [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'cmd/manager.ts',
    ];
    expect(copied.filter((p) => isIgnored(repoRules, p))).to.deep.equal([]);
    expect(
      ['node_modules', 'dist', '.git', 'bench-results'].filter((p) => !isIgnored(repoRules, p)),
    ).to.deep.equal([]);
  });
});

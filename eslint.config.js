// Typed lint: typescript-eslint recommendedTypeChecked, with no-explicit-any and no-unsafe-* kept on.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', '.keel-tmp/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/only-throw-error': 'error',
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message: 'Read time from the injected Clock (src/core/clock.ts).',
        },
        { object: 'Math', property: 'random', message: 'Use the seeded PRNG (src/core/random.ts).' },
      ],
    },
  },
  {
    // The CLI is a client of the package's public entries (package.json "exports"), nothing else: a
    // name it needs is exported properly, not reached for. The demos are handed to it by bin/keel.js.
    files: ['src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^\\.\\./(?!(?:index|analysis|machines|observability|errors|testing)\\.js$|eventlog/postgres\\.js$|redis/index\\.js$|providers/(?:ai-sdk|openai)\\.js$)',
              message:
                "src/cli imports only the public entries: '../index.js' (keel), '../analysis.js', '../machines.js', '../observability.js', '../errors.js', '../testing.js' (and keel/postgres, keel/redis, keel/providers/*). Export what it needs from one of them.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**', 'bench/**', 'src/core/clock.ts', 'src/core/random.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
);

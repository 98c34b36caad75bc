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
    files: ['test/**', 'bench/**', 'src/core/clock.ts', 'src/core/random.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
);

// Lint rules for the TypeScript tree: typescript-eslint's recommended set, with the exceptions the code needs.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'test/fixtures/**', 'scripts/test.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Native bindings and untyped peer data are narrowed by hand where they enter.
      '@typescript-eslint/no-explicit-any': 'error',
      'no-control-regex': 'off',
      // The config walkers read a key and test it in one step: `(x = m.get('k')) ? read(x) : fallback`.
      'no-cond-assign': 'off',
      // Code lines are kept to prettier's width; only strings, templates, regexps and URLs may run past it.
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']",
          message: 'Only the CLI entry may exit the process; return an exit code instead.',
        },
      ],
    },
  },
  {
    // The globals Buffer and performance are getters in Node 20: each use in optimised code is a LoadGlobalIC and a
    // getter call (30 ns a Buffer.from). A module-level import is a constant (src/bytes.ts has the measurements).
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'Buffer', message: "import { Buffer } from 'node:buffer': the global is a getter on every use." },
        {
          name: 'performance',
          message: "import { performance } from 'node:perf_hooks': the global is a getter on every use.",
        },
      ],
    },
  },
  {
    // Benchmarks are programs of their own: they may end their process.
    files: ['bench/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);

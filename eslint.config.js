// ESLint (flat config): the recommended JavaScript and typescript-eslint rules over src/, test/,
// bin/ and scripts/, run by `npm run check` (and so by `npm test`). Syntax-only rules: the
// type-aware ones would make the check several times slower, and `tsc --noEmit` already runs there.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'coverage/', '.tap/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // tsc's noUnusedLocals/noUnusedParameters already report these, with `_` for the deliberate ones.
      '@typescript-eslint/no-unused-vars': 'off',
      // Errors are thrown with `cause`, and a rethrow must keep it.
      'preserve-caught-error': 'off',
    },
  },
);

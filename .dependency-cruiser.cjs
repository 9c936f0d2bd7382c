/**
 * The layering rules of the studio, checked by `npm run deps` (part of `npm test`). Type-only imports count
 * (tsPreCompilationDeps), and so do dynamic `import()`s.
 */
/** Tests and test helpers: they may use devDependencies (vitest, playwright-core). */
const testCode = '(\\.test\\.tsx?|/testing\\.ts)$|^engine/testing/';

module.exports = {
  forbidden: [
    {
      name: 'engine-stays-below-the-shells',
      severity: 'error',
      comment: 'the engine is a plain library: it never imports the desktop shell or the UI',
      from: { path: '^engine/' },
      to: { path: '^(electron|renderer)/' },
    },
    {
      name: 'renderer-sees-only-the-contract',
      severity: 'error',
      comment: 'the UI talks to the engine through the common contract alone',
      from: { path: '^renderer/' },
      to: { path: '^engine/', pathNot: '^engine/common/' },
    },
    {
      name: 'electron-sees-only-the-contract',
      severity: 'error',
      comment: 'the desktop shell talks to the engine host through the common contract alone',
      from: { path: '^electron/' },
      to: { path: '^engine/', pathNot: '^engine/common/' },
    },
    {
      name: 'common-is-pure',
      severity: 'error',
      comment:
        'engine/common runs on both sides: it imports only itself and zod (no Node, no DOM, no engine)',
      from: { path: '^engine/common/', pathNot: testCode },
      to: { pathNot: '^(engine/common/|node_modules/zod/)' },
    },
    {
      name: 'renderer-has-no-node',
      severity: 'error',
      comment: 'the renderer runs in a browser page (its Vite config is build tooling, not the page)',
      from: { path: '^renderer/', pathNot: '^renderer/vite\\.config\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'engine-needs-no-dev-dependency',
      severity: 'error',
      comment: 'the engine runs where devDependencies are not installed (the packaged app, an installed CLI)',
      from: { path: '^engine/', pathNot: testCode },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'declared-dependencies-only',
      severity: 'error',
      comment: 'every package imported is declared in package.json',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import cycles, counting type-only and dynamic imports',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|\\.vite|out|dist|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};

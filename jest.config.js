/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }] },
  testTimeout: 60000,
  maxWorkers: 2,
  // Each test file owns its database and queue prefix; nothing is shared between files.
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
};

import fs from 'node:fs';
import path from 'node:path';

/** The directory holding package.json, whether running from src/ (tests) or dist/src/. */
export const PROJECT_ROOT: string = (() => {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + __dirname);
    dir = up;
  }
})();

export const FLEX_TEMPLATES_DIR = path.join(PROJECT_ROOT, 'flex-templates');

import { escapeHtml } from '../../html';

/**
 * The back office's templating: a tagged template literal that escapes every interpolated value
 * unless it is already Html (made by this tag). Views are plain TypeScript functions, so a page
 * that names a field its data lacks does not compile, and there is no template file to load, no
 * build step and no way to forget an escape. Arrays are joined; null, undefined and false render
 * nothing.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Renderable = Html | string | number | null | undefined | false | readonly Renderable[];

function render(v: Renderable): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return (v as readonly Renderable[]).map(render).join('');
  return escapeHtml(v);
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** `attr` when the condition holds (e.g. checked, selected, disabled). */
export const when = (cond: boolean, attr: string): Html => new Html(cond ? ` ${attr}` : '');

/**
 * Validation pieces shared by the LINE API double's endpoints (messages and rich menus): LINE's
 * error-detail shape and the action-object rules of spec §3.5.
 */

export interface Detail {
  message: string;
  property: string;
}

export type JsonObject = Record<string, unknown>;

/** What a handler answers: status, JSON body (or raw bytes) and extra headers. */
export interface Outcome {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const USER_ID_RE = /^U[0-9a-f]{32}$/;

export const ACTION_TYPES = [
  'postback',
  'message',
  'uri',
  'datetimepicker',
  'camera',
  'cameraRoll',
  'location',
  'richmenuswitch',
  'clipboard',
] as const;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function byteLength(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
}

/** Required string with 1..max UTF-16 code units. */
export function checkRequiredString(obj: JsonObject, key: string, max: number, base: string, out: Detail[]): void {
  const v = obj[key];
  const property = `${base}.${key}`;
  if (v === undefined || v === null) {
    out.push({ message: 'Must be specified', property });
  } else if (typeof v !== 'string') {
    out.push({ message: 'Must be a string', property });
  } else if (v.length === 0) {
    out.push({ message: 'May not be empty', property });
  } else if (v.length > max) {
    out.push({ message: `Length must be between 0 and ${max}`, property });
  }
}

/** Optional string with at most max UTF-16 code units. */
export function checkOptionalString(obj: JsonObject, key: string, max: number, base: string, out: Detail[]): void {
  const v = obj[key];
  if (v === undefined) return;
  const property = `${base}.${key}`;
  if (typeof v !== 'string') {
    out.push({ message: 'Must be a string', property });
  } else if (v.length > max) {
    out.push({ message: `Length must be between 0 and ${max}`, property });
  }
}

export interface LabelRule {
  max: number;
  required: boolean;
}

/** Camera, camera roll and location actions work in quick replies only (spec §3.5). */
const RICH_MENU_ACTION_TYPES = ACTION_TYPES.filter((t) => t !== 'camera' && t !== 'cameraRoll' && t !== 'location');

/**
 * One action object. `where` is the object it sits in: a rich menu takes fewer action types and
 * answers a bad URI with the wording LINE documents for rich menus ("invalid uri").
 */
export function validateAction(
  action: unknown,
  path: string,
  label: LabelRule | undefined,
  out: Detail[],
  where: 'message' | 'richmenu' = 'message',
): void {
  if (!isObject(action)) {
    out.push({ message: 'Must be an object', property: path });
    return;
  }
  const type = action.type;
  const allowed: readonly string[] = where === 'richmenu' ? RICH_MENU_ACTION_TYPES : ACTION_TYPES;
  if (typeof type !== 'string' || !allowed.includes(type)) {
    out.push({
      message: type === undefined ? 'Must be specified' : `Must be one of the following values: [${allowed.join(', ')}]`,
      property: `${path}.type`,
    });
    return;
  }
  if (label) {
    if (label.required) checkRequiredString(action, 'label', label.max, path, out);
    else checkOptionalString(action, 'label', label.max, path, out);
  }
  switch (type) {
    case 'postback':
      if (action.data === undefined || action.data === null) {
        out.push({ message: 'Must be specified', property: `${path}.data` });
      } else {
        checkOptionalString(action, 'data', 300, path, out);
      }
      checkOptionalString(action, 'displayText', 300, path, out);
      checkOptionalString(action, 'text', 300, path, out);
      checkOptionalString(action, 'fillInText', 300, path, out);
      if (action.displayText !== undefined && action.text !== undefined) {
        out.push({ message: 'displayText and text cannot be specified at the same time', property: `${path}.text` });
      }
      break;
    case 'message':
      checkRequiredString(action, 'text', 300, path, out);
      break;
    case 'uri': {
      const before = out.length;
      checkRequiredString(action, 'uri', 1000, path, out);
      if (out.length === before && !/^(https?|line|tel):/i.test(String(action.uri))) {
        const message = where === 'richmenu' ? 'invalid uri' : 'Must be a URI with the scheme http, https, line or tel';
        out.push({ message, property: `${path}.uri` });
      }
      break;
    }
    case 'datetimepicker':
      checkRequiredString(action, 'data', 300, path, out);
      if (!['date', 'time', 'datetime'].includes(String(action.mode))) {
        out.push({ message: 'Must be one of the following values: [date, time, datetime]', property: `${path}.mode` });
      }
      break;
    case 'richmenuswitch':
      checkRequiredString(action, 'richMenuAliasId', 32, path, out);
      checkRequiredString(action, 'data', 300, path, out);
      break;
    case 'clipboard':
      checkRequiredString(action, 'clipboardText', 1000, path, out);
      break;
    default:
      break;
  }
}

export function detailsBody(details: Detail[]): { message: string; details: Detail[] } {
  return { message: `The request body has ${details.length} error(s)`, details };
}

import { HTTPFetchError } from '@line/bot-sdk';

/** LINE's error body: `{message, details?, sentMessages?}` (spec §2.7). */
export interface LineErrorBody {
  message: string;
  details?: Array<{ message: string; property: string }>;
  sentMessages?: Array<{ id: string; quoteToken?: string }>;
}

/** Awaits a promise that must reject with the SDK's HTTPFetchError and returns the error. */
export async function httpError(p: Promise<unknown>): Promise<HTTPFetchError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HTTPFetchError) return err;
    throw err;
  }
  throw new Error('expected the call to fail with HTTPFetchError');
}

export const parseBody = (err: HTTPFetchError): LineErrorBody => JSON.parse(err.body) as LineErrorBody;
